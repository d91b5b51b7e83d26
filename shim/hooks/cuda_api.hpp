// The CUDA headers as the hooks need them. cuda.h turns the token cuGetProcAddress into
// cuGetProcAddress_v2; the hooks export both functions under their own names, so the rename is
// undone here. Include this before any other header that includes cuda.h.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#undef cuGetProcAddress
