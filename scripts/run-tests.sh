#!/usr/bin/env bash
# run-tests.sh: runs `swift test` (what make test, unit-test and
# integration-test do) and ends with a summary of the run.
#
#   scripts/run-tests.sh [--log FILE] [SWIFT TEST ARGUMENTS...]
#
# `swift test` prints the XCTest results and then swift-testing's own run
# ("Test run with 0 tests ... passed"), so a failing run used to end on a line
# saying it passed. This script passes the output through as it comes, then
# ends with one line of counts and, on failure, the name and the first line
# of every error of each failed test, and exits with swift test's status.
# --log keeps the whole output in FILE (scripts/stress-tests.sh reads it).
set -uo pipefail
cd "$(dirname "$0")/.."

log=""
if [[ "${1:-}" == "--log" ]]; then
    log="${2:?--log needs a file}"
    shift 2
fi
if [[ -z "$log" ]]; then
    log="$(mktemp "${TMPDIR:-/tmp}/toro-tests.XXXXXX")"
    trap 'rm -f "$log"' EXIT
fi

"${SWIFT:-swift}" test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# XCTest's own lines: "Test Case 'Suite.test' passed (0.1 seconds)." and
# "FILE:LINE: error: Suite.test : MESSAGE".
count() { grep -cE "^Test Case '[^']+' $1 " "$log"; }
passed=$(count passed)
failed=$(count failed)
skipped=$(count skipped)
total=$((passed + failed + skipped))
echo
if [[ $status -eq 0 && $failed -eq 0 ]]; then
    echo "swift test passed: $passed of $total tests passed, $skipped skipped"
    exit 0
fi

# A test that crashed the test process never reports 'failed': it is the one that started last and never ended.
crashed=$(grep -oE "^Test Case '[^']+' started" "$log" | tail -1 | sed -E "s/^Test Case '([^']+)' started$/\1/")
if [[ -n "$crashed" ]] && grep -qE "^Test Case '$crashed' (passed|failed|skipped) " "$log"; then
    crashed=""
fi
echo "==== swift test FAILED (status $status): $failed failed${crashed:+, 1 crashed}, $passed passed, $skipped skipped ===="
while IFS= read -r name; do
    echo "FAILED $name"
    # The first line of each of its errors, shortened: enough to see what broke.
    grep -F ": error: $name : " "$log" | sed -e 's/^.*: error: [^ ]* : /    /' | cut -c1-300
done < <(grep -oE "^Test Case '[^']+' failed " "$log" | sed -E "s/^Test Case '([^']+)' failed $/\1/")
if [[ -n "$crashed" ]]; then
    echo "CRASHED $crashed: the test process stopped while it ran, and the tests after it did not run"
    grep -E "Fatal error|unexpected signal" "$log" | head -3 | cut -c1-300 | sed -e 's/^/    /'
elif [[ $total -eq 0 ]]; then
    echo "no test ran; the first errors:"
    grep -E "error:" "$log" | head -20 | cut -c1-300
fi
exit $((status == 0 ? 1 : status))
