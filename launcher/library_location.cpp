#include "launcher/library_location.hpp"

#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace cudefrag::launcher {
namespace {

constexpr const char* kLibraryName = "libcudefrag.so";

bool readable(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec) && ::access(p.c_str(), R_OK) == 0;
}

std::filesystem::path absolute_form(const std::filesystem::path& p) {
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(p, ec);
  return ec ? std::filesystem::absolute(p, ec) : canonical;
}

}  // namespace

LibraryLookup find_library(const std::string& requested) {
  LibraryLookup r;
  std::vector<std::filesystem::path> candidates;
  if (!requested.empty()) {
    candidates.emplace_back(requested);
  } else {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
      candidates.push_back(self.parent_path() / kLibraryName);
      candidates.push_back(self.parent_path().parent_path() / "lib" / kLibraryName);
      // A build tree copied or moved elsewhere (onto a GPU machine, say) keeps its layout:
      // launcher/cudefrag beside shim/hooks/libcudefrag.so. Its own library, not the one at the
      // path it was built in, which may be missing there or be another build.
      candidates.push_back(self.parent_path().parent_path() / "shim" / "hooks" / kLibraryName);
    }
#ifdef CUDEFRAG_BUILD_TREE_LIBRARY
    // An installed launcher finds the library in ../lib first; a launcher in the build tree (its
    // own folder) finds the one built beside it.
    candidates.emplace_back(CUDEFRAG_BUILD_TREE_LIBRARY);
#endif
  }
  for (const auto& c : candidates) {
    r.tried.push_back(c.string());
    if (readable(c)) {
      r.path = absolute_form(c).string();
      return r;
    }
  }
  return r;
}

}  // namespace cudefrag::launcher
