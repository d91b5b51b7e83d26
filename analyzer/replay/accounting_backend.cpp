#include "analyzer/replay/accounting_backend.hpp"

#include <cstdint>
#include <map>
#include <unordered_map>

namespace cudefrag::analyzer::replay {

namespace {

constexpr Bytes kGranularity = MiB(2);

class AccountingBackend final : public vmm::Backend {
 public:
  explicit AccountingBackend(Bytes capacity) : capacity_(capacity) {}

  DeviceOrdinal device() const override { return DeviceOrdinal{0}; }
  Bytes granularity() const override { return kGranularity; }

  vmm::Status reserve(Bytes size, Bytes alignment, DevicePtr* out) override {
    if (out == nullptr || !valid(size)) return vmm::Status::kInvalidValue;
    const Bytes align = alignment > kGranularity ? alignment : kGranularity;
    next_va_ = Bytes{next_va_}.align_up(align).value;
    *out = DevicePtr{next_va_};
    next_va_ += size.value;
    return vmm::Status::kOk;
  }
  vmm::Status unreserve(DevicePtr, Bytes) override { return vmm::Status::kOk; }

  vmm::Status create(Bytes size, vmm::Location where, vmm::PhysHandle* out) override {
    if (out == nullptr || !valid(size)) return vmm::Status::kInvalidValue;
    const bool device = where == vmm::Location::kDevice;
    if (device && size > capacity_ - used_) return vmm::Status::kOutOfMemory;
    if (device) used_ += size;
    handles_.emplace(++next_handle_, Handle{size, device, 0, false});
    *out = vmm::PhysHandle{next_handle_};
    return vmm::Status::kOk;
  }

  vmm::Status release(vmm::PhysHandle handle) override {
    const auto it = handles_.find(handle.value);
    if (it == handles_.end() || it->second.released) return vmm::Status::kInvalidValue;
    it->second.released = true;
    if (it->second.mappings == 0) drop(it);
    return vmm::Status::kOk;
  }

  vmm::Status map(DevicePtr va, Bytes size, vmm::PhysHandle handle, Bytes offset) override {
    const auto it = handles_.find(handle.value);
    if (it == handles_.end() || it->second.released || !valid(size)) {
      return vmm::Status::kInvalidValue;
    }
    if (offset.value != 0 || size != it->second.size) return vmm::Status::kNotSupported;
    if (!mappings_.emplace(va.value, Mapping{size, handle.value}).second) {
      return vmm::Status::kInvalidValue;
    }
    ++it->second.mappings;
    return vmm::Status::kOk;
  }

  vmm::Status unmap(DevicePtr va, Bytes size) override {
    const std::uint64_t end = va.value + size.value;
    auto it = mappings_.find(va.value);
    if (it == mappings_.end()) return vmm::Status::kInvalidValue;
    while (it != mappings_.end() && it->first < end) {
      // A mapping always names a live handle (map() checks it, release() keeps mapped ones).
      const auto h = handles_.find(it->second.handle);
      if (h != handles_.end() && --h->second.mappings == 0 && h->second.released) drop(h);
      it = mappings_.erase(it);
    }
    return vmm::Status::kOk;
  }

  vmm::Status set_access(DevicePtr, Bytes, std::span<const DeviceOrdinal>) override {
    return vmm::Status::kOk;
  }

  vmm::Status mem_info(Bytes* free, Bytes* total) override {
    if (free != nullptr) *free = capacity_ - used_;
    if (total != nullptr) *total = capacity_;
    return vmm::Status::kOk;
  }

  vmm::Status event_create(vmm::EventRef* out) override {
    if (out == nullptr) return vmm::Status::kInvalidValue;
    // Never dereferenced: a distinct non-null value per event.
    *out = vmm::EventRef{reinterpret_cast<void*>(++next_event_)};
    return vmm::Status::kOk;
  }
  vmm::Status event_destroy(vmm::EventRef) override { return vmm::Status::kOk; }
  vmm::Status event_record(vmm::EventRef, vmm::StreamRef) override { return vmm::Status::kOk; }
  vmm::Status event_query(vmm::EventRef, bool* completed) override {
    if (completed == nullptr) return vmm::Status::kInvalidValue;
    *completed = true;
    return vmm::Status::kOk;
  }
  vmm::Status event_synchronize(vmm::EventRef) override { return vmm::Status::kOk; }
  vmm::Status device_synchronize() override { return vmm::Status::kOk; }

 private:
  struct Handle {
    Bytes size;
    bool device = true;
    std::uint64_t mappings = 0;
    bool released = false;
  };
  struct Mapping {
    Bytes size;
    std::uint64_t handle = 0;
  };

  static bool valid(Bytes size) { return size.value != 0 && size.is_aligned(kGranularity); }
  void drop(std::unordered_map<std::uint64_t, Handle>::iterator it) {
    if (it->second.device) used_ -= it->second.size;
    handles_.erase(it);
  }

  Bytes capacity_;
  Bytes used_;
  std::uint64_t next_va_ = std::uint64_t{1} << 44;
  std::uint64_t next_handle_ = 0;
  std::uintptr_t next_event_ = 0;
  std::unordered_map<std::uint64_t, Handle> handles_;
  std::map<std::uint64_t, Mapping> mappings_;
};

}  // namespace

std::unique_ptr<vmm::Backend> make_accounting_backend(Bytes capacity) {
  return std::make_unique<AccountingBackend>(capacity);
}

}  // namespace cudefrag::analyzer::replay
