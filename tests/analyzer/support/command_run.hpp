// Helpers shared by the analyzer's command tests: run a subcommand's main in this process with
// both streams captured, and read or write the golden files.
#pragma once

#include <cstdio>
#include <span>
#include <string>
#include <vector>

namespace cudefrag::analyzer::testing {

struct CommandResult {
  int status = -1;
  std::string out;
  std::string err;
};

// report_main, export_main, replay_main.
using CommandMain = int (*)(std::span<char* const> args, std::FILE* out, std::FILE* err);

// Runs `main(args)` with stdout and stderr captured. With `cwd`, from that directory, restored
// afterwards: golden tests pass relative trace paths so that what the command prints does not
// depend on where the checkout lives.
CommandResult run_in_process(CommandMain main, std::vector<std::string> args,
                             const std::string& cwd = {});

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

// CUDEFRAG_REGENERATE_GOLDEN=1: golden tests rewrite their expected files instead of comparing.
bool regenerating_golden();

}  // namespace cudefrag::analyzer::testing
