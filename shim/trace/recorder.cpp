#include "shim/trace/recorder.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>

#include "shim/trace/block_writer.hpp"
#include "shim/trace/definitions.hpp"
#include "shim/trace/header_records.hpp"
#include "shim/trace/native_stack.hpp"
#include "shim/trace/python_stack.hpp"
#include "shim/trace/stack_table.hpp"
#include "shim/trace/string_table.hpp"
#include "shim/trace/symbolizer.hpp"
#include "shim/trace/thread_buffer.hpp"
#include "shim/trace/trace_file.hpp"

namespace cudefrag::trace {
namespace {

using std::chrono::milliseconds;

constexpr std::size_t kMaxFrames = 128;
constexpr std::size_t kMaxMarkBytes = 4000;
// Frames of the recorder between NativeStacks::capture and the caller of record_*:
// Impl::capture_stack and Recorder::record_*, both kept out of line for this count to hold.
constexpr int kOwnFrames = 2;
// A producer whose buffer is full waits this long in total for the writer, then drops (and
// drops without waiting until the writer has drained its buffer).
constexpr int kFullRetries = 50;
constexpr timespec kFullRetryPause{0, 100'000};
// How often close_at_exit() looks whether the writer thread and a write in progress are done.
constexpr timespec kShutdownPause{0, 1'000'000};

template <typename T>
std::span<const std::byte> bytes_of(const T& value) {
  return std::as_bytes(std::span(&value, 1));
}

void default_sink(std::string_view message) {
  std::string line = "cudefrag: trace: ";
  line.append(message);
  line += '\n';
  // write(2), not stdio: this may run while the host's streams are being torn down.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  static_cast<void>(ignored);
}

std::uint32_t os_thread_id() {
  return static_cast<std::uint32_t>(::gettid());
}

std::int16_t device_field(DeviceOrdinal device) {
  return static_cast<std::int16_t>(device.value);
}

std::uint64_t stream_field(const void* stream) {
  return reinterpret_cast<std::uintptr_t>(stream);
}

format::ArenaStateFields state_fields(const ArenaState& s) {
  return {s.live.value,  s.mapped.value,         s.cached.value,      s.physical.value,
          s.limit.value, s.largest_extent.value, s.driver_free.value, s.driver_total.value};
}

// The MemoryRecord of an AllocEvent or a FreeEvent (`event`), which differ only in its type and
// in what stands for requested and granted. The stack is left 0: record_* captures it itself, so
// that capture_stack's caller stays record_* (kOwnFrames). A zero event time reads the clock.
template <typename Event>
format::MemoryRecord memory_record(format::RecordType type, const Event& event,
                                   std::uint32_t thread, std::uint64_t requested,
                                   std::uint64_t granted) {
  return {{type, sizeof(format::MemoryRecord)},
          event.entry.value,
          device_field(event.device),
          thread,
          event.result,
          event.time.value != 0 ? event.time.value : now().value,
          event.address.value,
          requested,
          granted,
          stream_field(event.stream),
          0,
          0};
}

std::atomic<std::uint64_t> g_next_recorder_id{1};

// The calling thread's buffer for the recorder it last recorded into.
struct ThreadSlot {
  std::uint64_t recorder = 0;
  ThreadBuffer* buffer = nullptr;
  std::shared_ptr<ThreadBuffer> hold;
  std::uint32_t thread_id = 0;
  bool capturing = false;  // inside a stack capture, which may re-enter (Python's GC)

  ~ThreadSlot() {
    if (buffer != nullptr) buffer->mark_orphaned();
  }
};
// initial-exec: no __tls_get_addr call per record. The library is preloaded (static TLS) or, in
// tests, small enough for the loader's static TLS surplus.
[[gnu::tls_model("initial-exec")]] thread_local ThreadSlot t_slot;

// measure_next_capture()'s request and the measurement it gets.
[[gnu::tls_model("initial-exec")]] thread_local bool t_measure_capture = false;
[[gnu::tls_model("initial-exec")]] thread_local CaptureCost t_capture_cost;

std::uint64_t elapsed_ns(TimeNs from, TimeNs to) {
  return to.value > from.value ? to.value - from.value : 0;
}

}  // namespace

void measure_next_capture() noexcept {
  t_measure_capture = true;
  t_capture_cost = CaptureCost{};
}

CaptureCost take_capture_cost() noexcept {
  const CaptureCost cost = t_capture_cost;
  t_capture_cost = CaptureCost{};
  t_measure_capture = false;
  return cost;
}

std::optional<StackMode> parse_stack_mode(std::string_view text) {
  if (text == "none") return StackMode::kNone;
  if (text == "native") return StackMode::kNative;
  if (text == "python") return StackMode::kPython;
  if (text == "both") return StackMode::kBoth;
  return std::nullopt;
}

std::string_view to_string(StackMode mode) {
  switch (mode) {
    case StackMode::kNone:
      return "none";
    case StackMode::kNative:
      return "native";
    case StackMode::kPython:
      return "python";
    case StackMode::kBoth:
      return "both";
  }
  return "?";
}

std::string validate(const Options& o) {
  if (o.path.empty()) return "the trace path is empty";
  if (o.flush_interval < milliseconds(1) || o.flush_interval > milliseconds(100)) {
    return "flush interval must be 1 to 100 ms, not " + std::to_string(o.flush_interval.count());
  }
  if (o.poll_counters && o.counters_interval < milliseconds(1)) {
    return "counters interval must be at least 1 ms";
  }
  if (o.thread_buffer_bytes < (std::size_t{128} << 10) ||
      !std::has_single_bit(o.thread_buffer_bytes)) {
    return "thread buffer size must be a power of two of at least 128 KiB, not " +
           std::to_string(o.thread_buffer_bytes);
  }
  if (o.max_native_frames < 1 || o.max_native_frames > static_cast<int>(kMaxFrames) ||
      o.max_python_frames < 1 || o.max_python_frames > static_cast<int>(kMaxFrames)) {
    return "frame limits must be 1 to 128";
  }
  if (o.entry_points.size() > 65536) return "more than 65536 entry points";
  if (static_cast<std::uint8_t>(o.stacks) > 3) return "unknown stack mode";
  return {};
}

struct Recorder::Impl {
  Impl(Options opts, OpenedFile file)
      : options(std::move(opts)),
        path(std::move(file.path)),
        sink(options.messages != nullptr ? options.messages : default_sink),
        buffers(options.thread_buffer_bytes),
        writer(file.fd, options.compress) {
    const bool want_native =
        options.stacks == StackMode::kNative || options.stacks == StackMode::kBoth;
    const bool want_python =
        options.stacks == StackMode::kPython || options.stacks == StackMode::kBoth;
    if (want_native) native.emplace(options.unwinder);
    if (want_python) python.emplace(strings, PythonStackOptions{.messages = sink});
  }

