#!/usr/bin/env bash
# check-softfloat.sh: builds the kernel's soft-float routines for the host and
# checks them bit for bit against the host FPU (scripts/check-softfloat.c).
set -euo pipefail

cd "$(dirname "$0")/.."
clang="${TORO_TOOLCHAIN:-/opt/swift/usr/bin}/clang"
out=.build/softfloat-check
mkdir -p "$out"
"$clang" -O2 -c '-DSOFTFLOAT_NAME(name)=host_##name' Sources/ToroKernel/Runtime/SoftFloat.c -o "$out/SoftFloat.o"
"$clang" -O2 -c '-DMATH_NAME="host_ceil"' Sources/ToroKernel/Runtime/Math.c -o "$out/Math.o"
"$clang" -O2 -Wall scripts/check-softfloat.c "$out/SoftFloat.o" "$out/Math.o" -lm -o "$out/check"
"$out/check"
