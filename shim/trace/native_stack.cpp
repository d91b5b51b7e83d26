#include "shim/trace/native_stack.hpp"

#include <dlfcn.h>
#include <unwind.h>

#include <algorithm>
#include <array>
#include <string>

namespace cudefrag::trace {
namespace {

constexpr std::size_t kMaxFrames = 128;
constexpr int kMaxSkip = 16;

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
  return walk->count == walk->capacity ? _URC_END_OF_STACK : _URC_NO_REASON;
}

}  // namespace

NativeStacks::NativeStacks(NativeUnwinder choice) {
  if (choice == NativeUnwinder::kAuto) {
    static void* const loaded = load_libunwind_backtrace();
    unw_backtrace_ = reinterpret_cast<Backtrace>(loaded);
  }
}

std::string_view NativeStacks::unwinder() const {
  return unw_backtrace_ != nullptr ? "libunwind" : "libgcc";
}

std::size_t NativeStacks::capture(std::span<std::uint64_t> out, int skip) const {
  const std::size_t capacity = std::min(out.size(), kMaxFrames);
  if (capacity == 0) return 0;
  skip = std::clamp(skip, 0, kMaxSkip);
  if (unw_backtrace_ != nullptr) {
    // unw_backtrace's first entry is this function.
    constexpr int kSelf = 1;
    std::array<void*, kMaxFrames + kMaxSkip + kSelf> frames;
    const int want = static_cast<int>(capacity) + skip + kSelf;
    const int got = unw_backtrace_(frames.data(), want);
    std::size_t n = 0;
    for (int i = skip + kSelf; i < got; ++i) {
      out[n++] = reinterpret_cast<std::uintptr_t>(frames[static_cast<std::size_t>(i)]);
    }
    return n;
  }
  // _Unwind_Backtrace reports this function first.
  constexpr int kSelf = 1;
  LibgccWalk walk{out.data(), capacity, 0, skip + kSelf};
  _Unwind_Backtrace(libgcc_step, &walk);
  return walk.count;
}

}  // namespace cudefrag::trace
