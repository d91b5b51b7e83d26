#include "analyzer/report/svg_chart.hpp"

#include "analyzer/report/text_units.hpp"

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstdio>

#include "analyzer/report/html_escape.hpp"

namespace cudefrag::analyzer {
namespace {

// Text is not measured (no fonts here): a 12 px sans-serif character is about 7 px wide on
// average, which is enough to keep labels from running into each other.
constexpr double kCharWidth = 7.0;

class Svg : public HtmlBuffer {
 public:
  void title(std::string_view tooltip) {
    s("<title>");
    e(tooltip);
    s("</title>");
  }
};

double text_width(std::string_view text) {
  std::size_t chars = 0;
  for (const char c : text) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return static_cast<double>(chars) * kCharWidth;
}

std::string number(double value, int decimals) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

std::string seconds(std::int64_t ns) {
  return number(static_cast<double>(ns) / 1e9, 3);
}

struct ByteUnit {
  const char* name;
  double bytes;
};

ByteUnit unit_for(std::uint64_t max) {
  static constexpr ByteUnit kUnits[] = {
      {"GiB", 1024.0 * 1024 * 1024}, {"MiB", 1024.0 * 1024}, {"KiB", 1024.0}};
  for (const ByteUnit& u : kUnits) {
    if (static_cast<double>(max) >= u.bytes) return u;
  }
  return {"bytes", 1.0};
}

std::string bytes_label(std::uint64_t bytes) {
  const ByteUnit u = unit_for(bytes);
  return number(static_cast<double>(bytes) / u.bytes, u.bytes > 1 ? 1 : 0) + " " + u.name;
}

namespace memory {

constexpr double kWidth = 1100;
constexpr double kHeight = 420;
constexpr double kLeft = 78;
constexpr double kRight = kWidth - 24;
constexpr double kTop = 64;
constexpr double kBottom = kHeight - 56;
constexpr std::size_t kLabelRows = 3;  // OOM labels stack in this many rows, then only tooltips

class Plot {
 public:
  Plot(std::int64_t from_ns, std::int64_t to_ns, double top_value, double unit_bytes)
      : from_ns_(static_cast<double>(from_ns)),
        span_ns_(std::max(static_cast<double>(to_ns) - from_ns_, 1.0)),
        top_bytes_(top_value * unit_bytes) {}
  double x(std::int64_t ns) const { return x_at(static_cast<double>(ns)); }
  double x_at(double ns) const { return kLeft + (ns - from_ns_) / span_ns_ * (kRight - kLeft); }
  double y(double bytes) const { return kBottom - bytes / top_bytes_ * (kBottom - kTop); }