  // Writes the header block and starts the writer thread; an error message on failure.
  std::string start();

  ThreadSlot& slot();
  [[gnu::noinline]] std::uint32_t capture_stack(ThreadSlot& slot);
  void append(ThreadSlot& slot, std::span<const std::byte> head,
              std::span<const std::byte> tail = {});
  void wake();
  void writer_loop();
  // Consumer: writes everything committed so far. Caller holds write_mutex.
  void drain_locked();
  void write_definitions();
  void fail(const std::string& message);
  // Closes the trace. At exit (patience set) the writer thread and a write in progress are
  // waited for at most `patience` in all.
  void shutdown(std::optional<milliseconds> patience);
  // Ends the writer thread: joins it, or, at exit, when it has not finished its loop by
  // `deadline` (stuck in a write or in poll_counters), lets it go.
  void stop_writer(std::optional<std::chrono::steady_clock::time_point> deadline);
  void mark(std::string_view text);

  const Options options;
  const std::string path;
  const std::uint64_t id = g_next_recorder_id.fetch_add(1);
  const MessageSink sink;
  std::atomic<bool> enabled{true};

  DefinitionQueue definitions;
  StringTable strings{definitions};
  StackTable stacks{definitions};
  std::optional<NativeStacks> native;
  std::optional<PythonStacks> python;
  BufferRegistry buffers;

