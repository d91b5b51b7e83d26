#include "shim/vmm/cuda_backend.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <vector>

#include "shim/config/log.hpp"
#include "shim/vmm/real_cuda.hpp"

namespace cudefrag::vmm {
namespace {

constexpr bool is_power_of_two(std::uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

Status to_status(CUresult r) {
  switch (r) {
    case CUDA_SUCCESS:
      return Status::kOk;
    case CUDA_ERROR_OUT_OF_MEMORY:
      return Status::kOutOfMemory;
    // What the driver answers when the caller broke a rule of the contract: a bad size, address
    // or device, a range already mapped or not mapped, a foreign event or stream.
    case CUDA_ERROR_INVALID_VALUE:
    case CUDA_ERROR_INVALID_HANDLE:
    case CUDA_ERROR_INVALID_DEVICE:
    case CUDA_ERROR_ALREADY_MAPPED:
    case CUDA_ERROR_NOT_MAPPED:
      return Status::kInvalidValue;
    case CUDA_ERROR_NOT_SUPPORTED:
      return Status::kNotSupported;
    default:
      return Status::kBackendError;
  }
}

const char* error_string(const real::DriverTable& d, CUresult r) {
  const char* text = nullptr;
  if (d.cuGetErrorString == nullptr || d.cuGetErrorString(r, &text) != CUDA_SUCCESS ||
      text == nullptr) {
    return "unknown error";
  }
  return text;
}

// Out of memory is the arena's business (it reclaims, then reports); everything else the driver
// refuses is worth a line, since it means a bug or a broken device.
Status checked(const real::DriverTable& d, const char* call, CUresult r) {
  if (r != CUDA_SUCCESS && r != CUDA_ERROR_OUT_OF_MEMORY) {
    log::error("%s failed: %s (CUresult %d)", call, error_string(d, r), static_cast<int>(r));
  }
  return to_status(r);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(const real::DriverTable& d, DeviceOrdinal ordinal, CUdevice device, CUcontext context,
              Bytes granularity, Bytes host_granularity)
      : d_(d),
        ordinal_(ordinal),
        device_(device),
        context_(context),
        granularity_(granularity),
        host_granularity_(host_granularity) {}

  ~CudaBackend() override {
    if (d_.cuDevicePrimaryCtxRelease_v2 != nullptr) d_.cuDevicePrimaryCtxRelease_v2(device_);
  }

  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  DeviceOrdinal device() const override { return ordinal_; }
  Bytes granularity() const override { return granularity_; }

  Status reserve(Bytes size, Bytes alignment, DevicePtr* out) override {
    if (out == nullptr || !valid_extent(size)) return Status::kInvalidValue;
    if (alignment.value != 0 && !is_power_of_two(alignment.value)) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    // 0 asks the driver for its default alignment, the granularity.
    const std::size_t align = alignment > granularity_ ? alignment.value : 0;
    CUdeviceptr ptr = 0;
    const Status s =
        checked(d_, "cuMemAddressReserve", d_.cuMemAddressReserve(&ptr, size.value, align, 0, 0));
    if (s != Status::kOk) return s;
    *out = DevicePtr{static_cast<std::uintptr_t>(ptr)};
    return Status::kOk;
  }

  Status unreserve(DevicePtr base, Bytes size) override {
    if (!valid_extent(size) || !aligned(base)) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuMemAddressFree", d_.cuMemAddressFree(ptr(base), size.value));
  }

  Status create(Bytes size, Location where, PhysHandle* out) override {
    if (out == nullptr || !valid_extent(size)) return Status::kInvalidValue;
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
    switch (where) {
      case Location::kDevice:
        prop.location = CUmemLocation{CU_MEM_LOCATION_TYPE_DEVICE, device_};
        break;
      case Location::kHost:
        if (host_granularity_.value == 0) return Status::kNotSupported;
        if (!size.is_aligned(host_granularity_)) return Status::kInvalidValue;
        prop.location = CUmemLocation{CU_MEM_LOCATION_TYPE_HOST, 0};
        break;
      default:
        return Status::kInvalidValue;
    }
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    CUmemGenericAllocationHandle handle = 0;
    const Status s = checked(d_, "cuMemCreate", d_.cuMemCreate(&handle, size.value, &prop, 0));
    if (s != Status::kOk) return s;
    *out = PhysHandle{handle};
    return Status::kOk;
  }

  Status release(PhysHandle handle) override {
    if (handle.value == 0) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuMemRelease", d_.cuMemRelease(handle.value));
  }

  Status map(DevicePtr va, Bytes size, PhysHandle handle, Bytes offset) override {
    if (!valid_extent(size) || !aligned(va) || !offset.is_aligned(granularity_) ||
        handle.value == 0) {
      return Status::kInvalidValue;
    }
    // The driver refuses any other offset (backend.hpp); answer without a logged error.
    if (offset.value != 0) return Status::kNotSupported;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuMemMap", d_.cuMemMap(ptr(va), size.value, 0, handle.value, 0));
  }

  Status unmap(DevicePtr va, Bytes size) override {
    if (!valid_extent(size) || !aligned(va)) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuMemUnmap", d_.cuMemUnmap(ptr(va), size.value));
  }

  Status set_access(DevicePtr va, Bytes size, std::span<const DeviceOrdinal> devices) override {
    if (!valid_extent(size) || !aligned(va) || devices.empty()) return Status::kInvalidValue;
    // One descriptor per device; a machine has few, so the common case needs no allocation.
    constexpr std::size_t kInline = 8;
    std::array<CUmemAccessDesc, kInline> inline_descs{};
    std::vector<CUmemAccessDesc> heap_descs;
    std::span<CUmemAccessDesc> descs(inline_descs.data(), devices.size());
    if (devices.size() > kInline) {
      heap_descs.resize(devices.size());
      descs = heap_descs;
    }
    for (std::size_t i = 0; i < devices.size(); ++i) {
      CUdevice dev = 0;
      if (devices[i].value < 0 || d_.cuDeviceGet(&dev, devices[i].value) != CUDA_SUCCESS) {
        return Status::kInvalidValue;
      }
      descs[i].location = CUmemLocation{CU_MEM_LOCATION_TYPE_DEVICE, dev};
      descs[i].flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    }
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuMemSetAccess",
                   d_.cuMemSetAccess(ptr(va), size.value, descs.data(), descs.size()));
  }

  Status mem_info(Bytes* free, Bytes* total) override {
    if (free == nullptr || total == nullptr) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    std::size_t f = 0;
    std::size_t t = 0;
    const Status s = checked(d_, "cuMemGetInfo", d_.cuMemGetInfo_v2(&f, &t));
    if (s != Status::kOk) return s;
    *free = Bytes{f};
    *total = Bytes{t};
    return Status::kOk;
  }

  Status event_create(EventRef* out) override {
    if (out == nullptr) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    CUevent event = nullptr;
    // Timing makes recording dearer, and the arena only asks "done yet?".
    const Status s =
        checked(d_, "cuEventCreate", d_.cuEventCreate(&event, CU_EVENT_DISABLE_TIMING));
    if (s != Status::kOk) return s;
    *out = EventRef{event};
    return Status::kOk;
  }

  Status event_destroy(EventRef event) override {
    if (event.value == nullptr) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuEventDestroy", d_.cuEventDestroy_v2(as_event(event)));
  }

  Status event_record(EventRef event, StreamRef stream) override {
    if (event.value == nullptr) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuEventRecord",
                   d_.cuEventRecord(as_event(event), static_cast<CUstream>(stream.value)));
  }

