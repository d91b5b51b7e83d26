// `cudefrag run`: preload libcudefrag.so into a program, wait for it, report what it allocated.
//
// The counters come from a stats file the launcher creates and the shim maps (stats_file.hpp),
// read after the program has ended, however it ended.
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "launcher/commands.hpp"
#include "launcher/library_location.hpp"
#include "launcher/run_options.hpp"
#include "launcher/summary.hpp"
#include "shim/config/options.hpp"
#include "shim/hooks/stats_file.hpp"

namespace cudefrag::launcher {
namespace {

constexpr std::array kForwardedSignals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};

std::atomic<pid_t> g_child{0};

// A signal sent to the launcher by another process (kill, a job scheduler's timeout) is passed
// on to the program. One from the terminal (SI_KERNEL) already reached the program, which is in
// the same process group; passing it on would deliver it twice.
void forward_signal(int sig, siginfo_t* info, void* /*context*/) {
  const pid_t child = g_child.load(std::memory_order_relaxed);
  if (child > 0 && (info == nullptr || info->si_code != SI_KERNEL)) kill(child, sig);
}

int fail(const std::string& message) {
  std::fprintf(stderr, "cudefrag run: %s\n", message.c_str());
  return kUsageError;
}

// In mode arena, with no PYTORCH_CUDA_ALLOC_CONF in the environment and no
// --keep-torch-alloc-conf, sets it to backend:cudaMallocAsync. Returns what it did, for the user;
// empty when it left the environment alone. Call after the options are in the environment.
// PYTORCH_NO_CUDA_MEMORY_CACHING set is a choice too: it applies to PyTorch's native allocator
// only, so the async backend would silently undo it (README, "Which PyTorch allocator").
std::string choose_torch_alloc_conf(const RunOptions& o) {
  if (o.keep_torch_alloc_conf || std::getenv("PYTORCH_CUDA_ALLOC_CONF") != nullptr ||
      std::getenv("PYTORCH_NO_CUDA_MEMORY_CACHING") != nullptr) {
    return {};
  }
  config::Config c;  // the defaults, mode arena among them
  if (const char* mode = std::getenv(config::spec(config::Option::kMode).env.data())) {
    if (!config::parse_option(config::Option::kMode, mode, c)) return {};
  }
  if (c.mode != config::Mode::kArena) return {};
  setenv("PYTORCH_CUDA_ALLOC_CONF", "backend:cudaMallocAsync", 1);
  return "PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync (PyTorch hands every tensor to the "
         "arena; --keep-torch-alloc-conf leaves it unset)";
}

// CUDEFRAG_* values already in the environment and not overridden by an option must be valid
// too: the launcher refuses what the shim would refuse.
std::string check_environment(const RunOptions& o) {
  for (const config::OptionSpec& s : config::kOptions) {
    if (s.id == config::Option::kStatsFile) continue;  // the launcher sets it
    bool overridden = false;
    for (const auto& [name, value] : o.env) overridden = overridden || name == s.env;
    const char* value = std::getenv(s.env.data());  // table names are NUL-terminated literals
    config::Config scratch;
    if (overridden || value == nullptr || config::parse_option(s.id, value, scratch)) continue;
    std::array<char, 512> message{};
    return std::string(config::format_invalid(s, s.env, value, message)) +
           " (from the environment)";
  }
  return {};
}

std::string absolute_path(const std::string& p) {
  std::error_code ec;
  const auto a = std::filesystem::absolute(p, ec);
  return ec ? p : a.lexically_normal().string();
}

std::string make_stats_file() {
  const char* dir = std::getenv("TMPDIR");
  std::string path =
      std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/cudefrag-stats-XXXXXX";
  const int fd = mkstemp(path.data());
  if (fd < 0) {
    std::fprintf(stderr, "cudefrag run: cannot create a stats file in %s (%s); no summary\n",
                 dir != nullptr ? dir : "/tmp", std::strerror(errno));
    return {};
  }
  close(fd);
  std::string error;
  if (!stats::create_file(path, error)) {
    std::fprintf(stderr, "cudefrag run: %s; no summary\n", error.c_str());
    unlink(path.c_str());
    return {};
  }
  return path;
}

// Starts the program; -1 if fork failed. Signals to forward are blocked until the child's pid is
// known, so none is lost and none kills the launcher in between.
pid_t start(const std::vector<std::string>& program, const sigset_t& forwarded) {
  std::vector<std::string> args = program;
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  sigset_t previous;
  sigprocmask(SIG_BLOCK, &forwarded, &previous);
  const pid_t pid = fork();
  if (pid == 0) {
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    execvp(argv[0], argv.data());
    const int error = errno;
    std::fprintf(stderr, "cudefrag run: cannot run '%s': %s\n", argv[0], std::strerror(error));
    _exit(error == ENOENT ? 127 : 126);
  }
  if (pid > 0) {
    g_child.store(pid, std::memory_order_relaxed);
    struct sigaction action {};
    action.sa_sigaction = forward_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (const int sig : kForwardedSignals) sigaction(sig, &action, nullptr);
  }
  sigprocmask(SIG_SETMASK, &previous, nullptr);
  return pid;
}

ProgramEnd wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return ProgramEnd{127, 0};
  }
  g_child.store(0, std::memory_order_relaxed);
  if (WIFSIGNALED(status)) return ProgramEnd{128 + WTERMSIG(status), WTERMSIG(status)};
  return ProgramEnd{WEXITSTATUS(status), 0};
}

}  // namespace

