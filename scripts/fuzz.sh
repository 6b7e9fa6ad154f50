#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets of Tests/Fuzz and runs them (make fuzz).
#
#   scripts/fuzz.sh [TARGET...]          build, then fuzz each target in turn (all by default)
#   scripts/fuzz.sh build [TARGET...]    build only
#   scripts/fuzz.sh list                 the targets
#
#   FUZZ_SECONDS   time per target, at most (default 60)
#   FUZZ_RUNS      executions per target, at most (default 1000000); a target
#                  stops at whichever limit it reaches first
#   FUZZ_SANITIZE  swiftc -sanitize= value (default fuzzer,address; `fuzzer` alone runs faster)
#   FUZZ_FLAGS     more libFuzzer flags, e.g. FUZZ_FLAGS=-seed=1
#
# A target is TARGETFuzz.check in Tests/SUITE/Fuzz/ (the same files the
# corpus replay tests of `make test` use) behind a libFuzzer entry point this
# script writes (entry_point below), linked against FuzzSupport (Tests/FuzzSupport) and its module
# (ToroVMM with CKVM, ToroKernelPortable or WebServerCore) compiled with
# -enable-testing and the fuzzer's coverage. All
# of it is plain swiftc into .build-fuzz/, apart from SwiftPM's .build/, so
# `swift build` and `swift test` neither see nor wait for any of it; a module
# is rebuilt only when its sources, its checks or this script changed.
#
# Each run starts from the committed corpus (Tests/Fuzz/TARGET/corpus, read
# only) and the working corpus in .build-fuzz/corpus/TARGET (new inputs go
# there and it grows across runs). Crash reproducers go to
# .build-fuzz/artifacts/TARGET/, each run's whole output to
# .build-fuzz/logs/TARGET.log. The script ends with one line per target
# (executions, time, coverage, crashed or not) and exits non-zero if any
# target crashed (a Swift trap, a broken invariant, a sanitizer report, a hang
# of 10 s or more on one input, running out of memory).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if ! command -v swiftc >/dev/null 2>&1; then
    export PATH="${TORO_TOOLCHAIN:-/opt/swift/usr/bin}:$PATH"
fi

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_RUNS=${FUZZ_RUNS:-1000000}
FUZZ_SANITIZE=${FUZZ_SANITIZE:-fuzzer,address}
FUZZ_FLAGS=${FUZZ_FLAGS:-}
build="$root/.build-fuzz"
# Separate outputs per sanitizer set: switching FUZZ_SANITIZE never mixes objects.
out="$build/${FUZZ_SANITIZE//,/-}"

# TARGET:MODULE, in the order they run.
all_targets=(ELFLoader:ToroVMM Virtio:ToroVMM NetPackets:ToroKernelPortable NetStack:ToroKernelPortable
    HTTPRequest:WebServerCore HTTPSession:WebServerCore)

module_of() {
    local entry
    for entry in "${all_targets[@]}"; do
        [[ ${entry%%:*} == "$1" ]] && { echo "${entry#*:}"; return 0; }
    done
    return 1
}

suite_of() {
    case $1 in
        ToroVMM) echo ToroVMMTests ;;
        ToroKernelPortable) echo ToroKernelTests ;;
        WebServerCore) echo WebServerTests ;;
    esac
}

# A module's sources, as Package.swift lists them (read from it, so there is one list).
sources_of() {
    case $1 in
        FuzzSupport) find Tests/FuzzSupport -name '*.swift' | sort ;;
        ToroVMM) find Sources/ToroVMM -name '*.swift' | sort ;;
        ToroKernelPortable)
            sed -n '/^let kernelPortableSources = \[/,/^\]/p' Package.swift | grep -o '"[^"]*\.swift"' | tr -d '"' \
                | sed 's|^|Sources/ToroKernel/|' ;;
        WebServerCore)
            sed -n '/name: "WebServerCore"/,/^        ),/p' Package.swift | sed -n '/sources:/,/\]/p' \
                | grep -o '"[^"]*\.swift"' | tr -d '"' | sed 's|^|Examples/WebServer/|' ;;
    esac
}

# True when $1 is missing or older than any of the other arguments.
stale() {
    local target=$1 input
    shift
    [[ -e $target ]] || return 0
    for input in "$@"; do
        [[ $input -nt $target ]] && return 0
    done
    return 1
}

swift_flags=(-O -gline-tables-only -swift-version 6 -sanitize="$FUZZ_SANITIZE" -parse-as-library)

# CKVM for ToroVMM: its C file, and a module map over its header (SwiftPM makes one; plain swiftc needs it).
build_ckvm() {
    mkdir -p "$out/CKVM"
    if stale "$out/CKVM/CKVM.o" Sources/CKVM/CKVM.c Sources/CKVM/include/CKVM.h boot/toro_boot.h "$0"; then
        printf 'module CKVM {\n    umbrella header "%s"\n    export *\n}\n' "$root/Sources/CKVM/include/CKVM.h" \
            >"$out/CKVM/module.modulemap"
        clang -c -O1 -g -w -I Sources/CKVM/include Sources/CKVM/CKVM.c -o "$out/CKVM/CKVM.o" || return 1
    fi
}

