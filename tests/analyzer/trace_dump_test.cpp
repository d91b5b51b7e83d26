// cudefrag_trace_dump prints every record of a trace as one line and says how the trace ended.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include "shim/trace/recorder.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::analyzer {
namespace {

using trace::testing::TempDir;

struct Run {
  int status = -1;
  std::string out;
};

Run dump(const std::string& path) {
  const std::string command = std::string(CUDEFRAG_TRACE_DUMP) + " '" + path + "' 2>&1";
  Run run;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char chunk[4096];
  for (std::size_t n; (n = fread(chunk, 1, sizeof chunk, pipe)) > 0;) run.out.append(chunk, n);
  const int status = pclose(pipe);
  run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

std::string make_trace(const TempDir& dir) {
  trace::Options o;
  o.path = dir.file("t.trace");
  o.entry_points = {"cudaMalloc", "cudaFree"};
  o.config = {{"mode", "arena"}};
  o.gpus = {trace::GpuInfo{DeviceOrdinal{0}, "Test GPU", {}, GiB(24)}};
  auto r = trace::Recorder::open(o);
  r->record_alloc({trace::EntryPoint{0},
                   DeviceOrdinal{0},
                   nullptr,
                   DevicePtr{0x7f0000200000},
                   Bytes{1000},
                   MiB(2),
                   0,
                   {}});
  r->record_free(
      {trace::EntryPoint{1}, DeviceOrdinal{0}, nullptr, DevicePtr{0x7f0000200000}, MiB(2), 0, {}});
  r->record_arena_event({trace::ArenaEventKind::kMap, DeviceOrdinal{0}, DevicePtr{0x7f0000000000},
                         MiB(64), Bytes{}, 1});
  r->record_mark("say \"hi\"");
  r->close();
  return r->path();
}

TEST(TraceDump, PrintsEveryRecordAndACleanEnding) {
  TempDir dir;
  const auto run = dump(make_trace(dir));
  EXPECT_EQ(run.status, 0) << run.out;
  for (const char* expected :
       {"process pid=", "config mode=\"arena\"", "entry_point 0 cudaMalloc",
        "device 0 name=\"Test GPU\" total=25769803776",
        " cudaMalloc dev=0 stream=0x0 addr=0x7f0000200000 requested=1000 size=2097152 result=0 "
        "stack=0",
        " cudaFree dev=0 stream=0x0 addr=0x7f0000200000 size=2097152 result=0 stack=0",
        "arena map t=", "bytes=67108864 bytes2=0 count=1", "mark t=", "\"say \\\"hi\\\"\"",
        "end t=", "closed cleanly"}) {
    EXPECT_NE(run.out.find(expected), std::string::npos) << expected << "\n" << run.out;
  }
}

TEST(TraceDump, TruncatedTraceWarnsAndExitsThree) {
  TempDir dir;
  const std::string path = make_trace(dir);
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  std::ofstream(dir.file("cut"), std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  const auto run = dump(dir.file("cut"));
  EXPECT_EQ(run.status, 3) << run.out;
  EXPECT_NE(run.out.find("process pid="), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("warning: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("cut short"), std::string::npos) << run.out;
}

TEST(TraceDump, GarbageIsAnError) {
  TempDir dir;
  std::ofstream(dir.file("garbage")) << "not a trace at all";
  const auto run = dump(dir.file("garbage"));
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.out.find("error: "), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("not a cudefrag trace"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace cudefrag::analyzer
