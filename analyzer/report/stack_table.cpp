#include "analyzer/report/stack_table.hpp"

#include <cinttypes>
#include <cstdio>

#include "analyzer/report/call_site.hpp"
#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {
namespace {

constexpr std::uint32_t kNone = UINT32_MAX;

}  // namespace

void StackTable::add_entry_point(const EntryPointName& entry) {
  entries_[entry.id] = entry.name;
}

void StackTable::add_string(StringDef&& string) {
  strings_[string.id] = std::move(string.text);
}

void StackTable::add_stack(StackDef&& stack) {
  const std::uint32_t id = stack.id;
  stacks_[id] = std::move(stack);
}

void StackTable::add_symbol(const format::SymbolRecord& symbol) {
  symbols_[symbol.address] = Symbol{symbol.module, symbol.symbol, symbol.module_offset};
}

std::uint32_t StackTable::stack_index(std::uint32_t stack_id, std::uint16_t entry) {
  std::uint32_t* slot = nullptr;
  if (stack_id == 0) {
    if (entry >= dense_of_entry_.size()) dense_of_entry_.resize(entry + std::size_t{1}, kNone);
    slot = &dense_of_entry_[entry];
  } else if (stack_id < kDirectIds) {
    if (stack_id >= dense_of_id_.size()) {
      dense_of_id_.resize(std::max<std::size_t>(stack_id + std::size_t{1}, dense_of_id_.size() * 2),
                          kNone);
    }
    slot = &dense_of_id_[stack_id];
  } else {
    slot = &dense_of_large_id_.try_emplace(stack_id, kNone).first->second;
  }
  if (*slot == kNone) {
    *slot = static_cast<std::uint32_t>(dense_.size());
    dense_.push_back(Dense{stack_id, stack_id == 0 ? entry : std::uint16_t{0}});
  }
  return *slot;
}

std::string StackTable::string(std::uint32_t id) const {
  if (id == 0) return "?";
  const auto it = strings_.find(id);
  return it != strings_.end() ? it->second : "string#" + std::to_string(id);
}

std::string StackTable::entry_name(std::uint16_t id) const {
  const auto it = entries_.find(id);
  return it != entries_.end() ? it->second : "entry#" + std::to_string(id);
}

std::string StackTable::native_frame(std::uint64_t address, bool* internal, bool* known) const {
  const auto it = symbols_.find(address);
  *known = it != symbols_.end();
  if (!*known) {
    *internal = false;
    return hex_text(address);
  }
  const std::string module = it->second.module != 0 ? string(it->second.module) : "";
  const std::string symbol = it->second.symbol != 0 ? string(it->second.symbol) : "";
  *internal = is_allocator_internal(module, symbol);
  const std::string where(base_name(module));
  if (!symbol.empty()) return where.empty() ? symbol : symbol + " [" + where + "]";
  if (!where.empty()) return where + "+" + hex_text(it->second.module_offset);
  return hex_text(address);
}

std::string StackTable::python_frame(const format::PythonFrame& frame) const {
  return string(frame.function) + " (" + string(frame.file) + ":" + std::to_string(frame.line) +
         ")";
}

SiteInfo StackTable::site(std::uint32_t index) const {
  const Dense& d = dense_[index];
  SiteInfo info;
  if (d.stack_id == 0) {
    info.label = entry_name(d.entry) + " (no stack recorded)";
    return info;
  }
  const auto it = stacks_.find(d.stack_id);
  if (it == stacks_.end()) {
    info.label = "stack " + std::to_string(d.stack_id) + " (not defined in the trace)";
    return info;
  }
  const StackDef& stack = it->second;
  std::vector<std::string> native;
  std::string last_internal;
  for (const std::uint64_t address : stack.native) {
    bool internal = false;
    bool known = false;
    std::string text = native_frame(address, &internal, &known);
    if (internal && native.empty()) {
      last_internal = std::move(text);
    } else {
      native.push_back(std::move(text));
    }
  }
  if (!stack.python.empty()) {
    for (const format::PythonFrame& f : stack.python) info.frames.push_back(python_frame(f));
    if (!native.empty()) info.frames.push_back(native.front());
  } else if (!native.empty()) {
    info.frames = std::move(native);
  } else if (!last_internal.empty()) {
    info.frames.push_back(std::move(last_internal));  // every frame is allocator machinery
  }
  info.label = info.frames.empty() ? "(empty stack)" : info.frames.front();
  return info;
}

bool StackTable::complete(const StackDef& stack) const {
  for (const std::uint64_t address : stack.native) {
    if (!symbols_.contains(address)) return false;
  }
  return true;
}

void StackTable::set_filter(std::string needle) {
  needle_ = std::move(needle);
  for (Dense& d : dense_) d.match = Dense::Match::kUnknown;
}

bool StackTable::matches(std::uint32_t index) {
  const std::string_view needle = needle_;
  Dense& d = dense_[index];
  if (d.match != Dense::Match::kUnknown &&
      (d.match_final || d.symbols_when_matched == symbols_.size())) {
    return d.match == Dense::Match::kYes;
  }
  const SiteInfo info = site(index);
  bool found = info.label.find(needle) != std::string::npos;
  for (const std::string& frame : info.frames) {
    found = found || frame.find(needle) != std::string::npos;
  }
  if (d.stack_id == 0) found = found || entry_name(d.entry).find(needle) != std::string::npos;
  d.match = found ? Dense::Match::kYes : Dense::Match::kNo;
  // Final once every symbol of the stack is known; until then asked again after new symbols.
  const auto it = d.stack_id == 0 ? stacks_.end() : stacks_.find(d.stack_id);
  d.match_final = d.stack_id == 0 || (it != stacks_.end() && complete(it->second));
  d.symbols_when_matched = symbols_.size();
  return found;
}

}  // namespace cudefrag::analyzer