 private:
  double from_ns_;
  double span_ns_;
  double top_bytes_;
};

// "M x y H x V y H x ..." along the tops of consecutive steps; `value` gives each step's height
// or nothing (a gap in the line). With `area`, each run is closed down to the time axis.
template <typename Value>
std::string step_path(const std::vector<MemoryStep>& steps, const Plot& p, Value value, bool area) {
  Svg path;
  bool open = false;
  double run_start = 0;
  const auto close_run = [&] {
    if (open && area) path.f("V%.1f H%.1f Z", kBottom, run_start);
    open = false;
  };
  for (const MemoryStep& step : steps) {
    const std::optional<std::uint64_t> v = value(step);
    if (!v) {
      close_run();
      continue;
    }
    if (!open) {
      run_start = p.x(step.start_ns);
      if (area) {
        path.f("M%.1f %.1f V%.1f ", run_start, kBottom, p.y(static_cast<double>(*v)));
      } else {
        path.f("M%.1f %.1f ", run_start, p.y(static_cast<double>(*v)));
      }
      open = true;
    } else {
      path.f("V%.1f ", p.y(static_cast<double>(*v)));
    }
    path.f("H%.1f ", p.x(step.end_ns));
  }
  close_run();
  return path.take();
}

void axes(Svg& svg, const Plot& p, std::int64_t from_ns, std::int64_t to_ns, const Ticks& y,
          const ByteUnit& unit) {
  svg.s("<g class=\"grid\">");
  for (std::size_t i = 0; i < y.count; ++i) {
    const double v = y.first + y.step * static_cast<double>(i);
    const double bytes = v * unit.bytes;
    svg.f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", kLeft, p.y(bytes), kRight,
          p.y(bytes));
  }
  svg.s("</g><g class=\"axis\">");
  svg.f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", kLeft, kBottom, kRight, kBottom);
  svg.f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", kLeft, kTop, kLeft, kBottom);
  for (std::size_t i = 0; i < y.count; ++i) {
    const double v = y.first + y.step * static_cast<double>(i);
    const double bytes = v * unit.bytes;
    svg.f("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>", kLeft - 8,
          p.y(bytes) + 4, number(v, y.decimals).c_str());
  }
  const Ticks x =
      nice_ticks(static_cast<double>(from_ns) / 1e9, static_cast<double>(to_ns) / 1e9, 10);
  for (std::size_t i = 0; i < x.count; ++i) {
    const double s = x.first + x.step * static_cast<double>(i);
    const double px = p.x_at(s * 1e9);
    svg.f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", px, kBottom, px, kBottom + 5);
    svg.f("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", px,
          kBottom + 19, number(s, x.decimals).c_str());
  }
  svg.f(
      "<text class=\"axis-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">time since the "
      "program started (s)</text>",
      (kLeft + kRight) / 2, kBottom + 42);
  svg.f(
      "<text class=\"axis-label\" transform=\"translate(20 %.1f) rotate(-90)\" "
      "text-anchor=\"middle\">memory (%s)</text>",
      (kTop + kBottom) / 2, unit.name);
  svg.s("</g>");
}

void legend(Svg& svg, const MemoryChart& chart, bool physical) {
  struct Item {
    const char* css;
    std::string text;
  };
  std::vector<Item> items = {{"live", chart.live_legend}};
  if (physical) {
    items.push_back({"physical", "physical memory held by the arena"});
    items.push_back({"unused", "held but not live"});
  }
  if (!chart.ooms.empty()) items.push_back({"oom", "out-of-memory error"});
  if (!chart.marks.empty()) items.push_back({"mark", "mark"});
  svg.s("<g class=\"legend\">");
  double x = kLeft;
  for (const Item& item : items) {
    svg.f("<g class=\"legend-item %s\">", item.css);
    if (std::string_view(item.css) == "unused") {
      svg.f("<rect x=\"%.1f\" y=\"36\" width=\"22\" height=\"12\"/>", x);
    } else {
      svg.f("<line x1=\"%.1f\" y1=\"42\" x2=\"%.1f\" y2=\"42\"/>", x, x + 22);
    }
    svg.f("<text x=\"%.1f\" y=\"46\">", x + 28);
    svg.e(item.text);
    svg.s("</text></g>");
    x += 28 + text_width(item.text) + 18;
  }
  svg.s("</g>");
}

void step_tooltips(Svg& svg, const MemoryChart& chart, const Plot& p) {
  svg.s("<g class=\"hits\">");
  for (const MemoryStep& step : chart.steps) {
    std::string tip = seconds(step.start_ns) + "–" + seconds(step.end_ns) + " s: peak live " +
                      bytes_label(step.live);
    if (step.physical) {
      tip += ", peak physical " + bytes_label(*step.physical);
    }
    svg.f("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\">", p.x(step.start_ns), kTop,
          p.x(step.end_ns) - p.x(step.start_ns), kBottom - kTop);
    svg.title(tip);
    svg.s("</rect>");
  }
  svg.s("</g>");
}

void marks(Svg& svg, const std::vector<TimeMarker>& markers, const Plot& p, std::int64_t from_ns,
           std::int64_t to_ns) {
  double last_label = -1e9;
  for (const TimeMarker& m : markers) {
    if (m.time_ns < from_ns || m.time_ns > to_ns) continue;
    const double x = p.x(m.time_ns);
    svg.s("<g class=\"mark\">");
    svg.title(m.tooltip);
    svg.f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, kTop, x, kBottom);
    svg.f("<line class=\"hit\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, kTop, x,
          kBottom);
    // Labels run up the right side of the line, so neighbours need only a line's height
    // between them (and an OOM just before a mark, as when a program catches it, stays clear).
    if (x - last_label >= 14) {
      svg.f("<text transform=\"translate(%.1f %.1f) rotate(-90)\">", x + 12, kBottom - 6);
      svg.e(shortened(m.label, 40));
      svg.s("</text>");
      last_label = x;
    }
    svg.s("</g>");
  }
}

void ooms(Svg& svg, const std::vector<TimeMarker>& markers, const Plot& p, std::int64_t from_ns,
          std::int64_t to_ns) {
  std::vector<double> row_end(kLabelRows, -1e9);
  for (const TimeMarker& m : markers) {
    if (m.time_ns < from_ns || m.time_ns > to_ns) continue;
    const double x = p.x(m.time_ns);
    svg.s("<g class=\"oom\">");
    svg.title(m.tooltip);
    svg.f("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, kTop, x, kBottom);
    svg.f("<line class=\"hit\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", x, kTop, x,
          kBottom);
    const std::string label = shortened(m.label, 30);
    const double width = text_width(label) + 6;
    // Right of the line, or left of it near the right edge.
    const bool left = x + width > kRight;
    const double from = left ? x - width : x;
    for (std::size_t row = 0; row < kLabelRows; ++row) {
      if (from < row_end[row] + 6) continue;
      svg.f("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\">", left ? x - 4 : x + 4,
            kTop + 14 + 16 * static_cast<double>(row), left ? "end" : "start");
      svg.e(label);
      svg.s("</text>");
      row_end[row] = from + width;
      break;
    }
    svg.s("</g>");
  }
}

}  // namespace memory

namespace bars {

constexpr double kWidth = 1100;
constexpr double kLabelEnd = 432;
constexpr double kBarStart = 440;
constexpr double kBarMax = 420;
constexpr double kFirstRow = 44;
constexpr double kRow = 28;
constexpr double kBarHeight = 18;
constexpr std::size_t kLabelChars = 58;

}  // namespace bars

}  // namespace

