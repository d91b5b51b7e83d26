#include "shim/trace/stack_table.hpp"

#include <cstring>
#include <utility>

namespace cudefrag::trace {
namespace {

std::uint64_t mix(std::uint64_t h, std::uint64_t w) {
  h ^= w;
  h *= 0x9E3779B97F4A7C15u;
  return h ^ (h >> 31);
}

std::uint64_t hash_frames(std::span<const std::uint64_t> native,
                          std::span<const format::PythonFrame> python) {
  // Native addresses go round four independent lanes: one chain of multiplies is bound by their
  // latency (about 6 cycles a frame), four by their throughput.
  std::uint64_t a = mix(0x243F6A8885A308D3u, native.size() << 16 | python.size());
  std::uint64_t b = 0x13198A2E03707344u;
  std::uint64_t c = 0xA4093822299F31D0u;
  std::uint64_t d = 0x082EFA98EC4E6C89u;
  std::size_t i = 0;
  for (; i + 4 <= native.size(); i += 4) {
    a = mix(a, native[i]);
    b = mix(b, native[i + 1]);
    c = mix(c, native[i + 2]);
    d = mix(d, native[i + 3]);
  }
  for (; i < native.size(); ++i) a = mix(a, native[i]);
  // Python frames too, two words a frame over the same four lanes: hashed in one chain, a
  // PyTorch-like 24 frames cost about 80 ns (perf on bench/trace/python_bench.py).
  const auto words = [](const format::PythonFrame& f) {
    return std::pair{std::uint64_t{f.file} << 32 | f.function,
                     std::uint64_t{static_cast<std::uint32_t>(f.line)}};
  };
  std::size_t j = 0;
  for (; j + 2 <= python.size(); j += 2) {
    const auto [w0, w1] = words(python[j]);
    const auto [w2, w3] = words(python[j + 1]);
    a = mix(a, w0);
    b = mix(b, w1);
    c = mix(c, w2);
    d = mix(d, w3);
  }
  if (j < python.size()) {
    const auto [w0, w1] = words(python[j]);
    a = mix(a, w0);
    b = mix(b, w1);
  }
  std::uint64_t h = mix(mix(mix(a, b), c), d);
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDu;
  return nonzero_key(h ^ (h >> 33));
}

// memcmp, not std::ranges::equal: over std::byte that compiles to a byte-at-a-time loop, which
// cost as much as the whole unwind of a 40-frame stack (bench/trace). Equal sizes assumed.
bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

StackTable::StackTable(DefinitionQueue& definitions, std::size_t capacity)
    : definitions_(definitions), map_(capacity) {}

StackId StackTable::find(std::uint64_t hash, std::span<const std::uint64_t> native,
                         std::span<const format::PythonFrame> python) const {
  const auto native_bytes = std::as_bytes(native);
  const auto python_bytes = std::as_bytes(python);
  const std::uint64_t found = map_.find(hash, [&](std::uint64_t value) {
    const auto* s = reinterpret_cast<const Stack*>(value);
    const std::span<const std::byte> frames = s->frames;
    return s->native_count == native.size() && s->python_count == python.size() &&
           same_bytes(frames.first(native_bytes.size()), native_bytes) &&
           same_bytes(frames.subspan(native_bytes.size()), python_bytes);
  });
  return found == 0 ? StackId{} : StackId{reinterpret_cast<const Stack*>(found)->id};
}

StackId StackTable::intern(std::span<const std::uint64_t> native,
                           std::span<const format::PythonFrame> python) {
  if (native.empty() && python.empty()) return {};
  const std::uint64_t hash = hash_frames(native, python);
  if (const StackId id = find(hash, native, python); id.value != 0) return id;

  std::lock_guard lock(mutex_);
  if (const StackId id = find(hash, native, python); id.value != 0) return id;
  if (map_.full()) {
    not_stored_.fetch_add(1, std::memory_order_relaxed);
    return {};
  }
  Stack& s = stacks_.emplace_back();
  s.id = static_cast<std::uint32_t>(stacks_.size());
  s.native_count = static_cast<std::uint16_t>(native.size());
  s.python_count = static_cast<std::uint16_t>(python.size());
  const auto native_bytes = std::as_bytes(native);
  const auto python_bytes = std::as_bytes(python);
  s.frames.assign(native_bytes.begin(), native_bytes.end());
  s.frames.insert(s.frames.end(), python_bytes.begin(), python_bytes.end());

  const format::StackRecord record{
      {format::RecordType::kStack, static_cast<std::uint16_t>(sizeof(record) + s.frames.size())},
      s.id,
      s.native_count,
      s.python_count,
      0};
  // Queued before the id is published to other threads: see definitions.hpp.
  definitions_.push(std::as_bytes(std::span(&record, 1)), s.frames);
  map_.insert(hash, reinterpret_cast<std::uint64_t>(&s));
  defined_.fetch_add(1, std::memory_order_relaxed);
  return StackId{s.id};
}

}  // namespace cudefrag::trace
