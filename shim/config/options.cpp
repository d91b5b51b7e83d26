#include "shim/config/options.hpp"

#include <cstdio>
#include <cstdlib>

namespace cudefrag::config {
namespace {

constexpr char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

constexpr std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Index of `text` among `choices` (case-insensitive), or -1.
int choice_index(std::span<const std::string_view> choices, std::string_view text) {
  for (std::size_t i = 0; i < choices.size(); ++i) {
    if (iequals(choices[i], text)) return static_cast<int>(i);
  }
  return -1;
}

// 128-bit arithmetic keeps "1.5GiB" exact and detects overflow instead of wrapping.
__extension__ using Wide = unsigned __int128;

struct Unit {
  std::string_view suffix;
  std::uint64_t factor;
};

constexpr std::uint64_t kKi = 1024;
constexpr std::uint64_t kK = 1000;
constexpr std::array<Unit, 14> kUnits{{
    {"", 1},
    {"b", 1},
    {"k", kKi},
    {"kib", kKi},
    {"kb", kK},
    {"m", kKi* kKi},
    {"mib", kKi* kKi},
    {"mb", kK* kK},
    {"g", kKi* kKi* kKi},
    {"gib", kKi* kKi* kKi},
    {"gb", kK* kK* kK},
    {"t", kKi* kKi* kKi* kKi},
    {"tib", kKi* kKi* kKi* kKi},
    {"tb", kK* kK* kK* kK},
}};

// A count option's value: digits only (no sign, no spaces inside, no units), at most
// `max_digits` of them, so that it cannot overflow. Empty text became the default before.
bool parse_count(std::string_view text, std::size_t max_digits, std::uint32_t& out) noexcept {
  if (text.empty() || text.size() > max_digits) return false;
  std::uint32_t n = 0;
  for (const char ch : text) {
    if (ch < '0' || ch > '9') return false;
    n = n * 10 + static_cast<std::uint32_t>(ch - '0');
  }
  out = n;
  return true;
}

}  // namespace

std::string_view to_string(Mode m) {
  return kModeChoices[static_cast<std::size_t>(m)];
}
std::string_view to_string(LogLevel l) {
  return kLogLevelChoices[static_cast<std::size_t>(l)];
}
std::string_view to_string(Stacks s) {
  return kStacksChoices[static_cast<std::size_t>(s)];
}

bool parse_bool(std::string_view text, bool& out) noexcept {
  text = trim(text);
  for (std::string_view yes : {"1", "true", "yes", "on"}) {
    if (iequals(text, yes)) {
      out = true;
      return true;
    }
  }
  for (std::string_view no : {"0", "false", "no", "off"}) {
    if (iequals(text, no)) {
      out = false;
      return true;
    }
  }
  return false;
}

bool parse_bytes(std::string_view text, Bytes& out) noexcept {
  text = trim(text);
  if (text.empty()) {
    out = Bytes{0};
    return true;
  }
  // Digits, an optional fraction, optional blanks, an optional unit.
  Wide whole = 0;
  std::size_t i = 0;
  std::size_t digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
    whole = whole * 10 + static_cast<unsigned>(text[i] - '0');
    if (whole > UINT64_MAX) return false;
  }
  Wide fraction = 0;
  Wide scale = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      if (scale < static_cast<Wide>(1000000000000000000ULL)) {
        fraction = fraction * 10 + static_cast<unsigned>(text[i] - '0');
        scale *= 10;
      }
    }
  }
  if (digits == 0) return false;
  const std::string_view unit = trim(text.substr(i));
  for (const Unit& u : kUnits) {
    if (!iequals(unit, u.suffix)) continue;
    const Wide value = whole * u.factor + fraction * u.factor / scale;
    if (value > UINT64_MAX) return false;
    out = Bytes{static_cast<std::uint64_t>(value)};
    return true;
  }
  return false;
}

