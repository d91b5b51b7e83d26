// The frame layouts and the frame reader, without an interpreter: thread states, frames, code
// objects and strings are built in plain memory at the offsets each layout gives, and the reader
// must walk them as CPython would, and stop at anything inconsistent. (python_capture_test runs
// the same reader inside real interpreters.)
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "shim/trace/python_frame_cache.hpp"
#include "shim/trace/python_frames_layout.hpp"
#include "shim/trace/python_frames_reader.hpp"

namespace cudefrag::trace::pyframes {
namespace {

TEST(PythonFrameLayouts, KnownForOnly311To313) {
  EXPECT_FALSE(layout_for({2, 7}));
  EXPECT_FALSE(layout_for({3, 10}));
  EXPECT_FALSE(layout_for({3, 14}));
  for (int minor : {11, 12, 13}) {
    const auto layout = layout_for({3, minor});
    ASSERT_TRUE(layout);
    EXPECT_EQ(layout->version, (Version{3, minor}));
  }
}

// Offsets as offsetof reports them on x86-64 with the 3.11.7, 3.12.1 and 3.13.0 headers
// (Py_BUILD_CORE for internal/pycore_frame.h): a change to a mirror shows here.
TEST(PythonFrameLayouts, MatchTheCPythonHeaders) {
  struct Expected {
    int minor;
    std::size_t tstate_frame, cframe_current_frame, tstate_id, frame_code, frame_previous,
        frame_instr, frame_owner, code_filename, code_qualname, code_linetable, code_firstlineno,
        code_firsttraceable, code_units, str_ascii_data, str_compact_data;
  };
  for (const Expected& e :
       {Expected{11, 56, 8, 240, 32, 48, 56, 69, 112, 128, 136, 72, 168, 184, 48, 72},
        Expected{12, 56, 0, 224, 0, 8, 56, 70, 112, 128, 136, 68, 176, 192, 40, 56},
        Expected{13, 72, 0, 224, 0, 8, 56, 70, 112, 128, 136, 68, 184, 200, 40, 56}}) {
    SCOPED_TRACE(e.minor);
    const Layout l = *layout_for({3, e.minor});
    EXPECT_EQ(l.object_type, 8u);
    EXPECT_EQ(l.tstate_frame, e.tstate_frame);
    EXPECT_EQ(l.through_cframe, e.minor < 13);
    if (l.through_cframe) {
      EXPECT_EQ(l.cframe_current_frame, e.cframe_current_frame);
    }
    EXPECT_EQ(l.tstate_id, e.tstate_id);
    EXPECT_EQ(l.frame_code, e.frame_code);
    EXPECT_EQ(l.frame_previous, e.frame_previous);
    EXPECT_EQ(l.frame_instr, e.frame_instr);
    EXPECT_EQ(l.frame_owner, e.frame_owner);
    EXPECT_EQ(l.code_units_count, 16u);
    EXPECT_EQ(l.code_filename, e.code_filename);
    EXPECT_EQ(l.code_qualname, e.code_qualname);
    EXPECT_EQ(l.code_linetable, e.code_linetable);
    EXPECT_EQ(l.code_firstlineno, e.code_firstlineno);
    EXPECT_EQ(l.code_firsttraceable, e.code_firsttraceable);
    EXPECT_EQ(l.code_units, e.code_units);
    EXPECT_EQ(l.str_length, 16u);
    EXPECT_EQ(l.str_state, 32u);
    EXPECT_EQ(l.str_ascii_data, e.str_ascii_data);
    EXPECT_EQ(l.str_compact_data, e.str_compact_data);
    EXPECT_EQ(l.str_has_ready_bit, e.minor == 11);
    EXPECT_EQ(l.owner_generator, 1);
    EXPECT_EQ(l.owner_cstack, e.minor == 11 ? kNoOwner : 3);
  }
}

TEST(PythonFrameLayouts, StrStateBits) {
  // Bit positions as the headers' bit-field gives them: kind 0x1c, compact 0x20, ascii 0x40.
  StrState s{};
  s.kind = 7;
  s.compact = 1;
  s.ascii = 1;
  std::uint32_t bits = 0;
  std::memcpy(&bits, &s, sizeof bits);
  EXPECT_EQ(bits, 0x7Cu);
}

TEST(PythonVersions, FromHexAndText) {
  EXPECT_EQ(version_from_hex(0x030C03F0), (Version{3, 12}));
  EXPECT_EQ(version_from_hex(0x030D00F0), (Version{3, 13}));
  EXPECT_EQ(version_from_text("3.10.13 (main, Dec  1 2023) [GCC 12.2.0]"), (Version{3, 10}));
  EXPECT_EQ(version_from_text("3.11.7\n"), (Version{3, 11}));
  EXPECT_FALSE(version_from_text(""));
  EXPECT_FALSE(version_from_text("python"));
  EXPECT_FALSE(version_from_text("3"));
}

// CPython's structures, laid out in plain memory.
class FakeInterpreter {
 public:
  static constexpr std::uint64_t kThreadId = 42;
  static constexpr std::ptrdiff_t kCodeUnits = 100;

