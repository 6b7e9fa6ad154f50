#!/usr/bin/env python3
"""Wake-up latency: what halting costs in reaction time (the question the seed
asked and never measured).

Runs the WakeLatency guest on 2 vCPUs with idle=halt and idle=poll, each with
KVM's halt polling left at the host default and turned off (--halt-poll-ns 0),
and prints p50/p99 of the time from a cross-core wake IPI, and from a timer
deadline, to the woken thread running. Every configuration runs RUNS times; the
table shows the median of each figure over the runs.

Usage: scripts/bench-latency.py [--count 1000] [--runs 3] [--vmm .build/release/toro-vmm]
"""
import argparse
import re
import statistics
import sys

import toro_bench as tb

LINE = re.compile(r"latency (\w+) n=(\d+) p50_ns=(\d+) p99_ns=(\d+) max_ns=(\d+)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    args = parser.parse_args()
    guest = tb.image("WakeLatency")
    tb.require([args.vmm, guest])

    configurations = [
        ("idle=halt", "default", []),
        ("idle=halt", "0", ["--halt-poll-ns", "0"]),
        ("idle=poll", "default", []),
        ("idle=poll", "0", ["--halt-poll-ns", "0"]),
    ]
    rows = []
    for idle, poll_label, extra in configurations:
        figures = {}
        cpu = []
        for _ in range(args.runs):
            run = tb.run(args.vmm, [guest, "--cpus", "2", "--cmdline", f"{idle} count={args.count}"] + extra)
            if run.status != 0:
                sys.exit(f"bench-latency: {idle} halt-poll={poll_label} exited with {run.status}")
            for _, text in run.lines:
                match = LINE.match(text)
                if match:
                    kind, _, p50, p99, _ = match.groups()
                    figures.setdefault(kind, []).append((int(p50), int(p99)))
            cpu.append(run.stats["process_cpu_percent"])
        for kind in ("ipi", "timer"):
            values = figures.get(kind, [])
            if not values:
                sys.exit(f"bench-latency: no '{kind}' line from {idle}")
            p50 = statistics.median(v[0] for v in values) / 1000
            p99 = statistics.median(v[1] for v in values) / 1000
            rows.append([kind, idle, poll_label, f"{p50:.1f}", f"{p99:.1f}", f"{statistics.median(cpu):.0f}"])
    print(f"wake-up latency, {args.count} wakes per run, median of {args.runs} runs (µs):")
    print(tb.table(["wake", "idle", "halt-poll-ns", "p50 µs", "p99 µs", "vmm cpu%"], sorted(rows, key=lambda r: r[0])))


if __name__ == "__main__":
    main()