bool parse_option(Option o, std::string_view text, Config& out) noexcept {
  const OptionSpec& s = spec(o);
  text = trim(text);
  // An empty value means the default: the choice, boolean or count the table documents, no
  // limit, no path.
  if (text.empty() &&
      (s.kind == Kind::kChoice || s.kind == Kind::kBool || s.kind == Kind::kCount)) {
    text = s.default_text;
  }
  switch (o) {
    case Option::kMode: {
      const int i = choice_index(s.choices, text);
      if (i < 0) return false;
      out.mode = static_cast<Mode>(i);
      return true;
    }
    case Option::kLogLevel: {
      const int i = choice_index(s.choices, text);
      if (i < 0) return false;
      out.log_level = static_cast<LogLevel>(i);
      return true;
    }
    case Option::kStacks: {
      const int i = choice_index(s.choices, text);
      if (i < 0) return false;
      out.stacks = static_cast<Stacks>(i);
      return true;
    }
    case Option::kLogFile:
      return out.log_file.assign(text);
    case Option::kTrace:
      return out.trace.assign(text);
    case Option::kStatsFile:
      return out.stats_file.assign(text);
    case Option::kLimit: {
      Bytes b;
      if (!parse_bytes(text, b)) return false;
      out.limit = b;
      return true;
    }
    case Option::kHookDlsym:
      return parse_bool(text, out.hook_dlsym);
    case Option::kFreeStacks:
      return parse_bool(text, out.free_stacks);
    case Option::kNativeFrames: {
      std::uint32_t n = 0;
      if (!parse_count(text, 3, n) || n < 1 || n > kMaxNativeFrames) return false;
      out.native_frames = static_cast<int>(n);
      return true;
    }
    case Option::kGrow: {
      // 0 (no budget) or a percentage in range.
      std::uint32_t n = 0;
      if (!parse_count(text, 5, n)) return false;
      if (n != 0 && (n < kMinGrowPercent || n > kMaxGrowPercent)) return false;
      out.grow_percent = n;
      return true;
    }
    case Option::kSmallMax: {
      Bytes b = kDefaultSmallMax;
      if (!text.empty() && !parse_bytes(text, b)) return false;
      if (b > kMaxSmallMax) return false;
      out.small_max = b;
      return true;
    }
  }
  return false;
}

std::string_view format_invalid(const OptionSpec& o, std::string_view subject,
                                std::string_view value, std::span<char> buf) noexcept {
  if (buf.empty()) return {};
  // Values can be anything the user typed; show at most a line of it.
  constexpr int kMaxShown = 200;
  const int shown = value.size() > kMaxShown ? kMaxShown : static_cast<int>(value.size());
  const int n = std::snprintf(buf.data(), buf.size(), "%.*s='%.*s'%s is not valid; accepted: %.*s",
                              static_cast<int>(subject.size()), subject.data(), shown, value.data(),
                              shown < static_cast<int>(value.size()) ? "..." : "",
                              static_cast<int>(o.accepted.size()), o.accepted.data());
  if (n < 0) {
    buf[0] = '\0';
    return {};
  }
  const std::size_t len =
      static_cast<std::size_t>(n) < buf.size() ? static_cast<std::size_t>(n) : buf.size() - 1;
  return {buf.data(), len};
}

LoadResult load(EnvLookup lookup, void* context) noexcept {
  LoadResult r;
  for (const OptionSpec& s : kOptions) {
    // Every env name in the table is a string literal, hence NUL-terminated.
    const char* value = lookup(s.env.data(), context);
    if (value == nullptr) continue;
    if (parse_option(s.id, value, r.config)) continue;
    format_invalid(s, s.env, value, r.errors[r.error_count]);
    ++r.error_count;
  }
  if (r.error_count > 0) r.config.mode = Mode::kPassthrough;
  return r;
}

LoadResult load_from_environment() noexcept {
  return load([](const char* name, void*) -> const char* { return std::getenv(name); }, nullptr);
}

std::string markdown_table() {
  std::string out =
      "| Variable | `cudefrag run` option | Default | Accepted values | Meaning |\n"
      "| --- | --- | --- | --- | --- |\n";
  for (const OptionSpec& s : kOptions) {
    out += "| `";
    out += s.env;
    out += "` | ";
    if (s.flag.empty()) {
      out += s.id == Option::kHookDlsym ? "`--no-hook-dlsym`" : "(set by `cudefrag run`)";
    } else {
      out += "`";
      out += s.flag;
      out += "`";
    }
    out += " | ";
    out += s.default_text;
    out += " | ";
    out += s.accepted;
    out += " | ";
    out += s.help;
    out += " |\n";
  }
  return out;
}

}  // namespace cudefrag::config
