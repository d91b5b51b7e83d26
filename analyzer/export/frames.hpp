// Call stacks as lists of frames {filename, line, name}, the form PyTorch's memory snapshots
// use, innermost first. A stack with Python frames reads like a mixed PyTorch stack: the
// native frames up to the interpreter (the hook, the CUDA runtime, the framework's operators),
// then the Python frames; the interpreter's own frames beyond are left out. Native frames have
// no source lines in a trace: filename is the module, line 0, name the symbol (or
// module+offset, or the address).
//
// Memory: one entry per distinct string, stack and symbol of the trace.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyzer/read/reader.hpp"

namespace cudefrag::analyzer {

struct Frame {
  std::string filename;
  std::int64_t line = 0;
  std::string name;
};

class FrameTable {
 public:
  void add_string(const StringDef& string) { strings_[string.id] = string.text; }
  void add_stack(const StackDef& stack) { stacks_[stack.id] = stack; }
  void add_symbol(const format::SymbolRecord& symbol) { symbols_[symbol.address] = symbol; }

  // The frames of stack `id` (empty for 0 or an unknown stack). `complete` tells whether every
  // native frame's symbol record has been read: later calls may otherwise give more names.
  std::vector<Frame> frames(std::uint32_t id, bool* complete) const;

 private:
  std::string string(std::uint32_t id) const;

  std::unordered_map<std::uint32_t, std::string> strings_;
  std::unordered_map<std::uint32_t, StackDef> stacks_;
  std::unordered_map<std::uint64_t, format::SymbolRecord> symbols_;
};

}  // namespace cudefrag::analyzer
