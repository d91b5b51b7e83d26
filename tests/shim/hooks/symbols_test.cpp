// libcudefrag.so exports every hooked symbol and nothing else (read from its dynamic symbol table
// with nm), so it cannot clash with the host program's own copies of spdlog, fmt or libstdc++.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <sstream>
#include <string>

#include "shim/hooks/hook_list.h"

namespace {

std::string command_output(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[1024];
  while (std::fgets(buf, sizeof buf, pipe) != nullptr) out += buf;
  pclose(pipe);
  return out;
}

std::set<std::string> exported_symbols(const std::string& library) {
  std::set<std::string> out;
  const std::string command = "nm -D --defined-only '" + library + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char line[1024];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    std::istringstream fields(line);
    std::string address;
    std::string type;
    std::string name;
    if (!(fields >> address >> type >> name)) continue;
    if (const auto at = name.find('@'); at != std::string::npos) name.resize(at);
    out.insert(name);
  }
  pclose(pipe);
  return out;
}

std::set<std::string> hooked_symbols() {
  return {
#define CUDEFRAG_RT(name, family, params, args) #name,
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args) #name,
#define CUDEFRAG_NAME(name) #name,
      CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT) CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
          CUDEFRAG_LIBC_HOOKS(CUDEFRAG_NAME)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV
  };
}

std::set<std::string> public_api_symbols() {
  return {"" CUDEFRAG_PUBLIC_API(CUDEFRAG_NAME)};
}

TEST(Symbols, LibraryExportsEveryHookedSymbol) {
  const std::set<std::string> exported = exported_symbols(CUDEFRAG_TEST_LIBRARY);
  ASSERT_FALSE(exported.empty()) << "nm found no symbols in " << CUDEFRAG_TEST_LIBRARY;
  for (const std::string& name : hooked_symbols()) {
    EXPECT_TRUE(exported.count(name) == 1) << name << " is not exported";
  }
}

// The real CUDA libraries are found at run time, from what the program loaded; linking them
// would load the build machine's stub or fail where they are elsewhere.
TEST(Symbols, LibraryLinksNeitherTheRuntimeNorTheDriver) {
  const std::string dynamic =
      command_output(std::string("readelf -d '") + CUDEFRAG_TEST_LIBRARY + "' 2>&1");
  ASSERT_NE(dynamic.find("(NEEDED)"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libcuda"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libcudart"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libspdlog"), std::string::npos) << dynamic;
  EXPECT_EQ(dynamic.find("libfmt"), std::string::npos) << dynamic;
}

TEST(Symbols, LibraryExportsNothingElse) {
  const std::set<std::string> hooked = hooked_symbols();
  const std::set<std::string> api = public_api_symbols();
  for (const std::string& name : exported_symbols(CUDEFRAG_TEST_LIBRARY)) {
    EXPECT_TRUE(hooked.count(name) == 1 || api.count(name) == 1) << name << " is exported";
  }
}

}  // namespace
