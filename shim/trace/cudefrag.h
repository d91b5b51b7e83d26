/* cudefrag's API for programs: marks in the trace.
 *
 * Both functions do nothing when the program runs without cudefrag's trace. They are declared
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

#ifdef __cplusplus
}
#endif

#endif /* CUDEFRAG_H */
