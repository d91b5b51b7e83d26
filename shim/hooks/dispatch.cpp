#include "shim/hooks/dispatch.hpp"

#include <array>
#include <atomic>

#include "shim/config/log.hpp"

namespace cudefrag::hooks {
namespace {

// Asks the real driver for `base` as the variant `id` stands for (its version and stream kind).
void* real_lookup_of_variant(const HookInfo& h) noexcept {
  // Base names in the table are string literals, hence NUL-terminated.
  const char* base = h.base.data();
  const cuuint64_t flags =
      h.ptsz ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : CU_GET_PROC_ADDRESS_LEGACY_STREAM;
  void* fn = nullptr;
  const real::DriverTable& d = real::driver();
  if (d.cuGetProcAddress_v2 != nullptr) {
    CUdriverProcAddressQueryResult status{};
    if (d.cuGetProcAddress_v2(base, &fn, h.min_version, flags, &status) != CUDA_SUCCESS) {
      return nullptr;
    }
  } else if (d.cuGetProcAddress_v1 != nullptr) {
    if (d.cuGetProcAddress_v1(base, &fn, h.min_version, flags) != CUDA_SUCCESS) {
      return nullptr;
    }
  }
  return fn;
}

}  // namespace

void report_missing(HookId id) noexcept {
  static std::array<std::atomic<bool>, kHookCount> reported{};
  if (reported[index(id)].exchange(true, std::memory_order_relaxed)) return;
  const std::string_view name = info(id).name;
  log::error("the real %.*s was not found (is the CUDA %s loaded?); the call fails",
             static_cast<int>(name.size()), name.data(),
             info(id).api == Api::kDriver ? "driver, libcuda.so.1," : "runtime, libcudart,");
}

DeviceOrdinal current_device() noexcept {
  const auto get = real::driver().cuCtxGetDevice;
  CUdevice device = 0;
  if (get == nullptr || get(&device) != CUDA_SUCCESS) return DeviceOrdinal{0};
  return DeviceOrdinal{device};
}

void* substitute_driver_function(const char* symbol, void* found, int version,
                                 bool per_thread) noexcept {
  if (is_hook_address(found)) return found;
  if (const auto id = find_by_real_address(found)) return hook_address(*id);
  // The driver may hand out an internal address rather than its export. Match by name, but only
  // when the driver confirms that the variant we hook is the one it handed out for this request:
  // a newer variant (say a future _v3) must not be answered with our older one.
  const auto id = find_driver_hook(symbol, version, per_thread);
  if (!id) return found;
  const void* ours_in_driver = real_lookup_of_variant(info(*id));
  if (ours_in_driver != nullptr && ours_in_driver != found) {
    log::debug("%s (version %d): the driver's function is not the one hooked; passed through",
               symbol, version);
    return found;
  }
  log::debug("%s (version %d): recognised by name, not by address", symbol, version);
  return hook_address(*id);
}

int runtime_version() noexcept {
  static std::atomic<int> cached{0};
  int v = cached.load(std::memory_order_relaxed);
  if (v != 0) return v;
  v = CUDART_VERSION;
  if (const auto get = real::runtime().cudaRuntimeGetVersion.get()) {
    int loaded = 0;
    if (get(&loaded) == cudaSuccess && loaded > 0) v = loaded;
  }
  cached.store(v, std::memory_order_relaxed);
  return v;
}

}  // namespace cudefrag::hooks
