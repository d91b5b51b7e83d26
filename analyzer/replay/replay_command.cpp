#include "analyzer/replay/replay_command.hpp"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "analyzer/replay/fit.hpp"
#include "analyzer/replay/replay_options.hpp"
#include "analyzer/replay/trace_ops.hpp"
#include "analyzer/report/json_writer.hpp"
#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {

namespace {

using replay::ModelKind;

struct ModelResult {
  ModelKind kind = ModelKind::kNative;
  Bytes peak;                             // with no cap
  std::vector<Bytes> peak_by_repetition;  // with no cap
  std::uint64_t driver_allocations = 0;   // with no cap
  std::optional<Bytes> smallest;          // smallest card
  replay::RunResult on_card;              // on the card checked
  std::string failure_site;
};

// Where the arena's memory sat when a request failed: an indented line under the failure.
std::string arena_state_text(const replay::ArenaState& a) {
  const Bytes pinned = a.cached - a.reclaimable;
  return "  the arena then: " + bytes_text(a.granted.value) + " granted to " +
         std::to_string(a.live_allocations) + " live allocations (" +
         bytes_text(a.requested.value) + " requested), " + bytes_text(a.cached.value) +
         " cached: " + bytes_text(a.reclaimable.value) + " that any request could reuse, " +
         bytes_text(pinned.value) +
         " in free slots of slab pages that live slots pin (their size follows --small-max)\n";
}

const char* model_description(ModelKind kind) {
  switch (kind) {
    case ModelKind::kNative:
      return "PyTorch caching allocator, default settings";
    case ModelKind::kExpandable:
      return "PyTorch caching allocator, expandable_segments:True";
    case ModelKind::kAsyncPool:
      return "cudaMallocAsync pool (PyTorch backend:cudaMallocAsync)";
    case ModelKind::kArena:
      return "cudefrag's arena (the real one, accounting-only backend)";
  }
  return "";
}

std::string ratio_text(Bytes held, Bytes live) {
  if (live.value == 0) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.2f",
                static_cast<double>(held.value) / static_cast<double>(live.value));
  return text;
}

// Cards are multiples of a quarter GiB by default: two decimals show them exactly.
std::string card_text(Bytes card) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB",
                static_cast<double>(card.value) / static_cast<double>(GiB(1).value));
  return text;
}