Ticks nice_ticks(double low, double high, std::size_t target) {
  if (!(high > low)) high = low + 1;
  const double raw = (high - low) / static_cast<double>(std::max<std::size_t>(target, 1));
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
  Ticks t;
  t.step = step;
  t.first = std::ceil(low / step - 1e-9) * step;
  // Rounding can put the first tick past `high` when the range is tiny next to its values.
  const double count = std::floor((high - t.first) / step + 1e-9) + 1;
  t.count = count >= 1 ? static_cast<std::size_t>(std::min(count, 1000.0)) : 0;
  t.decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return t;
}

std::string memory_chart_svg(const MemoryChart& chart) {
  using namespace memory;
  if (chart.steps.empty()) return {};
  const std::int64_t from_ns = chart.steps.front().start_ns;
  const std::int64_t to_ns = std::max(chart.steps.back().end_ns, from_ns);
  std::uint64_t max = 0;
  bool physical = false;
  for (const MemoryStep& s : chart.steps) {
    max = std::max({max, s.live, s.physical.value_or(0)});
    physical = physical || s.physical.has_value();
  }
  const ByteUnit unit = unit_for(max);
  // Headroom above the highest value keeps its line off the frame and clear of the OOM labels.
  const double high = std::max(static_cast<double>(max) / unit.bytes * 1.08, 1.0);
  Ticks y = nice_ticks(0, high, 5);
  const double top = std::ceil(high / y.step - 1e-9) * y.step;
  y.count = static_cast<std::size_t>(std::llround(top / y.step)) + 1;
  const Plot p(from_ns, to_ns, top, unit.bytes);

  Svg svg;
  svg.f(
      "<svg class=\"chart memory-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f "
      "%.0f\" role=\"img\">",
      kWidth, kHeight);
  svg.s("<text class=\"chart-title\" x=\"78\" y=\"22\">");
  svg.e(chart.title);
  svg.s("</text>");
  legend(svg, chart, physical);
  axes(svg, p, from_ns, to_ns, y, unit);
  const auto live = [](const MemoryStep& s) { return std::optional<std::uint64_t>(s.live); };
  const auto held = [](const MemoryStep& s) { return s.physical; };
  if (physical) {
    svg.f("<path class=\"physical-area\" d=\"%s\"/>",
          step_path(chart.steps, p, held, true).c_str());
  }
  svg.f("<path class=\"live-area\" d=\"%s\"/>", step_path(chart.steps, p, live, true).c_str());
  svg.f("<path class=\"live-line\" d=\"%s\"/>", step_path(chart.steps, p, live, false).c_str());
  // Over the live line, dashed: where nearly all that is held is live, both stay visible.
  if (physical) {
    svg.f("<path class=\"physical-line\" d=\"%s\"/>",
          step_path(chart.steps, p, held, false).c_str());
  }
  step_tooltips(svg, chart, p);
  marks(svg, chart.marks, p, from_ns, to_ns);
  ooms(svg, chart.ooms, p, from_ns, to_ns);
  svg.s("</svg>");
  return svg.take();
}

std::string bar_chart_svg(const BarChart& chart) {
  using namespace bars;
  if (chart.bars.empty()) return {};
  std::uint64_t max = 1;
  for (const Bar& b : chart.bars) max = std::max(max, b.value);
  const double height = kFirstRow + kRow * static_cast<double>(chart.bars.size()) + 8;
  Svg svg;
  svg.f(
      "<svg class=\"chart bar-chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f "
      "%.0f\" role=\"img\">",
      kWidth, height);
  svg.f("<text class=\"chart-title\" x=\"%.1f\" y=\"22\">", kBarStart);
  svg.e(chart.title);
  svg.s("</text>");
  for (std::size_t i = 0; i < chart.bars.size(); ++i) {
    const Bar& b = chart.bars[i];
    const double y = kFirstRow + kRow * static_cast<double>(i);
    double length = static_cast<double>(b.value) / static_cast<double>(max) * kBarMax;
    if (b.value != 0) length = std::max(length, 1.0);
    svg.s("<g class=\"bar\">");
    svg.title(b.tooltip);
    svg.f("<text class=\"bar-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", kLabelEnd,
          y + kBarHeight / 2 + 4);
    svg.e(shortened(b.label, kLabelChars));
    svg.s("</text>");
    svg.f("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>", kBarStart, y, length,
          kBarHeight);
    svg.f("<text class=\"bar-value\" x=\"%.1f\" y=\"%.1f\">", kBarStart + length + 6,
          y + kBarHeight / 2 + 4);
    svg.e(b.value_text);
    svg.s("</text></g>");
  }
  svg.s("</svg>");
  return svg.take();
}

}  // namespace cudefrag::analyzer
