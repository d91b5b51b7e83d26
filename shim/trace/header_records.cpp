#include "shim/trace/header_records.hpp"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>

namespace cudefrag::trace {
namespace {

template <typename T>
std::span<const std::byte> bytes_of(const T& value) {
  return std::as_bytes(std::span(&value, 1));
}

// Reads at most `limit` bytes of a /proc file; empty on any error.
std::string read_proc(const char* path, std::size_t limit) {
  std::string text;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return text;
  char chunk[4096];
  while (text.size() < limit) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    text.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  text.resize(std::min(text.size(), limit));
  return text;
}

std::string program_path() {
  char path[4096];
  const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path);
  return n > 0 ? std::string(path, static_cast<std::size_t>(n)) : std::string();
}

std::uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

void append_record(std::span<const std::byte> fixed, std::string_view text,
                   std::vector<std::byte>& out) {
  text = text.substr(0, format::kMaxRecordBytes - fixed.size());
  const std::size_t start = out.size();
  out.insert(out.end(), fixed.begin(), fixed.end());
  const auto chars = std::as_bytes(std::span(text));
  out.insert(out.end(), chars.begin(), chars.end());
  const auto size = static_cast<std::uint16_t>(fixed.size() + text.size());
  std::memcpy(out.data() + start + offsetof(format::RecordHeader, size), &size, sizeof size);
}

void append_header_records(const Options& options, std::vector<std::byte>& out) {
  const std::string program = program_path().substr(0, 4096);
  constexpr std::size_t kCommandLineBytes =
      format::kMaxRecordBytes - sizeof(format::ProcessRecord) - 4096;
  const std::string command_line = read_proc("/proc/self/cmdline", kCommandLineBytes);
  const format::ProcessRecord process{{format::RecordType::kProcess, 0},
                                      static_cast<std::uint32_t>(::getpid()),
                                      clock_ns(CLOCK_REALTIME),
                                      clock_ns(CLOCK_MONOTONIC),
                                      static_cast<std::uint8_t>(options.stacks),
                                      0,
                                      static_cast<std::uint16_t>(program.size()),
                                      0};
  append_record(bytes_of(process), program + command_line, out);

  for (const auto& [key, value] : options.config) {
    const format::RecordHeader header{format::RecordType::kConfig, 0};
    append_record(bytes_of(header), key + "=" + value, out);
  }
  for (std::size_t id = 0; id < options.entry_points.size(); ++id) {
    const format::EntryPointRecord entry{
        {format::RecordType::kEntryPoint, 0}, static_cast<std::uint16_t>(id), 0};
    append_record(bytes_of(entry), options.entry_points[id], out);
  }
  for (const GpuInfo& gpu : options.gpus) append_device_record(gpu, out);
  if (options.driver_version != 0 || options.runtime_version != 0) {
    append_runtime_record(options.driver_version, options.runtime_version, out);
  }
}

void append_device_record(const GpuInfo& gpu, std::vector<std::byte>& out) {
  const format::DeviceRecord device{
      {format::RecordType::kDevice, 0}, gpu.ordinal.value, gpu.total_memory.value, gpu.uuid};
  append_record(bytes_of(device), gpu.name, out);
}

void append_runtime_record(int driver_version, int runtime_version, std::vector<std::byte>& out) {
  const format::RuntimeRecord runtime{{format::RecordType::kRuntime, sizeof(format::RuntimeRecord)},
                                      driver_version,
                                      runtime_version,
                                      0};
  out.insert(out.end(), bytes_of(runtime).begin(), bytes_of(runtime).end());
}

}  // namespace cudefrag::trace
