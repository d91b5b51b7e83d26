// The allocator models `cudefrag replay` drives with a trace's allocations and frees. Each model
// answers one question: how much memory would this allocator have held from the driver, and
// would it have failed, if the program had made these requests through it? docs/replay.md states
// each model's rules and where they come from.
//
// Contract, for every model:
// - allocate() is called with a key that is not live (the trace's address of the allocation) and
//   a size > 0; free() with a key allocate() succeeded for. Streams are the trace's stream
//   handles; `legacy` marks cudaMalloc/cudaFree-style calls (usable by every stream at once).
// - The model never holds more than `cap` bytes from the driver. When a request would need more,
//   it first does what the real allocator does before it reports out of memory (free cached
//   segments, unmap free pages, reclaim...), and only then fails; a failed allocate() leaves
//   every live allocation as it was.
// - reserved() is what the model holds from the driver now; peak_reserved() its high-water mark.
// - driver_allocations() counts the times the model took new physical memory from the driver
//   (a segment, a mapped run of pages, a physical handle): each is a slow path in the real
//   allocator, and with virtual memory a mapping change the GPU sees.
// - arena_state() is for the arena model only (nullopt for the others): where what it holds
//   sits, read right after a failed allocate() to say why the request did not fit.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "shim/common/units.hpp"
#include "shim/config/options.hpp"

namespace cudefrag::analyzer::replay {

// What the arena held when a request failed, beyond the live bytes: the rounding of live
// allocations (granted - requested), and its cache, split into what any request could reuse or
// stitch (freed ranges, empty slabs and slab pages) and the rest (free slots of slab pages that
// a live slot pins, which only small requests can use).
struct ArenaState {
  Bytes granted;    // to live allocations (slot and range sizes)
  Bytes requested;  // by them
  std::uint64_t live_allocations = 0;
  Bytes cached;       // mapped, not granted
  Bytes reclaimable;  // of the cache: what any request can reuse or stitch
};

class Model {
 public:
  virtual ~Model() = default;

  virtual bool allocate(std::uint64_t key, Bytes size, std::uint64_t stream, bool legacy) = 0;
  virtual void free(std::uint64_t key, std::uint64_t stream, bool legacy) = 0;
  virtual Bytes reserved() const = 0;
  virtual Bytes peak_reserved() const = 0;
  virtual std::uint64_t driver_allocations() const = 0;
  virtual std::optional<ArenaState> arena_state() const { return std::nullopt; }
};

enum class ModelKind : std::uint8_t {
  kNative,      // PyTorch's caching allocator, default settings
  kExpandable,  // PyTorch's caching allocator with expandable_segments:True
  kAsyncPool,   // the driver's stream-ordered pool (PyTorch backend:cudaMallocAsync)
  kArena,       // cudefrag's arena (the real one, on an accounting-only backend)
};

inline constexpr ModelKind kAllModels[] = {ModelKind::kNative, ModelKind::kExpandable,
                                           ModelKind::kAsyncPool, ModelKind::kArena};

// "native", "expandable", "async", "cudefrag": the names --model takes.
std::string_view model_name(ModelKind kind);
std::optional<ModelKind> model_from_name(std::string_view name);

// `cap`: the most the model may hold from the driver (the card minus the CUDA context).
// `arena`: the cudefrag model's settings, as `cudefrag run` takes them (the growth budget,
// --grow, and the small-request threshold, --small-max); the other models ignore them.
struct ArenaSettings {
  std::uint32_t grow_percent = config::kDefaultGrowPercent;
  Bytes small_max = config::kDefaultSmallMax;
};
std::unique_ptr<Model> make_model(ModelKind kind, Bytes cap, const ArenaSettings& arena = {});

}  // namespace cudefrag::analyzer::replay
