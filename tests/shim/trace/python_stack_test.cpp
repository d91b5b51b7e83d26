// Python frames in a trace: python3 -c runs a script that records through a small library
// (python_probe.cpp) from two Python functions, once with the GIL held (ctypes.PyDLL) and once
// with it released (ctypes.CDLL, as PyTorch's operator bindings do); the trace must name both
// functions with their lines either way. Label nosan: python3 is not built with sanitizers.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/shim/trace/python_runner.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::trace {
namespace {

using testing::read_trace;
using testing::TempDir;

// Line numbers matter: the test checks them. Sites 1-2 hold the GIL, 3-6 release it; 5 enters
// the interpreter again from C (map), 6 runs in a generator's frame.
constexpr const char* kScript = R"(import ctypes, sys
held = ctypes.PyDLL(sys.argv[1])
released = ctypes.CDLL(sys.argv[1])
assert held.probe_start(sys.argv[2].encode(), sys.argv[3].encode()) == 0
def first_caller(lib, site):
    lib.probe_alloc(site)
class Holder:
    def second_caller(self, lib, site):
        lib.probe_alloc(site)
def generator(lib, site):
    yield lib.probe_alloc(site)
for _ in range(3):
    first_caller(held, 1)
    Holder().second_caller(held, 2)
    first_caller(released, 3)
    Holder().second_caller(released, 4)
    list(map(lambda site: released.probe_alloc(site), [5]))
    list(generator(released, 6))
held.probe_stop()
)";

constexpr const char* kMarkScript = R"(import ctypes, sys
ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL).probe_configure(sys.argv[2].encode())
ctypes.CDLL(None).cudefrag_mark(b"from python")
)";

struct Frame {
  std::string function;
  std::string file;
  int line;
};

std::vector<Frame> python_frames(const testing::ReadTrace& trace, std::uint32_t stack_id) {
  std::vector<Frame> frames;
  const auto* stack = trace.stack(stack_id);
  if (stack == nullptr) return frames;
  for (const auto& f : stack->python) {
    frames.push_back({trace.string(f.function), trace.string(f.file), f.line});
  }
  return frames;
}

// "function@line" innermost first, e.g. "first_caller@6 <module>@13".
std::string describe(const std::vector<Frame>& frames) {
  std::string text;
  for (const auto& f : frames) {
    if (!text.empty()) text += ' ';
    text += f.function + "@" + std::to_string(f.line);
  }
  return text;
}

class PythonStacks : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (testing::first_interpreter().empty()) GTEST_SKIP() << "no python3 found at configure time";
  }
};

TEST_P(PythonStacks, TraceNamesBothFunctionsAndTheirLinesWithTheGilHeldOrReleased) {
  for (const auto& python : testing::test_interpreters()) {
    SCOPED_TRACE(python.path);
    TempDir dir;
    const std::string path = dir.file("py.trace");
    ASSERT_EQ(
        testing::run_python(python.path, kScript, {CUDEFRAG_PYTHON_PROBE, path, GetParam()}).status,
        0);
    const auto trace = read_trace(path);
    ASSERT_EQ(trace.error, "");
    const auto allocs = trace.allocs();
    ASSERT_EQ(allocs.size(), 18u);

    std::map<std::uint64_t, std::set<std::uint32_t>> stacks_by_site;
    for (const auto& a : allocs) stacks_by_site[a.address].insert(a.stack);
    std::map<std::uint64_t, std::string> frames_by_site;
    for (std::uint64_t site = 1; site <= 6; ++site) {
      SCOPED_TRACE("site " + std::to_string(site));
      // Native frames may differ between the first calls and later ones (the interpreter
      // specialises a call site as it warms up); Python frames may not.
      if (GetParam() == "python") {
        EXPECT_EQ(stacks_by_site[site].size(), 1u);
      }
      for (const std::uint32_t stack : stacks_by_site[site]) {
        const auto frames = python_frames(trace, stack);
        for (const auto& f : frames) EXPECT_EQ(f.file, "<string>");
        if (stack == *stacks_by_site[site].begin()) {
          frames_by_site[site] = describe(frames);
        } else {
          EXPECT_EQ(describe(frames), frames_by_site[site]);
        }
        if (GetParam() == "both") {
          const auto* record = trace.stack(stack);
          ASSERT_TRUE(record != nullptr && !record->native.empty());
          EXPECT_EQ(trace.symbol(record->native.front()), "probe_alloc");
          // With Python frames, the native ones end where the interpreter runs them.
          if (!frames.empty()) {
            EXPECT_EQ(trace.symbol(record->native.back()), "_PyEval_EvalFrameDefault");
          }
        }
      }
    }
    // co_qualname from Python 3.11; co_name before.
    const std::string second =
        python.version.minor >= 11 ? "Holder.second_caller" : "second_caller";
    EXPECT_EQ(frames_by_site[1], "first_caller@6 <module>@13");
    EXPECT_EQ(frames_by_site[2], second + "@9 <module>@14");
    if (python.walkable()) {
      EXPECT_EQ(frames_by_site[3], "first_caller@6 <module>@15");
      EXPECT_EQ(frames_by_site[4], second + "@9 <module>@16");
      EXPECT_EQ(frames_by_site[5], "<lambda>@17 <module>@17");
      EXPECT_EQ(frames_by_site[6], "generator@11 <module>@18");
    } else {
      for (std::uint64_t site = 3; site <= 6; ++site) {
        EXPECT_EQ(frames_by_site[site], "") << "site " << site << ": GIL released, no layout";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, PythonStacks, ::testing::Values("python", "both"));

// Native frames alone go on through the interpreter, out to the program's start.
TEST(PythonNativeStacks, NativeModeKeepsTheInterpreterFrames) {
  const std::string python = testing::first_interpreter();
  if (python.empty()) GTEST_SKIP() << "no python3 found at configure time";
  TempDir dir;
  const std::string path = dir.file("native.trace");
  ASSERT_EQ(testing::run_python(python, kScript, {CUDEFRAG_PYTHON_PROBE, path, "native"}).status,
            0);
  const auto trace = read_trace(path);
  ASSERT_EQ(trace.error, "");
  const auto allocs = trace.allocs();
  ASSERT_EQ(allocs.size(), 18u);
  for (const auto& a : allocs) {
    const auto* record = trace.stack(a.stack);
    ASSERT_NE(record, nullptr);
    EXPECT_TRUE(record->python.empty());
    std::size_t eval = record->native.size();
    for (std::size_t i = 0; i < record->native.size() && eval == record->native.size(); ++i) {
      if (trace.symbol(record->native[i]) == "_PyEval_EvalFrameDefault") eval = i;
    }
    EXPECT_LT(eval + 1, record->native.size()) << "frames beyond the interpreter's loop";
  }
}

TEST(PythonMarks, CtypesCallsCudefragMark) {
  const std::string python = testing::first_interpreter();
  if (python.empty()) GTEST_SKIP() << "no python3 found at configure time";
  TempDir dir;
  const std::string path = dir.file("mark.trace");
  ASSERT_EQ(testing::run_python(python, kMarkScript, {CUDEFRAG_PYTHON_PROBE, path}).status, 0);
  const auto trace = read_trace(path);
  ASSERT_EQ(trace.error, "");
  const auto marks = trace.all<analyzer::Mark>();
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].text, "from python");
  EXPECT_EQ(trace.ending, analyzer::Ending::kComplete) << "closed by the library destructor";
}

}  // namespace
}  // namespace cudefrag::trace