  explicit FakeInterpreter(int minor) : layout_(*layout_for({3, minor})) {
    store(type_type_, layout_.object_type, static_cast<const void*>(type_type_));
    store(code_type_, layout_.object_type, static_cast<const void*>(type_type_));
    store(unicode_type_, layout_.object_type, static_cast<const void*>(type_type_));
    runtime_.type_type = type_type_;
    runtime_.code_type = code_type_;
    runtime_.unicode_type = unicode_type_;
    runtime_.addr2line = [](void*, int byte_offset) { return 1000 + byte_offset; };
    runtime_.thread_id = [](void*) { return kThreadId; };
  }

  const Layout& layout() const { return layout_; }
  const Runtime& runtime() const { return runtime_; }
  const void* unicode_type() const { return unicode_type_; }

  template <typename T>
  static void store(void* base, std::size_t offset, T value) {
    std::memcpy(static_cast<unsigned char*>(base) + offset, &value, sizeof value);
  }

  // A compact str of `kind` bytes per character holding `chars`.
  void* str(const std::vector<std::uint32_t>& chars, unsigned kind, bool ascii) {
    const std::size_t header = ascii ? layout_.str_ascii_data : layout_.str_compact_data;
    void* s = block(header + (chars.size() + 1) * kind);
    store(s, layout_.object_type, static_cast<const void*>(unicode_type_));
    store(s, layout_.str_length, static_cast<std::ptrdiff_t>(chars.size()));
    StrState state{};
    state.kind = kind & 7;
    state.compact = 1;
    state.ascii = ascii ? 1 : 0;
    state.ready_or_static = layout_.str_has_ready_bit ? 1 : 0;
    store(s, layout_.str_state, state);
    auto* data = static_cast<unsigned char*>(s) + header;
    for (std::size_t i = 0; i < chars.size(); ++i) {
      std::memcpy(data + i * kind, &chars[i], kind);  // little-endian
    }
    return s;
  }
  void* ascii(std::string_view text) {
    return str(std::vector<std::uint32_t>(text.begin(), text.end()), 1, true);
  }

  void* code(std::string_view file, std::string_view function, int firsttraceable = 0) {
    void* c = block(layout_.code_units + 2 * kCodeUnits);
    store(c, layout_.object_type, static_cast<const void*>(code_type_));
    store(c, layout_.code_units_count, kCodeUnits);
    store(c, layout_.code_filename, static_cast<const void*>(ascii(file)));
    store(c, layout_.code_qualname, static_cast<const void*>(ascii(function)));
    store(c, layout_.code_linetable, static_cast<const void*>(block(8)));
    store(c, layout_.code_firstlineno, 1);
    store(c, layout_.code_firsttraceable, firsttraceable);
    return c;
  }