  Status event_query(EventRef event, bool* completed) override {
    if (event.value == nullptr || completed == nullptr) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    const CUresult r = d_.cuEventQuery(as_event(event));
    if (r == CUDA_ERROR_NOT_READY) {
      *completed = false;
      return Status::kOk;
    }
    const Status s = checked(d_, "cuEventQuery", r);
    if (s == Status::kOk) *completed = true;
    return s;
  }

  Status event_synchronize(EventRef event) override {
    if (event.value == nullptr) return Status::kInvalidValue;
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuEventSynchronize", d_.cuEventSynchronize(as_event(event)));
  }

  Status device_synchronize() override {
    ContextScope scope(*this);
    if (!scope.ok()) return scope.status();
    return checked(d_, "cuCtxSynchronize", d_.cuCtxSynchronize());
  }

 private:
  // Puts a context of the backend's device on the calling thread for one call (see
  // cuda_backend.hpp): the current one when it is of this device (one driver call when it is the
  // primary context), else the retained primary context.
  class ContextScope {
   public:
    explicit ContextScope(const CudaBackend& b) : b_(b) {
      CUcontext current = nullptr;
      status_ = checked(b.d_, "cuCtxGetCurrent", b.d_.cuCtxGetCurrent(&current));
      if (status_ != Status::kOk || current == b.context_) return;
      if (current != nullptr) {
        CUdevice current_device = 0;
        if (b.d_.cuCtxGetDevice(&current_device) == CUDA_SUCCESS && current_device == b.device_) {
          return;
        }
        restore_ = current;
      }
      status_ = checked(b.d_, "cuCtxSetCurrent", b.d_.cuCtxSetCurrent(b.context_));
      if (status_ != Status::kOk) restore_ = nullptr;
    }
    ~ContextScope() {
      if (restore_ != nullptr) b_.d_.cuCtxSetCurrent(restore_);
    }
    ContextScope(const ContextScope&) = delete;
    ContextScope& operator=(const ContextScope&) = delete;

