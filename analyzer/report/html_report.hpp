// The report as one self-contained HTML page (`cudefrag report --html FILE`): the same content
// as the text report (text_report.hpp) with charts a person would rather look at than read:
// memory over time per device (live and physical, OOMs and marks marked), peak consumers as bars.
//
// The page loads nothing: its style sheet is inline and the charts are inline SVG drawn by
// svg_chart.hpp, so it opens offline and can be mailed or attached to an issue as it is. It
// has no scripts; tooltips are SVG <title> elements. Every string from the trace is escaped.
// The page depends only on the data (no date of writing), so a golden file can check it.
#pragma once

#include <string>

#include "analyzer/report/report_data.hpp"

namespace cudefrag::analyzer {

std::string html_report(const ReportData& data);

}  // namespace cudefrag::analyzer