int run_command(std::span<char* const> args) {
  const ParsedRun parsed = parse_run_options(args);
  if (parsed.options.help) {
    std::fputs(run_usage().c_str(), stdout);
    return 0;
  }
  if (!parsed.error.empty()) {
    return fail(parsed.error + "\nusage: cudefrag run [options] [--] program [arguments...]" +
                "  (cudefrag run --help lists the options)");
  }
  RunOptions o = parsed.options;
  if (const std::string bad = check_environment(o); !bad.empty()) return fail(bad);

  const LibraryLookup lib = find_library(o.library);
  if (lib.path.empty()) {
    std::string message = "cannot find libcudefrag.so; looked at:";
    for (const auto& t : lib.tried) message += "\n  " + t;
    return fail(message + "\n(--lib PATH names it)");
  }

  std::string trace;
  for (auto& [name, value] : o.env) {
    if (name == config::spec(config::Option::kTrace).env && !value.empty()) {
      value = absolute_path(value);  // so that the summary's command works from anywhere
    }
    if (name == config::spec(config::Option::kLogFile).env && !value.empty()) {
      value = absolute_path(value);
    }
    setenv(name.c_str(), value.c_str(), 1);
  }
  if (const char* t = std::getenv(config::spec(config::Option::kTrace).env.data())) trace = t;

  // PyTorch's allocator, when the user chose none: backend:cudaMallocAsync hands each tensor to
  // the arena, which then sees every free; behind PyTorch's native caching allocator the arena
  // sees only whole segments and cannot undo fragmentation inside them. Measured on an H200
  // (docs/RESULTS.md): smaller emulated cards on both workloads, and no slower.
  if (const std::string why = choose_torch_alloc_conf(o); !why.empty() && !o.quiet) {
    std::fprintf(stderr, "cudefrag: %s\n", why.c_str());
  }

  const std::string stats_path = make_stats_file();
  if (stats_path.empty()) {
    unsetenv(config::spec(config::Option::kStatsFile).env.data());
  } else {
    setenv(config::spec(config::Option::kStatsFile).env.data(), stats_path.c_str(), 1);
  }
  const char* preload = std::getenv("LD_PRELOAD");
  const std::string preloads =
      preload != nullptr && *preload != '\0' ? lib.path + ":" + preload : lib.path;
  setenv("LD_PRELOAD", preloads.c_str(), 1);

  sigset_t forwarded;
  sigemptyset(&forwarded);
  for (const int sig : kForwardedSignals) sigaddset(&forwarded, sig);
  const pid_t pid = start(o.program, forwarded);
  if (pid < 0) {
    std::fprintf(stderr, "cudefrag run: fork failed: %s\n", std::strerror(errno));
    if (!stats_path.empty()) unlink(stats_path.c_str());
    return 1;
  }
  const ProgramEnd end = wait_for(pid);

  stats::StatsBlock block{};
  bool have_stats = false;
  if (!stats_path.empty()) {
    std::string error;
    have_stats = stats::read_file(stats_path, block, error);
    if (!have_stats) std::fprintf(stderr, "cudefrag run: %s\n", error.c_str());
    unlink(stats_path.c_str());
  }
  // A program that could not be started has nothing to summarise; the reason was printed.
  const bool never_started = end.signal == 0 && (end.exit_code == 126 || end.exit_code == 127) &&
                             (!have_stats || block.attached == 0);
  if (!o.quiet && !never_started) {
    const std::string summary = format_summary(have_stats ? &block : nullptr, end, trace);
    std::fputs(summary.c_str(), stderr);
  }
  return end.exit_code;
}

}  // namespace cudefrag::launcher
