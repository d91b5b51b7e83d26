// A backend (shim/vmm/backend.hpp) that only keeps accounts, so that the real arena can replay a
// trace of any size on any machine: addresses are numbers handed out in order, handles are
// sizes, nothing is ever touched. It keeps the contract's rules that shape what the arena does
// (whole-handle mapping, `capacity` physical bytes, memory freed when its last mapping goes) and
// answers every event and synchronize at once: the replay has no device work to wait for.
#pragma once

#include <memory>

#include "shim/vmm/backend.hpp"

namespace cudefrag::analyzer::replay {

std::unique_ptr<vmm::Backend> make_accounting_backend(Bytes capacity);

}  // namespace cudefrag::analyzer::replay
