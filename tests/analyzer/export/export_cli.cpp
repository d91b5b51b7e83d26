// `cudefrag export` as a program of its own, for the Python checks of the outputs
// (check_exports.py): the launcher is another engineer's part and may not build here.
#include <cstdio>
#include <span>

#include "analyzer/export/export_command.hpp"

int main(int argc, char** argv) {
  return cudefrag::analyzer::export_main(
      std::span<char* const>(argv + 1, static_cast<std::size_t>(argc - 1)), stdout, stderr);
}
