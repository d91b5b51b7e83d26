// Resolution of the real CUDA functions (real_cuda.hpp). Nothing here logs or allocates device
// memory: it runs from inside hooks, possibly before main and before CUDA is initialised.
#include "shim/vmm/real_cuda.hpp"

#include <dlfcn.h>
#include <link.h>

#include <array>
#include <cstring>

namespace cudefrag::real {
namespace {

constexpr const char* kLibcuda = "libcuda.so.1";

// glibc moved dlsym into libc in 2.34; older x86-64 glibc has it in libdl as GLIBC_2.2.5, and
// aarch64 glibc's baseline version is GLIBC_2.17.
DlsymFunction resolve_real_dlsym() {
  constexpr std::array kVersions{"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17"};
  for (const char* version : kVersions) {
    if (void* p = dlvsym(RTLD_NEXT, "dlsym", version)) return std::bit_cast<DlsymFunction>(p);
  }
  return nullptr;
}

// Base address of the object this code is linked into (libcudefrag.so, or a test executable).
const void* own_object_base() {
  static const void* const base = [] {
    Dl_info info{};
    const int found = dladdr(reinterpret_cast<const void*>(&own_object_base), &info);
    return found != 0 ? static_cast<const void*>(info.dli_fbase) : nullptr;
  }();
  return base;
}

bool inside_own_object(const void* p) {
  Dl_info info{};
  if (dladdr(p, &info) == 0) return false;
  return info.dli_fbase != nullptr && info.dli_fbase == own_object_base();
}

// dl_iterate_phdr holds the loader lock: only copy the name here, dlopen it afterwards.
int find_libcudart_path(dl_phdr_info* info, size_t /*size*/, void* out) {
  const char* name = info->dlpi_name;
  if (name == nullptr || std::strstr(name, "libcudart.so") == nullptr) return 0;
  auto* path = static_cast<std::array<char, 4096>*>(out);
  const std::size_t n = std::strlen(name);
  if (n >= path->size()) return 0;
  std::memcpy(path->data(), name, n + 1);
  return 1;
}

void* loaded_libcudart_handle() {
  static std::atomic<void*> cached{nullptr};
  void* h = cached.load(std::memory_order_acquire);
  if (h != nullptr) return h;
  std::array<char, 4096> path{};
  if (dl_iterate_phdr(&find_libcudart_path, &path) == 0) return nullptr;
  // RTLD_NOLOAD takes a reference on the already-loaded object; keeping it for the life of the
  // process is what we want (the runtime is never unloaded under us).
  h = dlopen(path.data(), RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return nullptr;
  void* expected = nullptr;
  if (!cached.compare_exchange_strong(expected, h, std::memory_order_acq_rel)) {
    dlclose(h);
    return expected;
  }
  return h;
}

template <typename Fn>
void resolve_into(void* handle, const char* name, Fn& slot) {
  slot = std::bit_cast<Fn>(real_dlsym(handle, name));
}

DriverTable resolve_driver() {
  DriverTable t;
  void* h = libcuda_handle();
  if (h == nullptr) return t;
#define CUDEFRAG_X(name) resolve_into(h, #name, t.name);
  CUDEFRAG_REAL_DRIVER_FUNCTIONS(CUDEFRAG_X)
#undef CUDEFRAG_X
#define CUDEFRAG_X(name) resolve_into(h, #name "_ptsz", t.name##_ptsz);
  CUDEFRAG_REAL_DRIVER_PTSZ_FUNCTIONS(CUDEFRAG_X)
#undef CUDEFRAG_X
  resolve_into(h, "cuGetProcAddress", t.cuGetProcAddress_v1);
  return t;
}

constinit const RuntimeTable g_runtime{};

}  // namespace

DlsymFunction real_dlsym_function() {
  static const DlsymFunction fn = resolve_real_dlsym();
  return fn;
}

void* real_dlsym(void* handle, const char* name) {
  const DlsymFunction fn = real_dlsym_function();
  return fn != nullptr ? fn(handle, name) : nullptr;
}

void* loaded_libcuda_handle() {
  static std::atomic<void*> cached{nullptr};
  void* h = cached.load(std::memory_order_acquire);
  if (h != nullptr) return h;
  h = dlopen(kLibcuda, RTLD_LAZY | RTLD_NOLOAD);
  if (h == nullptr) return nullptr;
  void* expected = nullptr;
  if (!cached.compare_exchange_strong(expected, h, std::memory_order_acq_rel)) {
    dlclose(h);  // another thread cached the same handle; drop our extra reference
    return expected;
  }
  return h;
}

void* libcuda_handle() {
  if (void* h = loaded_libcuda_handle()) return h;
  // Not loaded yet: load it (a CUDA program is about to anyway). The handle equals the one
  // loaded_libcuda_handle() returns from now on, since dlopen returns one handle per object.
  if (dlopen(kLibcuda, RTLD_NOW) == nullptr) return nullptr;
  return loaded_libcuda_handle();
}

const DriverTable& driver() {
  static const DriverTable table = resolve_driver();
  return table;
}

void* find_runtime_symbol(const char* name) {
  if (void* p = real_dlsym(RTLD_NEXT, name); p != nullptr && !inside_own_object(p)) return p;
  if (void* h = loaded_libcudart_handle()) {
    if (void* p = real_dlsym(h, name); p != nullptr && !inside_own_object(p)) return p;
  }
  return nullptr;
}

const RuntimeTable& runtime() {
  return g_runtime;
}

}  // namespace cudefrag::real
