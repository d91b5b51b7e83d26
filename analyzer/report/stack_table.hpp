// The trace's definitions (entry point names, strings, stacks, symbols) and the call sites
// built from them. The report counts per stack while it replays (a dense index per stack,
// stack_index()), and groups stacks into call sites (call_site.hpp) when it prints, when every
// symbol has been read: a symbol record may follow the first event that uses its stack.
//
// Memory: one entry per distinct stack, string and symbol; nothing per event.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "analyzer/read/reader.hpp"

namespace cudefrag::analyzer {

struct SiteInfo {
  std::string label;  // the call site: what allocations are grouped by
  // The frames outside the allocator machinery, innermost first, the label's frame first:
  // the Python frames when there are any (then the first native frame outside), else the
  // native frames. Empty when no stack was recorded.
  std::vector<std::string> frames;
};

class StackTable {
 public:
  void add_entry_point(const EntryPointName& entry);
  void add_string(StringDef&& string);
  void add_stack(StackDef&& stack);
  void add_symbol(const format::SymbolRecord& symbol);

  // The dense index of an event's stack. Events without a stack (id 0) get one index per entry
  // point, so that a trace recorded without stacks still groups by entry point.
  std::uint32_t stack_index(std::uint32_t stack_id, std::uint16_t entry);
  std::size_t size() const { return dense_.size(); }

  // The call site of a dense index from the definitions read so far.
  SiteInfo site(std::uint32_t index) const;
  // The site filter (--site): matches() tells whether the site's label, one of its frames or
  // its entry point name contains `needle`. The answer is remembered per stack once every
  // symbol of the stack is known.
  void set_filter(std::string needle);
  bool matches(std::uint32_t index);

  std::string entry_name(std::uint16_t id) const;

 private:
  struct Dense {
    std::uint32_t stack_id = 0;
    std::uint16_t entry = 0;
    enum class Match : std::uint8_t { kUnknown, kYes, kNo } match = Match::kUnknown;
    bool match_final = false;
    std::uint64_t symbols_when_matched = 0;  // symbols_.size() when match was computed
  };
  struct Symbol {
    std::uint32_t module = 0;
    std::uint32_t symbol = 0;
    std::uint64_t module_offset = 0;
  };

  std::string string(std::uint32_t id) const;
  std::string native_frame(std::uint64_t address, bool* internal, bool* known) const;
  std::string python_frame(const format::PythonFrame& frame) const;
  bool complete(const StackDef& stack) const;

  std::string needle_;
  std::unordered_map<std::uint16_t, std::string> entries_;
  std::unordered_map<std::uint32_t, std::string> strings_;
  std::unordered_map<std::uint32_t, StackDef> stacks_;
  std::unordered_map<std::uint64_t, Symbol> symbols_;

  std::vector<Dense> dense_;
  std::vector<std::uint32_t> dense_of_id_;  // ids below kDirectIds; UINT32_MAX: none yet
  std::unordered_map<std::uint32_t, std::uint32_t> dense_of_large_id_;
  std::vector<std::uint32_t> dense_of_entry_;
  static constexpr std::uint32_t kDirectIds = 1u << 22;
};

}  // namespace cudefrag::analyzer
