// The report as JSON, for scripts: the same numbers as the text (bytes as integers, times as
// seconds since the program started). The layout is described by the example files
// examples/traces/*.json.expected; "schema" changes when a field changes meaning or goes away.
#pragma once

#include <string>

#include "analyzer/report/report_data.hpp"

namespace cudefrag::analyzer {

std::string json_report(const ReportData& data);

}  // namespace cudefrag::analyzer
