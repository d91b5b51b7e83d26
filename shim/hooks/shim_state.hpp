// The shim's process-wide state: configuration, logging and counters, set up once.
//
// Set up lazily by whichever comes first: the library's constructor or the first hook called
// (hooks can run before our constructor, from another library's). Thread-safe; after the first
// time, ensure_initialized() is one atomic load. Setting up reads the environment, opens the log
// and maps the stats file: it never touches CUDA.
#pragma once

#include <atomic>

#include "shim/config/options.hpp"

namespace cudefrag::hooks {

namespace detail {
inline std::atomic<bool> g_initialized{false};
void initialize() noexcept;
}  // namespace detail

inline void ensure_initialized() noexcept {
  if (!detail::g_initialized.load(std::memory_order_acquire)) detail::initialize();
}

// The configuration read at start-up (the defaults before that).
const config::Config& active_config() noexcept;

// What the shim does: passthrough when asked or when any configuration value was bad, arena
// otherwise.
config::Mode effective_mode() noexcept;

// Test only (not exported from libcudefrag.so): what effective_mode() answers from now on.
void set_mode_for_testing(config::Mode mode) noexcept;

// CUDEFRAG_HOOK_DLSYM, read on its own without the rest of the set-up: the dlsym hook runs for
// every dlsym in the process, including any made while the shim is being set up.
bool dlsym_hook_enabled() noexcept;

}  // namespace cudefrag::hooks
