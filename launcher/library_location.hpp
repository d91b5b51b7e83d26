// Where libcudefrag.so is: beside the launcher, in ../lib/ (installed: bin/cudefrag and
// lib/libcudefrag.so), or in the build tree the launcher was built in.
#pragma once

#include <string>
#include <vector>

namespace cudefrag::launcher {

struct LibraryLookup {
  std::string path;                // absolute; empty when not found
  std::vector<std::string> tried;  // the places looked at, for the error message
};

// `requested` (from --lib) when given: it must exist. Otherwise the first readable candidate.
LibraryLookup find_library(const std::string& requested);

}  // namespace cudefrag::launcher
