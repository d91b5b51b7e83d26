// PythonStacks::capture inside a real interpreter: python3 calls python_probe.cpp's
// probe_capture from two Python functions, with the GIL held (ctypes.PyDLL) and released
// (ctypes.CDLL), and from a thread Python never saw; and as if the interpreter were a version
// without a known frame layout, or another version than it is. Label nosan: python3 is not built
// with sanitizers.
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "tests/shim/trace/python_runner.hpp"

namespace cudefrag::trace {
namespace {

// Line numbers matter: the test checks them. Prints each capture under a "== name" line.
constexpr const char* kScript = R"(import ctypes, sys
held = ctypes.PyDLL(sys.argv[1])
released = ctypes.CDLL(sys.argv[1])
major, minor = int(sys.argv[2]), int(sys.argv[3])
def capture(lib):
    out = ctypes.create_string_buffer(1 << 16)
    assert lib.probe_capture(major, minor, out, len(out)) >= 0
    return out.value.decode()
def first(lib):
    return capture(lib)
class Second:
    def method(self, lib):
        return capture(lib)
for name, lib in (("held", held), ("released", released)):
    print("== %s first" % name)
    print(first(lib), end="")
    print("== %s second" % name)
    print(Second().method(lib), end="")
print("== thread %d" % released.probe_capture_in_new_thread())
)";

struct Capture {
  std::vector<std::string> frames;  // "function|file|line"
  std::vector<std::string> notes;
};

// Captures by section name, plus the "== thread N" line as section "thread N".
std::map<std::string, Capture> run(const testing::Interpreter& python, int assume_major,
                                   int assume_minor) {
  const auto result = testing::run_python(
      python.path, kScript,
      {CUDEFRAG_PYTHON_PROBE, std::to_string(assume_major), std::to_string(assume_minor)});
  EXPECT_EQ(result.status, 0) << result.output;
  std::map<std::string, Capture> sections;
  std::istringstream lines(result.output);
  std::string section;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("== ", 0) == 0) {
      section = line.substr(3);
      sections[section];
    } else if (line.rfind("!", 0) == 0) {
      sections[section].notes.push_back(line.substr(1));
    } else {
      sections[section].frames.push_back(line);
    }
  }
  return sections;
}

const std::vector<std::string> kFirst = {"capture|<string>|7", "first|<string>|10",
                                         "<module>|<string>|16"};
const std::vector<std::string> kSecond = {"capture|<string>|7", "Second.method|<string>|13",
                                          "<module>|<string>|18"};

class PythonCapture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (testing::first_interpreter().empty()) GTEST_SKIP() << "no python3 found at configure time";
  }
};

TEST_F(PythonCapture, NamesBothFunctionsAndLinesWithTheGilHeldOrReleased) {
  for (const auto& python : testing::test_interpreters()) {
    SCOPED_TRACE(python.path);
    if (!python.walkable()) continue;  // FallsBackToTheGilOnlyForAnUnknownVersion covers these
    auto sections = run(python, 0, 0);
    for (const char* gil : {"held", "released"}) {
      SCOPED_TRACE(gil);
      const Capture& first = sections[std::string(gil) + " first"];
      const Capture& second = sections[std::string(gil) + " second"];
      EXPECT_EQ(first.frames, kFirst);
      EXPECT_EQ(second.frames, kSecond);
      EXPECT_EQ(first.notes, std::vector<std::string>{});
      EXPECT_EQ(second.notes, std::vector<std::string>{});
    }
  }
}

TEST_F(PythonCapture, AThreadWithoutPythonStateRecordsNone) {
  for (const auto& python : testing::test_interpreters()) {
    SCOPED_TRACE(python.path);
    EXPECT_EQ(run(python, 0, 0).count("thread 0"), 1u);
  }
}

TEST_F(PythonCapture, FallsBackToTheGilOnlyForAnUnknownVersion) {
  for (const auto& python : testing::test_interpreters()) {
    SCOPED_TRACE(python.path);
    // As if it were 3.99 (or as it is, for a real version without a layout).
    const bool assumed = python.walkable();
    auto sections = run(python, assumed ? 3 : 0, assumed ? 99 : 0);
    const std::string version =
        assumed ? "3.99"
                : std::to_string(python.version.major) + "." + std::to_string(python.version.minor);
    const std::string note = "Python " + version +
                             ": no frame layout known for it (3.11 to 3.13 are); Python frames are "
                             "recorded only for threads holding the GIL";
    for (const char* which : {"first", "second"}) {
      SCOPED_TRACE(which);
      const Capture& held = sections[std::string("held ") + which];
      const Capture& released = sections[std::string("released ") + which];
      if (python.version.minor >= 11) {
        EXPECT_EQ(held.frames, std::string(which) == "first" ? kFirst : kSecond);
      } else {
        EXPECT_EQ(held.frames.size(), 3u) << "co_name rather than co_qualname before 3.11";
      }
      EXPECT_TRUE(released.frames.empty());
      // One note per PythonStacks (each capture here has its own), whether or not it captured.
      EXPECT_EQ(held.notes, std::vector<std::string>{note});
      EXPECT_EQ(released.notes, std::vector<std::string>{note});
    }
  }
}

// Another version's layout on this interpreter: the thread state's id, the type checks or the
// comparison with the C API must catch it. With the GIL held the C API then gives the frames;
// without it there are none; nothing crashes.
TEST_F(PythonCapture, AWrongLayoutIsCaught) {
  for (const auto& python : testing::test_interpreters()) {
    if (!python.walkable()) continue;
    for (int minor : {11, 12, 13}) {
      if (minor == python.version.minor) continue;
      SCOPED_TRACE(python.path + " read as 3." + std::to_string(minor));
      auto sections = run(python, 3, minor);
      for (const char* which : {"first", "second"}) {
        SCOPED_TRACE(which);
        const Capture& held = sections[std::string("held ") + which];
        EXPECT_EQ(held.frames, std::string(which) == "first" ? kFirst : kSecond);
        EXPECT_EQ(held.notes.size(), 1u);
        EXPECT_EQ(sections[std::string("released ") + which].frames, std::vector<std::string>{});
      }
    }
  }
}

}  // namespace
}  // namespace cudefrag::trace
