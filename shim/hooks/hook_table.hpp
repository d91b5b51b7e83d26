// The hook table in C++ terms: an id per hooked entry point, what cuGetProcAddress knows about
// each, and the lookups the entry-point hooks and the dlsym hook use. All of it is derived from
// hook_list.h, so the exported functions, the lookups and the counters cannot drift apart.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "shim/hooks/hook_list.h"

namespace cudefrag::hooks {

enum class HookId : std::uint16_t {
#define CUDEFRAG_RT(name, family, params, args) name,
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args) name,
#define CUDEFRAG_LIBC(name) name,
  CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT) CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
      CUDEFRAG_LIBC_HOOKS(CUDEFRAG_LIBC)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV
#undef CUDEFRAG_LIBC
};

enum class Api : std::uint8_t { kRuntime, kDriver, kLibc };

struct HookInfo {
  std::string_view name;  // the exported symbol
  Api api;
  std::string_view base;  // driver: the name cuGetProcAddress is asked for
  int min_version;        // driver: CUDA version that introduced this variant
  bool ptsz;              // per-thread-default-stream variant
};

inline constexpr std::array kHooks{
#define CUDEFRAG_RT(name, family, params, args) HookInfo{#name, Api::kRuntime, {}, 0, false},
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args) \
  HookInfo{#name, Api::kDriver, base, version, (ptsz) != 0},
#define CUDEFRAG_LIBC(name) HookInfo{#name, Api::kLibc, {}, 0, false},
    CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT) CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
        CUDEFRAG_LIBC_HOOKS(CUDEFRAG_LIBC)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV
#undef CUDEFRAG_LIBC
};
inline constexpr std::size_t kHookCount = kHooks.size();

constexpr std::size_t index(HookId id) {
  return static_cast<std::size_t>(id);
}
constexpr const HookInfo& info(HookId id) {
  return kHooks[index(id)];
}

// Our exported function for a runtime or driver hook (what we hand out); null for dlsym, which is
// never handed out.
void* hook_address(HookId id) noexcept;

// The real function a hook forwards to, or null when it is not (yet) resolved.
void* real_address(HookId id) noexcept;

// True when `address` is one of our exported runtime or driver hooks.
bool is_hook_address(const void* address) noexcept;

// The driver hook exported under exactly this name (for dlsym on libcuda).
std::optional<HookId> find_driver_export(std::string_view name) noexcept;

// The driver hook that cuGetProcAddress(base, version, flags) should hand out: the variant with
// this base name, of the highest min_version not above `version`, per-thread-default-stream when
// `per_thread` and such a variant exists.
std::optional<HookId> find_driver_hook(std::string_view base, int version,
                                       bool per_thread) noexcept;

// The driver hook whose real function is at `address`.
std::optional<HookId> find_by_real_address(const void* address) noexcept;

}  // namespace cudefrag::hooks
