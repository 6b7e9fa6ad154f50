#!/usr/bin/env python3
"""Boot benchmark: whole-process wall time of `toro-vmm run IMAGE` and the time
from process start to the guest's first console byte, over N runs.

Usage: scripts/bench-boot.py [--runs 20] [--vmm .build/release/toro-vmm] [IMAGE] [-- extra toro-vmm args]

Prints median and p90 for both, next to the cost of spawning /bin/true measured
in the same run, so the figures can be compared across machines as ratios.
"""
import argparse
import json
import os
import tempfile
import statistics
import subprocess
import sys
import time


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def run_once(command):
    start = time.perf_counter_ns()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    first = process.stdout.read(1)
    first_at = time.perf_counter_ns()
    process.stdout.read()
    status = process.wait()
    end = time.perf_counter_ns()
    return status, (end - start) / 1e6, ((first_at - start) / 1e6) if first else None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vmm", default=".build/release/toro-vmm")
    parser.add_argument("image", nargs="?", default=".build/images/HelloWorld.elf")
    parser.add_argument("extra", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not os.path.exists("/dev/kvm"):
        print("bench-boot: /dev/kvm is missing; nothing to measure", file=sys.stderr)
        return 2
    for path in (args.vmm, args.image):
        if not os.path.exists(path):
            print(f"bench-boot: {path} is missing; run `make release images` first", file=sys.stderr)
            return 2
    extra = [a for a in args.extra if a != "--"]
    command = [args.vmm, "run", args.image, "--stats", "none"] + extra
    stats_file = os.path.join(tempfile.mkdtemp(prefix="toro-bench-"), "stats.json")
    stats_command = [args.vmm, "run", args.image, "--stats", "json", "--stats-file", stats_file] + extra

    run_once(command)  # warm the page cache
    walls, firsts, baseline, setups, emulated = [], [], [], [], []
    for _ in range(args.runs):
        status, wall, first = run_once(command)
        if status != 0:
            print(f"bench-boot: {' '.join(command)} exited with {status}", file=sys.stderr)
            return 1
        walls.append(wall)
        if first is not None:
            firsts.append(first)
        baseline.append(run_once(["/bin/true"])[1])
        # A second run with JSON statistics, for where the time goes (not timed itself).
        run_once(stats_command)
        with open(stats_file) as f:
            stats = json.load(f)
        setups.append(stats["guest_start_ns"] / 1e6)
        counted = [v["kvm"].get("insn_emulation") for v in stats["vcpus"]]
        if all(c is not None for c in counted):
            emulated.append(sum(counted))

    def line(name, values):
        return f"{name:<34} median {statistics.median(values):7.2f} ms   p90 {percentile(values, 0.9):7.2f} ms"

    print(f"boot benchmark: {' '.join(command)} ({args.runs} runs)")
    print(line("whole run (spawn to exit)", walls))
    if firsts:
        print(line("spawn to first console byte", firsts))
    print(line("VMM start to first guest entry", setups))
    print(line("spawn of /bin/true (floor)", baseline))
    if emulated:
        print(f"{'guest instructions KVM emulated':<34} median {statistics.median(emulated):7.0f}")
    print(f"{'whole run / floor':<34} {statistics.median(walls) / statistics.median(baseline):7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
