// Python frames: python3 -c runs a script that calls a recording library (python_probe.cpp)
// from two Python functions; the trace must name both, with their lines. Label nosan: python3
// is not built with sanitizers.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::trace {
namespace {

using testing::read_trace;
using testing::TempDir;

// Line numbers matter: the test checks them.
constexpr const char* kScript = R"(import ctypes, sys
lib = ctypes.PyDLL(sys.argv[1])
assert lib.probe_start(sys.argv[2].encode(), sys.argv[3].encode()) == 0
def first_caller():
    lib.probe_alloc(1)
class Holder:
    def second_caller(self):
        lib.probe_alloc(2)
for _ in range(3):
    first_caller()
    Holder().second_caller()
ctypes.CDLL(sys.argv[1]).probe_alloc(3)
lib.probe_stop()
)";

constexpr const char* kMarkScript = R"(import ctypes, sys
ctypes.CDLL(sys.argv[1], mode=ctypes.RTLD_GLOBAL).probe_configure(sys.argv[2].encode())
ctypes.CDLL(None).cudefrag_mark(b"from python")
)";

int run_python(const char* script, const std::vector<std::string>& args) {
  const pid_t child = fork();
  if (child == 0) {
    std::vector<const char*> argv = {CUDEFRAG_PYTHON, "-c", script};
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    execv(CUDEFRAG_PYTHON, const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

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

class PythonStacks : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (std::string(CUDEFRAG_PYTHON).empty()) GTEST_SKIP() << "no python3 found at configure time";
  }
};

TEST_P(PythonStacks, TraceNamesBothFunctionsAndTheirLines) {
  TempDir dir;
  const std::string path = dir.file("py.trace");
  ASSERT_EQ(run_python(kScript, {CUDEFRAG_PYTHON_PROBE, path, GetParam()}), 0);
  const auto trace = read_trace(path);
  ASSERT_EQ(trace.error, "");
  const auto allocs = trace.allocs();
  ASSERT_EQ(allocs.size(), 7u);

  std::map<std::uint64_t, std::set<std::uint32_t>> stacks_by_site;
  for (const auto& a : allocs) stacks_by_site[a.address].insert(a.stack);
  ASSERT_EQ(stacks_by_site[1].size(), 1u) << "a repeated call site has one stack";
  ASSERT_EQ(stacks_by_site[2].size(), 1u);
  const std::uint32_t first = *stacks_by_site[1].begin();
  const std::uint32_t second = *stacks_by_site[2].begin();
  EXPECT_NE(first, second);

  const auto first_frames = python_frames(trace, first);
  ASSERT_EQ(first_frames.size(), 2u);
  EXPECT_EQ(first_frames[0].function, "first_caller");
  EXPECT_EQ(first_frames[0].line, 5);
  EXPECT_EQ(first_frames[0].file, "<string>");
  EXPECT_EQ(first_frames[1].function, "<module>");
  EXPECT_EQ(first_frames[1].line, 10);

  const auto second_frames = python_frames(trace, second);
  ASSERT_EQ(second_frames.size(), 2u);
  // co_qualname from Python 3.11; co_name before.
  EXPECT_TRUE(second_frames[0].function == "Holder.second_caller" ||
              second_frames[0].function == "second_caller")
      << second_frames[0].function;
  EXPECT_EQ(second_frames[0].line, 8);
  EXPECT_EQ(second_frames[1].line, 11);

  // ctypes.CDLL releases the GIL around the call: no Python frames then.
  ASSERT_EQ(stacks_by_site[3].size(), 1u);
  const std::uint32_t released = *stacks_by_site[3].begin();
  EXPECT_TRUE(python_frames(trace, released).empty());
  if (GetParam() == "both") {
    const auto* stack = trace.stack(first);
    EXPECT_TRUE(stack != nullptr && !stack->native.empty());
    EXPECT_NE(released, 0u) << "native frames are captured without the GIL";
  } else {
    EXPECT_EQ(released, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, PythonStacks, ::testing::Values("python", "both"));

TEST(PythonMarks, CtypesCallsCudefragMark) {
  if (std::string(CUDEFRAG_PYTHON).empty()) GTEST_SKIP() << "no python3 found at configure time";
  TempDir dir;
  const std::string path = dir.file("mark.trace");
  ASSERT_EQ(run_python(kMarkScript, {CUDEFRAG_PYTHON_PROBE, path}), 0);
  const auto trace = read_trace(path);
  ASSERT_EQ(trace.error, "");
  const auto marks = trace.all<analyzer::Mark>();
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].text, "from python");
  EXPECT_EQ(trace.ending, analyzer::Ending::kComplete) << "closed by the library destructor";
}

}  // namespace
}  // namespace cudefrag::trace
