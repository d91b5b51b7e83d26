// `cudefrag report TRACE`: reads a trace, replays it and prints the report (options.hpp has the
// command line). The launcher's `report` subcommand calls report_main with stdout and stderr.
//
// Exit status: 0 when the report was written (a truncated trace too: a warning on `err` and in
// the report says where it ends); 2 for a bad command line or a trace that cannot be read (the
// message names the file offset and the problem); 1 when the output cannot be written.
#pragma once

#include <cstdio>
#include <span>

namespace cudefrag::analyzer {

int report_main(std::span<char* const> args, std::FILE* out, std::FILE* err);

}  // namespace cudefrag::analyzer
