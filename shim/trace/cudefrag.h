/* cudefrag's API for programs: marks in the trace, and allocations that go around the arena.
 *
 * The functions do nothing when the program runs without cudefrag (the mark functions also
 * without its trace). They are declared
 * weak, so a program that includes this header links and runs without libcudefrag.so; test
 * the address before calling, as in
 *
 *   if (cudefrag_mark) cudefrag_mark("epoch 3");
 *
 * From Python, with the library preloaded:
 *
 *   import ctypes
 *   ctypes.CDLL(None).cudefrag_mark(b"before sampling")
 *
 * Not async-signal-safe: do not call them from a signal handler. Sending the process SIGUSR2
 * adds the mark "SIGUSR2" and flushes the trace, unless the program handles SIGUSR2 itself.
 */
#ifndef CUDEFRAG_H
#define CUDEFRAG_H

#ifdef __cplusplus
extern "C" {
#endif

/* Adds a mark with this text (cut at 4000 bytes) to the trace, with the time and thread. */
__attribute__((weak)) void cudefrag_mark(const char* text);

/* Writes everything recorded so far to the trace file before returning. */
__attribute__((weak)) void cudefrag_flush(void);

/* Until the matching cudefrag_arena_resume(), the allocations this thread makes (cudaMalloc,
 * cudaMallocAsync, cuMemAlloc... every call the arena would serve) go to CUDA itself: for memory
 * that must come from CUDA's own allocator, such as memory to export with cudaIpcGetMemHandle,
 * which refuses arena memory; or to compare the arena with CUDA's allocator in one process.
 * Other threads are not affected, and every free goes where its memory came from, paused or
 * not. Calls nest; each returns this thread's depth after it (a resume without a pause stays at
 * 0). Still traced as usual. */
__attribute__((weak)) int cudefrag_arena_pause(void);
__attribute__((weak)) int cudefrag_arena_resume(void);

#ifdef __cplusplus
}
#endif

#endif /* CUDEFRAG_H */
