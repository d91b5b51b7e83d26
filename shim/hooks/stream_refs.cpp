#include "shim/hooks/stream_refs.hpp"

#include <atomic>
#include <cstdint>

#include "shim/vmm/forwarding_backend.hpp"

namespace cudefrag::hooks {
namespace {

constexpr std::uintptr_t kLegacy = 0x1;     // cudaStreamLegacy, CU_STREAM_LEGACY
constexpr std::uintptr_t kPerThread = 0x2;  // cudaStreamPerThread, CU_STREAM_PER_THREAD

thread_local std::uintptr_t t_token [[gnu::tls_model("initial-exec")]] = 0;

std::uintptr_t handle_value(const void* stream) noexcept {
  return reinterpret_cast<std::uintptr_t>(stream);
}

bool names_per_thread(std::uintptr_t s, bool per_thread_entry) noexcept {
  return s == kPerThread || (s == 0 && per_thread_entry);
}

class PerThreadStreamBackend final : public vmm::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;

  vmm::Status event_record(vmm::EventRef event, vmm::StreamRef stream) override {
    if (!is_per_thread_token(stream)) return inner().event_record(event, stream);
    if (stream != this_thread_stream_token()) return vmm::Status::kInvalidValue;
    return inner().event_record(event, vmm::StreamRef{reinterpret_cast<void*>(kPerThread)});
  }
};

}  // namespace

vmm::StreamRef this_thread_stream_token() noexcept {
  if (t_token == 0) {
    static std::atomic<std::uintptr_t> next{1};
    t_token = (next.fetch_add(1, std::memory_order_relaxed) << 1) | 1;
  }
  return vmm::StreamRef{reinterpret_cast<void*>(t_token)};
}

bool is_per_thread_token(vmm::StreamRef stream) noexcept {
  const std::uintptr_t v = handle_value(stream.value);
  return (v & 1) != 0 && v != kLegacy;
}

vmm::StreamRef arena_stream(const void* stream, bool per_thread_entry) noexcept {
  const std::uintptr_t s = handle_value(stream);
  if (names_per_thread(s, per_thread_entry)) return this_thread_stream_token();
  if (s == kLegacy) return vmm::StreamRef{nullptr};
  return vmm::StreamRef{const_cast<void*>(stream)};
}

void* driver_stream(const void* stream, bool per_thread_entry) noexcept {
  const std::uintptr_t s = handle_value(stream);
  if (names_per_thread(s, per_thread_entry)) return reinterpret_cast<void*>(kPerThread);
  return const_cast<void*>(stream);
}

std::unique_ptr<vmm::Backend> with_per_thread_streams(std::unique_ptr<vmm::Backend> inner) {
  if (inner == nullptr) return nullptr;
  return std::make_unique<PerThreadStreamBackend>(std::move(inner));
}

}  // namespace cudefrag::hooks
