#!/usr/bin/env bash
# stress-tests.sh: runs the integration tests ROUNDS times while busy loops
# keep every host core loaded, and counts what failed. (make stress)
#
#   scripts/stress-tests.sh [ROUNDS]      ROUNDS: argument, else $ROUNDS, else 10
#
# A test that passes on an idle host but fails on a loaded one depends on
# timing: on how much CPU a thread gets, or how soon. The integration tests
# must not; this is how to find those that do. $HOGS sets the number of busy
# loops (default: one per core, from nproc), $TESTS the swift test --filter
# (default IntegrationTests: all of them). Each round's full output is kept
# in .build/stress/round-K.log. Prints "round K: N passed, M failed" per round
# and a summary naming every failed test; exits 1 if any test failed.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${1:-${ROUNDS:-10}}"
hogs_wanted="${HOGS:-$(nproc)}"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "stress-tests: ROUNDS must be a whole number above 0, got '$rounds'" >&2; exit 2; }
[[ "$hogs_wanted" =~ ^[0-9]+$ ]] || { echo "stress-tests: HOGS must be a whole number, got '$hogs_wanted'" >&2; exit 2; }
tests="${TESTS:-IntegrationTests}"
swift="${SWIFT:-swift}"
logs=.build/stress
mkdir -p "$logs"
rm -f "$logs"/round-*.log

# Built before the load starts: the rounds then only run tests.
echo "stress-tests: building the tests and images"
"$swift" build --build-tests >"$logs/build.log" 2>&1 || { tail -20 "$logs/build.log"; echo "stress-tests: the build failed" >&2; exit 2; }
scripts/build-images.sh >>"$logs/build.log" 2>&1 || { tail -20 "$logs/build.log"; echo "stress-tests: the images failed to build" >&2; exit 2; }

hogs=()
stop_hogs() {
    if [[ ${#hogs[@]} -gt 0 ]]; then
        kill "${hogs[@]}" 2>/dev/null || true
        wait "${hogs[@]}" 2>/dev/null || true
        hogs=()
    fi
}
trap stop_hogs EXIT
trap 'stop_hogs; exit 130' INT
trap 'stop_hogs; exit 143' TERM
for _ in $(seq "$hogs_wanted"); do
    (while :; do :; done) &
    hogs+=($!)
done
echo "stress-tests: $rounds rounds of the tests matching $tests, $hogs_wanted busy loops on $(nproc) cores"

total_passed=0 total_failed=0
failures=()
for round in $(seq "$rounds"); do
    log="$logs/round-$round.log"
    status=0
    scripts/run-tests.sh --log "$log" --skip-build --filter "$tests" >/dev/null 2>&1 || status=$?
    passed=$(grep -cE "^Test Case '[^']+' passed " "$log" || true)
    skipped=$(grep -cE "^Test Case '[^']+' skipped " "$log" || true)
    mapfile -t failed < <(grep -oE "^Test Case '[^']+' failed " "$log" | sed -E "s/^Test Case '([^']+)' failed $/\1/")
    # A crash ends the test process: the test that started last and never ended.
    crashed=$(grep -oE "^Test Case '[^']+' started" "$log" | tail -1 | sed -E "s/^Test Case '([^']+)' started$/\1/")
    if [[ -n "$crashed" ]] && ! grep -qE "^Test Case '$crashed' (passed|failed|skipped) " "$log"; then
        failed+=("$crashed (crashed)")
    fi
    if [[ $status -ne 0 && ${#failed[@]} -eq 0 ]]; then
        failed+=("(the run failed without a failed test; see $log)")
    fi
    echo "round $round: $passed passed, ${#failed[@]} failed${skipped:+, $skipped skipped}"
    for name in "${failed[@]}"; do
        echo "    FAILED $name"
        failures+=("round $round: $name")
    done
    total_passed=$((total_passed + passed))
    total_failed=$((total_failed + ${#failed[@]}))
done
stop_hogs

echo
if [[ $total_failed -eq 0 ]]; then
    echo "stress-tests: all $rounds rounds passed ($total_passed test runs passed, 0 failed)"
    exit 0
fi
echo "stress-tests: $total_failed failed test runs in $rounds rounds ($total_passed passed); logs in $logs/"
# The same test failing in several rounds is listed once, with its count.
printf '%s\n' "${failures[@]}" | sed -E 's/^round [0-9]+: //' | sort | uniq -c | sort -rn | sed -E 's/^ *([0-9]+) (.*)$/    \2: failed in \1 of '"$rounds"' rounds/'
exit 1
