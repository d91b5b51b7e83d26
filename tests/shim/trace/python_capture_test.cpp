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

// Code objects made and dropped one after another (exec of generated source, as FX and other
// code generators do): each capture must name the code running now, never what a cache kept of
// an earlier code object at the same address. With the GIL held the caches keep a reference to
// each code object, so none is freed; without it they compare the code object's identity
// fields, which tells a new one from an old one at the same address through co_version (3.12+)
// but not on 3.11 when its names and line table also sit at the old ones' addresses
// (python_stack.hpp), so 3.11 is checked with the GIL held only.
TEST_F(PythonCapture, CodeObjectsReplacedAtTheSameAddressAreNotMistaken) {
  constexpr const char* kGenerated = R"(import ctypes, sys
held = ctypes.PyDLL(sys.argv[1])
released = ctypes.CDLL(sys.argv[1])
def capture(lib):
    out = ctypes.create_string_buffer(1 << 16)
    assert lib.probe_capture_kept(out, len(out)) >= 0
    return out.value.decode().splitlines()[1]
for name, lib in (("held", held), ("released", released)):
    for k in range(200):
        n = k % 7
        source = "def f%d(lib):\n%s    return capture(lib)\nr = f%d(lib)\n" % (n, "\n" * n, n)
        scope = {"capture": capture, "lib": lib}
        exec(compile(source, "<gen>", "exec"), scope)
        print("%s %d %s" % (name, n, scope["r"]))
)";
  for (const auto& python : testing::test_interpreters()) {
    SCOPED_TRACE(python.path);
    if (!python.walkable()) continue;
    const auto result = testing::run_python(python.path, kGenerated, {CUDEFRAG_PYTHON_PROBE});
    ASSERT_EQ(result.status, 0) << result.output;
    std::istringstream lines(result.output);
    int checked = 0;
    for (std::string gil, frame; lines >> gil;) {
      int n = 0;
      lines >> n >> frame;
      if (gil == "released" && python.version.minor < 12) continue;
      EXPECT_EQ(frame, "f" + std::to_string(n) + "|<gen>|" + std::to_string(n + 2)) << gil;
      ++checked;
    }
    EXPECT_EQ(checked, python.version.minor < 12 ? 200 : 400);
  }
}

}  // namespace
}  // namespace cudefrag::trace
