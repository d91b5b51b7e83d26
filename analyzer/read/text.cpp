#include "analyzer/read/text.hpp"

#include <cinttypes>
#include <cstdio>

namespace cudefrag::analyzer {
namespace {

std::string hex(std::uint64_t v) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, v);
  return text;
}

std::string state(const format::ArenaStateFields& s) {
  return " live=" + std::to_string(s.live) + " mapped=" + std::to_string(s.mapped) +
         " cached=" + std::to_string(s.cached) + " physical=" + std::to_string(s.physical) +
         " limit=" + std::to_string(s.limit) + " largest=" + std::to_string(s.largest_extent) +
         " driver_free=" + std::to_string(s.driver_free) +
         " driver_total=" + std::to_string(s.driver_total);
}

std::string_view arena_kind(format::ArenaEventKind kind) {
  switch (kind) {
    case format::ArenaEventKind::kMap:
      return "map";
    case format::ArenaEventKind::kUnmap:
      return "unmap";
    case format::ArenaEventKind::kStitch:
      return "stitch";
    case format::ArenaEventKind::kCacheRelease:
      return "cache_release";
    case format::ArenaEventKind::kTrim:
      return "trim";
    case format::ArenaEventKind::kPhysicalCreate:
      return "physical_create";
    case format::ArenaEventKind::kPhysicalRelease:
      return "physical_release";
  }
  return "unknown";
}

std::string_view stack_mode(std::uint8_t mode) {
  static constexpr std::string_view kNames[] = {"none", "native", "python", "both"};
  return mode < 4 ? kNames[mode] : "?";
}

}  // namespace

std::string quoted(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned>(c));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + '"';
}

std::string RecordPrinter::time(std::uint64_t ns) const {
  const auto delta = static_cast<std::int64_t>(ns - start_ns_);
  char text[32];
  std::snprintf(text, sizeof text, "%.9f", static_cast<double>(delta) / 1e9);
  return text;
}

std::string RecordPrinter::entry(std::uint16_t id) const {
  const auto it = entries_.find(id);
  return it != entries_.end() ? it->second : "entry#" + std::to_string(id);
}

std::string RecordPrinter::string(std::uint32_t id) const {
  if (id == 0) return "?";
  const auto it = strings_.find(id);
  return it != strings_.end() ? it->second : "string#" + std::to_string(id);
}

std::string RecordPrinter::line(const Record& record) {
  struct Visitor {
    RecordPrinter& p;

    std::string operator()(const ProcessInfo& r) {
      p.start_ns_ = r.start_mono_ns;
      std::string args;
      for (const auto& a : r.command_line) args += (args.empty() ? "" : " ") + a;
      return "process pid=" + std::to_string(r.pid) + " program=" + quoted(r.program) +
             " args=" + quoted(args) + " start_wall_ns=" + std::to_string(r.start_wall_ns) +
             " stacks=" + std::string(stack_mode(r.stack_mode));
    }
    std::string operator()(const ConfigEntry& r) {
      return "config " + r.key + "=" + quoted(r.value);
    }
    std::string operator()(const EntryPointName& r) {
      p.entries_[r.id] = r.name;
      return "entry_point " + std::to_string(r.id) + " " + r.name;
    }
    std::string operator()(const DeviceInfo& r) {
      std::string uuid;
      for (const auto b : r.uuid) {
        char h[4];
        std::snprintf(h, sizeof h, "%02x", static_cast<unsigned>(b));
        uuid += h;
      }
      return "device " + std::to_string(r.ordinal) + " name=" + quoted(r.name) +
             " total=" + std::to_string(r.total_memory) + " uuid=" + uuid;
    }
    std::string operator()(const RuntimeInfo& r) {
      return "runtime driver=" + std::to_string(r.driver_version) +
             " runtime=" + std::to_string(r.runtime_version);
    }
    std::string operator()(const StringDef& r) {
      p.strings_[r.id] = r.text;
      return "string " + std::to_string(r.id) + " " + quoted(r.text);
    }
    std::string operator()(const StackDef& r) {
      std::string out = "stack " + std::to_string(r.id);
      for (const auto a : r.native) out += " " + hex(a);
      for (const auto& f : r.python) {
        out += " " + p.string(f.function) + "@" + p.string(f.file) + ":" + std::to_string(f.line);
      }
      return out;
    }
    std::string operator()(const format::SymbolRecord& r) {
      return "symbol " + hex(r.address) + " " + p.string(r.module) + "+" + hex(r.module_offset) +
             " " + p.string(r.symbol) + "+" + hex(r.symbol_offset);
    }
    std::string operator()(const format::MemoryRecord& r) {
      const bool alloc = r.header.type == format::RecordType::kAlloc;
      std::string out = std::string(alloc ? "alloc" : "free") + " t=" + p.time(r.time_ns) +
                        " tid=" + std::to_string(r.thread) + " " + p.entry(r.entry) +
                        " dev=" + std::to_string(r.device) + " stream=" + hex(r.stream) +
                        " addr=" + hex(r.address);
      if (alloc) out += " requested=" + std::to_string(r.requested);
      out += " size=" + std::to_string(r.granted) + " result=" + std::to_string(r.result) +
             " stack=" + std::to_string(r.stack);
      return out;
    }
    std::string operator()(const format::ArenaRecord& r) {
      return "arena " + std::string(arena_kind(r.kind)) + " t=" + p.time(r.time_ns) +
             " tid=" + std::to_string(r.thread) + " dev=" + std::to_string(r.device) +
             " addr=" + hex(r.address) + " bytes=" + std::to_string(r.bytes) +
             " bytes2=" + std::to_string(r.bytes2) + " count=" + std::to_string(r.count);
    }
    std::string operator()(const format::OomRecord& r) {
      return "oom t=" + p.time(r.time_ns) + " tid=" + std::to_string(r.thread) + " " +
             p.entry(r.entry) + " dev=" + std::to_string(r.device) + " stream=" + hex(r.stream) +
             " requested=" + std::to_string(r.requested) + " result=" + std::to_string(r.result) +
             " stack=" + std::to_string(r.stack) + state(r.state);
    }
    std::string operator()(const format::CountersRecord& r) {
      return "counters t=" + p.time(r.time_ns) + " dev=" + std::to_string(r.device) +
             " allocations=" + std::to_string(r.live_allocations) + state(r.state);
    }
    std::string operator()(const Mark& r) {
      return "mark t=" + p.time(r.time_ns) + " tid=" + std::to_string(r.thread) + " " +
             quoted(r.text);
    }
    std::string operator()(const format::DroppedRecord& r) {
      return "dropped t=" + p.time(r.time_ns) + " tid=" + std::to_string(r.thread) +
             " count=" + std::to_string(r.count);
    }
    std::string operator()(const format::EndRecord& r) { return "end t=" + p.time(r.time_ns); }
    std::string operator()(const UnknownRecord& r) {
      return "unknown type=" + std::to_string(r.type) + " size=" + std::to_string(r.size);
    }
  };
  return std::visit(Visitor{*this}, record);
}

}  // namespace cudefrag::analyzer
