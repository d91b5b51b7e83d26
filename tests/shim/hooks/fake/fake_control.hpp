// Test controls the fake libcuda.so.1 and libcudart.so.13 export, for test programs to declare.
#pragma once

#include <cstdint>

extern "C" {
std::uint64_t fake_cuda_calls(const char* name);
void fake_cuda_reset();
void fake_cuda_set_device(int device);  // -1: no context current
void fake_cuda_set_capturing(int capturing);
void fake_cuda_fail_creates(int count);  // the next `count` cuMemCreate calls fail: out of memory
std::uint64_t fake_cudart_calls(const char* name);
void fake_cudart_reset();
void fake_cudart_use_driver_lookup(void* get_proc_address);
}
