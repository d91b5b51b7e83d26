// A traced process that dies (SIGKILL, abort) or whose disk fills up leaves a trace the reader
// accepts up to its last complete block. Each scenario runs in a forked child.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "shim/trace/recorder.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::trace {
namespace {

using analyzer::Ending;
using testing::read_trace;
using testing::TempDir;

void record(Recorder& r, std::uint64_t n) {
  r.record_alloc({EntryPoint{0}, DeviceOrdinal{0}, nullptr, DevicePtr{n}, MiB(2), MiB(2), 0, {}});
}

// Every alloc address is 1, 2, 3, ... in order, with gaps only where records were dropped.
void expect_sequence(const testing::ReadTrace& trace, std::uint64_t at_least) {
  const auto allocs = trace.allocs();
  std::uint64_t dropped = 0;
  for (const auto& d : trace.all<format::DroppedRecord>()) dropped += d.count;
  ASSERT_GE(allocs.size() + dropped, at_least);
  for (std::size_t i = 0; i < allocs.size(); ++i) {
    ASSERT_EQ(allocs[i].header.size, sizeof(format::MemoryRecord));
    if (i > 0) {
      ASSERT_GT(allocs[i].address, allocs[i - 1].address);
    }
    if (dropped == 0) {
      ASSERT_EQ(allocs[i].address, i + 1);
    }
  }
}

int exit_status(pid_t child) {
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, 0), child);
  return status;
}

TEST(TraceCrash, KilledMidTraceLeavesAReadableFile) {
  TempDir dir;
  const std::string path = dir.file("killed.trace");
  constexpr std::uint64_t kBeforeReady = 20000;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Options o;
    o.path = path;
    o.stacks = StackMode::kNative;
    o.flush_interval = std::chrono::milliseconds(1);
    auto r = Recorder::open(o);
    if (!r) _exit(10);
    std::uint64_t n = 0;
    while (n < kBeforeReady) record(*r, ++n);
    r->flush_sync();
    const char byte = 'r';
    if (write(ready[1], &byte, 1) != 1) _exit(11);
    for (;;) record(*r, ++n);  // until killed, with the writer thread flushing every 1 ms
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  usleep(20000);  // let the child write a few more blocks; not a timing assertion
  kill(child, SIGKILL);
  const int status = exit_status(child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  const auto trace = read_trace(path);
  EXPECT_EQ(trace.error, "");
  EXPECT_TRUE(trace.ending == Ending::kUnfinished || trace.ending == Ending::kTruncated);
  expect_sequence(trace, kBeforeReady);
  EXPECT_FALSE(trace.all<analyzer::StackDef>().empty());
}

TEST(TraceCrash, AbortLeavesEverythingFlushedBeforeIt) {
  TempDir dir;
  const std::string path = dir.file("aborted.trace");
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    signal(SIGABRT, SIG_DFL);
    Options o;
    o.path = path;
    auto r = Recorder::open(o);
    if (!r) _exit(10);
    for (std::uint64_t n = 1; n <= 1000; ++n) record(*r, n);
    r->flush_sync();
    for (std::uint64_t n = 1001; n <= 1010; ++n) record(*r, n);
    std::abort();
  }
  const int status = exit_status(child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
  const auto trace = read_trace(path);
  EXPECT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kUnfinished);
  expect_sequence(trace, 1000);
  EXPECT_TRUE(trace.all<format::EndRecord>().empty());
}

// The sink of the child below: the message goes to the parent through a pipe.
int g_message_fd = -1;
void message_to_pipe(std::string_view message) {
  const std::string line = std::string(message) + "\n";
  ssize_t ignored = write(g_message_fd, line.data(), line.size());
  static_cast<void>(ignored);
}

TEST(TraceCrash, DiskFullMidRunTurnsTracingOffWithOneMessage) {
  TempDir dir;
  const std::string path = dir.file("full.trace");
  int messages[2];
  ASSERT_EQ(pipe(messages), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(messages[0]);
    g_message_fd = messages[1];
    // A 200 KB file limit stands in for a full disk: writes past it fail with EFBIG.
    signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{200000, 200000};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(10);
    Options o;
    o.path = path;
    o.compress = false;
    o.messages = message_to_pipe;
    auto r = Recorder::open(o);
    if (!r) _exit(11);
    std::uint64_t n = 0;
    while (r->enabled() && n < 1'000'000) {
      record(*r, ++n);
      if (n % 1000 == 0) r->flush_sync();
    }
    if (r->enabled()) _exit(12);
    for (int i = 0; i < 1000; ++i) record(*r, ++n);  // the program runs on
    r.reset();
    _exit(0);
  }
  close(messages[1]);
  std::string text;
  char chunk[256];
  for (ssize_t n; (n = read(messages[0], chunk, sizeof chunk)) > 0;)
    text.append(chunk, static_cast<std::size_t>(n));
  close(messages[0]);
  const int status = exit_status(child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  EXPECT_NE(text.find("File too large"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1) << "exactly one message: " << text;

  const auto trace = read_trace(path);
  EXPECT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kUnfinished) << "the partial block was cut off";
  expect_sequence(trace, 1000);
}

}  // namespace
}  // namespace cudefrag::trace
