#include "shim/trace/zstd.hpp"

#include <dlfcn.h>

namespace cudefrag::trace {
namespace {

// The few entry points used, declared here because zstd.h is not installed where we build.
// Their ABI has been stable since zstd 1.0.
struct ZstdApi {
  std::size_t (*compress_bound)(std::size_t) = nullptr;
  void* (*create_cctx)() = nullptr;
  std::size_t (*free_cctx)(void*) = nullptr;
  std::size_t (*compress_cctx)(void*, void*, std::size_t, const void*, std::size_t, int) = nullptr;
  std::size_t (*decompress)(void*, std::size_t, const void*, std::size_t) = nullptr;
  unsigned (*is_error)(std::size_t) = nullptr;
  const char* (*error_name)(std::size_t) = nullptr;

  bool complete() const {
    return compress_bound && create_cctx && free_cctx && compress_cctx && decompress && is_error &&
           error_name;
  }
};

template <typename F>
void resolve(void* lib, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
}

const ZstdApi* load() {
  void* lib = dlopen("libzstd.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return nullptr;
  static ZstdApi api;
  resolve(lib, "ZSTD_compressBound", api.compress_bound);
  resolve(lib, "ZSTD_createCCtx", api.create_cctx);
  resolve(lib, "ZSTD_freeCCtx", api.free_cctx);
  resolve(lib, "ZSTD_compressCCtx", api.compress_cctx);
  resolve(lib, "ZSTD_decompress", api.decompress);
  resolve(lib, "ZSTD_isError", api.is_error);
  resolve(lib, "ZSTD_getErrorName", api.error_name);
  // The library stays loaded for the life of the process: contexts may outlive any owner.
  return api.complete() ? &api : nullptr;
}

const ZstdApi* api() {
  static const ZstdApi* const loaded = load();
  return loaded;
}

}  // namespace

bool zstd_available() {
  return api() != nullptr;
}

ZstdCompressor::ZstdCompressor(int level) : level_(level) {
  if (const ZstdApi* z = api()) context_ = z->create_cctx();
}

ZstdCompressor::~ZstdCompressor() {
  if (context_ != nullptr) api()->free_cctx(context_);
}

bool ZstdCompressor::compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
  if (context_ == nullptr) return false;
  const ZstdApi* z = api();
  out.resize(z->compress_bound(in.size()));
  const std::size_t n =
      z->compress_cctx(context_, out.data(), out.size(), in.data(), in.size(), level_);
  if (z->is_error(n) != 0) return false;
  out.resize(n);
  return true;
}

std::string zstd_decompress(std::span<const std::byte> in, std::span<std::byte> out) {
  const ZstdApi* z = api();
  if (z == nullptr) return "libzstd.so.1 could not be loaded";
  const std::size_t n = z->decompress(out.data(), out.size(), in.data(), in.size());
  if (z->is_error(n) != 0) return std::string("zstd: ") + z->error_name(n);
  if (n != out.size()) {
    return "zstd frame holds " + std::to_string(n) + " bytes, block header says " +
           std::to_string(out.size());
  }
  return {};
}

}  // namespace cudefrag::trace
