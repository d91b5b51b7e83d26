#include "shim/trace/native_stack.hpp"

#include <dlfcn.h>
#include <link.h>
#include <unwind.h>

#include <algorithm>
#include <array>
#include <string>

namespace cudefrag::trace {
namespace {

constexpr std::size_t kMaxFrames = 128;
constexpr int kMaxSkip = 16;
// Frames asked for beyond where the stop frame was last found on this thread: call sites of one
// thread reach the interpreter at different depths, and a walk that falls short is walked twice.
constexpr std::size_t kStopMargin = 8;

// How many frames it took to reach the stop frame on this thread, the highest of recent walks
// (lowered by one per walk, so that it follows a thread whose call sites get shallower). Only a
// cost hint: 0 walks in full. initial-exec: no __tls_get_addr call per capture.
[[gnu::tls_model("initial-exec")]] thread_local std::size_t t_stop_depth = 0;

// The position of the first frame running in `stop`, or frames.size().
std::size_t find_stop(std::span<const std::uint64_t> frames, CodeRange stop) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (stop.contains(frames[i] - 1)) return i;
  }
  return frames.size();
}

// libunwind, once per process: from the library path, else from beside this library (where a
// bundle can ship it for machines without libunwind). The library stays loaded.
void* load_libunwind_backtrace() {
  void* lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  Dl_info self{};
  if (lib == nullptr && dladdr(reinterpret_cast<void*>(&load_libunwind_backtrace), &self) != 0 &&
      self.dli_fname != nullptr) {
    const std::string_view own_path = self.dli_fname;
    const std::size_t slash = own_path.rfind('/');
    if (slash != std::string_view::npos) {
      const std::string beside = std::string(own_path.substr(0, slash + 1)) + "libunwind.so.8";
      lib = dlopen(beside.c_str(), RTLD_NOW | RTLD_LOCAL);
    }
  }
  return lib != nullptr ? dlsym(lib, "unw_backtrace") : nullptr;
}

struct LibgccWalk {
  std::uint64_t* out;
  std::size_t capacity;
  std::size_t count;
  int skip;
  CodeRange stop;
};

_Unwind_Reason_Code libgcc_step(_Unwind_Context* context, void* arg) {
  auto* walk = static_cast<LibgccWalk*>(arg);
  const _Unwind_Ptr ip = _Unwind_GetIP(context);
  if (ip == 0) return _URC_END_OF_STACK;
  if (walk->skip > 0) {
    --walk->skip;
    return _URC_NO_REASON;
  }
  walk->out[walk->count++] = ip;
  if (walk->stop.contains(ip - 1)) return _URC_END_OF_STACK;
  return walk->count == walk->capacity ? _URC_END_OF_STACK : _URC_NO_REASON;
}

}  // namespace

CodeRange function_range(const void* code) {
  Dl_info info{};
  void* entry = nullptr;
  if (code == nullptr || dladdr1(code, &info, &entry, RTLD_DL_SYMENT) == 0 || entry == nullptr ||
      info.dli_saddr == nullptr) {
    return {};
  }
  const auto* symbol = static_cast<const ElfW(Sym)*>(entry);
  if (symbol->st_size == 0) return {};
  const auto begin = reinterpret_cast<std::uintptr_t>(info.dli_saddr);
  return {begin, begin + symbol->st_size};
}

NativeStacks::NativeStacks(NativeUnwinder choice) {
  if (choice == NativeUnwinder::kAuto) {
    static void* const loaded = load_libunwind_backtrace();
    unw_backtrace_ = reinterpret_cast<Backtrace>(loaded);
  }
}

std::string_view NativeStacks::unwinder() const {
  return unw_backtrace_ != nullptr ? "libunwind" : "libgcc";
}

std::size_t NativeStacks::capture(std::span<std::uint64_t> out, int skip, CodeRange stop) const {
  out = out.first(std::min(out.size(), kMaxFrames));
  if (out.empty()) return 0;
  skip = std::clamp(skip, 0, kMaxSkip);
  if (unw_backtrace_ != nullptr) {
    if (stop.empty()) {
      const std::size_t n = walk_libunwind(out, skip);
      asm volatile("" ::: "memory");  // no tail call: walk_libunwind counts this frame
      return n;
    }
    // A first walk as deep as the stop frame was found before on this thread: exact when it
    // holds the stop frame, or when it ended short of its length (the whole stack).
    const std::size_t hint = t_stop_depth;
    if (hint != 0 && hint + kStopMargin < out.size()) {
      const std::size_t window = hint + kStopMargin;
      const std::size_t n = walk_libunwind(out.first(window), skip);
      const std::size_t at = find_stop(out.first(n), stop);
      if (at < n) {
        t_stop_depth = std::max(at + 1, hint - 1);
        return at + 1;
      }
      if (n < window) return n;
    }
    const std::size_t n = walk_libunwind(out, skip);
    const std::size_t at = find_stop(out.first(n), stop);
    if (at == n) return n;
    t_stop_depth = std::max(at + 1, hint > 0 ? hint - 1 : 0);
    return at + 1;
  }
  // _Unwind_Backtrace reports this function first; it stops at the stop frame by itself.
  constexpr int kSelf = 1;
  LibgccWalk walk{out.data(), out.size(), 0, skip + kSelf, stop};
  _Unwind_Backtrace(libgcc_step, &walk);
  return walk.count;
}

std::size_t NativeStacks::walk_libunwind(std::span<std::uint64_t> out, int skip) const {
  // unw_backtrace's first entry is this function, the second capture().
  constexpr int kSelf = 2;
  std::array<void*, kMaxFrames + kMaxSkip + kSelf> frames;
  const int want = static_cast<int>(out.size()) + skip + kSelf;
  const int got = unw_backtrace_(frames.data(), want);
  std::size_t n = 0;
  for (int i = skip + kSelf; i < got; ++i) {
    out[n++] = reinterpret_cast<std::uintptr_t>(frames[static_cast<std::size_t>(i)]);
  }
  return n;
}

}  // namespace cudefrag::trace
