// A program that opens the CUDA runtime itself with RTLD_LOCAL (as plugin loaders and Python
// extensions may), so dlsym(RTLD_NEXT) from the shim cannot see it: the shim must still find the
// real cudaMalloc, in the loaded libcudart, and never its own.
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "probe_local: %s\n", what);
    std::exit(1);
  }
}

}  // namespace

int main() {
  void* cudart = dlopen("libcudart.so.13", RTLD_NOW | RTLD_LOCAL);
  expect(cudart != nullptr, "dlopen libcudart.so.13");
  using Malloc = int (*)(void**, std::size_t);
  using Free = int (*)(void*);
  using Calls = std::uint64_t (*)(const char*);
  // The global lookup finds the preloaded shim's cudaMalloc, as the program's own calls would.
  auto* cuda_malloc = reinterpret_cast<Malloc>(dlsym(RTLD_DEFAULT, "cudaMalloc"));
  auto* cuda_free = reinterpret_cast<Free>(dlsym(RTLD_DEFAULT, "cudaFree"));
  auto* calls = reinterpret_cast<Calls>(dlsym(cudart, "fake_cudart_calls"));
  expect(cuda_malloc != nullptr && cuda_free != nullptr && calls != nullptr, "dlsym");
  Dl_info info{};
  expect(dladdr(reinterpret_cast<void*>(cuda_malloc), &info) != 0 && info.dli_fname != nullptr,
         "dladdr");
  void* p = nullptr;
  expect(cuda_malloc(&p, 1 << 20) == 0 && p != nullptr, "cudaMalloc");
  expect(cuda_free(p) == 0, "cudaFree");
  expect(calls("cudaMalloc") == 1 && calls("cudaFree") == 1, "the runtime was not reached");
  std::printf("probe_local: ok (cudaMalloc from %s)\n", info.dli_fname);
  return 0;
}