  // A frame at code unit `index` of `code`, in front of `previous`.
  void* frame(const void* code, std::ptrdiff_t index, int owner, const void* previous) {
    void* f = block(128);
    store(f, layout_.frame_code, code);
    store(f, layout_.frame_previous, previous);
    const auto units = reinterpret_cast<std::uintptr_t>(code) + layout_.code_units;
    store(f, layout_.frame_instr, units + static_cast<std::uintptr_t>(2 * index));
    store(f, layout_.frame_owner, static_cast<signed char>(owner));
    return f;
  }

  void* thread_state(const void* innermost, std::uint64_t id = kThreadId) {
    void* t = block(512);
    store(t, layout_.tstate_id, id);
    if (layout_.through_cframe) {
      void* cframe = block(32);
      store(cframe, layout_.cframe_current_frame, innermost);
      store(t, layout_.tstate_frame, static_cast<const void*>(cframe));
    } else {
      store(t, layout_.tstate_frame, innermost);
    }
    return t;
  }

  Walk walk(const void* tstate, std::vector<RawFrame>& out) const {
    return walk_frames(layout_, runtime_, tstate, out);
  }

 private:
  void* block(std::size_t bytes) {
    blocks_.push_back(std::make_unique<std::max_align_t[]>(bytes / sizeof(std::max_align_t) + 1));
    return blocks_.back().get();
  }

