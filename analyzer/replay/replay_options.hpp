// The command line of `cudefrag replay`.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "analyzer/replay/model.hpp"
#include "shim/config/options.hpp"

namespace cudefrag::analyzer::replay {

inline constexpr unsigned kMaxRepeat = 1000;

struct ReplayOptions {
  std::string trace;
  std::optional<int> device;        // default: the device of the first allocation
  std::optional<Bytes> card;        // default: the card the trace was recorded on
  Bytes card_step = MiB(256);       // --card-step GiB
  Bytes context = MiB(512);         // --context GiB: the CUDA context's share of every card
  std::optional<std::string> json;  // a file, or "-" for stdout (then no text)
  std::vector<ModelKind> models;    // default: all, in kAllModels order
  unsigned repeat = 1;              // --repeat N: the trace played N times in a row (1-1000)
  std::uint32_t grow = config::kDefaultGrowPercent;  // --grow: the cudefrag model's budget
  Bytes small_max = config::kDefaultSmallMax;        // --small-max: its small-request threshold
};

struct ParsedReplayArgs {
  std::optional<ReplayOptions> options;  // absent on error or --help
  bool help = false;
  std::string error;
};

// args[0] is the first argument after the command name.
ParsedReplayArgs parse_replay_args(std::span<char* const> args);

extern const char* const kReplayUsage;

}  // namespace cudefrag::analyzer::replay
