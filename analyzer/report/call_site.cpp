#include "analyzer/report/call_site.hpp"

#include <array>

namespace cudefrag::analyzer {
namespace {

// Shared objects whose every frame is allocator machinery (matched at the start of the name):
// the shim, the CUDA runtime and driver, and PyTorch's CUDA allocator library.
constexpr std::array<std::string_view, 5> kInternalModules = {
    "libcudefrag", "libcudart", "libcuda.so", "libc10_cuda", "libcudadevrt",
};

// Functions that are allocator machinery wherever they live (matched anywhere in the name):
// the shim's own namespace, PyTorch's caching allocators, and the tensor factories every
// PyTorch allocation passes through (they would make one call site of every tensor).
constexpr std::array<std::string_view, 9> kInternalSymbols = {
    "cudefrag::",           "CachingAllocator",       "CachingDeviceAllocator",
    "MallocAsyncAllocator", "CUDAPluggableAllocator", "c10::cuda::",
    "at::detail::empty_",   "at::native::empty_",     "at::_ops::empty",
};

}  // namespace

std::string_view base_name(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool is_allocator_internal(std::string_view module, std::string_view symbol) {
  const std::string_view name = base_name(module);
  for (const std::string_view m : kInternalModules) {
    if (name.starts_with(m)) return true;
  }
  for (const std::string_view s : kInternalSymbols) {
    if (symbol.find(s) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace cudefrag::analyzer
