// `cudefrag config`: every configuration variable, its current value and what it accepts, from
// the one table the shim parses (shim/config/options.hpp). `--markdown` prints the README table.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "launcher/commands.hpp"
#include "shim/config/options.hpp"

namespace cudefrag::launcher {

int config_command(std::span<char* const> args) {
  bool markdown = false;
  for (const std::string_view a : args) {
    if (a == "--markdown") {
      markdown = true;
    } else if (a == "--help" || a == "-h") {
      std::puts("usage: cudefrag config [--markdown]");
      return 0;
    } else {
      std::fprintf(stderr, "cudefrag config: unknown option '%.*s'\n", static_cast<int>(a.size()),
                   a.data());
      return kUsageError;
    }
  }
  if (markdown) {
    std::fputs(config::markdown_table().c_str(), stdout);
    return 0;
  }
  int bad = 0;
  for (const config::OptionSpec& s : config::kOptions) {
    const char* value = std::getenv(s.env.data());  // table names are NUL-terminated literals
    config::Config scratch;
    const bool ok = value == nullptr || config::parse_option(s.id, value, scratch);
    if (!ok) ++bad;
    std::printf("%-20.*s %s%s%s\n    accepted: %.*s\n    %.*s\n", static_cast<int>(s.env.size()),
                s.env.data(), value != nullptr ? "= '" : "(default: ",
                value != nullptr ? value : std::string(s.default_text).c_str(),
                value != nullptr ? (ok ? "'" : "'  <- not valid") : ")",
                static_cast<int>(s.accepted.size()), s.accepted.data(),
                static_cast<int>(s.help.size()), s.help.data());
  }
  return bad == 0 ? 0 : 1;
}

}  // namespace cudefrag::launcher
