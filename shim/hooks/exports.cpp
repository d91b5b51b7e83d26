// The exported hooks, generated from hook_list.h: each forwards to its family's dispatch function
// (dispatch.hpp). The linker version script exports exactly these names (and dlsym).
#include "shim/hooks/exports.hpp"

#include "shim/hooks/dispatch.hpp"

#define CUDEFRAG_EXPORT __attribute__((visibility("default")))

extern "C" {

#define CUDEFRAG_RT(name, family, params, args)                                        \
  CUDEFRAG_EXPORT cudaError_t CUDARTAPI name params {                                  \
    return ::cudefrag::hooks::dispatch_##family<::cudefrag::hooks::HookId::name> args; \
  }
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args)         \
  CUDEFRAG_EXPORT CUresult CUDAAPI name params {                                       \
    return ::cudefrag::hooks::dispatch_##family<::cudefrag::hooks::HookId::name> args; \
  }
CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT)
CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV

}  // extern "C"
