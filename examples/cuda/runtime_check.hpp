// Error checking for CUDA runtime calls in the example programs.
#pragma once

#include <cuda_runtime_api.h>

#include <source_location>
#include <string>

#include "examples/cuda/failure.hpp"

namespace cudefrag::examples {

inline void check(cudaError_t err, const char* what,
                  std::source_location where = std::source_location::current()) {
  if (err == cudaSuccess) return;
  fail(std::string(what) + " failed: " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
           ")",
       where);
}

}  // namespace cudefrag::examples
