// `cudefrag replay TRACE`: replays a trace's allocations through allocator models (model.hpp)
// and prints, per model, the memory it would have held, the smallest card the run fits on, and
// the first request that fails on the recorded card (or --card). replay_options.hpp has the
// command line; docs/replay.md the models' rules. The launcher's `replay` subcommand calls
// replay_main with stdout and stderr.
//
// Exit status: 0 when the result was written; 2 for a bad command line or a trace that cannot be
// read; 1 when the output cannot be written.
#pragma once

#include <cstdio>
#include <span>

namespace cudefrag::analyzer {

int replay_main(std::span<char* const> args, std::FILE* out, std::FILE* err);

}  // namespace cudefrag::analyzer
