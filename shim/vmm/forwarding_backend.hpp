// A base for backend decorators: wrappers that change one or two calls of another backend and
// pass the rest through (the hooks' per-thread stream translation, test backends that record or
// inject calls). Without it every such wrapper restates all of backend.hpp's virtual functions.
#pragma once

#include <memory>
#include <span>
#include <utility>

#include "shim/vmm/backend.hpp"

namespace cudefrag::vmm {

// Forwards every virtual function of Backend, unchanged (same arguments, same result), to an inner
// backend; a derived class overrides only the calls it changes and reaches the inner backend
// through inner().
//
// Contract:
// - Lifetime: the wrapper owns the inner backend, which must not be null; it lives exactly as
//   long as the wrapper and is destroyed with it. (Every decorator so far is handed a freshly
//   made backend and is its only user; none borrows one.)
// - Thread-safety: the forwarding itself adds no state, so a call is exactly as thread-safe as
//   the inner backend's (backend.hpp: all methods are). A derived class that keeps state of its
//   own must guard it to keep that promise.
// - Nothing else of the inner backend shows through: code that inspects the concrete type (e.g.
//   host_backend_stats()) sees the wrapper, not the inner backend.
class ForwardingBackend : public Backend {
 public:
  explicit ForwardingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  DeviceOrdinal device() const override { return inner_->device(); }
  Bytes granularity() const override { return inner_->granularity(); }

  Status reserve(Bytes size, Bytes alignment, DevicePtr* out) override {
    return inner_->reserve(size, alignment, out);
  }
  Status unreserve(DevicePtr base, Bytes size) override { return inner_->unreserve(base, size); }

  Status create(Bytes size, Location where, PhysHandle* out) override {
    return inner_->create(size, where, out);
  }
  Status release(PhysHandle handle) override { return inner_->release(handle); }

  Status map(DevicePtr va, Bytes size, PhysHandle handle, Bytes offset) override {
    return inner_->map(va, size, handle, offset);
  }
  Status unmap(DevicePtr va, Bytes size) override { return inner_->unmap(va, size); }
  Status set_access(DevicePtr va, Bytes size, std::span<const DeviceOrdinal> devices) override {
    return inner_->set_access(va, size, devices);
  }

  Status mem_info(Bytes* free, Bytes* total) override { return inner_->mem_info(free, total); }

  Status event_create(EventRef* out) override { return inner_->event_create(out); }
  Status event_destroy(EventRef event) override { return inner_->event_destroy(event); }
  Status event_record(EventRef event, StreamRef stream) override {
    return inner_->event_record(event, stream);
  }
  Status event_query(EventRef event, bool* completed) override {
    return inner_->event_query(event, completed);
  }
  Status event_synchronize(EventRef event) override { return inner_->event_synchronize(event); }
  Status device_synchronize() override { return inner_->device_synchronize(); }

 protected:
  Backend& inner() { return *inner_; }
  const Backend& inner() const { return *inner_; }

 private:
  std::unique_ptr<Backend> inner_;
};

}  // namespace cudefrag::vmm