    bool ok() const { return status_ == Status::kOk; }
    Status status() const { return status_; }

   private:
    const CudaBackend& b_;
    Status status_ = Status::kOk;
    CUcontext restore_ = nullptr;
  };

  bool valid_extent(Bytes size) const { return size.value != 0 && size.is_aligned(granularity_); }
  bool aligned(DevicePtr va) const { return Bytes{va.value}.is_aligned(granularity_); }
  static CUdeviceptr ptr(DevicePtr va) { return static_cast<CUdeviceptr>(va.value); }
  static CUevent as_event(EventRef e) { return static_cast<CUevent>(e.value); }

  const real::DriverTable& d_;
  const DeviceOrdinal ordinal_;
  const CUdevice device_;
  const CUcontext context_;  // the device's primary context, retained by make_cuda_backend()
  const Bytes granularity_;
  const Bytes host_granularity_;  // 0 when host-located memory is not supported
};

// Every entry the backend calls; a driver lacking one (too old) gets no backend.
bool has_entry_points(const real::DriverTable& d) {
  return d.cuInit != nullptr && d.cuDeviceGet != nullptr && d.cuDeviceGetAttribute != nullptr &&
         d.cuDevicePrimaryCtxRetain != nullptr && d.cuCtxGetCurrent != nullptr &&
         d.cuCtxSetCurrent != nullptr && d.cuCtxGetDevice != nullptr &&
         d.cuCtxSynchronize != nullptr && d.cuMemGetInfo_v2 != nullptr &&
         d.cuMemAddressReserve != nullptr && d.cuMemAddressFree != nullptr &&
         d.cuMemCreate != nullptr && d.cuMemRelease != nullptr && d.cuMemMap != nullptr &&
         d.cuMemUnmap != nullptr && d.cuMemSetAccess != nullptr &&
         d.cuMemGetAllocationGranularity != nullptr && d.cuEventCreate != nullptr &&
         d.cuEventDestroy_v2 != nullptr && d.cuEventRecord != nullptr &&
         d.cuEventQuery != nullptr && d.cuEventSynchronize != nullptr;
}

Bytes minimum_granularity(const real::DriverTable& d, CUmemLocation location) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
  prop.location = location;
  std::size_t granularity = 0;
  if (d.cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
          CUDA_SUCCESS ||
      !is_power_of_two(granularity)) {
    return Bytes{0};
  }
  return Bytes{granularity};
}

std::unique_ptr<Backend> fail(Status* why, Status status) {
  if (why != nullptr) *why = status;
  return nullptr;
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(DeviceOrdinal device, Status* why) {
  const real::DriverTable& d = real::driver();
  if (!has_entry_points(d)) return fail(why, Status::kNotSupported);
  // cuInit is cheap once the driver is up, and the program may not have called it yet.
  if (d.cuInit(0) != CUDA_SUCCESS) return fail(why, Status::kNotSupported);
  if (device.value < 0) return fail(why, Status::kInvalidValue);
  CUdevice dev = 0;
  if (d.cuDeviceGet(&dev, device.value) != CUDA_SUCCESS) return fail(why, Status::kInvalidValue);
  int vmm = 0;
  if (d.cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev) !=
          CUDA_SUCCESS ||
      vmm == 0) {
    return fail(why, Status::kNotSupported);
  }
  CUcontext context = nullptr;
  if (checked(d, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain(&context, dev)) !=
      Status::kOk) {
    return fail(why, Status::kBackendError);
  }
  CUcontext current = nullptr;
  if (d.cuCtxGetCurrent(&current) == CUDA_SUCCESS && current == nullptr) {
    d.cuCtxSetCurrent(context);
  }
  const Bytes granularity = minimum_granularity(d, CUmemLocation{CU_MEM_LOCATION_TYPE_DEVICE, dev});
  if (granularity.value == 0) {
    if (d.cuDevicePrimaryCtxRelease_v2 != nullptr) d.cuDevicePrimaryCtxRelease_v2(dev);
    return fail(why, Status::kBackendError);
  }
  // Host-located memory is optional: a driver that cannot say its granularity cannot create it.
  const Bytes host_granularity =
      minimum_granularity(d, CUmemLocation{CU_MEM_LOCATION_TYPE_HOST, 0});
  return std::make_unique<CudaBackend>(d, device, dev, context, granularity, host_granularity);
}

}  // namespace cudefrag::vmm