std::string plural(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string text_output(const replay::ReplayOptions& o, const replay::TraceSummary& s,
                        std::optional<Bytes> card, const std::vector<ModelResult>& results) {
  std::string t = "cudefrag replay of " + o.trace + "\n";
  if (!s.warning.empty()) t += "warning: " + s.warning + "\n";
  if (!s.device) return t + "nothing to replay: the trace holds no successful allocation\n";
  t += "device " + std::to_string(*s.device);
  if (!s.device_name.empty())
    t += " (" + s.device_name + ", " + bytes_text(s.device_total.value) + ")";
  t += ": " + plural(s.allocations, "allocation", "allocations") + " and " +
       plural(s.frees, "free", "frees") + " replayed, " + plural(s.streams, "stream", "streams") +
       "\n";
  t += "peak live: " + bytes_text(s.peak_live.value) + " requested, at " +
       seconds_text(static_cast<std::int64_t>(s.peak_live_ns)) + " s\n";
  if (s.failed_in_trace != 0 || s.unmatched_frees != 0) {
    t += "not replayed: " +
         plural(s.failed_in_trace, "request that failed", "requests that failed") +
         " in the traced run, " + plural(s.unmatched_frees, "free", "frees") +
         " of memory the trace never saw allocated\n";
  }
  for (const int d : s.other_devices) {
    t += "device " + std::to_string(d) + " also has allocations: replay it with --device " +
         std::to_string(d) + "\n";
  }
  t += "every card loses " + bytes_text(o.context.value) +
       " to the CUDA context (--context); smallest cards in steps of " +
       bytes_text(o.card_step.value) + " (--card-step)\n";
  if (o.grow != config::kDefaultGrowPercent) {
    t += "the cudefrag model's growth budget: " +
         (o.grow == 0 ? std::string("none") : std::to_string(o.grow) + " %") + " (--grow)\n";
  }
  if (o.small_max != config::kDefaultSmallMax) {
    t += "the cudefrag model's small-request threshold: " + bytes_text(o.small_max.value) +
         " (--small-max)\n";
  }
  if (o.repeat > 1) {
    t += "each model plays the trace " + std::to_string(o.repeat) +
         " times in a row (--repeat), freeing what one time left live before the next\n";
  }
  t += "\n";

  const std::string card_column =
      card ? "on the " + card_text(*card) + " card" : "on the recorded card";
  char line[200];
  std::snprintf(line, sizeof line, "%-11s %12s %10s %14s %14s  %s\n", "model", "peak held",
                "held/live", "driver allocs", "smallest card", card_column.c_str());
  t += line;
  for (const ModelResult& r : results) {
    const std::string smallest = r.smallest ? card_text(*r.smallest) : "-";
    const std::string verdict = !card ? "unknown card" : (r.on_card.failure ? "fails" : "fits");
    std::snprintf(line, sizeof line, "%-11s %12s %10s %14" PRIu64 " %14s  %s\n",
                  std::string(replay::model_name(r.kind)).c_str(), bytes_text(r.peak.value).c_str(),
                  ratio_text(r.peak, s.peak_live).c_str(), r.driver_allocations, smallest.c_str(),
                  verdict.c_str());
    t += line;
  }
  if (o.repeat > 1) {
    t += "\npeak held after each time through the trace (no cap):\n";
    for (const ModelResult& r : results) {
      std::snprintf(line, sizeof line, "%-11s", std::string(replay::model_name(r.kind)).c_str());
      t += line;
      for (const Bytes b : r.peak_by_repetition) t += " " + bytes_text(b.value);
      t += "\n";
    }
  }
  for (const ModelResult& r : results) {
    if (!card || !r.on_card.failure) continue;
    const replay::Failure& f = *r.on_card.failure;
    t += "\n" + std::string(replay::model_name(r.kind)) + " fails at " +
         seconds_text(static_cast<std::int64_t>(f.time_ns)) + " s: " + bytes_text(f.size.value) +
         " requested by " + r.failure_site + ", with " + bytes_text(f.live.value) + " live and " +
         bytes_text(f.reserved.value) + " held\n";
    if (f.arena) t += arena_state_text(*f.arena);
  }
  t += "\n";
  for (const ModelResult& r : results) {
    std::snprintf(line, sizeof line, "%-11s %s\n", std::string(replay::model_name(r.kind)).c_str(),
                  model_description(r.kind));
    t += line;
  }
  t += "The models' rules and assumptions: docs/replay.md\n";
  return t;
}

std::string json_output(const replay::ReplayOptions& o, const replay::TraceSummary& s,
                        std::optional<Bytes> card, const std::vector<ModelResult>& results) {
  JsonWriter j;
  j.begin_object();
  j.field("trace", o.trace);
  if (s.device) {
    j.key("device").value(static_cast<std::int64_t>(*s.device));
  } else {
    j.key("device").null();
  }
  j.field("device_name", s.device_name);
  j.field("device_total", s.device_total.value);
  j.field("allocations", s.allocations);
  j.field("frees", s.frees);
  j.field("streams", s.streams);
  j.field("failed_in_trace", s.failed_in_trace);
  j.field("unmatched_frees", s.unmatched_frees);
  j.field("peak_live", s.peak_live.value);
  j.key("peak_live_time").seconds(static_cast<std::int64_t>(s.peak_live_ns));
  j.field("context_overhead", o.context.value);
  j.field("card_step", o.card_step.value);
  j.field("repeat", static_cast<std::uint64_t>(o.repeat));
  j.field("grow", static_cast<std::uint64_t>(o.grow));
  j.field("small_max", o.small_max.value);
  if (card) {
    j.field("card", card->value);
  } else {
    j.key("card").null();
  }
  j.key("models").begin_array();
  for (const ModelResult& r : results) {
    j.begin_object();
    j.field("name", replay::model_name(r.kind));
    j.field("peak_reserved", r.peak.value);
    j.field("driver_allocations", r.driver_allocations);
    j.key("peak_reserved_by_repetition").begin_array();
    for (const Bytes b : r.peak_by_repetition) j.value(b.value);
    j.end_array();
    if (r.smallest) {
      j.field("smallest_card", r.smallest->value);
    } else {
      j.key("smallest_card").null();
    }
    if (card) {
      j.field("fits_card", !r.on_card.failure.has_value());
      j.field("peak_reserved_on_card", r.on_card.peak_reserved.value);
    } else {
      j.key("fits_card").null();
      j.key("peak_reserved_on_card").null();
    }
    if (card && r.on_card.failure) {
      const replay::Failure& f = *r.on_card.failure;
      j.key("failure").begin_object();
      j.key("time").seconds(static_cast<std::int64_t>(f.time_ns));
      j.field("requested", f.size.value);
      j.field("site", r.failure_site);
      j.field("live", f.live.value);
      j.field("reserved", f.reserved.value);
      if (f.arena) {
        j.key("arena").begin_object();
        j.field("granted", f.arena->granted.value);
        j.field("requested", f.arena->requested.value);
        j.field("live_allocations", f.arena->live_allocations);
        j.field("cached", f.arena->cached.value);
        j.field("reclaimable", f.arena->reclaimable.value);
        j.end_object();
      }
      j.end_object();
    } else {
      j.key("failure").null();
    }
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.take() + "\n";
}

bool write_all(std::FILE* f, const std::string& text) {
  return std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0;
}

}  // namespace

int replay_main(std::span<char* const> args, std::FILE* out, std::FILE* err) {
  const replay::ParsedReplayArgs parsed = replay::parse_replay_args(args);
  if (parsed.help) return write_all(out, replay::kReplayUsage) ? 0 : 1;
  if (!parsed.options) {
    std::fprintf(err, "cudefrag replay: %s\n%s", parsed.error.c_str(), replay::kReplayUsage);
    return 2;
  }
  const replay::ReplayOptions& o = *parsed.options;

  replay::TraceOps trace(o.trace, o.device);
  if (!trace.scan()) {
    std::fprintf(err, "cudefrag replay: %s\n", trace.error().c_str());
    return 2;
  }
  const replay::TraceSummary& s = trace.summary();
  if (!s.warning.empty()) std::fprintf(err, "cudefrag replay: warning: %s\n", s.warning.c_str());

  std::optional<Bytes> card = o.card;
  if (!card && s.device_total.value != 0) card = s.device_total;

  std::vector<ModelResult> results;
  if (s.device) {
    const replay::RunSettings run{o.repeat, {o.grow, o.small_max}};
    const replay::FitOptions fit{o.card_step, o.context, run};
    for (const ModelKind kind : o.models) {
      ModelResult r;
      r.kind = kind;
      replay::RunResult unlimited;
      bool ok = replay::run_model(trace, kind, replay::kNoCap, unlimited, run);
      r.peak = unlimited.peak_reserved;
      r.peak_by_repetition = unlimited.peak_by_repetition;
      r.driver_allocations = unlimited.driver_allocations;
      if (ok) r.smallest = replay::smallest_card(trace, kind, r.peak, fit);
      if (ok && card) {
        const Bytes cap = *card > o.context ? *card - o.context : Bytes{};
        // A cap the model never reached changes nothing: the unlimited run is the answer.
        if (cap >= r.peak) {
          r.on_card = unlimited;
        } else {
          ok = replay::run_model(trace, kind, cap, r.on_card, run);
        }
        if (r.on_card.failure) {
          r.failure_site = trace.site(r.on_card.failure->stack, r.on_card.failure->entry);
        }
      }
      if (!ok) {
        std::fprintf(err, "cudefrag replay: %s\n", trace.error().c_str());
        return 2;
      }
      results.push_back(std::move(r));
    }
  }

  if (o.json) {
    const std::string json = json_output(o, s, card, results);
    if (*o.json == "-") return write_all(out, json) ? 0 : 1;
    std::FILE* f = std::fopen(o.json->c_str(), "w");
    if (f == nullptr) {
      std::fprintf(err, "cudefrag replay: cannot write %s\n", o.json->c_str());
      return 1;
    }
    const bool written = write_all(f, json);
    const bool closed = std::fclose(f) == 0;
    if (!written || !closed) {
      std::fprintf(err, "cudefrag replay: cannot write %s\n", o.json->c_str());
      return 1;
    }
  }
  return write_all(out, text_output(o, s, card, results)) ? 0 : 1;
}

}  // namespace cudefrag::analyzer
