// What counts as the call site of an allocation: the first frame of its stack that is not part
// of the allocator machinery between the program and the GPU (cudefrag itself, the CUDA runtime
// and driver, PyTorch's caching allocators and tensor factories), and the innermost Python frame
// when the stack has Python frames. The tables of names are in call_site.cpp.
#pragma once

#include <string_view>

namespace cudefrag::analyzer {

// `module` is the path of the shared object holding the frame (may be empty), `symbol` its
// demangled function name (may be empty).
bool is_allocator_internal(std::string_view module, std::string_view symbol);

// "/usr/lib/libfoo.so.1" -> "libfoo.so.1".
std::string_view base_name(std::string_view path);

}  // namespace cudefrag::analyzer
