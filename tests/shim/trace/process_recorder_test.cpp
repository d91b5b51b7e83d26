// The process-wide recorder: lazy start, the C API of cudefrag.h, fork, SIGUSR2, exit. It is
// process state, so every scenario runs in a forked child and the parent checks the files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include "shim/trace/cudefrag.h"
#include "shim/trace/recorder.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::trace {
namespace {

using analyzer::Ending;
using testing::read_trace;
using testing::TempDir;

// Runs `scenario` in a child process; its return value is the child's exit status, and a
// normal exit() runs the library destructors as a program's exit would.
int run_in_child(const std::function<int()>& scenario) {
  const pid_t child = fork();
  if (child == 0) std::exit(scenario());
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

std::vector<std::string> mark_texts(const testing::ReadTrace& trace) {
  std::vector<std::string> texts;
  for (const auto& m : trace.all<analyzer::Mark>()) texts.push_back(m.text);
  return texts;
}

Options options_for(const std::string& path) {
  Options o;
  o.path = path;
  return o;
}

TEST(ProcessRecorder, StartsOnFirstUseAndMarksThroughTheCApi) {
  TempDir dir;
  const std::string path = dir.file("lazy.trace");
  EXPECT_EQ(run_in_child([&] {
              if (recorder() != nullptr) return 1;  // not configured
              cudefrag_mark("ignored: tracing not configured");
              if (!configure(options_for(path))) return 2;
              if (exists(path)) return 3;  // nothing before the first event
              Recorder* r = recorder();
              if (r == nullptr || !exists(path) || recorder() != r) return 4;
              if (configure(options_for(path + ".other"))) return 5;  // too late
              // Through the weak declarations of cudefrag.h, as a program would call them.
              if (cudefrag_mark == nullptr || cudefrag_flush == nullptr) return 6;
              cudefrag_mark("hello from C");
              cudefrag_flush();
              return 0;  // exit() runs the library destructor: end record
            }),
            0);
  const auto trace = read_trace(path);
  EXPECT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kComplete);
  EXPECT_EQ(mark_texts(trace), std::vector<std::string>{"hello from C"});
}

TEST(ProcessRecorder, EmptyPathMeansNoTracing) {
  EXPECT_EQ(run_in_child([] {
              if (!configure(Options{})) return 1;
              return recorder() == nullptr ? 0 : 2;
            }),
            0);
}

TEST(ProcessRecorder, UnwritablePathTurnsTracingOffForGood) {
  EXPECT_EQ(run_in_child([] {
              testing::captured_messages().clear();
              Options o = options_for("/nonexistent-dir/x.trace");
              o.messages = testing::capture_message;
              configure(o);
              if (recorder() != nullptr || recorder() != nullptr) return 1;
              if (testing::captured_messages().size() != 1) return 2;
              return configure(options_for("/tmp/x.trace")) ? 3 : 0;
            }),
            0);
}

TEST(ProcessRecorder, ForkedChildWritesItsOwnTrace) {
#if defined(__SANITIZE_ADDRESS__)
  // GCC 12's ASan runtime does not hold its allocator lock across fork(): a child forked while
  // the writer thread allocates inherits the lock taken and blocks forever (seen: both threads of
  // the grandchild waiting on SizeClassAllocator64's mutex). The plain build runs this test.
  GTEST_SKIP() << "fork() with a running thread can deadlock GCC 12's ASan allocator";
#endif
#if defined(__SANITIZE_THREAD__)
  // The child starts its own writer thread, and ThreadSanitizer cannot follow a thread started
  // after a multi-threaded fork (it makes the child die). The plain build runs this test.
  GTEST_SKIP() << "ThreadSanitizer does not support threads started after a multi-threaded fork";
#endif
  TempDir dir;
  const std::string path = dir.file("fork.trace");
  pid_t grandchild_pid = 0;
  int pid_pipe[2];
  ASSERT_EQ(pipe(pid_pipe), 0);
  EXPECT_EQ(run_in_child([&] {
              configure(options_for(path));
              recorder()->record_mark("parent before fork");
              const pid_t c = fork();
              if (c == 0) {
                if (Recorder* r = recorder()) r->record_mark("child");
                std::exit(0);
              }
              if (write(pid_pipe[1], &c, sizeof c) != sizeof c) return 1;
              int status = 0;
              waitpid(c, &status, 0);
              recorder()->record_mark("parent after fork");
              return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 2;
            }),
            0);
  ASSERT_EQ(read(pid_pipe[0], &grandchild_pid, sizeof grandchild_pid),
            static_cast<ssize_t>(sizeof grandchild_pid));
  close(pid_pipe[0]);
  close(pid_pipe[1]);

  const auto parent = read_trace(path);
  EXPECT_EQ(parent.error, "");
  EXPECT_EQ(parent.ending, Ending::kComplete);
  EXPECT_EQ(mark_texts(parent),
            (std::vector<std::string>{"parent before fork", "parent after fork"}));

  const auto child = read_trace(path + "." + std::to_string(grandchild_pid));
  EXPECT_EQ(child.error, "");
  EXPECT_EQ(child.ending, Ending::kComplete);
  EXPECT_EQ(mark_texts(child), std::vector<std::string>{"child"});
  ASSERT_EQ(child.all<analyzer::ProcessInfo>().size(), 1u);
  EXPECT_EQ(child.all<analyzer::ProcessInfo>()[0].pid, static_cast<std::uint32_t>(grandchild_pid));
}

// Waits (bounded) until the trace at `path` holds a mark with `text`.
bool wait_for_mark(const std::string& path, const std::string& text) {
  for (int i = 0; i < 500; ++i) {
    for (const auto& t : mark_texts(read_trace(path))) {
      if (t == text) return true;
    }
    usleep(10000);
  }
  return false;
}

TEST(ProcessRecorder, Sigusr2AddsAMarkAndFlushes) {
  TempDir dir;
  const std::string path = dir.file("signal.trace");
  EXPECT_EQ(
      run_in_child([&] {
        configure(options_for(path));
        recorder()->record_alloc(
            {EntryPoint{0}, DeviceOrdinal{0}, nullptr, DevicePtr{1}, Bytes{1}, Bytes{1}, 0, {}});
        raise(SIGUSR2);
        if (!wait_for_mark(path, "SIGUSR2")) return 1;
        _exit(0);  // no destructor: the signal alone got it on disk
      }),
      0);
  const auto trace = read_trace(path);
  EXPECT_EQ(trace.allocs().size(), 1u);
}

std::atomic<bool> g_program_handler_ran{false};

TEST(ProcessRecorder, ProgramsOwnSigusr2HandlerIsLeftAlone) {
  TempDir dir;
  const std::string path = dir.file("own-handler.trace");
  EXPECT_EQ(run_in_child([&] {
              signal(SIGUSR2, [](int) { g_program_handler_ran = true; });
              configure(options_for(path));
              recorder()->record_mark("started");
              raise(SIGUSR2);
              return g_program_handler_ran ? 0 : 1;
            }),
            0);
  EXPECT_EQ(mark_texts(read_trace(path)), std::vector<std::string>{"started"});
}

}  // namespace
}  // namespace cudefrag::trace
