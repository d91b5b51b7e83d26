// Preloaded after libcudefrag.so and before rtld_next_c: looks a symbol up with dlsym(RTLD_NEXT),
// which must find rtld_next_c's definition (the next one after this library), not its own.
#include <dlfcn.h>

extern "C" {

__attribute__((visibility("default"))) const char* cudefrag_probe_next() {
  return "B";
}

__attribute__((visibility("default"))) const char* cudefrag_probe_lookup_next() {
  using Fn = const char* (*)();
  auto* next = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "cudefrag_probe_next"));
  return next != nullptr ? next() : "none";
}
}
