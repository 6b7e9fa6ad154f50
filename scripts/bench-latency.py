#!/usr/bin/env python3
"""Wake-up latency: what halting costs in reaction time (the question the seed
asked and never measured), per execution mode.

For every mode measured (on a kvm_pvm host: native and emulated in the same
run; elsewhere the default mode alone), runs the WakeLatency guest on 2 vCPUs
with idle=halt and idle=poll, each with KVM's halt polling left at the host
default and turned off (--halt-poll-ns 0), and prints p50/p99 of the time from
a cross-core wake IPI, and from a timer deadline, to the woken thread running
(TSC at the wake to TSC when the thread runs, measured by the guest). Every
configuration runs RUNS times; the table shows the median of each figure over
the runs, and the median VMM CPU% of the runs.

Usage: scripts/bench-latency.py [--count 1000] [--runs 3] [--modes native,emulated] [--vmm .build/release/toro-vmm]
"""
import argparse
import re
import statistics
import sys

import toro_bench as tb

LINE = re.compile(r"latency (\w+) n=(\d+) p50_ns=(\d+) p99_ns=(\d+) max_ns=(\d+)")
CONFIGURATIONS = [
    ("idle=halt", "default", []),
    ("idle=halt", "0", ["--halt-poll-ns", "0"]),
    ("idle=poll", "default", []),
    ("idle=poll", "0", ["--halt-poll-ns", "0"]),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    tb.add_modes_argument(parser)
    args = parser.parse_args()
    guest = tb.image("WakeLatency")
    tb.require([args.vmm, guest])
    modes, note = tb.chosen_modes(args, "bench-latency")

    rows = []
    for mode in modes:
        for idle, poll_label, extra in CONFIGURATIONS:
            figures = {}
            cpu = []
            actual = mode
            for _ in range(args.runs):
                run = tb.run(args.vmm, [guest, "--cpus", "2", "--cmdline", f"{idle} count={args.count}"] + extra + tb.mode_args(mode))
                if run.status != 0:
                    sys.exit(f"bench-latency: --mode {mode} {idle} halt-poll={poll_label} exited with {run.status}")
                actual = run.stats["mode"]
                for _, text in run.lines:
                    match = LINE.match(text)
                    if match:
                        kind, _, p50, p99, _ = match.groups()
                        figures.setdefault(kind, []).append((int(p50), int(p99)))
                cpu.append(run.stats["process_cpu_percent"])
            for kind in ("ipi", "timer"):
                values = figures.get(kind, [])
                if not values:
                    sys.exit(f"bench-latency: no '{kind}' line from --mode {mode} {idle}")
                p50 = statistics.median(v[0] for v in values) / 1000
                p99 = statistics.median(v[1] for v in values) / 1000
                rows.append([kind, actual, idle, poll_label, f"{p50:.1f}", f"{p99:.1f}", f"{statistics.median(cpu):.0f}"])
    print(note)
    print(f"wake-up latency, 2 vCPUs, {args.count} wakes per run, median of {args.runs} runs:")
    rows.sort(key=lambda r: r[0])  # stable: IPI rows, then timer rows, each in the order run
    print(tb.table(["wake", "mode", "idle", "halt-poll-ns", "p50 µs", "p99 µs", "vmm cpu%"], rows))


if __name__ == "__main__":
    main()
