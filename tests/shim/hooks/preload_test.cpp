// libcudefrag.so preloaded in front of a program (probe.cpp) and the fake libcudart / libcuda, as a
// user runs it: the counters it keeps in the stats file, its dlsym hook on a hand-opened libcuda,
// RTLD_NEXT from another preloaded library, and its handling of bad configuration.
// Label nosan: sanitizer runtimes and LD_PRELOAD do not mix.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "shim/hooks/stats_file.hpp"
#include "tests/shim/hooks/support/subprocess.hpp"

namespace cudefrag {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

struct ProbeRun {
  test_support::Outcome outcome;
  stats::StatsBlock stats{};
  std::map<std::string, stats::EntryCounters> entries;

  std::uint64_t calls(const std::string& name) const { return entries.at(name).calls; }
  std::uint64_t bytes(const std::string& name) const { return entries.at(name).bytes; }
  std::uint64_t failures(const std::string& name) const { return entries.at(name).failures; }
};

ProbeRun run_program(std::vector<std::string> argv, test_support::EnvChanges env = {},
                     const std::string& preload = CUDEFRAG_TEST_LIBRARY) {
  test_support::TempDir dir;
  const std::string stats_path = dir.file("stats");
  std::string error;
  EXPECT_TRUE(stats::create_file(stats_path, error)) << error;
  test_support::EnvChanges all{
      {"LD_PRELOAD", preload},
      {"LD_LIBRARY_PATH", CUDEFRAG_TEST_FAKE_DIR},
      {"CUDEFRAG_STATS_FILE", stats_path},
      {"CUDEFRAG_MODE", "passthrough"},
      {"CUDEFRAG_LOG_FILE", std::nullopt},
      {"CUDEFRAG_LOG_LEVEL", std::nullopt},
      {"CUDEFRAG_HOOK_DLSYM", std::nullopt},
  };
  all.insert(all.end(), env.begin(), env.end());
  ProbeRun r;
  r.outcome = test_support::run(argv, all);
  EXPECT_TRUE(stats::read_file(stats_path, r.stats, error)) << error;
  for (std::size_t i = 0; i < r.stats.entry_count && i < stats::kMaxEntries; ++i) {
    r.entries[std::string(stats::entry_name(r.stats.entries[i]))] = r.stats.entries[i];
  }
  return r;
}

ProbeRun run_probe(const std::string& scenario, test_support::EnvChanges env = {},
                   const std::string& preload = CUDEFRAG_TEST_LIBRARY) {
  return run_program({CUDEFRAG_TEST_PROBE, scenario}, std::move(env), preload);
}

void expect_clean_exit(const ProbeRun& r) {
  EXPECT_EQ(r.outcome.exit_code, 0) << r.outcome.err;
  EXPECT_EQ(r.outcome.signal, 0) << r.outcome.err;
  EXPECT_NE(r.outcome.out.find("probe: ok"), std::string::npos) << r.outcome.out;
}

TEST(Preload, RuntimeHooksForwardAndCountEachCallOnce) {
  for (const char* internal : {"0", "1"}) {
    SCOPED_TRACE(std::string("FAKE_CUDA_INTERNAL_POINTERS=") + internal);
    const ProbeRun r = run_probe("runtime", {{"FAKE_CUDA_INTERNAL_POINTERS", internal}});
    expect_clean_exit(r);
    EXPECT_EQ(r.stats.attached, 1U);
    EXPECT_EQ(r.stats.mode_effective, stats::ReportedMode::kPassthrough);
    EXPECT_EQ(r.calls("cudaMalloc"), 2U);
    EXPECT_EQ(r.failures("cudaMalloc"), 1U);
    EXPECT_EQ(r.bytes("cudaMalloc"), kMiB + (std::uint64_t{1} << 41));
    EXPECT_EQ(r.calls("cudaFree"), 3U);
    EXPECT_EQ(r.calls("cudaMallocAsync"), 1U);
    EXPECT_EQ(r.calls("cudaMallocAsync_ptsz"), 1U);
    EXPECT_EQ(r.calls("cudaFreeAsync"), 3U);
    EXPECT_EQ(r.calls("cudaFreeAsync_ptsz"), 1U);
    EXPECT_EQ(r.calls("cudaMallocFromPoolAsync"), 1U);
    EXPECT_EQ(r.calls("cudaMallocFromPoolAsync_ptsz"), 1U);
    EXPECT_EQ(r.calls("cudaMallocPitch"), 1U);
    EXPECT_EQ(r.bytes("cudaMallocPitch"), 1000U * 1024U);
    EXPECT_EQ(r.calls("cudaMalloc3D"), 1U);
    EXPECT_EQ(r.bytes("cudaMalloc3D"), 1000U * 16U * 64U);
    for (const char* name :
         {"cudaMemGetInfo", "cudaDeviceGetDefaultMemPool", "cudaDeviceGetMemPool",
          "cudaMemPoolGetAttribute", "cudaMemPoolSetAttribute", "cudaMemPoolTrimTo",
          "cudaMemPoolSetAccess", "cudaIpcGetMemHandle", "cudaDeviceEnablePeerAccess",
          "cudaGetDriverEntryPoint_ptsz", "cudaGetDriverEntryPointByVersion_ptsz"}) {
      EXPECT_EQ(r.calls(name), 1U) << name;
    }
    EXPECT_EQ(r.calls("cudaGetDriverEntryPoint"), 3U);
    EXPECT_EQ(r.calls("cudaGetDriverEntryPointByVersion"), 2U);
    // The runtime's own driver calls ran nested inside the runtime hooks: not counted again.
    // Only the program's call through the pointer it was handed counts.
    EXPECT_EQ(r.calls("cuMemAlloc_v2"), 1U);
    EXPECT_EQ(r.bytes("cuMemAlloc_v2"), 3 * kMiB);
    EXPECT_EQ(r.calls("cuMemFree_v2"), 1U);
    EXPECT_EQ(r.calls("cuMemAllocAsync"), 0U);
    EXPECT_EQ(r.calls("cuGetProcAddress_v2"), 0U);
    // The runtime found cuGetProcAddress_v2 through dlsym on its hand-opened libcuda.
    EXPECT_EQ(r.calls("dlsym"), 1U);
    EXPECT_EQ(r.stats.devices[0].live_bytes, 0U);
    EXPECT_EQ(r.stats.devices[0].peak_bytes, 3 * kMiB);
  }
}

TEST(Preload, DlsymOnAHandOpenedLibcudaGivesTheHooks) {
  const ProbeRun r = run_probe("dlopen");
  expect_clean_exit(r);
  EXPECT_EQ(r.calls("cuMemAlloc_v2"), 1U);
  EXPECT_EQ(r.bytes("cuMemAlloc_v2"), 5 * kMiB);
  EXPECT_EQ(r.calls("cuMemFree_v2"), 1U);
  EXPECT_EQ(r.calls("cuGetProcAddress_v2"), 2U);
  EXPECT_EQ(r.calls("dlsym"), 4U);
  EXPECT_EQ(r.stats.devices[0].live_bytes, 0U);
}

TEST(Preload, DlsymHookCanBeTurnedOff) {
  const ProbeRun r = run_probe("dlopen-unhooked", {{"CUDEFRAG_HOOK_DLSYM", "0"}});
  expect_clean_exit(r);
  EXPECT_EQ(r.calls("dlsym"), 0U);
}

TEST(Preload, RtldNextFromAnotherPreloadedLibraryIsUnaffected) {
  const ProbeRun r = run_probe("rtld-next", {},
                               std::string(CUDEFRAG_TEST_LIBRARY) + ":" +
                                   CUDEFRAG_TEST_RTLD_NEXT_B + ":" + CUDEFRAG_TEST_RTLD_NEXT_C);
  expect_clean_exit(r);
}

TEST(Preload, RuntimeOpenedLocallyIsStillFound) {
  const ProbeRun r = run_program({CUDEFRAG_TEST_PROBE_LOCAL});
  EXPECT_EQ(r.outcome.exit_code, 0) << r.outcome.err;
  EXPECT_NE(r.outcome.out.find("probe_local: ok (cudaMalloc from " CUDEFRAG_TEST_LIBRARY ")"),
            std::string::npos)
      << r.outcome.out;
  EXPECT_EQ(r.calls("cudaMalloc"), 1U);
  EXPECT_EQ(r.calls("cudaFree"), 1U);
  EXPECT_EQ(r.stats.devices[0].live_bytes, 0U);
  EXPECT_EQ(r.stats.devices[0].peak_bytes, 1U << 20);
}

TEST(Preload, ManyThreadsCountersAddUp) {
  const ProbeRun r = run_probe("threads");
  expect_clean_exit(r);
  constexpr std::uint64_t kCalls = 16 * 200;
  EXPECT_EQ(r.calls("cudaMalloc"), kCalls);
  EXPECT_EQ(r.bytes("cudaMalloc"), kCalls * (64 << 10));
  EXPECT_EQ(r.calls("cudaMallocAsync"), kCalls);
  EXPECT_EQ(r.calls("cudaFree"), kCalls);
  EXPECT_EQ(r.calls("cudaFreeAsync"), kCalls);
  EXPECT_EQ(r.calls("cuMemAlloc_v2"), 0U);
  EXPECT_EQ(r.stats.devices[0].live_bytes, 0U);
  EXPECT_GE(r.stats.devices[0].peak_bytes, 128U << 10);
}

TEST(Preload, ForkedChildrenShareTheCounters) {
  const ProbeRun r = run_probe("fork");
  expect_clean_exit(r);
  EXPECT_EQ(r.calls("cudaMalloc"), 2U);
  EXPECT_EQ(r.calls("cudaFree"), 2U);
  EXPECT_EQ(r.bytes("cudaMalloc"), 3 * kMiB);
  EXPECT_EQ(r.stats.attached, 1U);
  EXPECT_EQ(r.stats.devices[0].live_bytes, 0U);
}

TEST(Preload, AllocationsBeforeMainAreCounted) {
  const ProbeRun r = run_probe("exit", {{"PROBE_EARLY", "1"}});
  EXPECT_EQ(r.outcome.exit_code, 0) << r.outcome.err;
  EXPECT_EQ(r.calls("cudaMalloc"), 1U);
  EXPECT_EQ(r.bytes("cudaMalloc"), 4 * kMiB);
  EXPECT_EQ(r.calls("cudaFree"), 1U);
  EXPECT_EQ(r.stats.devices[0].peak_bytes, 4 * kMiB);
}

TEST(Preload, LiveBytesArePerDevice) {
  const ProbeRun r = run_probe("live");
  expect_clean_exit(r);
  EXPECT_EQ(r.stats.devices[0].live_bytes, 3 * kMiB);
  EXPECT_EQ(r.stats.devices[0].peak_bytes, 3 * kMiB);
  EXPECT_EQ(r.stats.devices[1].live_bytes, 4 * kMiB);
}

TEST(Preload, BadValueIsReportedOnceAndRunsPassthrough) {
  const ProbeRun r = run_probe("runtime", {{"CUDEFRAG_MODE", "turbo"}, {"CUDEFRAG_LIMIT", "12XB"}});
  expect_clean_exit(r);
  const std::string& err = r.outcome.err;
  EXPECT_NE(err.find("CUDEFRAG_MODE='turbo' is not valid; accepted: arena, passthrough"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("CUDEFRAG_LIMIT='12XB' is not valid"), std::string::npos) << err;
  EXPECT_NE(err.find("running in passthrough mode"), std::string::npos) << err;
  EXPECT_EQ(r.stats.config_errors, 2U);
  EXPECT_EQ(r.stats.mode_effective, stats::ReportedMode::kPassthrough);
  EXPECT_EQ(r.calls("cudaMalloc"), 2U);
}

// The fake driver has no virtual memory API: the device's arena cannot start, the program runs
// unchanged, and the shim says so once however many allocations follow.
TEST(Preload, ArenaModeSaysOnceWhenTheArenaCannotStart) {
  const ProbeRun r = run_probe("runtime", {{"CUDEFRAG_MODE", "arena"}});
  expect_clean_exit(r);
  const std::string& err = r.outcome.err;
  const auto first = err.find("the arena cannot start on device 0");
  ASSERT_NE(first, std::string::npos) << err;
  EXPECT_EQ(err.find("the arena cannot start", first + 1), std::string::npos) << err;
  EXPECT_EQ(r.stats.mode_requested, stats::ReportedMode::kArena);
  EXPECT_EQ(r.stats.mode_effective, stats::ReportedMode::kArena);
  EXPECT_EQ(r.calls("cudaMalloc"), 2U);
}

TEST(Preload, UnwritableLogFileFallsBackToStderr) {
  const ProbeRun r = run_probe(
      "runtime", {{"CUDEFRAG_LOG_FILE", "/dev/null/cudefrag.log"}, {"CUDEFRAG_MODE", "arena"}});
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_NE(r.outcome.err.find("cannot write the log file '/dev/null/cudefrag.log'"),
            std::string::npos)
      << r.outcome.err;
  EXPECT_NE(r.outcome.err.find("the arena cannot start"), std::string::npos);
}

TEST(Preload, LogFileReceivesTheMessages) {
  test_support::TempDir dir;
  const ProbeRun r = run_probe(
      "runtime", {{"CUDEFRAG_LOG_FILE", dir.file("shim.log")}, {"CUDEFRAG_MODE", "arena"}});
  EXPECT_EQ(r.outcome.exit_code, 0);
  EXPECT_EQ(r.outcome.err, "");
  EXPECT_NE(test_support::read_file(dir.file("shim.log")).find("the arena cannot start"),
            std::string::npos);
}

}  // namespace
}  // namespace cudefrag
