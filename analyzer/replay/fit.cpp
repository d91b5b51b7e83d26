#include "analyzer/replay/fit.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace cudefrag::analyzer::replay {

bool run_model(TraceOps& trace, ModelKind kind, Bytes cap, RunResult& out,
               const RunSettings& settings) {
  out = RunResult{};
  const std::unique_ptr<Model> model = make_model(kind, cap, settings.arena);
  std::unordered_map<std::uint64_t, Bytes> live;
  Bytes live_bytes;
  const auto free_key = [&](std::unordered_map<std::uint64_t, Bytes>::iterator it, const Op& op) {
    live_bytes -= it->second;
    live.erase(it);
    model->free(op.key, op.stream, op.legacy);
  };
  bool ok = true;
  for (unsigned rep = 0; rep < settings.repeat && ok && !out.failure; ++rep) {
    if (rep > 0) {
      // What the last repetition left live, freed as legacy frees (usable by every stream), in
      // address order so that every build frees them alike.
      std::vector<std::uint64_t> keys;
      keys.reserve(live.size());
      for (const auto& entry : live) keys.push_back(entry.first);
      std::sort(keys.begin(), keys.end());
      for (const std::uint64_t key : keys) model->free(key, 0, true);
      live.clear();
      live_bytes = Bytes{};
    }
    // Each repetition's keys are its own: traced addresses are below 2^56.
    const std::uint64_t salt = std::uint64_t{rep} << 56;
    ok = trace.replay([&](const Op& traced) {
      Op op = traced;
      op.key ^= salt;
      if (!op.alloc) {
        const auto it = live.find(op.key);
        if (it != live.end()) free_key(it, op);
        return true;
      }
      if (const auto old = live.find(op.key); old != live.end()) {
        // Its free was lost (dropped records): free it here, as the traced run must have.
        free_key(old, op);
      }
      if (op.size.value == 0) return true;
      if (!model->allocate(op.key, op.size, op.stream, op.legacy)) {
        Failure f{op.time_ns, op.size, op.stack, op.entry, live_bytes, model->reserved()};
        f.arena = model->arena_state();
        out.failure = f;
        return false;
      }
      live.emplace(op.key, op.size);
      live_bytes += op.size;
      return true;
    });
    if (ok && !out.failure) out.peak_by_repetition.push_back(model->peak_reserved());
  }
  out.peak_reserved = model->peak_reserved();
  out.driver_allocations = model->driver_allocations();
  return ok;
}

std::optional<Bytes> smallest_card(TraceOps& trace, ModelKind kind, Bytes unlimited_peak,
                                   const FitOptions& options) {
  const std::uint64_t step = options.step.value;
  const auto steps_for = [&](Bytes need) {
    return ((need + options.overhead).value + step - 1) / step;
  };
  bool ok = true;
  const auto fits = [&](std::uint64_t k) {
    RunResult r;
    const Bytes card{k * step};
    ok = run_model(trace, kind, card > options.overhead ? card - options.overhead : Bytes{}, r,
                   options.run);
    return !r.failure.has_value();
  };
  // No model holds less than the live bytes, so smaller cards cannot fit; a cap the model never
  // reaches changes nothing, so hi fits (it leaves at least the unlimited peak).
  std::uint64_t lo = std::max<std::uint64_t>(steps_for(trace.summary().peak_live), 1);
  std::uint64_t hi = std::max(steps_for(unlimited_peak), lo);
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    if (fits(mid)) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
    if (!ok) return std::nullopt;
  }
  return Bytes{hi * step};
}

}  // namespace cudefrag::analyzer::replay
