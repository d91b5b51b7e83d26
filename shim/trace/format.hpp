// The trace file's layout, shared by the writer (shim/trace/) and the reader (analyzer/read/).
// docs/trace-format.md is the prose version of this file; change both together.
//
// A file is a FileHeader followed by blocks. A block is a BlockHeader and a payload of records,
// possibly compressed, protected by CRC32C. The background writer writes each block with one
// write call, so a program killed at any moment leaves a file whose complete blocks are all
// valid; a reader stops at the first block that is truncated or fails its checks.
//
// Records are plain little-endian structs with a 4-byte RecordHeader (type, total size).
// Fixed-size records may grow new fields at their end in a later minor version: readers take
// the fields they know and ignore the rest, and read missing trailing fields as zero.
// Variable-size records carry their text or frames after the fixed part.
//
// Layout rules: every struct below has no implicit padding (checked by the static_asserts), so
// what the writer memcpy's is exactly what is on disk.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace cudefrag::trace::format {

static_assert(std::endian::native == std::endian::little,
              "the trace format is little-endian and written by memcpy");

// "CUDFTRC" and a newline, so `head -c 8` on a trace says what it is.
inline constexpr std::array<char, 8> kFileMagic = {'C', 'U', 'D', 'F', 'T', 'R', 'C', '\n'};

// Major: a reader refuses a file with a larger major version. Minor: new record types or new
// trailing fields; older readers skip what they do not know.
inline constexpr std::uint16_t kVersionMajor = 1;
inline constexpr std::uint16_t kVersionMinor = 0;

struct FileHeader {
  std::array<char, 8> magic;    // kFileMagic
  std::uint16_t version_major;  // kVersionMajor
  std::uint16_t version_minor;  // kVersionMinor
  std::uint32_t header_size;    // sizeof(FileHeader): blocks start there
  std::uint32_t flags;          // none defined; readers ignore unknown bits
  std::uint32_t crc;            // CRC32C of the preceding 20 bytes
};
static_assert(sizeof(FileHeader) == 24);

inline constexpr std::uint32_t kBlockMagic = 0x42464443;  // "CDFB" read as little-endian bytes

enum class Codec : std::uint8_t {
  kNone = 0,
  kZstd = 1,  // one zstd frame holding the whole payload
};

// Limits that let a reader reject garbage before allocating for it.
inline constexpr std::uint32_t kMaxBlockRawBytes = 4u << 20;
inline constexpr std::uint32_t kMaxBlockStoredBytes = kMaxBlockRawBytes + 65536;

struct BlockHeader {
  std::uint32_t magic;         // kBlockMagic
  Codec codec;                 //
  std::uint8_t reserved0;      // 0
  std::uint16_t reserved1;     // 0
  std::uint32_t stored_size;   // payload bytes that follow this header in the file
  std::uint32_t raw_size;      // payload bytes after decompression (== stored_size for kNone)
  std::uint32_t record_count;  // records in the payload
  std::uint32_t sequence;      // 0 for the first block, +1 for each block after it
  std::uint32_t payload_crc;   // CRC32C of the stored (possibly compressed) payload
  std::uint32_t header_crc;    // CRC32C of the preceding 28 bytes
};
static_assert(sizeof(BlockHeader) == 32);

enum class RecordType : std::uint16_t {
  kPadding = 0,  // never on disk; the writer's ring uses it to skip to the wrap point
  // Written once at the start of the first block, in this order: process, then any number of
  // config, entry point, device and runtime records. Device and runtime records may also come
  // later, when the shim learns about a GPU after the trace started.
  kProcess = 1,
  kConfig = 2,
  kEntryPoint = 3,
  kDevice = 4,
  kRuntime = 5,
  // Definitions, referred to by id. A definition precedes every record that refers to it.
  kString = 10,
  kStack = 11,
  kSymbol = 12,
  // Events.
  kAlloc = 20,
  kFree = 21,
  kArena = 22,
  kOom = 23,
  kCounters = 24,
  kMark = 25,
  kDropped = 26,
  kEnd = 27,  // the last record of a trace closed cleanly
};

struct RecordHeader {
  RecordType type;
  std::uint16_t size;  // bytes of the whole record, this header included
};
static_assert(sizeof(RecordHeader) == 4);

inline constexpr std::size_t kMaxRecordBytes = 65535;

