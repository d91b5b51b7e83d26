// The shim notices a loaded comfy-aimdo (ComfyUI's DynamicVRAM), which hooks the driver's
// allocation functions itself and is blind to what the arena serves.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include "shim/hooks/foreign_hooks.hpp"

namespace cudefrag::hooks {
namespace {

TEST(ForeignHooks, ALoadedAimdoIsFoundByItsFileName) {
  EXPECT_EQ(loaded_foreign_allocator_hook(), "");
  void* lib = dlopen(CUDEFRAG_FAKE_AIMDO, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  EXPECT_EQ(loaded_foreign_allocator_hook(), "aimdo.so");
  warn_about_foreign_allocator_hooks();  // logs once; must not fail
  dlclose(lib);
}

}  // namespace
}  // namespace cudefrag::hooks
