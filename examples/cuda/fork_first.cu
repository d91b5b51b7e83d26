// fork() before any CUDA call, then CUDA in both processes: the child allocates, fills and checks
// device memory, exits, and only then does the parent do the same.
//
// A forked child can use CUDA only if its parent had not initialised it before the fork. A
// program that forks workers first (data loaders, servers) relies on that, so a preloaded
// library must not touch CUDA while it loads: if it did, the child's first call would fail here.
//
// Both processes print their calls (call_log.hpp; the lines add up, as the shim's counts from
// both processes do in one stats file); the parent prints the verdict. Exit 0 only when both
// processes' checks passed; 2 without a GPU.

#include <cuda_runtime.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <vector>

#include "examples/cuda/call_log.hpp"
#include "examples/cuda/pattern.cuh"
#include "examples/cuda/runtime_check.hpp"

namespace cudefrag::examples {
namespace {

// Allocates, fills and checks one buffer; throws on any failure.
void use_cuda(CallLog& log, std::uint64_t seed) {
  const std::size_t bytes = (std::size_t{3} << 20) + 12;
  void* p = nullptr;
  log.add("cudaMalloc", bytes);
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  const Rows r = linear_rows(p, bytes);
  fill_pattern<<<grid_for(r), 256>>>(r, seed);
  check(cudaGetLastError(), "fill_pattern launch");
  std::vector<std::uint32_t> host(r.words);
  check(cudaMemcpy(host.data(), p, host.size() * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  expect(count_mismatches(host.data(), r.words, 1, seed) == 0, "buffer holds its pattern");
  log.add("cudaFree");
  check(cudaFree(p), "cudaFree");
}

int child() {
  CallLog log("fork_first");
  int status = 0;
  try {
    use_cuda(log, 1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[fork_first] child: %s\n", e.what());
    status = 1;
  }
  log.print();
  return status;
}

int run() {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid < 0) {
    std::perror("[fork_first] fork");
    return 1;
  }
  if (pid == 0) _exit(child());
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) {
    std::perror("[fork_first] waitpid");
    return 1;
  }
  const bool child_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::printf("child (pid %d) %s\n", static_cast<int>(pid),
              child_ok ? "used CUDA and passed its checks" : "failed");

  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("[fork_first] no CUDA device: nothing to check\n");
    return 2;
  }
  CallLog log("fork_first");
  bool parent_ok = true;
  try {
    use_cuda(log, 2);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[fork_first] parent: %s\n", e.what());
    parent_ok = false;
  }
  log.print();
  log.verdict(child_ok && parent_ok);
  return child_ok && parent_ok ? 0 : 1;
}

}  // namespace
}  // namespace cudefrag::examples

int main() {
  try {
    return cudefrag::examples::run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[fork_first] %s\n", e.what());
    return 1;
  }
}
