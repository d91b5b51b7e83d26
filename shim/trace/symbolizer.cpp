#include "shim/trace/symbolizer.hpp"

#include <cxxabi.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "shim/trace/format.hpp"

namespace cudefrag::trace {

void Symbolizer::add_stack(std::span<const std::byte> stack_record) {
  format::StackRecord stack;
  if (stack_record.size() < sizeof stack) return;
  std::memcpy(&stack, stack_record.data(), sizeof stack);
  const std::size_t count =
      std::min<std::size_t>(stack.native_count, (stack_record.size() - sizeof stack) / 8);
  for (std::size_t i = 0; i < count; ++i) {
    std::uint64_t address;
    std::memcpy(&address, stack_record.data() + sizeof stack + i * 8, sizeof address);
    if (seen_.insert(address).second) add_address(address);
  }
}

void Symbolizer::add_address(std::uint64_t address) {
  // A return address points after the call; the call itself is one byte earlier, and may be the
  // last instruction of its function.
  const std::uint64_t lookup = address - 1;
  Dl_info info{};
  format::SymbolRecord record{
      {format::RecordType::kSymbol, sizeof(format::SymbolRecord)}, 0, address, 0, 0, 0};
  if (dladdr(reinterpret_cast<void*>(lookup), &info) != 0) {
    if (info.dli_fname != nullptr) record.module = strings_.intern(info.dli_fname);
    record.module_offset = address - reinterpret_cast<std::uintptr_t>(info.dli_fbase);
    if (info.dli_sname != nullptr) {
      int status = 0;
      const std::unique_ptr<char, decltype(&std::free)> demangled(
          abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status), &std::free);
      record.symbol = strings_.intern(status == 0 && demangled ? demangled.get() : info.dli_sname);
      record.symbol_offset =
          static_cast<std::uint32_t>(address - reinterpret_cast<std::uintptr_t>(info.dli_saddr));
    }
  }
  definitions_.push(std::as_bytes(std::span(&record, 1)));
}

}  // namespace cudefrag::trace
