// The report as text for a terminal (80 columns where the data allows).
#pragma once

#include <string>

#include "analyzer/report/report_data.hpp"

namespace cudefrag::analyzer {

std::string text_report(const ReportData& data);

}  // namespace cudefrag::analyzer
