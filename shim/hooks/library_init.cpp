// Sets the shim up when libcudefrag.so is loaded, so that a bad configuration value is reported
// at start-up even by a program that never calls CUDA. Hooks called before this (from another
// library's constructor) set it up themselves. Nothing here touches CUDA.
#include "shim/hooks/shim_state.hpp"

namespace {

[[gnu::constructor]] void set_up_on_load() {
  cudefrag::hooks::ensure_initialized();
}

}  // namespace
