// The dlsym hook: code that opens libcuda.so.1 by hand and looks driver functions up in it (the
// CUDA runtime does: dlsym(libcuda, "cuGetProcAddress_v2"); so do JAX and others) never sees a
// preloaded export, because dlsym on a handle searches that library only. So dlsym itself is
// exported, and answers such lookups with our hooks.
//
// Every other lookup goes to glibc's dlsym as a tail call (a jump, not a call) that keeps the
// caller's return address: glibc resolves RTLD_NEXT relative to the object its caller is in, and a
// normal call from here would make every RTLD_NEXT lookup in the process resolve relative to
// libcudefrag. A C++ sibling call is not guaranteed (not at -O0), hence the few lines of
// assembly. Only in libcudefrag.so, never in the static library the tests link.
#include <dlfcn.h>

#include <atomic>
#include <bit>

#include "shim/hooks/counters.hpp"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/shim_state.hpp"
#include "shim/vmm/real_cuda.hpp"

namespace {

void* no_dlsym(void* /*handle*/, const char* /*name*/) {
  return nullptr;
}

}  // namespace

extern "C" {

// Where the trampoline jumps when we do not answer: glibc's dlsym. Set by the decision function
// before it returns, so it is always valid when the jump reads it.
[[gnu::visibility("hidden")]] void* cudefrag_real_dlsym_target = nullptr;

// Returns our hook for a driver symbol looked up in libcuda.so.1, or null to let glibc answer.
[[gnu::visibility("hidden"), gnu::used]] void* cudefrag_dlsym_decide(void* handle,
                                                                     const char* name) noexcept {
  using cudefrag::real::DlsymFunction;
  std::atomic_ref target(cudefrag_real_dlsym_target);
  if (target.load(std::memory_order_relaxed) == nullptr) {
    const DlsymFunction real = cudefrag::real::real_dlsym_function();
    target.store(std::bit_cast<void*>(real != nullptr ? real : &no_dlsym),
                 std::memory_order_relaxed);
  }
  // Cheap rejections first: this runs for every dlsym in the process.
  if (name == nullptr || name[0] != 'c' || name[1] != 'u') return nullptr;
  if (handle == RTLD_DEFAULT || handle == RTLD_NEXT) return nullptr;
  if (!cudefrag::hooks::dlsym_hook_enabled()) return nullptr;
  const auto id = cudefrag::hooks::find_driver_export(name);
  if (!id) return nullptr;
  const void* libcuda = cudefrag::real::loaded_libcuda_handle();
  if (libcuda == nullptr || handle != libcuda) return nullptr;
  cudefrag::hooks::ensure_initialized();
  cudefrag::hooks::count_call(cudefrag::hooks::HookId::dlsym, true);
  return cudefrag::hooks::hook_address(*id);
}

}  // extern "C"

// void* dlsym(void* handle, const char* name): ask cudefrag_dlsym_decide; if it answers, return
// that; otherwise restore the arguments and jump to glibc's dlsym with the caller's return
// address still on the stack (x86-64) or in the link register (aarch64).
#if defined(__x86_64__)
#if defined(__CET__)
#define CUDEFRAG_BRANCH_TARGET "endbr64\n"
#else
#define CUDEFRAG_BRANCH_TARGET ""
#endif
asm(R"(
  .text
  .globl dlsym
  .type dlsym, @function
  .p2align 4
dlsym:
  .cfi_startproc
)" CUDEFRAG_BRANCH_TARGET R"(
  pushq %rdi
  .cfi_adjust_cfa_offset 8
  pushq %rsi
  .cfi_adjust_cfa_offset 8
  subq $8, %rsp
  .cfi_adjust_cfa_offset 8
  call cudefrag_dlsym_decide
  addq $8, %rsp
  .cfi_adjust_cfa_offset -8
  popq %rsi
  .cfi_adjust_cfa_offset -8
  popq %rdi
  .cfi_adjust_cfa_offset -8
  testq %rax, %rax
  jnz 1f
  jmpq *cudefrag_real_dlsym_target(%rip)
1:
  ret
  .cfi_endproc
  .size dlsym, .-dlsym
)");
#elif defined(__aarch64__)
asm(R"(
  .text
  .globl dlsym
  .type dlsym, %function
  .p2align 4
dlsym:
  .cfi_startproc
  hint #34
  stp x29, x30, [sp, #-32]!
  .cfi_def_cfa_offset 32
  .cfi_offset 29, -32
  .cfi_offset 30, -24
  mov x29, sp
  stp x0, x1, [sp, #16]
  bl cudefrag_dlsym_decide
  mov x2, x0
  ldp x0, x1, [sp, #16]
  ldp x29, x30, [sp], #32
  .cfi_restore 29
  .cfi_restore 30
  .cfi_def_cfa_offset 0
  cbnz x2, 1f
  adrp x16, cudefrag_real_dlsym_target
  ldr x16, [x16, :lo12:cudefrag_real_dlsym_target]
  br x16
1:
  mov x0, x2
  ret
  .cfi_endproc
  .size dlsym, .-dlsym
)");
#else
#error "the dlsym trampoline exists for x86-64 and aarch64 only"
#endif