// kProcess. Followed by the program path (program_size bytes) and the command line
// (the rest: arguments separated by NUL bytes, as /proc/self/cmdline has them).
struct ProcessRecord {
  RecordHeader header;
  std::uint32_t pid;
  std::uint64_t start_wall_ns;  // CLOCK_REALTIME at start, ns since the Unix epoch
  std::uint64_t start_mono_ns;  // CLOCK_MONOTONIC at the same moment; every event time uses it
  std::uint8_t stack_mode;      // StackMode of the recorder (0 none, 1 native, 2 python, 3 both)
  std::uint8_t reserved0;
  std::uint16_t program_size;  // bytes of program path following this struct
  std::uint32_t reserved1;
};
static_assert(sizeof(ProcessRecord) == 32);

// kConfig: "key=value" text follows the header (the shim's configuration, one record per key).
// kMark:   see MarkRecord.
// kString: see StringRecord.

// kEntryPoint: the name of entry point `id` (e.g. "cudaMallocAsync") follows.
struct EntryPointRecord {
  RecordHeader header;
  std::uint16_t id;
  std::uint16_t reserved;
};
static_assert(sizeof(EntryPointRecord) == 8);

// kDevice: a GPU as the caller described it; the name follows.
struct DeviceRecord {
  RecordHeader header;
  std::int32_t ordinal;
  std::uint64_t total_memory;
  std::array<std::uint8_t, 16> uuid;
};
static_assert(sizeof(DeviceRecord) == 32);

// kRuntime: CUDA versions as integers (e.g. 13000 for 13.0); 0 when unknown.
struct RuntimeRecord {
  RecordHeader header;
  std::int32_t driver_version;
  std::int32_t runtime_version;
  std::uint32_t reserved;
};
static_assert(sizeof(RuntimeRecord) == 16);

// kString: UTF-8 bytes follow (not NUL-terminated). Ids start at 1; 0 means "no string".
struct StringRecord {
  RecordHeader header;
  std::uint32_t id;
};
static_assert(sizeof(StringRecord) == 8);

// kStack: native_count return addresses (uint64, innermost first), then python_count
// PythonFrame entries (innermost first). Ids start at 1; stack 0 means "not captured".
struct StackRecord {
  RecordHeader header;
  std::uint32_t id;
  std::uint16_t native_count;
  std::uint16_t python_count;
  std::uint32_t reserved;
};
static_assert(sizeof(StackRecord) == 16);

struct PythonFrame {
  std::uint32_t file;      // string id of co_filename
  std::uint32_t function;  // string id of co_qualname (co_name before Python 3.11)
  std::int32_t line;       // -1 when unknown
  std::uint32_t reserved;
};
static_assert(sizeof(PythonFrame) == 16);

// kSymbol: what the writer learned about a native return address with dladdr, so that a trace
// reads without the binaries; module + module_offset also let the analyzer symbolize static
// functions offline. Written once per distinct address, after the stack that first uses it.
struct SymbolRecord {
  RecordHeader header;
  std::uint32_t module;         // string id of the module's path; 0 when dladdr knew nothing
  std::uint64_t address;        // as in the stack record (a return address)
  std::uint64_t module_offset;  // address - module load base
  std::uint32_t symbol;         // string id of the demangled symbol name; 0 when unknown
  std::uint32_t symbol_offset;  // address - symbol start
};
static_assert(sizeof(SymbolRecord) == 32);

// kAlloc and kFree. Times are CLOCK_MONOTONIC ns. A free's granted is the size when the caller
// knew it, else 0; its requested is 0.
struct MemoryRecord {
  RecordHeader header;
  std::uint16_t entry;   // entry point id (kEntryPoint)
  std::int16_t device;   // device ordinal, -1 when unknown
  std::uint32_t thread;  // OS thread id
  std::int32_t result;   // the CUDA result code the program got (0 success)
  std::uint64_t time_ns;
  std::uint64_t address;
  std::uint64_t requested;
  std::uint64_t granted;
  std::uint64_t stream;  // the stream handle's value; 0 for the legacy default stream
  std::uint32_t stack;   // stack id, 0 when not captured
  std::uint32_t flags;   // none defined yet
};
static_assert(sizeof(MemoryRecord) == 64);

