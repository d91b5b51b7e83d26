// The definition dlsym(RTLD_NEXT) from rtld_next_b must find.
extern "C" __attribute__((visibility("default"))) const char* cudefrag_probe_next() {
  return "C";
}
