#include "launcher/run_options.hpp"

#include <array>
#include <string_view>

#include "shim/config/options.hpp"

namespace cudefrag::launcher {
namespace {

const config::OptionSpec* find_flag(std::string_view flag) {
  for (const config::OptionSpec& s : config::kOptions) {
    if (!s.flag.empty() && s.flag == flag) return &s;
  }
  return nullptr;
}

}  // namespace

ParsedRun parse_run_options(std::span<char* const> args) {
  ParsedRun r;
  RunOptions& o = r.options;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (!a.starts_with("-")) break;  // the program, without a "--" before it
    if (a == "--help" || a == "-h") {
      o.help = true;
      return r;
    }
    if (a == "--quiet" || a == "-q") {
      o.quiet = true;
      continue;
    }
    if (a == "--keep-torch-alloc-conf") {
      o.keep_torch_alloc_conf = true;
      continue;
    }
    if (a == "--no-hook-dlsym") {
      o.env.emplace_back(config::spec(config::Option::kHookDlsym).env, "0");
      continue;
    }
    // --name value, or --name=value.
    const auto eq = a.find('=');
    const std::string_view name = a.substr(0, eq);
    const config::OptionSpec* spec = find_flag(name);
    if (spec == nullptr && name != "--lib") {
      r.error = "unknown option '" + std::string(a) + "'";
      return r;
    }
    std::string value;
    if (eq != std::string_view::npos) {
      value = a.substr(eq + 1);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      r.error = "option " + std::string(name) + " needs a value";
      return r;
    }
    if (spec == nullptr) {
      o.library = value;
      continue;
    }
    config::Config scratch;
    if (!config::parse_option(spec->id, value, scratch)) {
      std::array<char, 512> message{};
      r.error = config::format_invalid(*spec, name, value, message);
      return r;
    }
    o.env.emplace_back(spec->env, value);
  }
  for (; i < args.size(); ++i) o.program.emplace_back(args[i]);
  if (o.program.empty()) r.error = "no program to run";
  return r;
}

std::string run_usage() {
  std::string u =
      "usage: cudefrag run [options] [--] program [arguments...]\n\n"
      "Runs the program with libcudefrag.so preloaded and prints, when it ends, the CUDA\n"
      "allocation calls it made. Exits with the program's exit code (128 + signal if a signal\n"
      "ended it); 2 for a bad command line.\n\noptions:\n";
  for (const config::OptionSpec& s : config::kOptions) {
    if (s.flag.empty()) continue;
    u += "  " + std::string(s.flag) + " VALUE\n      " + std::string(s.help) +
         "\n      accepted: " + std::string(s.accepted) + "; sets " + std::string(s.env) +
         " (default: " + std::string(s.default_text) + ")\n";
  }
  u += "  --no-hook-dlsym\n      Do not intercept dlsym on libcuda.so.1 (sets "
       "CUDEFRAG_HOOK_DLSYM=0).\n"
       "  --lib PATH\n      The libcudefrag.so to preload (default: beside this program, then\n"
       "      ../lib/, then ../shim/hooks/ (a build tree), then the build tree it was built in).\n"
       "  --quiet\n      No summary at the end.\n"
       "  --keep-torch-alloc-conf\n      In mode arena, leave PYTORCH_CUDA_ALLOC_CONF unset when "
       "it is\n"
       "      (default: set it to backend:cudaMallocAsync, so that every PyTorch tensor is one\n"
       "      arena allocation; a value the program's environment already has is never changed,\n"
       "      nor is it set when PYTORCH_NO_CUDA_MEMORY_CACHING is).\n";
  return u;
}

}  // namespace cudefrag::launcher
