#include "shim/vmm/backend.hpp"

namespace cudefrag::vmm {

std::string_view to_string(Status s) {
  switch (s) {
    case Status::kOk:
      return "ok";
    case Status::kOutOfMemory:
      return "out of memory";
    case Status::kInvalidValue:
      return "invalid value";
    case Status::kNotSupported:
      return "not supported";
    case Status::kBackendError:
      return "backend error";
  }
  return "unknown status";
}

}  // namespace cudefrag::vmm
