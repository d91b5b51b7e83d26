#include "shim/hooks/foreign_hooks.hpp"

#include <link.h>

#include <array>
#include <atomic>
#include <cstring>
#include <string_view>

#include "shim/config/log.hpp"

namespace cudefrag::hooks {
namespace {

// Base names (before any suffix) of libraries that hook the allocation entry points.
constexpr std::array<std::string_view, 2> kKnown{"aimdo.so", "aimdo_rocm.so"};

std::string_view base_name(const char* path) {
  const char* slash = std::strrchr(path, '/');
  return slash != nullptr ? slash + 1 : path;
}

int visit(dl_phdr_info* info, std::size_t /*size*/, void* data) {
  if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') return 0;
  const std::string_view name = base_name(info->dlpi_name);
  for (std::string_view known : kKnown) {
    if (name.starts_with(known)) {
      *static_cast<std::string_view*>(data) = name;
      return 1;
    }
  }
  return 0;
}

}  // namespace

std::string loaded_foreign_allocator_hook() noexcept {
  std::string_view found;
  dl_iterate_phdr(&visit, &found);
  try {
    return std::string(found);
  } catch (...) {
    return {};
  }
}

void warn_about_foreign_allocator_hooks() noexcept {
  static std::atomic<bool> checked{false};
  if (checked.exchange(true, std::memory_order_relaxed)) return;
  const std::string name = loaded_foreign_allocator_hook();
  if (name.empty()) return;
  log::warn(
      "%s (comfy-aimdo, ComfyUI's DynamicVRAM) hooks cuMemAlloc/cuMemFree itself and does not "
      "see the allocations the arena serves; run ComfyUI with --disable-dynamic-vram "
      "(examples/comfyui/README.md)",
      name.c_str());
}

}  // namespace cudefrag::hooks
