/* Every entry point cudefrag intercepts, declared once.
 *
 * From these lists come: the exported definitions (exports.cpp), the linker version script that
 * exports exactly these names and nothing else (exports.map.in, run through the C preprocessor at
 * build time), the entry-point lookup our cuGetProcAddress and cudaGetDriverEntryPoint[ByVersion]
 * use (hook_table.cpp), the forwarding to the real function, the per-entry-point counters, and the
 * symbol test's expected list. This file holds macros only, so that plain cpp can read it.
 *
 * Runtime hooks: X(name, family, params, args)
 * Driver hooks:  X(name, real, base, min_version, ptsz, family, params, args)
 *   real:        the member of real::DriverTable the hook forwards to (the name itself, except
 *                for the first cuGetProcAddress, whose name cuda.h turns into a macro)
 *   base:        the name cuGetProcAddress is asked for
 *   min_version: the CUDA version that introduced this variant (cuGetProcAddress hands it out
 *                for requests of that version and later)
 *   ptsz:        1 for the per-thread-default-stream variant
 * family: the dispatch function (dispatch_<family> in dispatch.hpp) that serves the call; it is
 *   the one place where mode arena will route the call.
 * _ptsz runtime variants are those libcudart.so.13 exports (nm -D). */
#ifndef CUDEFRAG_SHIM_HOOKS_HOOK_LIST_H
#define CUDEFRAG_SHIM_HOOKS_HOOK_LIST_H

#define CUDEFRAG_RUNTIME_HOOKS(X)                                                                \
  X(cudaMalloc, alloc, (void** devPtr, size_t size), (devPtr, size))                             \
  X(cudaFree, free, (void* devPtr), (devPtr))                                                    \
  X(cudaMallocAsync, alloc, (void** devPtr, size_t size, cudaStream_t hStream),                  \
    (devPtr, size, hStream))                                                                     \
  X(cudaMallocAsync_ptsz, alloc, (void** devPtr, size_t size, cudaStream_t hStream),             \
    (devPtr, size, hStream))                                                                     \
  X(cudaFreeAsync, free, (void* devPtr, cudaStream_t hStream), (devPtr, hStream))                \
  X(cudaFreeAsync_ptsz, free, (void* devPtr, cudaStream_t hStream), (devPtr, hStream))           \
  X(cudaMallocFromPoolAsync, alloc,                                                              \
    (void** ptr, size_t size, cudaMemPool_t memPool, cudaStream_t stream),                       \
    (ptr, size, memPool, stream))                                                                \
  X(cudaMallocFromPoolAsync_ptsz, alloc,                                                         \
    (void** ptr, size_t size, cudaMemPool_t memPool, cudaStream_t stream),                       \
    (ptr, size, memPool, stream))                                                                \
  X(cudaMallocPitch, alloc, (void** devPtr, size_t* pitch, size_t width, size_t height),         \
    (devPtr, pitch, width, height))                                                              \
  X(cudaMalloc3D, alloc, (struct cudaPitchedPtr * pitchedDevPtr, struct cudaExtent extent),      \
    (pitchedDevPtr, extent))                                                                     \
  X(cudaMemGetInfo, meminfo, (size_t * freeBytes, size_t * totalBytes), (freeBytes, totalBytes)) \
  X(cudaDeviceGetDefaultMemPool, pool, (cudaMemPool_t * memPool, int device), (memPool, device)) \
  X(cudaDeviceGetMemPool, pool, (cudaMemPool_t * memPool, int device), (memPool, device))        \
  X(cudaMemPoolGetAttribute, pool,                                                               \
    (cudaMemPool_t memPool, enum cudaMemPoolAttr attr, void* value), (memPool, attr, value))     \
  X(cudaMemPoolSetAttribute, pool,                                                               \
    (cudaMemPool_t memPool, enum cudaMemPoolAttr attr, void* value), (memPool, attr, value))     \
  X(cudaMemPoolTrimTo, pool, (cudaMemPool_t memPool, size_t minBytesToKeep),                     \
    (memPool, minBytesToKeep))                                                                   \
  X(cudaMemPoolSetAccess, pool,                                                                  \
    (cudaMemPool_t memPool, const struct cudaMemAccessDesc* descList, size_t count),             \
    (memPool, descList, count))                                                                  \
  X(cudaIpcGetMemHandle, query, (cudaIpcMemHandle_t * handle, void* devPtr), (handle, devPtr))   \
  X(cudaDeviceEnablePeerAccess, peer, (int peerDevice, unsigned int flags), (peerDevice, flags)) \
  X(cudaStreamDestroy, stream, (cudaStream_t stream), (stream))                                  \
  X(cudaGetDriverEntryPoint, entry,                                                              \
    (const char* symbol, void** funcPtr, unsigned long long flags,                               \
     enum cudaDriverEntryPointQueryResult* driverStatus),                                        \
    (symbol, funcPtr, flags, driverStatus))                                                      \
  X(cudaGetDriverEntryPoint_ptsz, entry,                                                         \
    (const char* symbol, void** funcPtr, unsigned long long flags,                               \
     enum cudaDriverEntryPointQueryResult* driverStatus),                                        \
    (symbol, funcPtr, flags, driverStatus))                                                      \
  X(cudaGetDriverEntryPointByVersion, entry,                                                     \
    (const char* symbol, void** funcPtr, unsigned int cudaVersion, unsigned long long flags,     \
     enum cudaDriverEntryPointQueryResult* driverStatus),                                        \
    (symbol, funcPtr, cudaVersion, flags, driverStatus))                                         \
  X(cudaGetDriverEntryPointByVersion_ptsz, entry,                                                \
    (const char* symbol, void** funcPtr, unsigned int cudaVersion, unsigned long long flags,     \
     enum cudaDriverEntryPointQueryResult* driverStatus),                                        \
    (symbol, funcPtr, cudaVersion, flags, driverStatus))

