// Other code in the process that hooks the CUDA allocation functions itself, and does not see what
// the arena serves. Known today: comfy-aimdo (ComfyUI's "DynamicVRAM"), which patches the driver's
// cuMemAlloc*/cuMemFree* entry points and watches them to decide when to page model weights out;
// under the arena PyTorch's allocations never reach those functions, so its pressure figures are
// blind (examples/comfyui/README.md).
#pragma once

#include <string>

namespace cudefrag::hooks {

// The file name of a loaded library known to hook CUDA allocations; empty when there is none.
// Reads the dynamic linker's list of loaded objects; allocates only to return a name.
std::string loaded_foreign_allocator_hook() noexcept;

// Logs one warning (per process) when loaded_foreign_allocator_hook() finds one.
void warn_about_foreign_allocator_hooks() noexcept;

}  // namespace cudefrag::hooks
