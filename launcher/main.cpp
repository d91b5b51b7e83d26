// cudefrag: the command-line front end. `cudefrag run -- program args...` runs a program under
// libcudefrag.so; the other subcommands work on configuration and (later) traces.
#include <array>
#include <cstdio>
#include <span>
#include <string_view>

#include "launcher/commands.hpp"

namespace {

using cudefrag::launcher::kUsageError;

struct Subcommand {
  std::string_view name;
  int (*main)(std::span<char* const> args);
  std::string_view summary;
};

constexpr std::array kSubcommands{
    Subcommand{"run", cudefrag::launcher::run_command,
               "run a program under libcudefrag.so and print what it allocated"},
    Subcommand{"config", cudefrag::launcher::config_command,
               "show the configuration variables (--markdown: as a table for the README)"},
    Subcommand{"report", cudefrag::launcher::report_command,
               "summarise a trace (peaks, OOMs, call sites; --html, --json)"},
    Subcommand{"export", cudefrag::launcher::export_command,
               "convert a trace for Perfetto, PyTorch's memory_viz or RMM's replay"},
    Subcommand{"replay", cudefrag::launcher::replay_command,
               "replay a trace through models of other allocators: peak, smallest card"},
};

int usage(std::FILE* out, int code) {
  std::fputs("usage: cudefrag <command> [arguments]\n\ncommands:\n", out);
  for (const Subcommand& s : kSubcommands) {
    std::fprintf(out, "  %-8.*s %.*s\n", static_cast<int>(s.name.size()), s.name.data(),
                 static_cast<int>(s.summary.size()), s.summary.data());
  }
  std::fputs("\n`cudefrag <command> --help` describes a command.\n", out);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  const std::span<char* const> args(argv, static_cast<std::size_t>(argc));
  if (args.size() < 2) return usage(stderr, kUsageError);
  const std::string_view name = args[1];
  if (name == "help" || name == "--help" || name == "-h") return usage(stdout, 0);
  for (const Subcommand& s : kSubcommands) {
    if (s.name == name) return s.main(args.subspan(2));
  }
  std::fprintf(stderr, "cudefrag: unknown command '%.*s'\n\n", static_cast<int>(name.size()),
               name.data());
  return usage(stderr, kUsageError);
}
