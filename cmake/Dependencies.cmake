# Third-party dependencies, found once here. Debian 12 packages: libspdlog-dev, libfmt-dev,
# libgtest-dev, libbenchmark-dev, libunwind-dev; the CUDA toolkit under /usr/local/cuda.
find_package(Threads REQUIRED)

# Only CUDA *headers* are used by the shim: it must not link libcudart or libcuda, because it
# resolves the real functions at run time from whatever the host program loads.
if(NOT CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
  set(CUDAToolkit_ROOT /usr/local/cuda)
endif()
find_package(CUDAToolkit REQUIRED)
add_library(cudefrag_cuda_headers INTERFACE)
target_include_directories(cudefrag_cuda_headers SYSTEM INTERFACE ${CUDAToolkit_INCLUDE_DIRS})

# spdlog and fmt header-only, so the preloaded library carries no dependency the host may lack
# (the GPU machine has no libfmt.so.9) and nothing clashes with the host's copies: all of it is
# hidden by the version script.
find_path(CUDEFRAG_SPDLOG_INCLUDE spdlog/spdlog.h REQUIRED)
find_path(CUDEFRAG_FMT_INCLUDE fmt/format.h REQUIRED)
add_library(cudefrag_spdlog INTERFACE)
target_include_directories(cudefrag_spdlog SYSTEM INTERFACE ${CUDEFRAG_SPDLOG_INCLUDE}
                                                           ${CUDEFRAG_FMT_INCLUDE})
target_compile_definitions(cudefrag_spdlog INTERFACE SPDLOG_FMT_EXTERNAL FMT_HEADER_ONLY)

if(CUDEFRAG_BUILD_TESTS)
  find_package(GTest REQUIRED)
  include(GoogleTest)
endif()
if(CUDEFRAG_BUILD_BENCH)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    message(STATUS "Google Benchmark not found: benchmarks are not built")
    set(CUDEFRAG_BUILD_BENCH OFF)
  endif()
endif()

set(CUDEFRAG_HAVE_NVCC OFF)
if(CUDEFRAG_BUILD_GPU AND NOT CUDEFRAG_SANITIZE)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES 90)  # H100/H200 (sm_90); PTX is embedded for newer chips
    set(CMAKE_CUDA_STANDARD 20)
    enable_language(CUDA)
    set(CUDEFRAG_HAVE_NVCC ON)
  endif()
endif()
