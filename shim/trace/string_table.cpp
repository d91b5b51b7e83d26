#include "shim/trace/string_table.hpp"

#include <span>

#include "shim/trace/format.hpp"

namespace cudefrag::trace {

std::uint32_t StringTable::intern(std::string_view text) {
  text = text.substr(0, kMaxBytes);
  std::lock_guard lock(mutex_);
  const auto [it, added] = ids_.try_emplace(std::string(text), 0);
  if (!added) return it->second;
  it->second = static_cast<std::uint32_t>(ids_.size());
  const format::StringRecord record{
      {format::RecordType::kString, static_cast<std::uint16_t>(sizeof(record) + text.size())},
      it->second};
  // Pushed under the lock: whoever finds the id afterwards finds it defined.
  definitions_.push(std::as_bytes(std::span(&record, 1)), std::as_bytes(std::span(text)));
  return it->second;
}

}  // namespace cudefrag::trace
