// The analyzer's subcommands as the launcher runs them: on the terminal's stdout and stderr.
// (`cudefrag report` has its adapter in analyzer/report/report_command.cpp.)
#include <cstdio>

#include "analyzer/export/export_command.hpp"
#include "analyzer/replay/replay_command.hpp"
#include "launcher/commands.hpp"

namespace cudefrag::launcher {

int export_command(std::span<char* const> args) {
  return analyzer::export_main(args, stdout, stderr);
}

int replay_command(std::span<char* const> args) {
  return analyzer::replay_main(args, stdout, stderr);
}

}  // namespace cudefrag::launcher
