// `cudefrag` command lines that must be refused before anything starts: exit code 2, a message
// naming the option and what it accepts, and the program never run.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "launcher/run_options.hpp"
#include "launcher/summary.hpp"
#include "tests/shim/hooks/support/subprocess.hpp"

namespace cudefrag::launcher {
namespace {

using test_support::run;
using test_support::TempDir;

std::vector<char*> argv_of(std::vector<std::string>& args) {
  std::vector<char*> v;
  for (auto& a : args) v.push_back(a.data());
  return v;
}

ParsedRun parse(std::vector<std::string> args) {
  auto v = argv_of(args);
  return parse_run_options(v);
}

TEST(RunOptions, OptionsBecomeEnvironmentAndTheRestIsTheProgram) {
  const ParsedRun p =
      parse({"--mode", "passthrough", "--limit=1.5GiB", "--trace", "t.bin", "--log-level", "debug",
             "--log-file", "x.log", "--stacks", "none", "--no-hook-dlsym", "--lib",
             "/x/libcudefrag.so", "--quiet", "--", "prog", "--mode", "arena"});
  ASSERT_EQ(p.error, "");
  const std::vector<std::pair<std::string, std::string>> want{
      {"CUDEFRAG_MODE", "passthrough"}, {"CUDEFRAG_LIMIT", "1.5GiB"},   {"CUDEFRAG_TRACE", "t.bin"},
      {"CUDEFRAG_LOG_LEVEL", "debug"},  {"CUDEFRAG_LOG_FILE", "x.log"}, {"CUDEFRAG_STACKS", "none"},
      {"CUDEFRAG_HOOK_DLSYM", "0"}};
  EXPECT_EQ(p.options.env, want);
  EXPECT_EQ(p.options.library, "/x/libcudefrag.so");
  EXPECT_TRUE(p.options.quiet);
  EXPECT_EQ(p.options.program, (std::vector<std::string>{"prog", "--mode", "arena"}));
  // Without "--", the first argument that is not an option starts the program.
  EXPECT_EQ(parse({"--quiet", "prog", "-x"}).options.program,
            (std::vector<std::string>{"prog", "-x"}));
}

TEST(RunOptions, BadOptionsAreRefusedWithTheAcceptedValues) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--mode", "turbo", "--", "true"},
       "--mode='turbo' is not valid; accepted: arena, passthrough"},
      {{"--limit", "12XB", "--", "true"}, "--limit='12XB' is not valid; accepted: a size"},
      {{"--log-level=loud", "true"}, "--log-level='loud' is not valid; accepted: trace, debug"},
      {{"--stacks", "all", "true"}, "accepted: none, native, python, both"},
      {{"--frobnicate", "--", "true"}, "unknown option '--frobnicate'"},
      {{"--mode"}, "option --mode needs a value"},
      {{"--quiet", "--"}, "no program to run"},
      {{}, "no program to run"},
  };
  for (const auto& [args, message] : cases) {
    const ParsedRun p = parse(args);
    EXPECT_NE(p.error.find(message), std::string::npos) << p.error;
  }
}

TEST(Launcher, BadCommandLinesExitTwoWithoutStartingTheProgram) {
  TempDir dir;
  const std::string marker = dir.file("started");
  const std::string touch = "touch '" + marker + "'";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"run", "--mode", "turbo", "--", "/bin/sh", "-c", touch}, "accepted: arena, passthrough"},
      {{"run", "--limit", "lots", "--", "/bin/sh", "-c", touch}, "--limit='lots'"},
      {{"run", "--bogus", "--", "/bin/sh", "-c", touch}, "unknown option '--bogus'"},
      {{"run", "--lib", dir.file("missing.so"), "--", "/bin/sh", "-c", touch},
       "cannot find libcudefrag.so"},
      {{"run"}, "no program to run"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{}, "usage: cudefrag <command>"},
  };
  for (const auto& [args, message] : cases) {
    std::vector<std::string> argv{CUDEFRAG_TEST_LAUNCHER};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto o = run(argv);
    EXPECT_EQ(o.exit_code, 2) << o.err;
    EXPECT_NE(o.err.find(message), std::string::npos) << o.err;
    EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the program ran for " << args.at(0);
  }
  // A bad value already in the environment is refused the same way.
  const auto o = run({CUDEFRAG_TEST_LAUNCHER, "run", "--", "/bin/sh", "-c", touch},
                     {{"CUDEFRAG_STACKS", "every"}});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("CUDEFRAG_STACKS='every' is not valid"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("from the environment"), std::string::npos) << o.err;
  EXPECT_NE(access(marker.c_str(), F_OK), 0);
}

TEST(Launcher, ConfigMarkdownListsEveryVariable) {
  const auto o = run({CUDEFRAG_TEST_LAUNCHER, "config", "--markdown"});
  EXPECT_EQ(o.exit_code, 0);
  for (const char* name :
       {"CUDEFRAG_MODE", "CUDEFRAG_LOG_LEVEL", "CUDEFRAG_LOG_FILE", "CUDEFRAG_TRACE",
        "CUDEFRAG_LIMIT", "CUDEFRAG_HOOK_DLSYM", "CUDEFRAG_STATS_FILE", "CUDEFRAG_STACKS"}) {
    EXPECT_NE(o.out.find(std::string("| `") + name + "`"), std::string::npos) << name;
  }
  const auto c = run({CUDEFRAG_TEST_LAUNCHER, "config"}, {{"CUDEFRAG_MODE", "turbo"}});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.out.find("'turbo'  <- not valid"), std::string::npos) << c.out;
}

