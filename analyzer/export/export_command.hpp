// `cudefrag export TRACE [--perfetto FILE] [--memory-viz FILE] [--rmm-csv FILE]`: writes a
// trace in the formats of other tools, all in one pass (export_pass.hpp). The launcher's
// `export` subcommand calls export_main with stdout and stderr.
//
// Exit status: 0 when every output was written (a truncated trace too, up to its last whole
// block, with a warning on `err`); 2 for a bad command line or a trace that cannot be read
// (the message names the file offset and the problem; outputs begun are removed); 1 when an
// output cannot be written.
#pragma once

#include <cstdio>
#include <span>

namespace cudefrag::analyzer {

int export_main(std::span<char* const> args, std::FILE* out, std::FILE* err);

}  // namespace cudefrag::analyzer
