// The launcher's subcommands. Each takes the arguments after its name and returns the process
// exit code. main.cpp dispatches through one table, so adding a subcommand (the analyzer's
// report, export, replay) is one line there.
#pragma once

#include <span>

namespace cudefrag::launcher {

// Exit code for a bad command line: nothing was started.
inline constexpr int kUsageError = 2;

int run_command(std::span<char* const> args);
int config_command(std::span<char* const> args);
// `cudefrag report`: in the analyzer (analyzer/report/report_command.cpp).
int report_command(std::span<char* const> args);
// `cudefrag export` and `cudefrag replay` (analyzer/export/, analyzer/replay/).
int export_command(std::span<char* const> args);
int replay_command(std::span<char* const> args);

}  // namespace cudefrag::launcher