TEST(Summary, BytesAreHumanReadable) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(3ULL << 20), "3.0 MiB");
  EXPECT_EQ(format_bytes(24ULL << 30), "24.0 GiB");
}

TEST(Summary, SaysHowTheProgramEndedAndWhatItCalled) {
  stats::StatsBlock b;
  stats::initialize(b);
  b.attached = 1;
  b.entry_count = 2;
  b.mode_requested = stats::ReportedMode::kArena;
  b.mode_effective = stats::ReportedMode::kPassthrough;
  std::strncpy(b.entries[0].name.data(), "cudaMalloc", b.entries[0].name.size() - 1);
  b.entries[0].calls = 12;
  b.entries[0].bytes = 3ULL << 20;
  std::strncpy(b.entries[1].name.data(), "cudaFree", b.entries[1].name.size() - 1);
  b.devices[1].peak_bytes = 2ULL << 30;
  const std::string s = format_summary(&b, ProgramEnd{137, 9}, "/nonexistent/run.trace");
  EXPECT_NE(s.find("killed by signal 9"), std::string::npos) << s;
  EXPECT_NE(s.find("mode: passthrough (arena was asked for"), std::string::npos) << s;
  EXPECT_NE(s.find("cudaMalloc"), std::string::npos) << s;
  EXPECT_NE(s.find("3.0 MiB"), std::string::npos) << s;
  EXPECT_EQ(s.find("cudaFree"), std::string::npos) << "entries never called are left out\n" << s;
  EXPECT_NE(s.find("device 1: peak live 2.0 GiB"), std::string::npos) << s;
  EXPECT_NE(s.find("/nonexistent/run.trace was not written"), std::string::npos) << s;
  EXPECT_EQ(s.find("arena:"), std::string::npos) << "no arena figures without an arena\n" << s;
}

// The block of one process that ran in arena mode, as asked.
stats::StatsBlock one_arena_process() {
  stats::StatsBlock b;
  stats::initialize(b);
  b.attached = 1;
  b.mode_requested = stats::ReportedMode::kArena;
  b.mode_effective = stats::ReportedMode::kArena;
  return b;
}

TEST(Summary, ShowsWhatEachArenaHeld) {
  stats::StatsBlock b = one_arena_process();
  b.devices[0].arena_peak_physical_bytes = 6ULL << 30;
  b.devices[0].arena_physical_bytes = 4ULL << 30;
  b.devices[0].arena_live_bytes = 1ULL << 30;
  b.devices[0].arena_stitches = 7;
  b.devices[0].arena_slow_allocations = 40;
  b.devices[0].arena_slow_ns = 12'500'000;
  const std::string s = format_summary(&b, ProgramEnd{0, 0}, "");
  EXPECT_NE(s.find("device 0 arena: 40 requests missed the caches, 12.5 ms in slow paths"),
            std::string::npos)
      << s;
  EXPECT_NE(s.find("mode: arena"), std::string::npos) << s;
  EXPECT_NE(s.find("device 0 arena: peak physical 6.0 GiB, held at exit 4.0 GiB (cached 3.0 GiB), "
                   "stitches 7"),
            std::string::npos)
      << s;

  b.attached = 0;
  EXPECT_NE(format_summary(&b, ProgramEnd{0, 0}, "").find("never loaded"), std::string::npos);
  EXPECT_NE(format_summary(nullptr, ProgramEnd{3, 0}, "").find("exited with code 3"),
            std::string::npos);
}

TEST(Summary, SaysWhatTheTraceCostTheAllocatingThreads) {
  stats::StatsBlock b = one_arena_process();
  const std::filesystem::path trace =
      std::filesystem::temp_directory_path() / "cudefrag-summary-cost.trace";
  { std::ofstream(trace) << "x"; }
  EXPECT_EQ(format_summary(&b, ProgramEnd{0, 0}, trace.string()).find("trace cost"),
            std::string::npos)
      << "nothing timed, nothing said";
  b.trace_cost.traced_events = 64000;
  b.trace_cost.timed_events = 1000;
  b.trace_cost.timed_ns = 1500000;  // 1.5 us each
  const std::string s = format_summary(&b, ProgramEnd{0, 0}, trace.string());
  std::filesystem::remove(trace);
  EXPECT_NE(s.find("trace cost: 1.50 us per traced allocation or free (1000 of about 64000 timed), "
                   "about 0.096 s on the allocating threads"),
            std::string::npos)
      << s;
  EXPECT_EQ(s.find("of a call stack"), std::string::npos) << "no capture measured, none said";
}

TEST(Summary, SaysWhereACallStackSpentItsTime) {
  stats::StatsBlock b = one_arena_process();
  const std::filesystem::path trace =
      std::filesystem::temp_directory_path() / "cudefrag-summary-capture.trace";
  { std::ofstream(trace) << "x"; }
  b.trace_cost.traced_events = 64000;
  b.trace_cost.timed_events = 1000;
  b.trace_cost.timed_ns = 1500000;
  b.trace_cost.captures = 500;  // the other 500 timed events were frees without a stack
  b.trace_cost.python_ns = 200000;
  b.trace_cost.native_ns = 600000;
  b.trace_cost.intern_ns = 50000;
  b.trace_cost.python_frames = 6000;
  b.trace_cost.native_frames = 20000;
  const std::string s = format_summary(&b, ProgramEnd{0, 0}, trace.string());
  std::filesystem::remove(trace);
  EXPECT_NE(s.find("of a call stack: Python frames 0.40 us (12.0 frames), native frames 1.20 us "
                   "(40.0 frames, 30 ns a frame), stack table 0.10 us"),
            std::string::npos)
      << s;
}

}  // namespace
}  // namespace cudefrag::launcher