  Layout layout_;
  Runtime runtime_;
  alignas(16) unsigned char type_type_[64]{};
  alignas(16) unsigned char code_type_[64]{};
  alignas(16) unsigned char unicode_type_[64]{};
  std::vector<std::unique_ptr<std::max_align_t[]>> blocks_;
};

constexpr int kThread = 0;
constexpr int kGenerator = 1;
constexpr int kFrameObject = 2;
constexpr int kCStack = 3;

class PythonFrameReader : public ::testing::TestWithParam<int> {
 protected:
  FakeInterpreter py{GetParam()};
};

TEST_P(PythonFrameReader, WalksFramesAsTheInterpreterShowsThem) {
  const void* outer_code = py.code("outer.py", "<module>");
  const void* outer = py.frame(outer_code, 3, kFrameObject, nullptr);
  // Not started yet: before its code's first traceable unit.
  const void* incomplete = py.frame(py.code("f.py", "f", 2), 1, kThread, outer);
  // A generator's frame is shown wherever it stands.
  const void* generator_code = py.code("g.py", "gen", 2);
  const void* generator = py.frame(generator_code, 0, kGenerator, incomplete);
  // 3.12+: the interpreter's shim frame on entry from C; in 3.13 it holds None, not code.
  const void* shim = generator;
  if (py.layout().owner_cstack != kNoOwner)
    shim = py.frame(py.ascii("None"), 0, kCStack, generator);
  const void* inner_code = py.code("inner.py", "Inner.method");
  const void* inner = py.frame(inner_code, 5, kThread, shim);

  std::vector<RawFrame> out(8);
  const Walk walk = py.walk(py.thread_state(inner), out);
  EXPECT_TRUE(walk.consistent);
  ASSERT_EQ(walk.count, 3u);
  EXPECT_EQ(out[0].code, inner_code);
  EXPECT_EQ(out[0].unit, 5);
  EXPECT_EQ(line_of(py.runtime(), out[0]), 1010);  // addr2line takes bytes: 2 per code unit
  EXPECT_EQ(out[1].code, generator_code);
  EXPECT_EQ(out[1].unit, 0);
  EXPECT_EQ(out[2].code, outer_code);
  EXPECT_EQ(out[2].unit, 3);

  std::string file;
  std::string function;
  code_names(py.layout(), py.runtime(), inner_code, file, function);
  EXPECT_EQ(file, "inner.py");
  EXPECT_EQ(function, "Inner.method");
}

TEST_P(PythonFrameReader, NoFramesWhenTheThreadRunsNoPython) {
  std::vector<RawFrame> out(8);
  const Walk walk = py.walk(py.thread_state(nullptr), out);
  EXPECT_TRUE(walk.consistent);
  EXPECT_EQ(walk.count, 0u);
}

TEST_P(PythonFrameReader, StopsWhenTheOutputIsFull) {
  const void* code = py.code("a.py", "a");
  const void* f =
      py.frame(code, 0, kThread, py.frame(code, 1, kThread, py.frame(code, 2, kThread, nullptr)));
  std::vector<RawFrame> out(2);
  const Walk walk = py.walk(py.thread_state(f), out);
  EXPECT_TRUE(walk.consistent);
  EXPECT_EQ(walk.count, 2u);
}

TEST_P(PythonFrameReader, RefusesAThreadStateWhoseIdDiffers) {
  const void* f = py.frame(py.code("a.py", "a"), 0, kThread, nullptr);
  std::vector<RawFrame> out(8);
  const Walk walk = py.walk(py.thread_state(f, FakeInterpreter::kThreadId + 1), out);
  EXPECT_FALSE(walk.consistent);
  EXPECT_EQ(walk.count, 0u);
}

TEST_P(PythonFrameReader, StopsAtAnObjectThatIsNotCode) {
  const void* bad = py.frame(py.ascii("not code"), 0, kThread, nullptr);
  const void* good = py.frame(py.code("a.py", "a"), 0, kThread, bad);
  std::vector<RawFrame> out(8);
  const Walk walk = py.walk(py.thread_state(good), out);
  EXPECT_FALSE(walk.consistent);
  EXPECT_EQ(walk.count, 1u) << "frames before the inconsistency are kept";
}

TEST_P(PythonFrameReader, StopsAtAnInstructionOutsideTheCode) {
  const void* code = py.code("a.py", "a");
  for (std::ptrdiff_t index :
       {FakeInterpreter::kCodeUnits, std::ptrdiff_t{-2}, std::ptrdiff_t{-1000}}) {
    SCOPED_TRACE(index);
    std::vector<RawFrame> out(8);
    const Walk walk = py.walk(py.thread_state(py.frame(code, index, kThread, nullptr)), out);
    EXPECT_FALSE(walk.consistent);
    EXPECT_EQ(walk.count, 0u);
  }
  // An odd byte offset is no code unit.
  void* f = py.frame(code, 0, kThread, nullptr);
  const auto units = reinterpret_cast<std::uintptr_t>(code) + py.layout().code_units;
  FakeInterpreter::store(f, py.layout().frame_instr, units + 1);
  std::vector<RawFrame> out(8);
  EXPECT_FALSE(py.walk(py.thread_state(f), out).consistent);
}

TEST_P(PythonFrameReader, StopsAtAnUnknownOwner) {
  const void* code = py.code("a.py", "a");
  std::vector<int> unknown = {-1, 4, 100};
  if (py.layout().owner_cstack == kNoOwner) unknown.push_back(kCStack);
  for (int owner : unknown) {
    SCOPED_TRACE(owner);
    std::vector<RawFrame> out(8);
    const Walk walk = py.walk(py.thread_state(py.frame(code, 0, owner, nullptr)), out);
    EXPECT_FALSE(walk.consistent);
    EXPECT_EQ(walk.count, 0u);
  }
}

TEST_P(PythonFrameReader, BoundsACycle) {
  // Frames that are all skipped, in a loop: the walk must end.
  void* f = py.frame(py.code("a.py", "a", 5), 0, kThread, nullptr);
  FakeInterpreter::store(f, py.layout().frame_previous, static_cast<const void*>(f));
  std::vector<RawFrame> out(8);
  const Walk walk = py.walk(py.thread_state(f), out);
  EXPECT_FALSE(walk.consistent);
  EXPECT_EQ(walk.count, 0u);
}

TEST_P(PythonFrameReader, CodeKeyFollowsTheNames) {
  void* code = py.code("a.py", "a");
  const void* f = py.frame(code, 0, kThread, nullptr);
  std::vector<RawFrame> out(1);
  ASSERT_EQ(py.walk(py.thread_state(f), out).count, 1u);
  const std::uint64_t key = code_key(out[0]);
  ASSERT_EQ(py.walk(py.thread_state(f), out).count, 1u);
  EXPECT_EQ(code_key(out[0]), key) << "same code, same names: same key";
  // Another code object at the same address, with other names.
  FakeInterpreter::store(code, py.layout().code_qualname, static_cast<const void*>(py.ascii("b")));
  ASSERT_EQ(py.walk(py.thread_state(f), out).count, 1u);
  EXPECT_NE(code_key(out[0]), key);
}

// The per-thread frame cache answers only for a walked frame equal in every identity field to
// the one it was filled from: a code object replaced at the same address by one with other names,
// another line table, first line or co_version, or another instruction, is a miss, never the
// old frame.
TEST_P(PythonFrameReader, FrameCacheMissesACodeObjectReplacedAtItsAddress) {
  void* code = py.code("a.py", "a");
  const void* f = py.frame(code, 3, kThread, nullptr);
  const void* tstate = py.thread_state(f);
  std::vector<RawFrame> out(1);
  const auto walked = [&] {
    EXPECT_EQ(py.walk(tstate, out).count, 1u);
    return out[0];
  };
  auto cache = std::make_unique<PythonFrameCache>();
  const format::PythonFrame recorded{11, 12, 13, 0};
  const RawFrame original = walked();
  EXPECT_EQ(cache->find(original), nullptr);
  cache->insert(original, recorded);
  const format::PythonFrame* hit = cache->find(walked());
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->file, 11u);
  EXPECT_EQ(hit->function, 12u);
  EXPECT_EQ(hit->line, 13);

