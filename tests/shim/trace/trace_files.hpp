// Test helpers: temporary trace paths and whole-trace reading through the analyzer's reader.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "analyzer/read/reader.hpp"

namespace cudefrag::trace::testing {

// A fresh directory, removed with its contents when the object goes.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "cudefrag-trace-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

struct ReadTrace {
  std::vector<analyzer::Record> records;
  analyzer::Ending ending = analyzer::Ending::kReading;
  std::string error;
  std::string warning;

  template <typename T>
  std::vector<T> all() const {
    std::vector<T> out;
    for (const auto& r : records) {
      if (const T* t = std::get_if<T>(&r)) out.push_back(*t);
    }
    return out;
  }
  std::vector<format::MemoryRecord> memory(format::RecordType type) const {
    std::vector<format::MemoryRecord> out;
    for (const auto& r : all<format::MemoryRecord>()) {
      if (r.header.type == type) out.push_back(r);
    }
    return out;
  }
  std::vector<format::MemoryRecord> allocs() const { return memory(format::RecordType::kAlloc); }
  std::vector<format::MemoryRecord> frees() const { return memory(format::RecordType::kFree); }

  const analyzer::StackDef* stack(std::uint32_t id) const {
    for (const auto& r : records) {
      const auto* s = std::get_if<analyzer::StackDef>(&r);
      if (s != nullptr && s->id == id) return s;
    }
    return nullptr;
  }
  std::string string(std::uint32_t id) const {
    for (const auto& r : records) {
      const auto* s = std::get_if<analyzer::StringDef>(&r);
      if (s != nullptr && s->id == id) return s->text;
    }
    return {};
  }
  // The demangled symbol the writer found for a native address ("" if none).
  std::string symbol(std::uint64_t address) const {
    for (const auto& r : records) {
      const auto* s = std::get_if<format::SymbolRecord>(&r);
      if (s != nullptr && s->address == address) return string(s->symbol);
    }
    return {};
  }
};

inline ReadTrace read_trace(const std::string& path) {
  ReadTrace out;
  analyzer::TraceReader reader(path);
  analyzer::Record record;
  while (reader.next(record)) out.records.push_back(std::move(record));
  out.ending = reader.ending();
  if (reader.error()) out.error = reader.error()->message;
  if (reader.warning()) out.warning = reader.warning()->message;
  return out;
}

// Messages the recorder sent, for tests that check them. Process-wide (the sink is a plain
// function pointer).
inline std::vector<std::string>& captured_messages() {
  static std::vector<std::string> messages;
  return messages;
}
inline void capture_message(std::string_view message) {
  captured_messages().emplace_back(message);
}

}  // namespace cudefrag::trace::testing
