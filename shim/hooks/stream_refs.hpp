// How the hooks name streams to the arena. arena.hpp asks for one distinct value per real stream,
// and the arena records events on those values (through the backend) from whichever thread runs
// its slow path.
//
// - The legacy default stream (a null stream in the non-_ptsz entry points, cudaStreamLegacy /
//   CU_STREAM_LEGACY 0x1) is one stream for the whole process: StreamRef{nullptr}.
// - The per-thread default stream (cudaStreamPerThread / CU_STREAM_PER_THREAD 0x2, and a null
//   stream in the _ptsz entry points) is a different stream in every thread, but the driver names
//   it 0x2 in all of them. It becomes a token of the calling thread: an odd value from 3 up, which
//   no real stream handle (an aligned pointer) can equal, never reused for another thread.
// - Any other handle is a real stream and is passed as it is.
//
// An event can be recorded on a thread's per-thread default stream only from that thread (as
// 0x2). with_per_thread_streams() wraps the arena's backend so that a record on a token from
// its own thread becomes a record on 0x2, and one from another thread is refused; the arena then
// fences those frees with a device synchronize instead (stream_fences.hpp), which is always
// correct. Reuse by later work on the same per-thread stream stays immediate.
#pragma once

#include <memory>

#include "shim/vmm/backend.hpp"

namespace cudefrag::hooks {

// The arena's name for `stream` as passed to an entry point; `per_thread_entry` is true for the
// _ptsz variants, where a null stream is the per-thread default stream.
vmm::StreamRef arena_stream(const void* stream, bool per_thread_entry) noexcept;

// The stream handle the driver understands for `stream` (as passed to an entry point) when asked
// about it from the calling thread (cuStreamIsCapturing).
void* driver_stream(const void* stream, bool per_thread_entry) noexcept;

// The calling thread's per-thread default stream token.
vmm::StreamRef this_thread_stream_token() noexcept;
bool is_per_thread_token(vmm::StreamRef stream) noexcept;

std::unique_ptr<vmm::Backend> with_per_thread_streams(std::unique_ptr<vmm::Backend> inner);

}  // namespace cudefrag::hooks
