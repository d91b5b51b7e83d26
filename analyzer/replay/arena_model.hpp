// cudefrag's own arena as a replay model: not a re-implementation but the real arena
// (shim/arena/arena.hpp), with its default options unless told otherwise, on the accounting-only
// backend (accounting_backend.hpp) whose capacity is the model's cap. What it reports as physical
// memory is what it would have held from the driver.
#pragma once

#include <memory>
#include <unordered_map>

#include "analyzer/replay/model.hpp"
#include "shim/arena/arena.hpp"

namespace cudefrag::analyzer::replay {

class ArenaModel final : public Model {
 public:
  explicit ArenaModel(Bytes cap, const arena::ArenaOptions& options = {});
  ~ArenaModel() override;

  bool allocate(std::uint64_t key, Bytes size, std::uint64_t stream, bool legacy) override;
  void free(std::uint64_t key, std::uint64_t stream, bool legacy) override;
  Bytes reserved() const override;
  Bytes peak_reserved() const override;
  std::uint64_t driver_allocations() const override;  // physical handles created
  std::optional<ArenaState> arena_state() const override;

  // For the tests: the arena's own counters.
  arena::ArenaStats stats() const;

 private:
  std::unique_ptr<arena::Arena> arena_;  // null when the cap is below one 2 MiB handle
  std::unordered_map<std::uint64_t, DevicePtr> live_;
};

}  // namespace cudefrag::analyzer::replay
