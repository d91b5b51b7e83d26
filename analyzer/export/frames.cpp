#include "analyzer/export/frames.hpp"

#include <cinttypes>
#include <cstdio>
#include <string_view>

#include "analyzer/report/call_site.hpp"
#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {
namespace {

// The interpreter running the Python frames: the python binary or libpython, or one of its
// evaluation functions (in a binary whose name says nothing, such as an embedded interpreter).
bool is_interpreter(std::string_view module, std::string_view symbol) {
  const std::string_view base = base_name(module);
  if (base.starts_with("python") || base.starts_with("libpython")) return true;
  return symbol.starts_with("_PyEval_") || symbol.starts_with("PyEval_");
}

}  // namespace

std::string FrameTable::string(std::uint32_t id) const {
  const auto it = strings_.find(id);
  return it != strings_.end() ? it->second : std::string();
}

std::vector<Frame> FrameTable::frames(std::uint32_t id, bool* complete) const {
  *complete = true;
  std::vector<Frame> out;
  if (id == 0) return out;
  const auto found = stacks_.find(id);
  if (found == stacks_.end()) {
    *complete = false;
    return out;
  }
  const StackDef& stack = found->second;
  for (const std::uint64_t address : stack.native) {
    const auto it = symbols_.find(address);
    if (it == symbols_.end()) {
      *complete = false;
      out.push_back({"??", 0, hex_text(address)});
      continue;
    }
    const std::string module = string(it->second.module);
    const std::string symbol = string(it->second.symbol);
    if (!stack.python.empty() && is_interpreter(module, symbol)) break;
    Frame f;
    f.filename = module.empty() ? "??" : module;
    f.name = !symbol.empty() ? symbol
             : !module.empty()
                 ? std::string(base_name(module)) + "+" + hex_text(it->second.module_offset)
                 : hex_text(address);
    out.push_back(std::move(f));
  }
  for (const format::PythonFrame& p : stack.python) {
    Frame f;
    f.filename = string(p.file);
    if (f.filename.empty()) f.filename = "??";
    f.line = p.line;
    f.name = string(p.function);
    if (f.name.empty()) f.name = "??";
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace cudefrag::analyzer
