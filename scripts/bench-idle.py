#!/usr/bin/env python3
"""The idle VM's cost, halted against polling: the seed's claim, measured.

Boots Tests/Guests/Idle on 2 vCPUs for SECONDS (default 10) with idle=halt and
with idle=poll, sampling every second, and prints per-second VMM CPU% and
per-vCPU HLT exits/s like `top` did in the seed, then the totals and the ratio.

Usage: scripts/bench-idle.py [--seconds 10] [--vmm .build/release/toro-vmm]
"""
import argparse
import sys

import toro_bench as tb


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    args = parser.parse_args()
    idle_image = tb.image("Idle")
    tb.require([args.vmm, idle_image])

    results = {}
    for mode in ("halt", "poll"):
        run = tb.run(args.vmm, [idle_image, "--cpus", "2", "--cmdline", f"seconds={args.seconds} idle={mode}", "--stats-interval", "1"])
        if run.status != 0:
            sys.exit(f"bench-idle: idle={mode} run exited with {run.status}")
        started = run.line_time("idle:") or 0.0
        idle = tb.window(run.samples(), started + 0.05, started + args.seconds)
        results[mode] = (run, idle)
        print(f"idle={mode}: per second after boot (VMM CPU%, then per vCPU CPU% / HLT exits/s / halted%)")
        rows = []
        for sample in idle:
            row = [f"{sample['t_ns'] / 1e9:.0f} s", f"{sample['process_cpu_percent']:.2f}"]
            for vcpu in sample["vcpus"]:
                row.append(f"{vcpu['cpu_percent']:.1f} / {vcpu['hlt_exits_per_s']:.0f} / {vcpu['halted_percent']:.0f}")
            rows.append(row)
        print(tb.table(["t", "vmm cpu%", "vcpu0", "vcpu1"], rows))
        print()

    print(f"summary, {args.seconds} s idle on 2 vCPUs:")
    rows = []
    for mode, (run, idle) in results.items():
        whole = run.stats["process_cpu_percent"]
        idle_cpu = tb.mean([s["process_cpu_percent"] for s in idle])
        rows.append([f"idle={mode}", f"{whole:.2f}", f"{idle_cpu:.3f}", str(run.stats["totals"]["hlt_exits"]), str(run.stats["totals"]["exits"])])
    print(tb.table(["mode", "whole run cpu%", "idle window cpu%", "hlt exits", "exits"], rows))
    halt_idle = tb.mean([s["process_cpu_percent"] for s in results["halt"][1]])
    poll_idle = tb.mean([s["process_cpu_percent"] for s in results["poll"][1]])
    if halt_idle > 0:
        print(f"poll / halt, idle window: {poll_idle / halt_idle:.0f}x")
    else:
        print("poll / halt, idle window: halt measured 0.000% (no CPU time at the clock's resolution)")


if __name__ == "__main__":
    main()
