#!/bin/sh
# Rewrites the golden traces and expected reports in examples/traces/ from the current code:
#   tests/analyzer/report/regenerate_golden.sh BUILD_DIR
# Review the diff (git diff examples/traces/) before committing: every change must be meant.
set -eu
build=${1:?usage: $0 BUILD_DIR}
cmake --build "$build" --target analyzer_report_golden_test analyzer_html_report_test
CUDEFRAG_REGENERATE_GOLDEN=1 "$build/tests/analyzer/analyzer_report_golden_test"
# The HTML page of oom.trace (examples/traces/oom.html.expected).
CUDEFRAG_REGENERATE_GOLDEN=1 "$build/tests/analyzer/analyzer_html_report_test" \
  --gtest_filter=HtmlReport.MatchesTheGoldenPage
echo "regenerated examples/traces/; now: git diff --stat examples/traces/"
