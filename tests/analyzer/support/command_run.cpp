#include "tests/analyzer/support/command_run.hpp"

#include <stdio.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cudefrag::analyzer::testing {

CommandResult run_in_process(CommandMain main, std::vector<std::string> args,
                             const std::string& cwd) {
  const std::filesystem::path before = std::filesystem::current_path();
  if (!cwd.empty()) std::filesystem::current_path(cwd);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  char* out_text = nullptr;
  char* err_text = nullptr;
  std::size_t out_size = 0;
  std::size_t err_size = 0;
  FILE* out = open_memstream(&out_text, &out_size);
  FILE* err = open_memstream(&err_text, &err_size);
  CommandResult r;
  r.status = main(argv, out, err);
  std::fclose(out);
  std::fclose(err);
  r.out.assign(out_text, out_size);
  r.err.assign(err_text, err_size);
  std::free(out_text);
  std::free(err_text);
  if (!cwd.empty()) std::filesystem::current_path(before);
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

bool regenerating_golden() {
  const char* v = std::getenv("CUDEFRAG_REGENERATE_GOLDEN");
  return v != nullptr && std::string(v) == "1";
}

}  // namespace cudefrag::analyzer::testing
