// `cudefrag report --html FILE`: the page is well-formed for every element it emits, has its
// charts with their labels, escapes every string from the trace, and matches the golden page
// examples/traces/oom.html.expected (regenerated, like the other golden files, by
// tests/analyzer/report/regenerate_golden.sh).
#include "analyzer/report/html_report.hpp"

#include <gtest/gtest.h>
#include <stdio.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "analyzer/report/html_escape.hpp"
#include "analyzer/report/options.hpp"
#include "analyzer/report/report_command.hpp"
#include "analyzer/report/svg_chart.hpp"
#include "tests/analyzer/report/trace_builder.hpp"
#include "tests/analyzer/support/command_run.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::analyzer {
namespace {

using testing::TraceBuilder;
using trace::testing::TempDir;

const std::string kSource = CUDEFRAG_SOURCE_DIR;

using Result = testing::CommandResult;
using testing::read_file;

Result report(std::vector<std::string> args) {
  return testing::run_in_process(report_main, std::move(args));
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::size_t occurrences(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++n;
  }
  return n;
}

// "at line N, column C: 'made' instead of 'expected'": the page is too long to print whole.
std::string first_difference(const std::string& made, const std::string& expected) {
  std::istringstream a(made);
  std::istringstream b(expected);
  std::string x;
  std::string y;
  for (int line = 1;; ++line) {
    const bool more_a = static_cast<bool>(std::getline(a, x));
    const bool more_b = static_cast<bool>(std::getline(b, y));
    if (!more_a && !more_b) return "(same lines)";
    if (!more_a) x.clear();
    if (!more_b) y.clear();
    if (x != y || more_a != more_b) {
      std::size_t at = 0;
      while (at < x.size() && at < y.size() && x[at] == y[at]) ++at;
      const std::size_t from = at > 60 ? at - 60 : 0;
      return "at line " + std::to_string(line) + ", column " + std::to_string(at + 1) + ": '" +
             x.substr(std::min(from, x.size()), 160) + "' instead of '" +
             y.substr(std::min(from, y.size()), 160) + "'";
    }
  }
}

// Checks what a browser would otherwise silently repair: every element the page opens is closed
// in order (void elements and SVG's "/>" excepted), no '<' or '>' stands in text or inside a
// tag's attributes, and every '&' starts a character reference. Returns the first problem.
std::string markup_problem(const std::string& page) {
  static const std::vector<std::string> kVoid = {"meta", "br", "img", "hr", "input", "link"};
  std::vector<std::string> open;
  std::size_t at = 0;
  if (page.rfind("<!DOCTYPE html>\n", 0) != 0) return "no doctype";
  at = page.find('\n') + 1;
  while (at < page.size()) {
    const char c = page[at];
    if (c == '>') return "a '>' in text at " + std::to_string(at);
    if (c == '&') {
      std::size_t end = at + 1;
      if (end < page.size() && page[end] == '#') ++end;
      while (end < page.size() && std::isalnum(static_cast<unsigned char>(page[end]))) ++end;
      if (end == at + 1 || end >= page.size() || page[end] != ';') {
        return "a bare '&' at " + std::to_string(at);
      }
      at = end + 1;
      continue;
    }
    if (c != '<') {
      ++at;
      continue;
    }
    const std::size_t end = page.find('>', at);
    if (end == std::string::npos) return "an unclosed tag at " + std::to_string(at);
    const std::string tag = page.substr(at + 1, end - at - 1);
    if (tag.find('<') != std::string::npos) return "a '<' inside the tag <" + tag + ">";
    at = end + 1;
    if (tag.empty()) return "an empty tag";
    if (tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (open.empty() || open.back() != name) {
        return "</" + name + "> closes <" + (open.empty() ? std::string("nothing") : open.back()) +
               ">";
      }
      open.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" \n"));
    if (tag.back() == '/' || std::find(kVoid.begin(), kVoid.end(), name) != kVoid.end()) continue;
    open.push_back(name);
    if (name == "style" || name == "title") {
      // Raw text up to the closing tag: the style sheet is ours; a title's text is escaped.
      const std::size_t close = page.find("</" + name + ">", at);
      if (close == std::string::npos) return "<" + name + "> is never closed";
      if (name == "title" && page.substr(at, close - at).find('<') != std::string::npos) {
        return "a '<' in a title";
      }
      at = close;
    }
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  return {};
}

// The golden OOM trace's page, made as the golden test makes its reports: from the source
// directory with a relative path, so the page does not depend on where the checkout lives.
std::string oom_page(std::vector<std::string> extra = {}) {
  TempDir dir;
  const std::filesystem::path before = std::filesystem::current_path();
  std::filesystem::current_path(kSource);
  std::vector<std::string> args = std::move(extra);
  args.insert(args.end(), {"--html", dir.file("oom.html"), "examples/traces/oom.trace"});
  const Result r = report(args);
  std::filesystem::current_path(before);
  EXPECT_EQ(r.status, 0) << r.err;
  return read_file(dir.file("oom.html"));
}

TEST(HtmlEscape, EscapesMarkupAndControlCharacters) {
  EXPECT_EQ(html_escaped("<lambda> & \"x\" 'y'"), "&lt;lambda&gt; &amp; &quot;x&quot; &#39;y&#39;");
  EXPECT_EQ(html_escaped(std::string("a\0b\x1b\tc\n", 7)), "a\uFFFDb\uFFFD\tc\n");
  EXPECT_EQ(html_escaped("Grüße"), "Grüße");
}

TEST(HtmlEscape, ShortensByCharactersNotBytes) {
  EXPECT_EQ(shortened("abcdef", 6), "abcdef");
  EXPECT_EQ(shortened("abcdefg", 6), "abcde…");
  EXPECT_EQ(shortened("ääääää", 6), "ääääää");
  EXPECT_EQ(shortened("äääääää", 6), "äääää…");
  EXPECT_EQ(shortened("abc", 0), "");
}

TEST(SvgChart, NiceTicks) {
  Ticks t = nice_ticks(0, 6.0, 5);
  EXPECT_DOUBLE_EQ(t.step, 2);
  EXPECT_EQ(t.count, 4u);  // 0 2 4 6
  EXPECT_EQ(t.decimals, 0);
  t = nice_ticks(0.005, 4.4, 10);
  EXPECT_DOUBLE_EQ(t.step, 0.5);
  EXPECT_DOUBLE_EQ(t.first, 0.5);
  EXPECT_EQ(t.count, 8u);  // 0.5 ... 4.0
  EXPECT_EQ(t.decimals, 1);
  t = nice_ticks(3, 3, 5);  // no range: still ticks
  EXPECT_GE(t.count, 1u);
}

TEST(SvgChart, MemoryChartDrawsStepsMarkersAndLabels) {
  MemoryChart chart;
  chart.title = "Memory <over> time";
  chart.live_legend = "live";
  chart.steps = {{0, 1'000'000'000, 512ull << 20, 1ull << 30},
                 {1'000'000'000, 2'000'000'000, 768ull << 20, std::nullopt}};
  chart.ooms = {{1'500'000'000, "OOM #1: 3.0 GiB", "requested at <lambda>"},
                {9'000'000'000, "outside", "outside the time span"}};
  chart.marks = {{500'000'000, "epoch </svg>", "mark"}};
  const std::string svg = memory_chart_svg(chart);
  EXPECT_TRUE(contains(svg, "Memory &lt;over&gt; time")) << svg;
  EXPECT_TRUE(contains(svg, "memory (GiB)"));
  EXPECT_TRUE(contains(svg, "time since the program started (s)"));
  EXPECT_TRUE(contains(svg, "physical memory held by the arena"));
  EXPECT_TRUE(contains(svg, ">OOM #1: 3.0 GiB</text>"));
  EXPECT_TRUE(contains(svg, "requested at &lt;lambda&gt;"));
  EXPECT_TRUE(contains(svg, "epoch &lt;/svg&gt;"));
  EXPECT_FALSE(contains(svg, "outside"));
  EXPECT_EQ(occurrences(svg, "<g class=\"oom\">"), 1u);
  // The physical line covers only the step that has it: one run, no second "M".
  const std::size_t line = svg.find("class=\"physical-line\" d=\"");
  ASSERT_NE(line, std::string::npos);
  EXPECT_EQ(svg.substr(line, svg.find("\"/>", line) - line).find('M', 30), std::string::npos);
  EXPECT_EQ(markup_problem("<!DOCTYPE html>\n" + svg), "");
  EXPECT_EQ(memory_chart_svg(MemoryChart{}), "");
}

TEST(SvgChart, BarLengthsAreProportional) {
  BarChart chart;
  chart.title = "bars";
  chart.bars = {{"big", "", 400, "400 B"}, {"half", "", 200, "200 B"}, {"none", "", 0, "0 B"}};
  const std::string svg = bar_chart_svg(chart);
  EXPECT_TRUE(contains(svg, "width=\"420.0\"")) << svg;
  EXPECT_TRUE(contains(svg, "width=\"210.0\""));
  EXPECT_TRUE(contains(svg, "width=\"0.0\""));
  EXPECT_TRUE(contains(svg, ">half</text>"));
  EXPECT_EQ(markup_problem("<!DOCTYPE html>\n" + svg), "");
}

TEST(HtmlReport, GoldenOomPageIsWellFormedAndHasItsCharts) {
  const std::string page = oom_page();
  EXPECT_EQ(markup_problem(page), "");
  EXPECT_EQ(occurrences(page, "<svg class=\"chart memory-chart\""), 1u);
  EXPECT_EQ(occurrences(page, "<svg class=\"chart bar-chart\""), 1u);
  for (const char* label :
       {"Memory over time, device 0 (Test GPU 16GB)", "memory (GiB)",
        "time since the program started (s)", "live memory (peak of each 0.220 s)",
        "physical memory held by the arena", "out-of-memory error", ">OOM #1: 3.0 GiB</text>",
        "requested at forward (/app/model.py:47)", ">epoch 1</text>",
        "Live at the peak (3.350 s) by call site", ">load_weights (/app/train.py:12)</text>",
        "2.0 GiB · 58% · 4 allocations"}) {
    EXPECT_TRUE(contains(page, label)) << label;
  }
  // The tables of the text report.
  for (const char* table :
       {"id=\"run\"", "id=\"oom\"", "id=\"consumers\"", "id=\"allocations\"", "id=\"short-lived\"",
        "id=\"sizes\"", "id=\"marks\"", "largest extent 1.0 GiB", "fragmentation: 5.2 GiB",
        "at <module> (/app/train.py:95)"}) {
    EXPECT_TRUE(contains(page, table) || contains(page, html_escaped(table))) << table;
  }
  // Nothing from the network.
  EXPECT_FALSE(contains(page, "<script"));
  EXPECT_EQ(occurrences(page, "http"), occurrences(page, "xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_FALSE(contains(page, "src="));
}

TEST(HtmlReport, MatchesTheGoldenPage) {
  const std::string page = oom_page();
  const std::string path = kSource + "/examples/traces/oom.html.expected";
  if (testing::regenerating_golden()) {
    testing::write_file(path, page);
    GTEST_SKIP() << "regenerated " << path;
  }
  const std::string expected = read_file(path);
  EXPECT_TRUE(page == expected) << "the page differs from " << path << " "
                                << first_difference(page, expected)
                                << "; if that is meant, regenerate it with regenerate_golden.sh";
}

TEST(HtmlReport, FiltersApplyAsForText) {
  const std::string site = oom_page({"--site", "attention"});
  EXPECT_EQ(markup_problem(site), "");
  EXPECT_TRUE(contains(site, "call sites mentioning &quot;attention&quot;"));
  EXPECT_TRUE(contains(site, "not shown with --site"));
  EXPECT_FALSE(contains(site, "class=\"physical-line\""));

  const std::string range = oom_page({"--from", "1.5", "--to", "3.2"});
  EXPECT_EQ(markup_problem(range), "");
  EXPECT_FALSE(contains(range, "OOM #1"));  // at 4.05 s
  EXPECT_FALSE(contains(range, ">epoch 1</text>"));
  EXPECT_TRUE(contains(range, ">epoch 2</text>"));
}

TEST(HtmlReport, MultiDeviceTraceHasAChartPerDevice) {
  TempDir dir;
  const std::string trace = kSource + "/examples/traces/multi_device.trace";
  Result r = report({"--html", dir.file("all.html"), trace});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string all = read_file(dir.file("all.html"));
  EXPECT_EQ(markup_problem(all), "");
  EXPECT_EQ(occurrences(all, "<svg class=\"chart memory-chart\""), 2u);
  EXPECT_TRUE(contains(all, "Memory over time, device 1"));
  r = report({"--device", "1", "--html", dir.file("one.html"), trace});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string one = read_file(dir.file("one.html"));
  EXPECT_EQ(occurrences(one, "<svg class=\"chart memory-chart\""), 1u);
  EXPECT_FALSE(contains(one, "Memory over time, device 0"));
}

// Names from the trace that are markup: a Python lambda, a mark written to break out of the
// page, a device name and a trace path with quotes.
TEST(HtmlReport, EscapesEveryStringFromTheTrace) {
  TempDir dir;
  const std::string path = dir.file("a\"<b>'&.trace");
  {
    TraceBuilder t(path);
    t.process(1, 0, 1'000'000'000, 2, "/bin/<prog>", {"prog", "--x=<y>"});
    t.config("mode", "<arena>");
    t.entry_point(0, "cudaMalloc<x>");
    t.entry_point(1, "cudaFree");
    t.device(0, "GPU <b>bold</b>", 1ull << 30);
    const std::uint32_t stack = t.stack(
        {}, {{"/app/<x>.py", "<lambda>", 3}, {"/app/main.py", "<script>alert(1)</script>", 9}});
    t.alloc(10, 1'100'000'000, 0, 0, 0x1000, 1 << 20, 1 << 20, stack);
    t.mark(10, 1'200'000'000, "</svg><img src=x onerror=alert(1)> & co");
    t.oom(10, 1'300'000'000, 0, 0, 1ull << 30, stack, {1 << 20, 1 << 20, 0, 1 << 20, 0, 0, 0, 0});
    t.free(10, 1'400'000'000, 1, 0, 0x1000, 1 << 20);
    t.end(1'500'000'000);
  }
  const Result r = report({"--html", dir.file("out.html"), path});
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string page = read_file(dir.file("out.html"));
  EXPECT_EQ(markup_problem(page), "");
  for (const char* raw : {"<lambda>", "<script", "<img", "<b>", "<prog>", "<arena>", "<x>", "<y>",
                          "a\"<b>'&.trace", "& co"}) {
    EXPECT_FALSE(contains(page, raw)) << raw;
  }
  for (const char* escaped :
       {"&lt;lambda&gt; (/app/&lt;x&gt;.py:3)", "&lt;script&gt;alert(1)",
        "&lt;/svg&gt;&lt;img src=x onerror=alert(1)&gt; &amp; co", "GPU &lt;b&gt;bold&lt;/b&gt;",
        "a&quot;&lt;b&gt;&#39;&amp;.trace", "cudaMalloc&lt;x&gt;", "&lt;arena&gt;"}) {
    EXPECT_TRUE(contains(page, escaped)) << escaped;
  }
}

// A damaged but checksummed trace (fields holding anything) makes a well-formed page.
TEST(HtmlReport, SurvivesArbitraryFieldValues) {
  TempDir dir;
  std::mt19937_64 random(11);
  {
    TraceBuilder t(dir.file("t.trace"));
    t.process(1, 0, random() >> 8, 3, "/bin/prog", {"prog"});
    t.entry_point(0, "cudaMalloc");
    for (int i = 0; i < 600; ++i) {
      const auto thread = static_cast<std::uint32_t>(random() % 3);
      const int device = static_cast<int>(random() % 3);
      switch (random() % 5) {
        case 0:
        case 1:
          t.alloc(thread, random(), 0, device, random() % 32, random(), random(), 0);
          break;
        case 2:
          t.free(thread, random(), 0, device, random() % 32, random());
          break;
        case 3:
          t.oom(thread, random(), 0, device, random(), 0,
                {random(), random(), random(), random(), random(), random(), random(), random()});
          break;
        default:
          t.mark(thread, random(), std::string(random() % 300, static_cast<char>(random())));
          break;
      }
      if (i % 50 == 0) t.pass();
    }
  }
  const Result r = report({"--html", dir.file("out.html"), dir.file("t.trace")});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(markup_problem(read_file(dir.file("out.html"))), "");
}

TEST(HtmlReport, OptionsAndOutputs) {
  const auto parse = [](std::vector<std::string> args) {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    return parse_report_args(argv);
  };
  EXPECT_EQ(parse({"--html", "r.html", "t"}).options->html, "r.html");
  EXPECT_EQ(parse({"--html", "-", "t"}).error,
            "--html writes to a file: give its name ('-' is not supported)");
  EXPECT_EQ(parse({"--html", "x", "--json", "x", "t"}).error,
            "--html and --json name the same file");
  EXPECT_EQ(parse({"t", "--html"}).error, "--html needs a value");

  TempDir dir;
  const std::string trace = kSource + "/examples/traces/oom.trace";
  // Text on stdout as without --html; with --json - the JSON is on stdout instead.
  Result r = report({"--html", dir.file("a.html"), trace});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "Peak consumers"));
  r = report({"--json", "-", "--html", dir.file("b.html"), trace});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.front(), '{');
  EXPECT_EQ(read_file(dir.file("a.html")), read_file(dir.file("b.html")));
  r = report({"--json", dir.file("c.json"), "--html", dir.file("c.html"), trace});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(contains(read_file(dir.file("c.json")), "\"schema\""));
  EXPECT_EQ(read_file(dir.file("c.html")), read_file(dir.file("a.html")));

  r = report({"--html", "/nonexistent/dir/r.html", trace});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(contains(r.err, "cannot write '/nonexistent/dir/r.html'")) << r.err;
}

}  // namespace
}  // namespace cudefrag::analyzer