  const auto expect_miss_after = [&](std::size_t offset, auto value, const char* what) {
    SCOPED_TRACE(what);
    decltype(value) old;
    std::memcpy(&old, static_cast<unsigned char*>(code) + offset, sizeof old);
    FakeInterpreter::store(code, offset, value);
    EXPECT_EQ(cache->find(walked()), nullptr);
    FakeInterpreter::store(code, offset, old);
    EXPECT_NE(cache->find(walked()), nullptr) << "the same code object again";
  };
  const Layout& l = py.layout();
  expect_miss_after(l.code_filename, static_cast<const void*>(py.ascii("b.py")), "file name");
  expect_miss_after(l.code_qualname, static_cast<const void*>(py.ascii("b")), "qualified name");
  expect_miss_after(l.code_linetable, static_cast<const void*>(py.ascii("")), "line table");
  expect_miss_after(l.code_firstlineno, 7, "first line");
  if (l.code_version != 0) {
    expect_miss_after(l.code_version, std::uint32_t{99}, "co_version");
  }

  // Another instruction of the same code, and another code object elsewhere.
  out[0] = original;
  out[0].unit = 4;
  EXPECT_EQ(cache->find(out[0]), nullptr);
  const void* other = py.frame(py.code("a.py", "a"), 3, kThread, nullptr);
  ASSERT_EQ(py.walk(py.thread_state(other), out).count, 1u);
  EXPECT_EQ(cache->find(out[0]), nullptr);