enum class ArenaEventKind : std::uint8_t {
  kMap = 1,              // address/bytes: a virtual range mapped; count: physical pieces
  kUnmap = 2,            // address/bytes: a virtual range unmapped; count: pieces
  kStitch = 3,           // address/bytes: a new contiguous range made of count scattered pieces
  kCacheRelease = 4,     // bytes: cached memory released; bytes2: cache left
  kTrim = 5,             // bytes: released; bytes2: the target it trimmed down to
  kPhysicalCreate = 6,   // bytes: physical memory taken from the driver; count: handles
  kPhysicalRelease = 7,  // bytes: physical memory given back; count: handles
};

// kArena.
struct ArenaRecord {
  RecordHeader header;
  ArenaEventKind kind;
  std::uint8_t reserved;
  std::int16_t device;
  std::uint32_t thread;
  std::uint32_t count;
  std::uint64_t time_ns;
  std::uint64_t address;
  std::uint64_t bytes;
  std::uint64_t bytes2;
};
static_assert(sizeof(ArenaRecord) == 48);

// The allocator's state as the arena reports it; all in bytes. Part of kOom and kCounters.
struct ArenaStateFields {
  std::uint64_t live;            // bytes handed to the program and not freed
  std::uint64_t mapped;          // bytes mapped in virtual ranges
  std::uint64_t cached;          // mapped or held but free, kept for reuse
  std::uint64_t physical;        // physical memory held from the driver
  std::uint64_t limit;           // the arena's cap, 0 for none
  std::uint64_t largest_extent;  // largest request that could be served right now
  std::uint64_t driver_free;     // cuMemGetInfo free
  std::uint64_t driver_total;    // cuMemGetInfo total
};
static_assert(sizeof(ArenaStateFields) == 64);

// kOom: a request that failed, with the state that made it fail.
struct OomRecord {
  RecordHeader header;
  std::uint16_t entry;
  std::int16_t device;
  std::uint32_t thread;
  std::int32_t result;
  std::uint64_t time_ns;
  std::uint64_t requested;
  std::uint64_t stream;
  std::uint32_t stack;
  std::uint32_t reserved;
  ArenaStateFields state;
};
static_assert(sizeof(OomRecord) == 112);

// kCounters: a periodic sample of one device's allocator state.
struct CountersRecord {
  RecordHeader header;
  std::int16_t device;
  std::uint16_t reserved;
  std::uint64_t time_ns;
  std::uint64_t live_allocations;  // number of live allocations
  ArenaStateFields state;
};
static_assert(sizeof(CountersRecord) == 88);

// kMark: text follows.
struct MarkRecord {
  RecordHeader header;
  std::uint32_t thread;
  std::uint64_t time_ns;
};
static_assert(sizeof(MarkRecord) == 16);

// kDropped: `count` records of `thread` were lost because its buffer was full for too long.
struct DroppedRecord {
  RecordHeader header;
  std::uint32_t thread;
  std::uint64_t time_ns;
  std::uint64_t count;
};
static_assert(sizeof(DroppedRecord) == 24);

// kEnd: the program exited or the recorder was closed; nothing follows.
struct EndRecord {
  RecordHeader header;
  std::uint32_t reserved;
  std::uint64_t time_ns;
};
static_assert(sizeof(EndRecord) == 16);

// Padding inside a record would be written as whatever bytes the stack held.
static_assert(std::has_unique_object_representations_v<FileHeader> &&
              std::has_unique_object_representations_v<BlockHeader> &&
              std::has_unique_object_representations_v<ProcessRecord> &&
              std::has_unique_object_representations_v<EntryPointRecord> &&
              std::has_unique_object_representations_v<DeviceRecord> &&
              std::has_unique_object_representations_v<RuntimeRecord> &&
              std::has_unique_object_representations_v<StringRecord> &&
              std::has_unique_object_representations_v<StackRecord> &&
              std::has_unique_object_representations_v<PythonFrame> &&
              std::has_unique_object_representations_v<SymbolRecord> &&
              std::has_unique_object_representations_v<MemoryRecord> &&
              std::has_unique_object_representations_v<ArenaRecord> &&
              std::has_unique_object_representations_v<OomRecord> &&
              std::has_unique_object_representations_v<CountersRecord> &&
              std::has_unique_object_representations_v<MarkRecord> &&
              std::has_unique_object_representations_v<DroppedRecord> &&
              std::has_unique_object_representations_v<EndRecord>);

}  // namespace cudefrag::trace::format
