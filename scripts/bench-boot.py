#!/usr/bin/env python3
"""Boot benchmark: toro-vmm against a minimal C loader, per execution mode.

For every mode measured (on a kvm_pvm host: native and emulated, side by side
in the same run; elsewhere the default mode alone), boots IMAGE (default
HelloWorld, 1 vCPU) RUNS times with `toro-vmm run --mode MODE --stats none`
and as many times with scripts/min-loader.c, a C program of a few hundred
lines that implements just the boot contract (compiled here with `cc -O2`
into .build/min-loader): the floor a VMM cannot go under on this host. The
runs interleave, so a noisy moment hurts both alike. Prints per mode:

  - whole-process wall time, spawn to exit: toro-vmm and the C loader
    (median and p90), and toro-vmm / C loader (the target is at most 1.5x);
  - toro-vmm's spawn to first console byte, and VMM start to first guest entry;
  - KVM traps per boot (insn_emulation: privileged operations in native mode,
    every guest instruction in emulated mode) and VMM exits per boot, from a
    separate untimed run with JSON statistics;
  - the cost of spawning /bin/true in the same run.

Before timing anything it checks that the C loader's console output equals
toro-vmm's, so the floor really boots the image.

Usage: scripts/bench-boot.py [--runs 20] [--modes native,emulated] [--vmm .build/release/toro-vmm]
                             [IMAGE] [-- extra toro-vmm args (the C loader gets none)]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import toro_bench as tb

LOADER_SOURCE = os.path.join(tb.ROOT, "scripts/min-loader.c")
LOADER = os.path.join(tb.ROOT, ".build/min-loader")


def run_once(command):
    """(status, whole run ms, first output byte ms or None, stdout bytes)."""
    start = time.perf_counter_ns()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    first = process.stdout.read(1)
    first_at = time.perf_counter_ns()
    rest = process.stdout.read()
    status = process.wait()
    end = time.perf_counter_ns()
    return status, (end - start) / 1e6, ((first_at - start) / 1e6) if first else None, first + rest


def build_loader():
    command = ["cc", "-O2", "-I", os.path.join(tb.ROOT, "boot"), "-o", LOADER, LOADER_SOURCE]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.exit(f"bench-boot: {' '.join(command)} failed:\n{result.stdout}")


def measure(args, mode, extra):
    vmm = [args.vmm, "run", args.image] + tb.mode_args(mode) + extra
    timed = vmm + ["--stats", "none"]
    stats_file = os.path.join(tempfile.mkdtemp(prefix="toro-bench-"), "stats.json")
    with_stats = vmm + ["--stats", "json", "--stats-file", stats_file]

    # Warm the page cache, learn the mode toro-vmm resolved (auto is native on
    # kvm_pvm) so the loader runs in the same one, and check that the floor
    # boots the image as toro-vmm does.
    status, _, _, vmm_output = run_once(with_stats)
    if status != 0:
        sys.exit(f"bench-boot: {' '.join(with_stats)} exited with {status}")
    with open(stats_file) as f:
        actual = json.load(f)["mode"]
    loader = [LOADER] + (["-n"] if actual == "native" else []) + [args.image]
    status, _, _, loader_output = run_once(loader)
    if status != 0:
        sys.exit(f"bench-boot: {' '.join(loader)} exited with {status}")
    if loader_output != vmm_output:
        sys.exit(f"bench-boot: the C loader's console output differs from toro-vmm's in mode {mode}:\n"
                 f"--- toro-vmm\n{vmm_output.decode(errors='replace')}--- min-loader\n{loader_output.decode(errors='replace')}")

    result = {"vmm": [], "loader": [], "first": [], "setup": [], "true": [], "traps": [], "vmm_exits": [], "mode": None}
    for _ in range(args.runs):
        status, wall, first, _ = run_once(timed)
        if status != 0:
            sys.exit(f"bench-boot: {' '.join(timed)} exited with {status}")
        result["vmm"].append(wall)
        if first is not None:
            result["first"].append(first)
        status, wall, _, _ = run_once(loader)
        if status != 0:
            sys.exit(f"bench-boot: {' '.join(loader)} exited with {status}")
        result["loader"].append(wall)
        result["true"].append(run_once(["/bin/true"])[1])
        # A run with JSON statistics, for where the time goes (not timed itself).
        run_once(with_stats)
        with open(stats_file) as f:
            stats = json.load(f)
        result["mode"] = stats["mode"]
        result["setup"].append(stats["guest_start_ns"] / 1e6)
        for key in ("traps", "vmm_exits"):
            if tb.total(stats, key) is not None:
                result[key].append(tb.total(stats, key))
    os.remove(stats_file)
    os.rmdir(os.path.dirname(stats_file))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    tb.add_modes_argument(parser)
    parser.add_argument("image", nargs="?", default=tb.image("HelloWorld"))
    parser.add_argument("extra", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    tb.require([args.vmm, args.image])
    modes, note = tb.chosen_modes(args, "bench-boot")
    extra = [a for a in args.extra if a != "--"]
    build_loader()

    results = {mode: measure(args, mode, extra) for mode in modes}

    def ms(values):
        return f"{tb.median(values):.2f} ms (p90 {tb.percentile(values, 0.9):.2f})" if values else "-"

    def count(values):
        return f"{tb.median(values):.0f}" if values else "-"

    print(f"boot benchmark: {os.path.basename(args.image)}, {args.runs} runs per mode, medians; {note}")
    print(f"toro-vmm: {args.vmm} run IMAGE --mode MODE --stats none {' '.join(extra)}".rstrip())
    print(f"C loader (the floor): {os.path.relpath(LOADER, tb.ROOT)} [-n] IMAGE (-n where toro-vmm ran in mode native), built from {os.path.relpath(LOADER_SOURCE, tb.ROOT)}; "
          "its console output was checked equal to toro-vmm's")
    header = ["", *[f"--mode {m} (mode {results[m]['mode']})" for m in modes]]
    rows = [
        ["toro-vmm whole run, spawn to exit", *[ms(results[m]["vmm"]) for m in modes]],
        ["C loader whole run, spawn to exit", *[ms(results[m]["loader"]) for m in modes]],
        ["toro-vmm / C loader (target <= 1.5x)",
         *[f"{tb.median(results[m]['vmm']) / tb.median(results[m]['loader']):.2f}x" for m in modes]],
        ["toro-vmm spawn to first console byte", *[ms(results[m]["first"]) for m in modes]],
        ["toro-vmm start to first guest entry", *[ms(results[m]["setup"]) for m in modes]],
        ["traps per boot (KVM insn_emulation)", *[count(results[m]["traps"]) for m in modes]],
        ["VMM exits per boot", *[count(results[m]["vmm_exits"]) for m in modes]],
        ["spawn of /bin/true, same run", *[ms(results[m]["true"]) for m in modes]],
    ]
    print(tb.table(header, rows))
    if len(modes) == 2 and set(modes) == set(tb.PVM_MODES):
        native, emulated = tb.median(results["native"]["vmm"]), tb.median(results["emulated"]["vmm"])
        print(f"toro-vmm emulated / native whole run: {emulated / native:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