# libMODULE.a and MODULE.swiftmodule, with -enable-testing for the checks' @testable import.
build_module() {
    local module=$1
    local sources
    mapfile -t sources < <(sources_of "$module")
    [[ ${#sources[@]} -gt 0 ]] || { echo "fuzz.sh: no sources found for $module" >&2; return 1; }
    local extra=()
    if [[ $module == ToroVMM ]]; then
        build_ckvm || return 1
        extra=(-I "$out/CKVM")
    fi
    mkdir -p "$out/modules" "$out/lib"
    if stale "$out/lib/lib$module.a" "${sources[@]}" "$0"; then
        echo "fuzz.sh: building $module (${#sources[@]} files)"
        swiftc "${swift_flags[@]}" -wmo -enable-testing -module-name "$module" -emit-library -static \
            -emit-module -emit-module-path "$out/modules/$module.swiftmodule" "${extra[@]}" \
            -o "$out/lib/lib$module.a" "${sources[@]}" || return 1
    fi
}

# The libFuzzer entry point of target $1: its input through $1Fuzz.check, and
# any broken invariant a crash libFuzzer records (with the input that did it).
entry_point() {
    cat <<SWIFT
// Written by scripts/fuzz.sh: the libFuzzer entry point of the $1 target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        try ${1}Fuzz.check([UInt8](UnsafeBufferPointer(start: data, count: size)))
    } catch {
        fatalError("$1: \(error)")
    }
    return 0
}
SWIFT
}

build_target() {
    local target=$1 module
    module=$(module_of "$target") || { echo "fuzz.sh: no target $target (see scripts/fuzz.sh list)" >&2; return 1; }
    build_module FuzzSupport || return 1
    build_module "$module" || return 1
    local suite checks
    suite=$(suite_of "$module")
    mapfile -t checks < <(find "Tests/$suite/Fuzz" -name '*.swift' | sort)
    local extra=()
    [[ $module == ToroVMM ]] && extra=(-I "$out/CKVM" "$out/CKVM/CKVM.o")
    mkdir -p "$out/bin" "$out/entry"
    local entry="$out/entry/$target.swift"
    entry_point "$target" >"$entry.new"
    if cmp -s "$entry.new" "$entry"; then rm "$entry.new"; else mv "$entry.new" "$entry"; fi
    if stale "$out/bin/$target" "$entry" "${checks[@]}" "$out/lib/lib$module.a" "$out/lib/libFuzzSupport.a"; then
        echo "fuzz.sh: building $target"
        swiftc "${swift_flags[@]}" -use-ld=lld -module-name "Fuzz$target" -I "$out/modules" "${extra[@]}" \
            "$entry" "${checks[@]}" "$out/lib/lib$module.a" "$out/lib/libFuzzSupport.a" -o "$out/bin/$target" || return 1
    fi
}

# The figures of a finished run, from its log.
stat_of() { grep -E "^stat::$1:" "$2" | tail -1 | awk '{print $2}'; }

run_target() {
    local target=$1
    local log="$build/logs/$target.log"
    mkdir -p "$build/logs" "$build/corpus/$target" "$build/artifacts/$target"
    echo "fuzz.sh: fuzzing $target for at most $FUZZ_SECONDS s or $FUZZ_RUNS executions"
    local start=$SECONDS
    # shellcheck disable=SC2086  # FUZZ_FLAGS is a list of flags
    # Swift's own crash backtracer off: libFuzzer's report names the Swift runtime
    # failure and the frames already, and the backtracer's reads upset ASan.
    SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no} ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} "$out/bin/$target" \
        -runs="$FUZZ_RUNS" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$build/artifacts/$target/" $FUZZ_FLAGS \
        "$build/corpus/$target" "Tests/Fuzz/$target/corpus" >"$log" 2>&1
    local status=$?
    local elapsed=$((SECONDS - start))
    local runs cov ft corpus crashed
    runs=$(stat_of number_of_executed_units "$log")
    # The last status line: "#N  DONE  cov: C ft: F corp: U/S ..." (or the last one before a crash).
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -oE 'ft: [0-9]+' "$log" | tail -1 | awk '{print $2}')
    corpus=$(grep -oE 'corp: [0-9]+/[0-9]+[bKM]b' "$log" | tail -1 | awk '{print $2}')
    if [[ $status -ne 0 ]] || grep -qE '^==[0-9]+== ?ERROR|Test unit written to' "$log"; then
        crashed="CRASHED (status $status): $(grep -oE 'Test unit written to [^ ]+' "$log" | tail -1 | sed 's/Test unit written to //')"
        # The first lines that say what went wrong.
        grep -E 'Swift runtime failure|Fatal error|ERROR: (libFuzzer|AddressSanitizer)' "$log" | head -3 | sed 's/^/    /'
    else
        crashed="no crash"
    fi
    printf '%-12s %10s executions %5s s  cov %5s  ft %6s  corpus %-10s %s\n' "$target" "${runs:-?}" "$elapsed" \
        "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$crashed" | tee -a "$build/summary.txt"
    [[ $crashed == "no crash" ]]
}

command=run
case "${1:-}" in
    build | run) command=$1; shift ;;
    list) for entry in "${all_targets[@]}"; do echo "${entry%%:*}"; done; exit 0 ;;
esac
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
    for entry in "${all_targets[@]}"; do targets+=("${entry%%:*}"); done
fi

for target in "${targets[@]}"; do
    build_target "$target" || { echo "fuzz.sh: building $target failed" >&2; exit 2; }
done
[[ $command == build ]] && exit 0

mkdir -p "$build"
: >"$build/summary.txt"
failed=0
for target in "${targets[@]}"; do
    run_target "$target" || failed=1
done
echo
echo "==== fuzz summary (FUZZ_SECONDS=$FUZZ_SECONDS FUZZ_RUNS=$FUZZ_RUNS FUZZ_SANITIZE=$FUZZ_SANITIZE) ===="
cat "$build/summary.txt"
if [[ $failed -ne 0 ]]; then
    echo "fuzz.sh: a target crashed; reproduce with SWIFT_BACKTRACE=enable=no $out/bin/TARGET ARTIFACT" \
        "(whole output in .build-fuzz/logs/TARGET.log)"
    exit 1
fi
