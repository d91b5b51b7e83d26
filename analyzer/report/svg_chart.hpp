// The charts of the HTML report (html_report.hpp), drawn as inline SVG by our own code so the
// page needs nothing from the network. They take plain numbers and already-formatted text; the
// page's stylesheet (classes named in svg_chart.cpp) gives them colours and fonts.
//
// Every string given here is escaped when drawn; labels too long for the chart are shortened
// and the whole text is kept in the element's tooltip (an SVG <title>).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cudefrag::analyzer {

// One bucket of a memory timeline: the highest live (and physical) memory between start and
// end. Drawn as a step, flat over the bucket, since the peak may be anywhere in it.
struct MemoryStep {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::uint64_t live = 0;
  std::optional<std::uint64_t> physical;
};

// Something that happened at one time: a vertical line with a short label by it and the
// whole story in its tooltip.
struct TimeMarker {
  std::int64_t time_ns = 0;
  std::string label;
  std::string tooltip;
};

struct MemoryChart {
  std::string title;
  std::string live_legend;  // says what a step is, e.g. "live (peak of each 0.220 s)"
  std::vector<MemoryStep> steps;
  std::vector<TimeMarker> ooms;
  std::vector<TimeMarker> marks;
};

// An <svg class="chart memory-chart">: time in seconds across, bytes up (in the unit that suits
// the highest value), live and physical as step lines over shaded areas, OOMs as red lines,
// marks as dashed grey ones, a legend and a title. Markers outside the steps' time span are
// left out. Empty when there are no steps.
std::string memory_chart_svg(const MemoryChart& chart);

struct Bar {
  std::string label;    // shortened to fit on the left of the bar
  std::string tooltip;  // the whole story: full label, frames
  std::uint64_t value = 0;
  std::string value_text;  // written after the bar
};

struct BarChart {
  std::string title;
  std::vector<Bar> bars;  // drawn top to bottom in this order
};

// An <svg class="chart bar-chart">: one horizontal bar per entry, lengths proportional to the
// values (the longest bar is the largest value). Empty when there are no bars.
std::string bar_chart_svg(const BarChart& chart);

// Axis ticks: about `target` round values (1, 2 or 5 times a power of ten) from 0 or `low` up to
// at least `high`. Exposed for the tests.
struct Ticks {
  double first = 0;
  double step = 1;
  std::size_t count = 0;  // ticks at first, first + step, ...
  int decimals = 0;       // digits after the point that tell the ticks apart
};
Ticks nice_ticks(double low, double high, std::size_t target);

}  // namespace cudefrag::analyzer
