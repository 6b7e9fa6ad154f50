#!/usr/bin/env python3
"""The idle VM's cost, halted against polling, per execution mode: the seed's
claim, measured.

For every mode measured (on a kvm_pvm host: native and emulated in the same
run; elsewhere the default mode alone), boots Tests/Guests/Idle on 2 vCPUs for
SECONDS (default 10) with idle=halt and with idle=poll, sampling every second.
Prints per run the per-second VMM CPU% and, per vCPU, CPU% / HLT exits/s /
halted% like `top` did in the seed; then a summary per mode and idle policy:
the whole run's CPU%, the idle window's CPU% (the target for idle=halt is at
most 0.1% of one CPU), HLT exits, KVM exits, traps and VMM exits over the
whole run, and poll / halt.

Usage: scripts/bench-idle.py [--seconds 10] [--modes native,emulated] [--vmm .build/release/toro-vmm]
"""
import argparse
import sys

import toro_bench as tb

TARGET_PERCENT = 0.1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    tb.add_modes_argument(parser)
    args = parser.parse_args()
    idle_image = tb.image("Idle")
    tb.require([args.vmm, idle_image])
    modes, note = tb.chosen_modes(args, "bench-idle")
    print(note)
    print()

    results = []
    for mode in modes:
        for idle in ("halt", "poll"):
            run = tb.run(args.vmm, [idle_image, "--cpus", "2", "--cmdline", f"seconds={args.seconds} idle={idle}",
                                    "--stats-interval", "1"] + tb.mode_args(mode))
            if run.status != 0:
                sys.exit(f"bench-idle: --mode {mode} idle={idle} run exited with {run.status}")
            started = run.line_time("idle:") or 0.0
            window = tb.window(run.samples(), started + 0.05, started + args.seconds)
            label = f"mode {run.stats['mode']}, idle={idle}"
            results.append((run.stats["mode"], idle, run, window))
            print(f"{label}: per second after boot (VMM CPU%, then per vCPU CPU% / HLT exits/s / halted%)")
            rows = []
            for sample in window:
                row = [f"{sample['t_ns'] / 1e9:.0f} s", f"{sample['process_cpu_percent']:.2f}"]
                for vcpu in sample["vcpus"]:
                    row.append(f"{vcpu['cpu_percent']:.1f} / {vcpu['hlt_exits_per_s']:.0f} / {vcpu['halted_percent']:.0f}")
                rows.append(row)
            print(tb.table(["t", "vmm cpu%", "vcpu0", "vcpu1"], rows))
            print()

    def idle_cpu(window):
        return tb.mean([s["process_cpu_percent"] for s in window])

    print(f"summary, {args.seconds} s idle on 2 vCPUs (counts over the whole run, boot included):")
    rows = []
    for mode, idle, run, window in results:
        totals = run.stats["totals"]
        rows.append([mode, f"idle={idle}", f"{run.stats['process_cpu_percent']:.2f}", f"{idle_cpu(window):.3f}",
                     str(totals["hlt_exits"]), str(totals["exits"]), str(totals.get("traps", "-")), str(totals["vmm_exits"])])
    print(tb.table(["mode", "idle", "whole run cpu%", "idle window cpu%", "hlt exits", "exits", "traps", "vmm exits"], rows))
    for mode in dict.fromkeys(r[0] for r in results):
        halt = idle_cpu(next(w for m, i, _, w in results if m == mode and i == "halt"))
        poll = idle_cpu(next(w for m, i, _, w in results if m == mode and i == "poll"))
        verdict = "met" if halt <= TARGET_PERCENT else "NOT met"
        ratio = f"poll / halt {poll / halt:.0f}x" if halt > 0 else "poll / halt: halt measured 0.000% (no CPU time at the clock's resolution)"
        print(f"mode {mode}: idle=halt window {halt:.3f}% of one CPU (target <= {TARGET_PERCENT}%: {verdict}); {ratio}")


if __name__ == "__main__":
    main()
