#include "tests/analyzer/report/golden_traces.hpp"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "shim/trace/crc32c.hpp"
#include "tests/analyzer/report/trace_builder.hpp"

namespace cudefrag::analyzer::testing {
namespace {

using format::ArenaEventKind;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
constexpr std::uint64_t kStart = 5'000'000'000'000;         // CLOCK_MONOTONIC at start
constexpr std::uint64_t kWall = 1'795'000'000'000'000'000;  // 2026-11-18 UTC

constexpr std::uint64_t ms(std::uint64_t m) {
  return kStart + m * 1'000'000;
}

// A small arena, enough to give the OOM and counter records a consistent state.
struct Arena {
  std::uint64_t live = 0;
  std::uint64_t count = 0;
  std::uint64_t physical = 0;
  std::uint64_t limit = 8 * kGiB;
  std::uint64_t total = 16 * kGiB;
  std::uint64_t outside = 1536 * kMiB;  // another process on the same GPU
  std::uint64_t largest = 0;

  format::ArenaStateFields state() const {
    const std::uint64_t cached = physical > live ? physical - live : 0;
    return {live,
            physical,
            cached,
            physical,
            limit,
            largest != 0 ? largest : cached,
            total - physical - outside,
            total};
  }
};

std::vector<char> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<char> bytes(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

void write_all(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Block offsets of a trace written by TraceBuilder (walking the block headers).
std::vector<std::size_t> block_offsets(const std::vector<char>& bytes) {
  std::vector<std::size_t> offsets;
  std::size_t at = sizeof(format::FileHeader);
  while (at + sizeof(format::BlockHeader) <= bytes.size()) {
    format::BlockHeader h;
    std::memcpy(&h, bytes.data() + at, sizeof h);
    offsets.push_back(at);
    at += sizeof h + h.stored_size;
  }
  return offsets;
}

}  // namespace

void write_oom_trace(const std::string& path) {
  constexpr std::uint32_t kMain = 4242;
  constexpr std::uint32_t kLoader = 4250;
  enum : std::uint16_t { kCudaMalloc, kCudaFree, kMallocAsync, kFreeAsync };
  TraceBuilder t(path);
  t.process(4242, kWall, kStart, 3, "/usr/bin/python3.11",
            {"python3", "/app/train.py", "--epochs", "3"});
  t.config("mode", "arena");
  t.config("limit", "8GiB");
  t.entry_point(kCudaMalloc, "cudaMalloc");
  t.entry_point(kCudaFree, "cudaFree");
  t.entry_point(kMallocAsync, "cudaMallocAsync");
  t.entry_point(kFreeAsync, "cudaFreeAsync");
  t.device(0, "Test GPU 16GB", 16 * kGiB);
  t.runtime(13000, 13000);

  const std::string torch = "/venv/lib/python3.11/site-packages/torch/lib/";
  t.symbol(0x7f1000001234, {"/opt/cudefrag/lib/libcudefrag.so", "cudaMalloc", 0x1234});
  t.symbol(0x7f2000005678, {"/usr/local/cuda/lib64/libcudart.so.13", "cudaMalloc", 0x5678});
  t.symbol(0x7f300000abcd,
           {torch + "libc10_cuda.so",
            "c10::cuda::CUDACachingAllocator::Native::DeviceCachingAllocator::malloc(signed "
            "char, unsigned long, CUstream_st*)",
            0xabcd});
  t.symbol(0x7f4000001000,
           {torch + "libtorch_cuda.so",
            "at::native::empty_cuda(c10::ArrayRef<long>, std::optional<c10::ScalarType>)", 0x1000});
  t.symbol(0x7f4000002000,
           {torch + "libtorch_cpu.so",
            "at::_ops::empty_memory_format::call(c10::ArrayRef<c10::SymInt>)", 0x2000});
  t.symbol(0x7f5000003000,
           {torch + "libtorch_python.so",
            "torch::autograd::THPVariable_matmul(_object*, _object*, _object*)", 0x3000});
  t.symbol(0x7f5000004000,
           {torch + "libtorch_python.so",
            "torch::autograd::THPVariable_empty(_object*, _object*, _object*)", 0x4000});
  t.symbol(0x7f7000000010, {"/usr/bin/python3.11", "_PyEval_EvalFrameDefault", 0x10});
  t.symbol(0x7f6000000100, {"/app/lib/libloader.so", "Loader::upload(Batch const&)", 0x100});
  t.symbol(0x7f6000000200, {"/app/lib/libloader.so", "Loader::run()", 0x200});
  t.symbol(0x7f8000000999, {"/app/lib/libfoo.so", "", 0x999});
  // 0x7f9000000001 has no symbol record: the report shows the address.

  const std::vector<std::uint64_t> torch_frames = {0x7f1000001234, 0x7f2000005678, 0x7f300000abcd,
                                                   0x7f4000001000, 0x7f4000002000};
  auto with = [](std::vector<std::uint64_t> v, std::initializer_list<std::uint64_t> more) {
    v.insert(v.end(), more);
    return v;
  };
  const PyFrame main_frame{"/app/train.py", "main", 84};
  const PyFrame module_frame{"/app/train.py", "<module>", 95};
  const PyFrame step_frame{"/app/train.py", "train_step", 55};
  const std::uint32_t s_weights =
      t.stack(with(torch_frames, {0x7f5000004000, 0x7f7000000010}),
              {{"/app/train.py", "load_weights", 12}, {"/app/train.py", "main", 80}, module_frame});
  const std::uint32_t s_act =
      t.stack(with(torch_frames, {0x7f5000003000, 0x7f7000000010}),
              {{"/app/model.py", "forward", 41}, step_frame, main_frame, module_frame});
  const std::uint32_t s_tmp = t.stack(with(torch_frames, {0x7f5000003000, 0x7f7000000010}),
                                      {{"/app/model.py", "attention", 63},
                                       {"/app/model.py", "forward", 44},
                                       step_frame,
                                       main_frame,
                                       module_frame});
  const std::uint32_t s_internal = t.stack({0x7f1000001234, 0x7f2000005678}, {});

  Arena arena;
  const std::uint64_t base = 0x7000'0000'0000;
  auto physical = [&](std::uint64_t at, std::uint64_t bytes, std::uint32_t pieces) {
    t.arena(kMain, at, ArenaEventKind::kPhysicalCreate, 0, 0, bytes, 0, pieces);
    t.arena(kMain, at, ArenaEventKind::kMap, 0, base + arena.physical, bytes, 0, pieces);
    arena.physical += bytes;
  };
  auto alloc = [&](std::uint32_t thread, std::uint64_t at, std::uint16_t entry,
                   std::uint64_t address, std::uint64_t bytes, std::uint32_t stack,
                   std::uint64_t stream = 0) {
    t.alloc(thread, at, entry, 0, address, bytes - 4096, bytes, stack, 0, stream);
    arena.live += bytes;
    ++arena.count;
  };
  auto free = [&](std::uint32_t thread, std::uint64_t at, std::uint16_t entry,
                  std::uint64_t address, std::uint64_t bytes, std::uint64_t stream = 0) {
    t.free(thread, at, entry, 0, address, bytes, stream);
    arena.live -= bytes;
    --arena.count;
  };
  auto counters = [&](std::uint64_t at) { t.counters(at, 0, arena.count, arena.state()); };

  physical(ms(5), 4 * kGiB, 2);
  for (std::uint64_t i = 0; i < 4; ++i) {
    alloc(kMain, ms(10 + 10 * i), kCudaMalloc, base + i * 512 * kMiB, 512 * kMiB, s_weights);
  }
  alloc(kMain, ms(50), kMallocAsync, base + 0x8000'0000, 2 * kMiB, s_internal, 0x55);
  t.free(kMain, ms(60), kCudaFree, 0, 0x6fff'0000'0000, 0);  // allocated before tracing
  t.pass();
  counters(ms(500));
  t.pass();

  std::uint64_t next = base + 0x1'0000'0000;
  for (std::uint64_t step = 0; step < 3; ++step) {
    const std::uint64_t t0 = 1000 + 1000 * step;
    t.mark(kMain, ms(t0), "epoch " + std::to_string(step + 1));
    const std::uint32_t s_loader = t.stack({0x7f1000001234, 0x7f2000005678, 0x7f6000000100,
                                            0x7f6000000200, 0x7f8000000999, 0x7f9000000001},
                                           {});
    const std::uint64_t batch = next;
    next += 128 * kMiB;
    alloc(kLoader, ms(t0 + 50), kMallocAsync, batch, 128 * kMiB, s_loader, 0x77);
    if (step == 0) physical(ms(t0 + 90), 2 * kGiB, 1);
    if (step == 1) {
      t.arena(kMain, ms(t0 + 95), ArenaEventKind::kStitch, 0, base + 0x2'0000'0000, kGiB, 0, 3);
    }
    std::uint64_t act[3];
    for (std::uint64_t i = 0; i < 3; ++i) {
      act[i] = next;
      next += 256 * kMiB;
      alloc(kMain, ms(t0 + 100 + 100 * i), kCudaMalloc, act[i], 256 * kMiB, s_act);
    }
    for (std::uint64_t i = 0; i < 2; ++i) {
      const std::uint64_t tmp = next;
      next += 64 * kMiB;
      alloc(kMain, ms(t0 + 350 + 10 * i), kCudaMalloc, tmp, 64 * kMiB, s_tmp);
      free(kMain, ms(t0 + 351 + 10 * i), kCudaFree, tmp, 64 * kMiB);
    }
    const std::uint64_t tmp3 = next;
    next += 32 * kMiB;
    alloc(kMain, ms(t0 + 370), kCudaMalloc, tmp3, 32 * kMiB, s_tmp);
    const std::uint64_t leak = next;
    next += 16 * kMiB;
    alloc(kMain, ms(t0 + 380), kCudaMalloc, leak, 16 * kMiB, s_act);
    free(kMain, ms(t0 + 390), kCudaFree, tmp3, 32 * kMiB);
    t.pass();
    counters(ms(t0 + 500));
    free(kMain, ms(t0 + 800), kCudaFree, act[0], 256 * kMiB);
    free(kMain, ms(t0 + 810), kCudaFree, act[1], 256 * kMiB);
    if (step == 2) {
      t.arena(kMain, ms(t0 + 850), ArenaEventKind::kCacheRelease, 0, 0, 512 * kMiB, kGiB, 0);
      t.arena(kMain, ms(t0 + 850), ArenaEventKind::kPhysicalRelease, 0, 0, 512 * kMiB, 0, 1);
      arena.physical -= 512 * kMiB;
    }
    free(kLoader, ms(t0 + 900), kFreeAsync, batch, 128 * kMiB, 0x77);
    t.pass();
    counters(ms(t0 + 1000));
  }

  // The failed request: the arena had room in total but not in one piece.
  const std::uint32_t s_oom =
      t.stack(with(torch_frames, {0x7f5000003000, 0x7f7000000010}),
              {{"/app/model.py", "forward", 47}, step_frame, main_frame, module_frame});
  arena.largest = kGiB;
  t.oom(kMain, ms(4050), kCudaMalloc, 0, 3 * kGiB, s_oom, arena.state());
  t.alloc(kMain, ms(4050), kCudaMalloc, 0, 0, 3 * kGiB - 4096, 0, s_oom, 2);
  t.pass();
  t.mark(kMain, ms(4100), "caught OutOfMemoryError");
  free(kMain, ms(4400), kFreeAsync, base + 0x8000'0000, 2 * kMiB, 0x55);
  t.end(ms(4500));
  t.close();
}

void write_multi_device_trace(const std::string& path) {
  constexpr std::uint32_t kThread0 = 7001;
  constexpr std::uint32_t kThread1 = 7002;
  enum : std::uint16_t { kMallocAsync, kFreeAsync, kMemAlloc, kMemFree };
  TraceBuilder t(path);
  t.process(7000, kWall + 3'600'000'000'000, kStart, 0, "/opt/render/bin/render",
            {"render", "--gpus", "0,1", "scene.usd"});
  t.config("mode", "arena");
  t.entry_point(kMallocAsync, "cudaMallocAsync");
  t.entry_point(kFreeAsync, "cudaFreeAsync");
  t.entry_point(kMemAlloc, "cuMemAlloc_v2");
  t.entry_point(kMemFree, "cuMemFree_v2");
  t.device(0, "Test GPU A", 24 * kGiB);
  t.device(1, "Test GPU B", 24 * kGiB);
  t.runtime(12080, 12060);

  const std::uint64_t base0 = 0x7100'0000'0000;
  const std::uint64_t base1 = 0x7200'0000'0000;
  std::uint64_t physical0 = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live0;  // address, size
  std::uint64_t live_bytes0 = 0;
  std::uint64_t next0 = base0;
  for (int pass = 0; pass < 8; ++pass) {
    const std::uint64_t t0 = 250 * static_cast<std::uint64_t>(pass);
    for (int i = 0; i < 8; ++i) {
      const std::uint64_t at = ms(t0 + 10 + 20 * static_cast<std::uint64_t>(i));
      const std::uint64_t size = std::uint64_t{1024} << ((pass * 8 + i) % 17);
      const std::uint64_t granted = (size + 511) & ~std::uint64_t{511};
      if (live_bytes0 + granted > physical0) {
        t.arena(kThread0, at, ArenaEventKind::kPhysicalCreate, 0, 0, 64 * kMiB, 0, 32);
        physical0 += 64 * kMiB;
      }
      t.alloc(kThread0, at, kMallocAsync, 0, next0, size, granted, 0, 0, 0x100);
      live0.emplace_back(next0, granted);
      live_bytes0 += granted;
      next0 += (granted + kMiB - 1) & ~(kMiB - 1);
      if (i % 3 == 2) {
        const auto [address, bytes] = live0[live0.size() - 2];
        t.free(kThread0, at + 5'000'000, kFreeAsync, 0, address, bytes, 0x100);
        live_bytes0 -= bytes;
        live0.erase(live0.end() - 2);
      }
    }
    // Device 1 has no arena: passthrough allocations only.
    for (int i = 0; i < 3; ++i) {
      const std::uint64_t at = ms(t0 + 30 + 50 * static_cast<std::uint64_t>(i));
      const std::uint64_t address = base1 + (static_cast<std::uint64_t>(pass * 3 + i) << 23);
      t.alloc(kThread1, at, kMemAlloc, 1, address, 8 * kMiB, 8 * kMiB, 0);
      if (i != 1) t.free(kThread1, at + 20'000'000, kMemFree, 1, address, 0);
    }
    if (pass == 1) t.alloc(kThread0, ms(t0 + 200), kMallocAsync, 0, 0, 0, 0, 0);  // size 0
    if (pass == 2) t.mark(kThread1, ms(t0 + 5), "warmup done");
    if (pass == 5) t.dropped(kThread1, ms(t0 + 249), 5);
    const std::uint64_t cached = physical0 - live_bytes0;
    t.counters(
        ms(t0 + 249), 0, live0.size(),
        {live_bytes0, physical0, cached, physical0, 0, cached, 24 * kGiB - physical0, 24 * kGiB});
    t.pass();
  }
  // No end record: the program was killed.
  t.close();
}

std::vector<std::string> write_golden_traces(const std::string& dir) {
  const std::string oom = dir + "/oom.trace";
  const std::string multi = dir + "/multi_device.trace";
  write_oom_trace(oom);
  write_multi_device_trace(multi);

  const std::vector<char> oom_bytes = read_all(oom);
  const std::vector<std::size_t> blocks = block_offsets(oom_bytes);
  // Cut inside block 5: blocks 0-4 are whole.
  write_all(dir + "/truncated.trace",
            std::vector<char>(oom_bytes.begin(),
                              oom_bytes.begin() + static_cast<std::ptrdiff_t>(blocks.at(5) + 100)));
  // One byte changed inside the payload of block 3.
  std::vector<char> corrupted = oom_bytes;
  corrupted.at(blocks.at(3) + sizeof(format::BlockHeader) + 40) ^= 0x20;
  write_all(dir + "/corrupted.trace", corrupted);

  // A future major version: the multi-device trace with its header saying 2.0.
  std::vector<char> future = read_all(multi);
  format::FileHeader header;
  std::memcpy(&header, future.data(), sizeof header);
  header.version_major = 2;
  header.crc =
      trace::crc32c(std::as_bytes(std::span(&header, 1)).first(offsetof(format::FileHeader, crc)));
  std::memcpy(future.data(), &header, sizeof header);
  write_all(dir + "/future.trace", future);

  write_all(dir + "/empty.trace", {});
  const std::string text = "step,loss\n1,0.93\n2,0.71\n";
  write_all(dir + "/not-a-trace.csv", {text.begin(), text.end()});
  return {"oom.trace",    "multi_device.trace", "truncated.trace", "corrupted.trace",
          "future.trace", "empty.trace",        "not-a-trace.csv"};
}

}  // namespace cudefrag::analyzer::testing
