// Symbols for native return addresses, found on the writer thread with dladdr and demangled
// there, once per distinct address: dladdr takes the loader's lock and demangling allocates,
// so neither belongs on the allocating thread. Each address gets a SymbolRecord with its module,
// offset in the module and symbol, so a trace reads without the binaries; the module and offset
// also let the analyzer symbolize static functions offline (dladdr sees only exported ones).
#pragma once

#include <cstdint>
#include <span>
#include <unordered_set>

#include "shim/trace/definitions.hpp"
#include "shim/trace/string_table.hpp"

namespace cudefrag::trace {

class Symbolizer {
 public:
  Symbolizer(StringTable& strings, DefinitionQueue& definitions)
      : strings_(strings), definitions_(definitions) {}

  // Queues a SymbolRecord (and its strings) for every native address of this stack record not
  // seen before. Writer thread only.
  void add_stack(std::span<const std::byte> stack_record);

 private:
  void add_address(std::uint64_t address);

  StringTable& strings_;
  DefinitionQueue& definitions_;
  std::unordered_set<std::uint64_t> seen_;
};

}  // namespace cudefrag::trace
