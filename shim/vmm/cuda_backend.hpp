// CUDA driver implementation of the backend seam (backend.hpp). Every driver call goes through
// the table of real driver functions (real_cuda.hpp), never through cudefrag's own hooks.
//
// Contexts: each call runs in a context of the backend's device. When the calling thread has one
// current (the program's, primary or not), it is used; when it has none, the device's primary
// context (retained once by the backend) is made current and left current, as cudart would; when
// it has a context of another device, the primary context is made current for the call and the
// program's context restored afterwards. Events and streams must belong to the same context, so a
// program that records on streams of a non-primary context must call from threads where that
// context is current.
//
// The driver checks most of the contract itself; this backend checks what needs no state (sizes,
// alignments, null pointers) and maps the driver's refusals to kInvalidValue. It cannot check a
// handle or an event that does not exist: the driver takes them as pointers ("undefined
// behaviour" per cuMemRelease's documentation), so passing a stale one is a caller bug.
// Driver errors other than out-of-memory and not-ready are logged (log.hpp) with the driver's
// error string.
#pragma once

#include <memory>

#include "shim/vmm/backend.hpp"

namespace cudefrag::vmm {

// Returns nullptr and sets *why (when why is not null) when the backend cannot work:
//   kNotSupported: libcuda.so.1 or a needed entry point is missing, cuInit fails (no GPU), or the
//                  device does not support virtual memory management;
//   kInvalidValue: `device` is not a device ordinal of this machine;
//   kBackendError: the primary context cannot be retained, or the granularity not read.
// Host-located memory (Location::kHost) needs a driver that supports it; create() returns
// kNotSupported otherwise. Destroying the backend releases its reference on the primary context
// (the context is torn down if that was the last one), so the shim should keep it alive until
// exit rather than destroy it from a static destructor.
std::unique_ptr<Backend> make_cuda_backend(DeviceOrdinal device, Status* why);

}  // namespace cudefrag::vmm
