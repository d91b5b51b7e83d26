#include "analyzer/replay/replay_options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>

namespace cudefrag::analyzer::replay {

const char* const kReplayUsage =
    "usage: cudefrag replay TRACE [--device N] [--card GiB] [--card-step GiB] [--context GiB]\n"
    "                             [--json FILE|-] [--model NAME...] [--repeat N]\n"
    "                             [--grow PERCENT] [--small-max SIZE]\n"
    "Replays the trace's allocations and frees through models of the allocators a program\n"
    "could use, and prints for each the memory it would have held, the smallest card the run\n"
    "fits on, and where it fails on the card the trace was recorded on (or on --card).\n"
    "  --device N       replay this CUDA device (default: the device of the first allocation)\n"
    "  --card GiB       the card to check instead of the recorded one\n"
    "  --card-step GiB  granularity of the smallest card (default 0.25)\n"
    "  --context GiB    memory the CUDA context takes from every card (default 0.5)\n"
    "  --json FILE|-    write JSON to FILE, or to stdout instead of the text\n"
    "  --model NAME...  native, expandable, async, cudefrag (several after one --model,\n"
    "                   repeated, or comma-separated; default: all)\n"
    "  --repeat N       play the trace N times in a row (1-1000, default 1), each time\n"
    "                   freeing first what the last time left live: whether a model's memory\n"
    "                   settles when a program does the same work again\n"
    "  --grow PERCENT   the cudefrag model's growth budget, as `cudefrag run --grow` (0, or\n"
    "                   100-10000; default 200)\n"
    "  --small-max SIZE the cudefrag model's small-request threshold, as `cudefrag run\n"
    "                   --small-max` (up to 16MiB, units as for --limit; default 8MiB)\n";

namespace {

bool parse_gib(std::string_view text, bool zero_ok, Bytes& out) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(v)) return false;
  if (v < 0 || (v == 0 && !zero_ok) || v > 1 << 20) return false;
  out = Bytes{static_cast<std::uint64_t>(std::llround(v * static_cast<double>(GiB(1).value)))};
  return zero_ok || out.value != 0;
}

bool add_models(std::string_view list, std::vector<ModelKind>& out) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    const auto kind = model_from_name(name);
    if (!kind) return false;
    if (std::find(out.begin(), out.end(), *kind) == out.end()) out.push_back(*kind);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  return true;
}

}  // namespace

ParsedReplayArgs parse_replay_args(std::span<char* const> args) {
  ParsedReplayArgs parsed;
  ReplayOptions o;
  bool have_trace = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "-h" || a == "--help") {
      parsed.help = true;
      return parsed;
    }
    const bool takes_value = a == "--device" || a == "--card" || a == "--card-step" ||
                             a == "--context" || a == "--json" || a == "--model" ||
                             a == "--repeat" || a == "--grow" || a == "--small-max";
    if (takes_value) {
      if (i + 1 >= args.size()) {
        parsed.error = std::string(a) + " needs a value";
        return parsed;
      }
      const std::string_view v = args[++i];
      bool good = true;
      if (a == "--device") {
        int d = -1;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
        good = ec == std::errc{} && end == v.data() + v.size() && d >= 0;
        o.device = d;
      } else if (a == "--card") {
        Bytes b;
        good = parse_gib(v, false, b);
        o.card = b;
      } else if (a == "--card-step") {
        good = parse_gib(v, false, o.card_step);
      } else if (a == "--context") {
        good = parse_gib(v, true, o.context);
      } else if (a == "--json") {
        o.json = std::string(v);
      } else if (a == "--repeat") {
        unsigned n = 0;
        const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        good = ec == std::errc{} && end == v.data() + v.size() && n >= 1 && n <= kMaxRepeat;
        o.repeat = n;
      } else if (a == "--grow") {
        // The shim's own rule for CUDEFRAG_GROW, so that the model runs what the shim would.
        config::Config c;
        good = !v.empty() && config::parse_option(config::Option::kGrow, v, c);
        o.grow = c.grow_percent;
      } else if (a == "--small-max") {
        config::Config c;
        good = !v.empty() && config::parse_option(config::Option::kSmallMax, v, c);
        o.small_max = c.small_max;
      } else {
        good = add_models(v, o.models);
        // `--model native expandable`: the names that follow are models too.
        while (good && i + 1 < args.size() && model_from_name(args[i + 1])) {
          good = add_models(args[++i], o.models);
        }
      }
      if (!good) {
        parsed.error = "bad value for " + std::string(a) + ": '" + std::string(v) + "'";
        if (a == "--model") parsed.error += " (models: native, expandable, async, cudefrag)";
        return parsed;
      }
      continue;
    }
    if (a.size() > 1 && a[0] == '-') {
      parsed.error = "unknown option " + std::string(a);
      return parsed;
    }
    if (have_trace) {
      parsed.error = "more than one trace given";
      return parsed;
    }
    o.trace = std::string(a);
    have_trace = true;
  }
  if (!have_trace) {
    parsed.error = "no trace given";
    return parsed;
  }
  if (o.models.empty()) o.models.assign(std::begin(kAllModels), std::end(kAllModels));
  parsed.options = std::move(o);
  return parsed;
}

}  // namespace cudefrag::analyzer::replay