  cache->clear();
  EXPECT_EQ(cache->find(original), nullptr);
}

// More frames than slots: each one found is the one inserted for it, whatever it displaced.
TEST_P(PythonFrameReader, FrameCacheKeepsOnlyWhatItWasGiven) {
  const void* code = py.code("a.py", "a");
  std::vector<RawFrame> out(1);
  ASSERT_EQ(py.walk(py.thread_state(py.frame(code, 0, kThread, nullptr)), out).count, 1u);
  auto cache = std::make_unique<PythonFrameCache>();
  const std::int32_t units = static_cast<std::int32_t>(4 * PythonFrameCache::kEntries);
  RawFrame raw = out[0];
  for (std::int32_t unit = 0; unit < units; ++unit) {
    raw.unit = unit;
    cache->insert(raw, {1, 2, 1000 + unit, 0});
  }
  std::size_t hits = 0;
  for (std::int32_t unit = 0; unit < units; ++unit) {
    raw.unit = unit;
    if (const format::PythonFrame* hit = cache->find(raw)) {
      EXPECT_EQ(hit->line, 1000 + unit);
      ++hits;
    }
  }
  EXPECT_GT(hits, 0u);
  EXPECT_LE(hits, PythonFrameCache::kEntries);
}

TEST_P(PythonFrameReader, ReadsStrInEveryCompactKind) {
  const auto text = [&](void* s) {
    std::string out;
    EXPECT_TRUE(read_str(py.layout(), py.runtime(), s, out, 100));
    return out;
  };
  EXPECT_EQ(text(py.ascii("/src/model.py")), "/src/model.py");
  EXPECT_EQ(text(py.str({'c', 0xE9}, 1, false)), "c\xC3\xA9");  // Latin-1
  EXPECT_EQ(text(py.str({0x20AC, 'x'}, 2, false)),
            "\xE2\x82\xAC"
            "x");                                                    // UCS-2
  EXPECT_EQ(text(py.str({0x1F600}, 4, false)), "\xF0\x9F\x98\x80");  // UCS-4
  EXPECT_EQ(text(py.str({0xDC80}, 2, false)), "\xEF\xBF\xBD");       // lone surrogate
  std::string cut;
  EXPECT_TRUE(read_str(py.layout(), py.runtime(), py.ascii("abcdef"), cut, 3));
  EXPECT_EQ(cut, "abc");
}

TEST_P(PythonFrameReader, RefusesWhatIsNotACompactStr) {
  std::string out;
  EXPECT_FALSE(read_str(py.layout(), py.runtime(), nullptr, out, 100));
  EXPECT_FALSE(read_str(py.layout(), py.runtime(), py.code("a.py", "a"), out, 100));
  void* legacy = py.ascii("legacy");
  StrState state{};
  state.kind = 1;
  state.ascii = 1;  // compact 0: characters elsewhere
  FakeInterpreter::store(legacy, py.layout().str_state, state);
  EXPECT_FALSE(read_str(py.layout(), py.runtime(), legacy, out, 100));
  if (py.layout().str_has_ready_bit) {  // 3.11: a str not "ready" keeps no characters here
    void* unready = py.ascii("unready");
    state.compact = 1;
    state.ready_or_static = 0;
    FakeInterpreter::store(unready, py.layout().str_state, state);
    EXPECT_FALSE(read_str(py.layout(), py.runtime(), unready, out, 100));
  }
  void* odd_kind = py.str({'a'}, 3, false);
  EXPECT_FALSE(read_str(py.layout(), py.runtime(), odd_kind, out, 100));
  EXPECT_EQ(out, "");
}

TEST_P(PythonFrameReader, ChecksTheObjectHeader) {
  EXPECT_TRUE(object_header_matches(py.layout(), py.runtime()));
  Runtime other = py.runtime();
  other.type_type = py.unicode_type();  // as if the type sat elsewhere in the header
  EXPECT_FALSE(object_header_matches(py.layout(), other));
}

std::string version_name(const ::testing::TestParamInfo<int>& param) {
  return "Py3_" + std::to_string(param.param);
}

INSTANTIATE_TEST_SUITE_P(Versions, PythonFrameReader, ::testing::Values(11, 12, 13), version_name);

}  // namespace
}  // namespace cudefrag::trace::pyframes
