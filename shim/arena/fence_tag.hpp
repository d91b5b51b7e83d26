// When a freed block may be handed out again. A free is stamped with the stream it was freed on
// and that stream's free sequence number; the block is reusable at once by allocations on the
// same stream (CUDA's stream order covers them), and by everyone once the stream's fence has
// passed the number (stream_fences.hpp).
#pragma once

#include <compare>
#include <cstdint>

namespace cudefrag::arena {

// Index of a stream's fence state in StreamFences (a small integer, not the stream itself).
struct StreamIndex {
  std::uint32_t value = 0;
  constexpr auto operator<=>(const StreamIndex&) const = default;
};

// Blocks freed with cudaFree: no stream owns them, only a device-wide synchronize fences them.
inline constexpr StreamIndex kParked{0};
// Who asks when an allocation must only get blocks that are safe on every stream (cudaMalloc,
// slab pages shared by all streams). Never the index of a real stream.
inline constexpr StreamIndex kAnyStream{0xffffffffu};

struct FenceTag {
  StreamIndex stream = kParked;
  std::uint64_t seq = 0;  // 0: fenced already, reusable by every stream
  constexpr bool ready() const { return seq == 0; }
};

inline constexpr FenceTag kReady{};

}  // namespace cudefrag::arena
