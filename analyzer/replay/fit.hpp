// Runs a model over a trace under a cap, and finds the smallest card a run fits on.
//
// A card of C bytes leaves C minus the CUDA context's overhead to the allocator; the model gets
// that as its cap. A run fits when no request fails. The smallest card is found by bisection
// over multiples of the card step, between the peak live bytes plus the overhead (no allocator
// can do with less) and the peak the model reaches with no cap plus the overhead (it never asks
// for more, so it fits: a cap a model never reaches changes nothing it does). Bisection assumes
// that a run that fits on a card fits on every larger one; a caching allocator can break that in
// contrived cases (a larger card changes which segments are still cached when a request comes),
// so the answer is the smallest card the bisection found to fit, not a proof that no smaller
// one could.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "analyzer/replay/model.hpp"
#include "analyzer/replay/trace_ops.hpp"
#include "shim/config/options.hpp"

namespace cudefrag::analyzer::replay {

struct Failure {
  std::uint64_t time_ns = 0;  // since the program started
  Bytes size;                 // requested
  std::uint32_t stack = 0;
  std::uint16_t entry = 0;
  Bytes live;                       // requested bytes live when it failed
  Bytes reserved;                   // what the model held when it failed
  std::optional<ArenaState> arena;  // the arena model's Model::arena_state() then
};

struct RunResult {
  Bytes peak_reserved;
  // The model's peak at the end of each repetition (running, so never falling): equal entries
  // mean the repetitions after the first needed nothing the first did not.
  std::vector<Bytes> peak_by_repetition;
  std::uint64_t driver_allocations = 0;  // Model::driver_allocations() at the end of the run
  std::optional<Failure> failure;        // the first request that failed; the run stops there
};

struct RunSettings {
  // The trace is played `repeat` times in a row on one model: before each repetition after the
  // first, what the last one left live is freed (a program doing the same work again, not one
  // that keeps the first run's memory).
  unsigned repeat = 1;
  // The cudefrag model's settings (make_model).
  ArenaSettings arena;
};

// Runs `kind` over the trace with `cap` bytes available, as `settings` say. Failure times are
// those of the trace, whichever repetition failed. False when the trace cannot be read.
bool run_model(TraceOps& trace, ModelKind kind, Bytes cap, RunResult& out,
               const RunSettings& settings = {});

struct FitOptions {
  Bytes step = MiB(256);
  Bytes overhead = MiB(512);  // the CUDA context's, taken from every card
  RunSettings run;            // run_model's: the card must hold every repetition
};

// The smallest multiple of `step` on which the run fits; nullopt when the trace cannot be read.
// `unlimited_peak`: the model's peak with no cap (run_model with a cap no card has).
std::optional<Bytes> smallest_card(TraceOps& trace, ModelKind kind, Bytes unlimited_peak,
                                   const FitOptions& options);

// A cap larger than any card: what "no cap" means.
inline constexpr Bytes kNoCap = GiB(1024);

}  // namespace cudefrag::analyzer::replay
