// The post-mortem of one out-of-memory error, from the arena state the OOM record carries and
// what the replay held live: why the request failed and what could not be reclaimed, as far as
// the trace tells.
#pragma once

#include "analyzer/report/report_data.hpp"

namespace cudefrag::analyzer {

// Fills oom.reasons and oom.outside_arena from oom.state, oom.requested and oom.traced_live.
void explain_oom(OomReport& oom);

}  // namespace cudefrag::analyzer