#define CUDEFRAG_DRIVER_HOOKS(X)                                                                  \
  X(cuMemAlloc_v2, cuMemAlloc_v2, "cuMemAlloc", 3020, 0, alloc,                                   \
    (CUdeviceptr * dptr, size_t bytesize), (dptr, bytesize))                                      \
  X(cuMemFree_v2, cuMemFree_v2, "cuMemFree", 3020, 0, free, (CUdeviceptr dptr), (dptr))           \
  X(cuMemAllocPitch_v2, cuMemAllocPitch_v2, "cuMemAllocPitch", 3020, 0, alloc,                    \
    (CUdeviceptr * dptr, size_t * pPitch, size_t WidthInBytes, size_t Height,                     \
     unsigned int ElementSizeBytes),                                                              \
    (dptr, pPitch, WidthInBytes, Height, ElementSizeBytes))                                       \
  X(cuMemAllocAsync, cuMemAllocAsync, "cuMemAllocAsync", 11020, 0, alloc,                         \
    (CUdeviceptr * dptr, size_t bytesize, CUstream hStream), (dptr, bytesize, hStream))           \
  X(cuMemAllocAsync_ptsz, cuMemAllocAsync_ptsz, "cuMemAllocAsync", 11020, 1, alloc,               \
    (CUdeviceptr * dptr, size_t bytesize, CUstream hStream), (dptr, bytesize, hStream))           \
  X(cuMemFreeAsync, cuMemFreeAsync, "cuMemFreeAsync", 11020, 0, free,                             \
    (CUdeviceptr dptr, CUstream hStream), (dptr, hStream))                                        \
  X(cuMemFreeAsync_ptsz, cuMemFreeAsync_ptsz, "cuMemFreeAsync", 11020, 1, free,                   \
    (CUdeviceptr dptr, CUstream hStream), (dptr, hStream))                                        \
  X(cuMemAllocFromPoolAsync, cuMemAllocFromPoolAsync, "cuMemAllocFromPoolAsync", 11020, 0, alloc, \
    (CUdeviceptr * dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream),                   \
    (dptr, bytesize, pool, hStream))                                                              \
  X(cuMemAllocFromPoolAsync_ptsz, cuMemAllocFromPoolAsync_ptsz, "cuMemAllocFromPoolAsync", 11020, \
    1, alloc, (CUdeviceptr * dptr, size_t bytesize, CUmemoryPool pool, CUstream hStream),         \
    (dptr, bytesize, pool, hStream))                                                              \
  X(cuMemGetInfo_v2, cuMemGetInfo_v2, "cuMemGetInfo", 3020, 0, meminfo,                           \
    (size_t * freeBytes, size_t * totalBytes), (freeBytes, totalBytes))                           \
  X(cuMemGetAddressRange_v2, cuMemGetAddressRange_v2, "cuMemGetAddressRange", 3020, 0, query,     \
    (CUdeviceptr * pbase, size_t * psize, CUdeviceptr dptr), (pbase, psize, dptr))                \
  X(cuStreamDestroy_v2, cuStreamDestroy_v2, "cuStreamDestroy", 4000, 0, stream,                   \
    (CUstream hStream), (hStream))                                                                \
  X(cuMemCreate, cuMemCreate, "cuMemCreate", 10020, 0, vmm,                                       \
    (CUmemGenericAllocationHandle * handle, size_t size, const CUmemAllocationProp* prop,         \
     unsigned long long flags),                                                                   \
    (handle, size, prop, flags))                                                                  \
  X(cuMemRelease, cuMemRelease, "cuMemRelease", 10020, 0, vmm,                                    \
    (CUmemGenericAllocationHandle handle), (handle))                                              \
  X(cuMemMap, cuMemMap, "cuMemMap", 10020, 0, vmm,                                                \
    (CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,            \
     unsigned long long flags),                                                                   \
    (ptr, size, offset, handle, flags))                                                           \
  X(cuMemUnmap, cuMemUnmap, "cuMemUnmap", 10020, 0, vmm, (CUdeviceptr ptr, size_t size),          \
    (ptr, size))                                                                                  \
  X(cuGetProcAddress, cuGetProcAddress_v1, "cuGetProcAddress", 11030, 0, entry,                   \
    (const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags),                          \
    (symbol, pfn, cudaVersion, flags))                                                            \
  X(cuGetProcAddress_v2, cuGetProcAddress_v2, "cuGetProcAddress", 12000, 0, entry,                \
    (const char* symbol, void** pfn, int cudaVersion, cuuint64_t flags,                           \
     CUdriverProcAddressQueryResult* symbolStatus),                                               \
    (symbol, pfn, cudaVersion, flags, symbolStatus))

/* dlsym: defined in assembly (dlsym_trampoline.S) so that the forward to glibc's dlsym is a tail
 * call that keeps the caller's return address. */
#define CUDEFRAG_LIBC_HOOKS(X) X(dlsym)

/* Exported functions that are not hooks: the public C API of shim/trace/cudefrag.h (defined in
 * shim/trace/process_recorder.cpp and shim/hooks/arena_route.cpp). */
#define CUDEFRAG_PUBLIC_API(X) \
  X(cudefrag_mark) X(cudefrag_flush) X(cudefrag_arena_pause) X(cudefrag_arena_resume)

#endif /* CUDEFRAG_SHIM_HOOKS_HOOK_LIST_H */
