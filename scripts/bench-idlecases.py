#!/usr/bin/env python3
"""The four idle cases of the seed, each with its mechanism on and off.

Runs Examples/IdleCases on 2 vCPUs twice: with the mechanisms on
(idle=halt spin=pause) and off (idle=poll spin=nopause), sampling every 0.5 s,
and prints per phase the VMM's CPU% and, per vCPU, CPU% and HLT exits/s.

Usage: scripts/bench-idlecases.py [--phase 3] [--vmm .build/release/toro-vmm]
"""
import argparse
import sys

import toro_bench as tb

PHASES = ["phase 1: spinlock", "phase 2: no ready thread", "phase 3: no thread", "phase 4: polling threads"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", type=int, default=3, help="seconds per phase")
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    args = parser.parse_args()
    guest = tb.image("IdleCases")
    tb.require([args.vmm, guest])

    rows = []
    for label, cmdline in (("on", "idle=halt spin=pause"), ("off", "idle=poll spin=nopause")):
        run = tb.run(args.vmm, [guest, "--cpus", "2", "--cmdline", f"{cmdline} phase={args.phase}", "--stats-interval", "0.5"])
        if run.status != 0:
            sys.exit(f"bench-idlecases: '{cmdline}' exited with {run.status}")
        marks = [run.line_time(p) for p in PHASES] + [run.line_time("phases done")]
        if None in marks:
            sys.exit(f"bench-idlecases: missing phase markers in: {[t for _, t in run.lines]}")
        for index, name in enumerate(PHASES):
            # Leave the first half second of each phase out: it is the switch-over.
            samples = tb.window(run.samples(), marks[index] + 0.5, marks[index + 1])
            row = [name.split(": ")[1], label, f"{tb.mean([s['process_cpu_percent'] for s in samples]):.1f}"]
            for vcpu in range(2):
                cpu = tb.mean([s["vcpus"][vcpu]["cpu_percent"] for s in samples])
                hlt = tb.mean([s["vcpus"][vcpu]["hlt_exits_per_s"] for s in samples])
                exits = tb.mean([s["vcpus"][vcpu]["exits_per_s"] for s in samples])
                row.append(f"{cpu:.1f} / {hlt:.0f} / {exits:.0f}")
            rows.append(row)
    print(f"IdleCases on 2 vCPUs, {args.phase} s per phase; per vCPU: CPU% / HLT exits/s / exits/s")
    print(tb.table(["case", "mechanism", "vmm cpu%", "vcpu0", "vcpu1"], sorted(rows, key=lambda r: PHASES.index(next(p for p in PHASES if p.endswith(r[0]))))))


if __name__ == "__main__":
    main()
