#include "shim/hooks/shim_state.hpp"

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "shim/config/log.hpp"
#include "shim/hooks/counters.hpp"
#include "shim/hooks/stats_file.hpp"
#include "shim/hooks/tracing.hpp"

namespace cudefrag::hooks {
namespace {

constinit config::Config g_config{};
constinit std::atomic<config::Mode> g_effective_mode{config::Mode::kPassthrough};

stats::ReportedMode reported(config::Mode m) {
  return m == config::Mode::kArena ? stats::ReportedMode::kArena
                                   : stats::ReportedMode::kPassthrough;
}

void copy_truncated(std::string_view from, std::span<char> to) {
  const std::size_t n = from.size() < to.size() ? from.size() : to.size() - 1;
  std::memcpy(to.data(), from.data(), n);
  to[n] = '\0';
}

void attach_stats(const config::Config& c, config::Mode requested, config::Mode effective,
                  std::size_t config_errors) {
  stats::StatsBlock* block = nullptr;
  if (!c.stats_file.empty()) {
    const char* why = "";
    block = stats::map_file(c.stats_file.c_str(), &why);
    if (block == nullptr) {
      log::warn("CUDEFRAG_STATS_FILE='%s': %s; the counters stay inside this process",
                c.stats_file.c_str(), why);
    }
  }
  attach_counters(block);
  stats::StatsBlock& b = counters_block();
  // Every process sharing the file writes the same names and settings.
  for (std::size_t i = 0; i < kHookCount; ++i) copy_truncated(kHooks[i].name, b.entries[i].name);
  std::atomic_ref(b.entry_count).store(static_cast<std::uint32_t>(kHookCount));
  std::atomic_ref(b.mode_requested).store(reported(requested));
  std::atomic_ref(b.mode_effective).store(reported(effective));
  if (config_errors > 0) stats::add(b.config_errors, static_cast<std::uint32_t>(config_errors));
  copy_truncated(c.trace.view(), b.trace_path);
  stats::add(b.attached, 1U);
}

void initialize_once() noexcept {
  const config::LoadResult loaded = config::load_from_environment();
  g_config = loaded.config;
  log::configure(g_config.log_level, g_config.log_file.view());
  for (std::size_t i = 0; i < loaded.error_count; ++i) {
    const std::string_view e = loaded.error(i);
    log::error("%.*s; running in passthrough mode", static_cast<int>(e.size()), e.data());
  }
  // A bad value has already turned the mode into passthrough. A device whose arena cannot start
  // runs in passthrough on its own (arenas.hpp).
  const config::Mode requested = g_config.mode;
  const config::Mode effective = requested;
  g_effective_mode.store(effective, std::memory_order_relaxed);
  attach_stats(g_config, requested, effective, loaded.error_count);
  configure_tracing(g_config);
  const std::string_view mode = config::to_string(effective);
  log::debug("initialised: mode %.*s, dlsym hook %s", static_cast<int>(mode.size()), mode.data(),
             dlsym_hook_enabled() ? "on" : "off");
}

}  // namespace

namespace detail {
void initialize() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    initialize_once();
    g_initialized.store(true, std::memory_order_release);
  });
}
}  // namespace detail

const config::Config& active_config() noexcept {
  return g_config;
}

config::Mode effective_mode() noexcept {
  return g_effective_mode.load(std::memory_order_relaxed);
}

void set_mode_for_testing(config::Mode mode) noexcept {
  ensure_initialized();
  g_effective_mode.store(mode, std::memory_order_relaxed);
}

bool dlsym_hook_enabled() noexcept {
  // -1: not read yet; 0/1: the value. A bad value keeps the default here; the full set-up
  // reports it.
  static std::atomic<int> state{-1};
  int s = state.load(std::memory_order_relaxed);
  if (s < 0) {
    bool on = true;
    // Table names are string literals, hence NUL-terminated.
    const char* text = std::getenv(config::spec(config::Option::kHookDlsym).env.data());
    if (text != nullptr && *text != '\0' && !config::parse_bool(text, on)) on = true;
    s = on ? 1 : 0;
    state.store(s, std::memory_order_relaxed);
  }
  return s == 1;
}

}  // namespace cudefrag::hooks
