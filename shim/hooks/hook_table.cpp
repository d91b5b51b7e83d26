#include "shim/hooks/hook_table.hpp"

#include <bit>

#include "shim/hooks/exports.hpp"
#include "shim/vmm/real_cuda.hpp"

namespace cudefrag::hooks {
namespace {

template <typename Fn>
void* as_address(Fn fn) noexcept {
  return std::bit_cast<void*>(fn);
}

}  // namespace

void* hook_address(HookId id) noexcept {
  switch (id) {
#define CUDEFRAG_RT(name, family, params, args) \
  case HookId::name:                            \
    return as_address(&::name);
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args) \
  case HookId::name:                                                           \
    return as_address(&::name);
    CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT)
    CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV
    case HookId::dlsym:
      return nullptr;
  }
  return nullptr;
}

void* real_address(HookId id) noexcept {
  switch (id) {
#define CUDEFRAG_RT(name, family, params, args) \
  case HookId::name:                            \
    return as_address(real::runtime().name.get());
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args) \
  case HookId::name:                                                           \
    return as_address(real::driver().real_fn);
    CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT)
    CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV
    case HookId::dlsym:
      return as_address(real::real_dlsym_function());
  }
  return nullptr;
}

bool is_hook_address(const void* address) noexcept {
  if (address == nullptr) return false;
  for (std::size_t i = 0; i < kHookCount; ++i) {
    if (hook_address(static_cast<HookId>(i)) == address) return true;
  }
  return false;
}

std::optional<HookId> find_driver_export(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kHookCount; ++i) {
    if (kHooks[i].api == Api::kDriver && kHooks[i].name == name) return static_cast<HookId>(i);
  }
  return std::nullopt;
}

std::optional<HookId> find_driver_hook(std::string_view base, int version,
                                       bool per_thread) noexcept {
  std::optional<HookId> best;
  for (std::size_t i = 0; i < kHookCount; ++i) {
    const HookInfo& h = kHooks[i];
    if (h.api != Api::kDriver || h.base != base || h.min_version > version) continue;
    if (h.ptsz && !per_thread) continue;
    if (!best) {
      best = static_cast<HookId>(i);
      continue;
    }
    const HookInfo& b = info(*best);
    // Prefer the newer variant; at equal versions prefer the per-thread one when asked for
    // (entries without a per-thread variant serve both kinds of request).
    if (h.min_version > b.min_version || (h.min_version == b.min_version && h.ptsz && !b.ptsz)) {
      best = static_cast<HookId>(i);
    }
  }
  return best;
}

std::optional<HookId> find_by_real_address(const void* address) noexcept {
  if (address == nullptr) return std::nullopt;
  for (std::size_t i = 0; i < kHookCount; ++i) {
    if (kHooks[i].api != Api::kDriver) continue;
    if (real_address(static_cast<HookId>(i)) == address) return static_cast<HookId>(i);
  }
  return std::nullopt;
}

}  // namespace cudefrag::hooks
