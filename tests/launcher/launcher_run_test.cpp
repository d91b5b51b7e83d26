// `cudefrag run` starting programs: the exit code passes through (128 + signal when killed),
// LD_PRELOAD carries the library in front of any existing preload, the summary shows the counters
// of a program run against the fake CUDA libraries, and a SIGTERM sent to the launcher reaches
// the program. Label nosan: the library is preloaded into the children.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/shim/hooks/support/subprocess.hpp"

namespace cudefrag::launcher {
namespace {

using test_support::EnvChanges;
using test_support::Outcome;
using test_support::Process;
using test_support::read_file;
using test_support::run;
using test_support::TempDir;

const EnvChanges kEnv{{"LD_LIBRARY_PATH", CUDEFRAG_TEST_FAKE_DIR},
                      {"LD_PRELOAD", std::nullopt},
                      {"PYTORCH_CUDA_ALLOC_CONF", std::nullopt},
                      {"CUDEFRAG_MODE", std::nullopt},
                      {"CUDEFRAG_LOG_FILE", std::nullopt}};

Outcome launch(std::vector<std::string> args, EnvChanges env = kEnv) {
  args.insert(args.begin(), {CUDEFRAG_TEST_LAUNCHER, "run"});
  return run(args, env);
}

TEST(LauncherRun, ExitCodeIsTheProgramsAndKilledIs128PlusSignal) {
  const Outcome exited = launch({"--mode", "passthrough", "--", "/bin/sh", "-c", "exit 3"});
  EXPECT_EQ(exited.exit_code, 3) << exited.err;
  EXPECT_NE(exited.err.find("exited with code 3"), std::string::npos) << exited.err;

  const Outcome killed = launch({"--mode", "passthrough", "--", "/bin/sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  EXPECT_NE(killed.err.find("killed by signal 9"), std::string::npos) << killed.err;

  const Outcome missing = launch({"--", "/nonexistent/program"});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_NE(missing.err.find("cannot run '/nonexistent/program'"), std::string::npos)
      << missing.err;
}

TEST(LauncherRun, PreloadsTheLibraryInFrontOfAnExistingPreload) {
  TempDir dir;
  const std::string out = dir.file("preload");
  EnvChanges env = kEnv;
  env.emplace_back("LD_PRELOAD", CUDEFRAG_TEST_OTHER_PRELOAD);
  const Outcome o = launch({"--quiet", "--mode", "passthrough", "--", "/bin/sh", "-c",
                            "printf %s \"$LD_PRELOAD\" > '" + out + "'"},
                           env);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.err, "") << "--quiet prints no summary";
  EXPECT_EQ(read_file(out), std::string(CUDEFRAG_TEST_LIBRARY) + ":" + CUDEFRAG_TEST_OTHER_PRELOAD);
}

// A build tree copied elsewhere keeps its layout (launcher/, shim/hooks/): its launcher preloads
// the library beside it in that layout, not the one at the path it was built in.
TEST(LauncherRun, ACopiedBuildTreePreloadsItsOwnLibrary) {
  namespace fs = std::filesystem;
  TempDir dir;
  const fs::path root = dir.file("tree");
  fs::create_directories(root / "launcher");
  fs::create_directories(root / "shim" / "hooks");
  fs::copy_file(CUDEFRAG_TEST_LAUNCHER, root / "launcher" / "cudefrag");
  fs::copy_file(CUDEFRAG_TEST_LIBRARY, root / "shim" / "hooks" / "libcudefrag.so");
  const std::string out = dir.file("preload");
  const Outcome o =
      run({(root / "launcher" / "cudefrag").string(), "run", "--quiet", "--mode", "passthrough",
           "--", "/bin/sh", "-c", "printf %s \"$LD_PRELOAD\" > '" + out + "'"},
          kEnv);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(read_file(out), fs::weakly_canonical(root / "shim" / "hooks" / "libcudefrag.so"));
}

TEST(LauncherRun, OptionsReachTheProgramAsEnvironment) {
  TempDir dir;
  const std::string out = dir.file("env");
  const Outcome o =
      launch({"--quiet", "--mode=passthrough", "--limit", "512MiB", "--stacks", "native",
              "--no-hook-dlsym", "--log-level", "error", "--", "/bin/sh", "-c",
              "printf '%s|%s|%s|%s|%s' \"$CUDEFRAG_MODE\" \"$CUDEFRAG_LIMIT\" "
              "\"$CUDEFRAG_STACKS\" \"$CUDEFRAG_HOOK_DLSYM\" \"$CUDEFRAG_LOG_LEVEL\" > '" +
                  out + "'"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(read_file(out), "passthrough|512MiB|native|0|error");
}

// In mode arena PyTorch is asked for backend:cudaMallocAsync when the user chose no allocator;
// a value the environment has (even empty), PYTORCH_NO_CUDA_MEMORY_CACHING,
// --keep-torch-alloc-conf or mode passthrough leave the variable as it is.
TEST(LauncherRun, PyTorchGetsTheAsyncBackendUnlessTheUserChoseOne) {
  TempDir dir;
  const std::string out = dir.file("conf");
  const auto conf_seen = [&](std::vector<std::string> options, EnvChanges env = kEnv) {
    options.insert(options.end(),
                   {"--", "/bin/sh", "-c",
                    "printf '%s' \"${PYTORCH_CUDA_ALLOC_CONF-unset}\" > '" + out + "'"});
    const Outcome o = launch(options, env);
    EXPECT_EQ(o.exit_code, 0) << o.err;
    return read_file(out);
  };
  EXPECT_EQ(conf_seen({"--quiet"}), "backend:cudaMallocAsync");
  EXPECT_EQ(conf_seen({"--quiet", "--keep-torch-alloc-conf"}), "unset");
  EXPECT_EQ(conf_seen({"--quiet", "--mode", "passthrough"}), "unset");
  EnvChanges chosen = kEnv;
  chosen.emplace_back("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True");
  EXPECT_EQ(conf_seen({"--quiet"}, chosen), "expandable_segments:True");
  EnvChanges empty = kEnv;
  empty.emplace_back("PYTORCH_CUDA_ALLOC_CONF", "");
  EXPECT_EQ(conf_seen({"--quiet"}, empty), "");
  // PyTorch's uncached mode is a choice of the native allocator, which the async backend would
  // override.
  EnvChanges uncached = kEnv;
  uncached.emplace_back("PYTORCH_NO_CUDA_MEMORY_CACHING", "1");
  EXPECT_EQ(conf_seen({"--quiet"}, uncached), "unset");
  // Without --quiet the launcher says what it chose.
  const Outcome o = launch({"--", "/bin/true"});
  EXPECT_NE(o.err.find("PYTORCH_CUDA_ALLOC_CONF=backend:cudaMallocAsync"), std::string::npos)
      << o.err;
}

// The summary with each run of blanks as one space, so that column widths do not matter.
std::string single_spaced(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == ' ' && !out.empty() && out.back() == ' ') continue;
    out += c;
  }
  return out;
}

TEST(LauncherRun, SummaryShowsTheCountersOfTheRun) {
  TempDir dir;
  const std::string trace = dir.file("run.trace");
  const Outcome o = launch({"--trace", trace, "--", CUDEFRAG_TEST_PROBE, "runtime"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  const std::string s = single_spaced(o.err);
  // Arena mode; the fake driver has no virtual memory API, so device 0 runs in passthrough.
  EXPECT_NE(s.find("mode: arena\n"), std::string::npos) << s;
  EXPECT_NE(s.find("the arena cannot start on device 0"), std::string::npos) << s;
  for (const char* expected :
       {" cudaMalloc 2 2.0 TiB 1\n", " cudaFree 3 0\n", " cudaMallocAsync_ptsz 1 1.0 MiB 0\n",
        " cuMemAlloc_v2 1 3.0 MiB 0\n", "device 0: peak live 3.0 MiB, still live at exit 0 B"}) {
    EXPECT_NE(s.find(expected), std::string::npos) << expected << "\n" << s;
  }
  EXPECT_EQ(s.find("cuMemAllocAsync "), std::string::npos) << "nested calls are not listed\n" << s;
  EXPECT_NE(s.find("trace: " + trace), std::string::npos) << s;
}

TEST(LauncherRun, SummarySaysWhatTheTraceCostAndWhereItsStacksSpentIt) {
  TempDir dir;
  const std::string trace = dir.file("run.trace");
  const Outcome o =
      launch({"--trace", trace, "--stacks", "native", "--", CUDEFRAG_TEST_PROBE, "many"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  const std::string s = single_spaced(o.err);
  // 200 traced calls: the 64th (an allocation), 128th and 192nd (frees, which carry no stack by
  // default) are timed.
  EXPECT_NE(s.find("trace cost: "), std::string::npos) << s;
  EXPECT_NE(s.find("(3 of about 192 timed)"), std::string::npos) << s;
  const std::size_t at = s.find("of a call stack: Python frames ");
  ASSERT_NE(at, std::string::npos) << s;
  const std::string line = s.substr(at, s.find('\n', at) - at);
  EXPECT_NE(line.find("(0.0 frames), native frames "), std::string::npos) << line;
  EXPECT_NE(line.find(" ns a frame), stack table "), std::string::npos) << line;
  EXPECT_EQ(line.find("native frames 0.00 us (0.0 frames"), std::string::npos)
      << "the allocation's native stack was measured: " << line;
}

TEST(LauncherRun, NativeFramesCapsTheFramesACallStackKeeps) {
  TempDir dir;
  const std::string trace = dir.file("run.trace");
  const Outcome o = launch({"--trace", trace, "--stacks", "native", "--native-frames", "3", "--",
                            CUDEFRAG_TEST_PROBE, "many"});
  EXPECT_EQ(o.exit_code, 0) << o.err;
  const std::string s = single_spaced(o.err);
  EXPECT_NE(s.find("(3.0 frames, "), std::string::npos) << "the measured capture kept 3\n" << s;
  const Outcome bad = launch({"--native-frames", "0", "--", CUDEFRAG_TEST_PROBE, "exit"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--native-frames"), std::string::npos) << bad.err;
}

TEST(LauncherRun, SigtermToTheLauncherReachesTheProgram) {
  TempDir dir;
  const std::string started = dir.file("started");
  Process p({CUDEFRAG_TEST_LAUNCHER, "run", "--mode", "passthrough", "--", "/bin/sh", "-c",
             "touch '" + started + "'; exec sleep 30"},
            kEnv);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (access(started.c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(access(started.c_str(), F_OK), 0) << "the program did not start";
  kill(p.pid(), SIGTERM);
  const Outcome o = p.wait(std::chrono::seconds(20));
  EXPECT_FALSE(o.timed_out);
  EXPECT_EQ(o.signal, 0) << "the launcher itself survives to report";
  EXPECT_EQ(o.exit_code, 128 + SIGTERM) << o.err;
  EXPECT_NE(o.err.find("killed by signal 15"), std::string::npos) << o.err;
}

}  // namespace
}  // namespace cudefrag::launcher
