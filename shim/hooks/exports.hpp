// Declarations of every exported hook, generated from hook_list.h. The CUDA headers declare most
// of them already; the _ptsz variants and the first cuGetProcAddress they declare only in
// per-thread-default-stream builds, or not at all.
#pragma once

#include "shim/hooks/cuda_api.hpp"
#include "shim/hooks/hook_list.h"

extern "C" {
#define CUDEFRAG_RT(name, family, params, args) cudaError_t CUDARTAPI name params;
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args) \
  CUresult CUDAAPI name params;
CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT)
CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV
}