  // Consumer state, under write_mutex. A plain mutex polled with try_lock() where a deadline
  // applies: std::timed_mutex's try_lock_for goes through pthread_mutex_clocklock, which
  // ThreadSanitizer does not see, so every access under it would be reported as a race.
  std::mutex write_mutex;
  BlockWriter writer;
  Symbolizer symbolizer{strings, definitions};
  std::vector<BufferRegistry::Pending> pending;
  std::vector<std::byte> taken;
  bool closed = false;
  bool failure_reported = false;

  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> signal_marks{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> writer_done{false};  // the writer thread has left its loop
  int wake_fd = -1;
  std::thread thread;
};

std::string Recorder::Impl::start() {
  std::vector<std::byte> header;
  if (native) {
    // Which unwinder ran tells a reader what the native frames cost (libgcc's is ~15x slower)
    // and whether the machine lacked libunwind.
    Options described = options;
    described.config.emplace_back("unwinder", std::string(native->unwinder()));
    append_header_records(described, header);
  } else {
    append_header_records(options, header);
  }
  writer.write_file_header();
  writer.add_records(header);
  writer.flush();
  if (writer.failed()) return "writing '" + path + "' failed: " + writer.error();

  wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) return std::string("eventfd failed: ") + std::strerror(errno);
  // The writer thread takes no signals: the program's handlers run on the program's threads.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);
  try {
    thread = std::thread([this] { writer_loop(); });
  } catch (const std::system_error& e) {
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return std::string("cannot start the writer thread: ") + e.what();
  }
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return {};
}

ThreadSlot& Recorder::Impl::slot() {
  ThreadSlot& s = t_slot;
  if (s.recorder != id) [[unlikely]] {
    if (s.buffer != nullptr) s.buffer->mark_orphaned();
    s.thread_id = os_thread_id();  // also fresh in a forked child
    s.hold = buffers.add(s.thread_id);
    s.buffer = s.hold.get();
    s.recorder = id;
  }
  return s;
}

std::uint32_t Recorder::Impl::capture_stack(ThreadSlot& s) {
  if (options.stacks == StackMode::kNone || s.capturing) return 0;
  s.capturing = true;
  // Only the sampled capture writes the flag back: the others read one thread-local byte.
  const bool measure = t_measure_capture;
  if (measure) t_measure_capture = false;
  TimeNs t0;
  TimeNs t1;
  TimeNs t2;
  if (measure) t0 = now();
  std::array<std::uint64_t, kMaxFrames> native_frames;
  std::array<format::PythonFrame, kMaxFrames> python_frames;
  std::size_t native_count = 0;
  std::size_t python_count = 0;
  if (python) {
    python_count = python->capture(
        std::span(python_frames).first(static_cast<std::size_t>(options.max_python_frames)));
  }
  if (measure) t1 = now();
  if (native) {
    // Beside Python frames, the native ones end with the interpreter's loop: the frames further
    // out run the Python code just captured, and they were most of a PyTorch allocation's
    // native frames and of its cost (docs/trace-format.md). Without Python frames, all.
    const CodeRange interpreter = python_count > 0 ? python->eval_loop() : CodeRange{};
    native_count = native->capture(
        std::span(native_frames).first(static_cast<std::size_t>(options.max_native_frames)),
        kOwnFrames, interpreter);
  }
  if (measure) t2 = now();
  const StackId stack = stacks.intern(std::span(native_frames).first(native_count),
                                      std::span(python_frames).first(python_count));
  if (measure) {
    t_capture_cost = CaptureCost{true,
                                 elapsed_ns(t0, t1),
                                 elapsed_ns(t1, t2),
                                 elapsed_ns(t2, now()),
                                 static_cast<std::uint32_t>(python_count),
                                 static_cast<std::uint32_t>(native_count)};
  }
  s.capturing = false;
  return stack.value;
}

void Recorder::Impl::append(ThreadSlot& s, std::span<const std::byte> head,
                            std::span<const std::byte> tail) {
  ThreadBuffer& buffer = *s.buffer;
  if (buffer.try_append(head, tail)) [[likely]] {
    if (buffer.should_wake_writer()) wake();
    return;
  }
  if (!buffer.dropping()) {
    wake();
    for (int i = 0; i < kFullRetries && enabled.load(std::memory_order_relaxed); ++i) {
      nanosleep(&kFullRetryPause, nullptr);
      if (buffer.try_append(head, tail)) return;
    }
  }
  buffer.count_dropped();
}

void Recorder::Impl::wake() {
  const std::uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd, &one, sizeof one);  // async-signal-safe
  static_cast<void>(ignored);
}

void Recorder::Impl::writer_loop() {
  pthread_setname_np(pthread_self(), "cudefrag-trace");
  auto next_counters = std::chrono::steady_clock::now() + options.counters_interval;
  pollfd wait{wake_fd, POLLIN, 0};
  const int timeout_ms = static_cast<int>(options.flush_interval.count());
  while (!stop.load(std::memory_order_acquire)) {
    ::poll(&wait, 1, timeout_ms);
    std::uint64_t wakeups = 0;
    ssize_t ignored = ::read(wake_fd, &wakeups, sizeof wakeups);
    static_cast<void>(ignored);
    if (stop.load(std::memory_order_acquire)) break;
    if (options.poll_counters && std::chrono::steady_clock::now() >= next_counters) {
      next_counters = std::chrono::steady_clock::now() + options.counters_interval;
      try {
        options.poll_counters();
      } catch (...) {
        // A failing counter source must not stop the trace.
      }
    }
    for (auto n = signal_marks.exchange(0); n > 0; --n) mark("SIGUSR2");
    std::lock_guard lock(write_mutex);
    if (closed || writer.failed()) break;
    drain_locked();
  }
  writer_done.store(true, std::memory_order_release);
}

void Recorder::Impl::mark(std::string_view text) {
  ThreadSlot& s = slot();
  text = text.substr(0, kMaxMarkBytes);
  const format::MarkRecord r{{format::RecordType::kMark,
                              static_cast<std::uint16_t>(sizeof(format::MarkRecord) + text.size())},
                             s.thread_id,
                             now().value};
  append(s, bytes_of(r), std::as_bytes(std::span(text)));
}

void Recorder::Impl::write_definitions() {
  definitions.take(taken);
  std::span<const std::byte> rest = taken;
  while (rest.size() >= sizeof(format::RecordHeader)) {
    format::RecordHeader header;
    std::memcpy(&header, rest.data(), sizeof header);
    const auto record = rest.first(std::min<std::size_t>(header.size, rest.size()));
    writer.add(record);
    if (header.type == format::RecordType::kStack && options.symbolize) {
      symbolizer.add_stack(record);
    }
    rest = rest.subspan(record.size());
  }
}

void Recorder::Impl::drain_locked() {
  if (closed || writer.failed()) return;
  // Order matters (definitions.hpp): snapshot the buffers, then take the definitions.
  buffers.snapshot(pending);
  write_definitions();
  for (const auto& [buffer, until] : pending) {
    buffer->drain(until, [this](std::span<const std::byte> record) { writer.add(record); });
    if (const std::uint64_t lost = buffer->take_dropped(); lost != 0) {
      dropped.fetch_add(lost, std::memory_order_relaxed);
      const format::DroppedRecord record{
          {format::RecordType::kDropped, sizeof(format::DroppedRecord)},
          buffer->thread_id(),
          now().value,
          lost};
      writer.add(bytes_of(record));
    }
  }
  pending.clear();
  write_definitions();  // symbols of the stacks just written
  buffers.reclaim();
  writer.flush();
  if (writer.failed()) fail("writing '" + path + "' failed: " + writer.error());
}

void Recorder::Impl::fail(const std::string& message) {
  enabled.store(false, std::memory_order_relaxed);
  if (failure_reported) return;
  failure_reported = true;
  sink(message + "; tracing is off, the program runs on");
}

void Recorder::Impl::stop_writer(std::optional<std::chrono::steady_clock::time_point> deadline) {
  stop.store(true, std::memory_order_release);
  if (wake_fd >= 0) wake();
  if (!thread.joinable()) return;
  // The writer thread itself may end the process (exit() from poll_counters): it cannot join
  // itself.
  if (thread.get_id() == std::this_thread::get_id()) {
    thread.detach();
    return;
  }
  if (deadline) {
    while (!writer_done.load(std::memory_order_acquire) &&
           std::chrono::steady_clock::now() < *deadline) {
      nanosleep(&kShutdownPause, nullptr);
    }
    if (!writer_done.load(std::memory_order_acquire)) {
      thread.detach();
      return;
    }
  }
  thread.join();
}

void Recorder::Impl::shutdown(std::optional<milliseconds> patience) {
  enabled.store(false, std::memory_order_relaxed);
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (patience) deadline = std::chrono::steady_clock::now() + *patience;
  stop_writer(deadline);
  std::unique_lock lock(write_mutex, std::defer_lock);
  if (deadline) {
    while (!lock.try_lock()) {
      if (std::chrono::steady_clock::now() >= *deadline) return;
      nanosleep(&kShutdownPause, nullptr);
    }
  } else {
    lock.lock();
  }
  if (closed) return;
  drain_locked();
  if (!writer.failed()) {
    const format::EndRecord end{
        {format::RecordType::kEnd, sizeof(format::EndRecord)}, 0, now().value};
    writer.add(bytes_of(end));
  }
  writer.close();
  if (writer.failed()) fail("writing '" + path + "' failed: " + writer.error());
  closed = true;
}

Recorder::Recorder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

std::unique_ptr<Recorder> Recorder::open(Options options) {
  const MessageSink sink = options.messages != nullptr ? options.messages : default_sink;
  if (const std::string problem = validate(options); !problem.empty()) {
    sink("bad trace option: " + problem + "; tracing is off, the program runs on");
    return nullptr;
  }
  OpenedFile file = open_trace_file(options.path);
  if (file.fd < 0) {
    sink(file.error + "; tracing is off, the program runs on");
    return nullptr;
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(file));
  if (const std::string problem = impl->start(); !problem.empty()) {
    sink(problem + "; tracing is off, the program runs on");
    if (impl->wake_fd >= 0) ::close(impl->wake_fd);
    return nullptr;
  }
  return std::unique_ptr<Recorder>(new Recorder(std::move(impl)));
}

Recorder::~Recorder() {
  close();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

bool Recorder::enabled() const {
  return impl_->enabled.load(std::memory_order_relaxed);
}

void Recorder::record_alloc(const AllocEvent& e) {
  Impl& s = *impl_;
  if (!s.enabled.load(std::memory_order_relaxed)) return;
  ThreadSlot& slot = s.slot();
  format::MemoryRecord r = memory_record(format::RecordType::kAlloc, e, slot.thread_id,
                                         e.requested.value, e.granted.value);
  r.stack = s.capture_stack(slot);
  s.append(slot, bytes_of(r));
}

void Recorder::record_free(const FreeEvent& e) {
  Impl& s = *impl_;
  if (!s.enabled.load(std::memory_order_relaxed)) return;
  ThreadSlot& slot = s.slot();
  format::MemoryRecord r =
      memory_record(format::RecordType::kFree, e, slot.thread_id, 0, e.size.value);
  if (s.options.free_stacks) r.stack = s.capture_stack(slot);
  s.append(slot, bytes_of(r));
}

void Recorder::record_arena_event(const ArenaEvent& e) {
  Impl& s = *impl_;
  if (!s.enabled.load(std::memory_order_relaxed)) return;
  ThreadSlot& slot = s.slot();
  const format::ArenaRecord r{{format::RecordType::kArena, sizeof(format::ArenaRecord)},
                              e.kind,
                              0,
                              device_field(e.device),
                              slot.thread_id,
                              e.count,
                              now().value,
                              e.address.value,
                              e.bytes.value,
                              e.bytes2.value};
  s.append(slot, bytes_of(r));
}

void Recorder::record_oom(const OomEvent& e) {
  Impl& s = *impl_;
  if (!s.enabled.load(std::memory_order_relaxed)) return;
  ThreadSlot& slot = s.slot();
  format::OomRecord r{{format::RecordType::kOom, sizeof(format::OomRecord)},
                      e.entry.value,
                      device_field(e.device),
                      slot.thread_id,
                      e.result,
                      now().value,
                      e.requested.value,
                      stream_field(e.stream),
                      0,
                      0,
                      state_fields(e.state)};
  r.stack = s.capture_stack(slot);
  s.append(slot, bytes_of(r));
  flush_sync();
}

void Recorder::record_counters(const CountersEvent& e) {
  Impl& s = *impl_;
  if (!s.enabled.load(std::memory_order_relaxed)) return;
  ThreadSlot& slot = s.slot();
  const format::CountersRecord r{{format::RecordType::kCounters, sizeof(format::CountersRecord)},
                                 device_field(e.device),
                                 0,
                                 now().value,
                                 e.live_allocations,
                                 state_fields(e.state)};
  s.append(slot, bytes_of(r));
}

void Recorder::record_mark(std::string_view text) {
  if (impl_->enabled.load(std::memory_order_relaxed)) impl_->mark(text);
}

void Recorder::record_device(const GpuInfo& gpu) {
  if (!enabled()) return;
  std::vector<std::byte> record;
  append_device_record(gpu, record);
  impl_->definitions.push(record);
}

void Recorder::record_runtime(int driver_version, int runtime_version) {
  if (!enabled()) return;
  std::vector<std::byte> record;
  append_runtime_record(driver_version, runtime_version, record);
  impl_->definitions.push(record);
}

void Recorder::flush_sync() {
  std::lock_guard lock(impl_->write_mutex);
  impl_->drain_locked();
}

void Recorder::close() {
  impl_->shutdown(std::nullopt);
}

void Recorder::close_at_exit(milliseconds patience) {
  impl_->shutdown(patience);
}

void Recorder::request_signal_mark() {
  impl_->signal_marks.fetch_add(1, std::memory_order_relaxed);
  impl_->wake();
}

RecorderStats Recorder::stats() const {
  Impl& s = *impl_;
  RecorderStats out;
  {
    std::lock_guard lock(s.write_mutex);
    out.records_written = s.writer.records_written();
    out.blocks_written = s.writer.blocks_written();
    out.bytes_written = s.writer.bytes_written();
  }
  out.records_dropped = s.dropped.load(std::memory_order_relaxed);
  out.stacks = s.stacks.size();
  out.stacks_not_stored = s.stacks.not_stored();
  return out;
}

const std::string& Recorder::path() const {
  return impl_->path;
}

void Recorder::abandon_after_fork() {
  impl_->enabled.store(false, std::memory_order_relaxed);
  impl_->closed = true;
  impl_->writer.abandon();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
  impl_->wake_fd = -1;
  // The writer thread does not exist in the child; its std::thread is left alone, and this
  // recorder is never destroyed (it would join it).
}

}  // namespace cudefrag::trace
