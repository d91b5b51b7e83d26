// Text from a trace made safe to put in an HTML page or inline SVG: a Python function can be
// called `<lambda>` and a mark can say anything, so every string from the trace goes through
// html_escaped() before it reaches the page.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {

// `text` with & < > " ' as character references, and control characters other than tab and
// newline (not allowed in HTML) as U+FFFD. Safe in element content and in quoted attributes.
std::string html_escaped(std::string_view text);

// At most `max_chars` characters (UTF-8 code points) of `text`, ending in "…" when cut; never
// splits a multi-byte character. For labels that must fit a chart; the tooltip has the whole.
std::string shortened(std::string_view text, std::size_t max_chars);

// A page or drawing being written: TextBuffer plus e(), which escapes text from the trace.
class HtmlBuffer : public TextBuffer {
 public:
  void e(std::string_view text) { text_ += html_escaped(text); }
};

}  // namespace cudefrag::analyzer
