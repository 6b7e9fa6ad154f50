#!/usr/bin/env python3
"""The four idle cases of the seed, each with its mechanism on and off, per
execution mode.

For every mode measured (on a kvm_pvm host: native and emulated in the same
run; elsewhere the default mode alone), runs Examples/IdleCases on 2 vCPUs
twice: with the mechanisms on (idle=halt spin=pause) and off (idle=poll
spin=nopause), sampling every 0.5 s, and prints per phase the VMM's CPU% and,
per vCPU, CPU% / HLT exits/s / KVM exits/s (the mean of the phase's samples,
its first half second left out).

Usage: scripts/bench-idlecases.py [--phase 3] [--modes native,emulated] [--vmm .build/release/toro-vmm]
"""
import argparse
import sys

import toro_bench as tb

PHASES = ["phase 1: spinlock", "phase 2: no ready thread", "phase 3: no thread", "phase 4: polling threads"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", type=int, default=3, help="seconds per phase")
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    tb.add_modes_argument(parser)
    args = parser.parse_args()
    guest = tb.image("IdleCases")
    tb.require([args.vmm, guest])
    modes, note = tb.chosen_modes(args, "bench-idlecases")

    rows = []
    for mode in modes:
        for label, cmdline in (("on", "idle=halt spin=pause"), ("off", "idle=poll spin=nopause")):
            run = tb.run(args.vmm, [guest, "--cpus", "2", "--cmdline", f"{cmdline} phase={args.phase}",
                                    "--stats-interval", "0.5"] + tb.mode_args(mode))
            if run.status != 0:
                sys.exit(f"bench-idlecases: --mode {mode} '{cmdline}' exited with {run.status}")
            marks = [run.line_time(p) for p in PHASES] + [run.line_time("phases done")]
            if None in marks:
                sys.exit(f"bench-idlecases: missing phase markers in: {[t for _, t in run.lines]}")
            for index, name in enumerate(PHASES):
                # Leave the first half second of each phase out: it is the switch-over.
                samples = tb.window(run.samples(), marks[index] + 0.5, marks[index + 1])
                row = [index, name.split(": ")[1], run.stats["mode"], label,
                       f"{tb.mean([s['process_cpu_percent'] for s in samples]):.1f}"]
                for vcpu in range(2):
                    cpu = tb.mean([s["vcpus"][vcpu]["cpu_percent"] for s in samples])
                    hlt = tb.mean([s["vcpus"][vcpu]["hlt_exits_per_s"] for s in samples])
                    exits = tb.mean([s["vcpus"][vcpu]["exits_per_s"] for s in samples])
                    row.append(f"{cpu:.1f} / {hlt:.0f} / {exits:.0f}")
                rows.append(row)
    print(note)
    print(f"IdleCases on 2 vCPUs, {args.phase} s per phase; per vCPU: CPU% / HLT exits/s / exits/s")
    rows.sort(key=lambda r: r[0])  # stable: within a case, modes and on/off in the order run
    print(tb.table(["case", "mode", "mechanism", "vmm cpu%", "vcpu0", "vcpu1"], [r[1:] for r in rows]))


if __name__ == "__main__":
    main()
