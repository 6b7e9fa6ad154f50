"""Shared pieces of the benchmark scripts: run toro-vmm, timestamp its console
lines, read its JSON statistics, print medians and tables, and choose the
execution modes to compare (kvm_pvm's native and emulated modes side by side
where the host has them, the default mode alone elsewhere)."""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_VMM = os.path.join(ROOT, ".build/release/toro-vmm")


PVM_MODULE = "/sys/module/kvm_pvm"
PVM_MODES = ("native", "emulated")


def image(name):
    return os.path.join(ROOT, ".build/images", name + ".elf")


def require(paths):
    """Exits with a clear message when KVM or a built file is missing."""
    if not os.path.exists("/dev/kvm"):
        sys.exit("benchmark: /dev/kvm is missing; nothing to measure")
    for path in paths:
        if not os.path.exists(path):
            sys.exit(f"benchmark: {path} is missing; run `make release images` first")


class Run:
    """One finished toro-vmm run: status, console lines with their arrival time
    (seconds since spawn), and the JSON statistics."""

    def __init__(self, status, lines, stats):
        self.status = status
        self.lines = lines
        self.stats = stats

    def line_time(self, prefix):
        """Arrival time of the first console line starting with `prefix`, or None."""
        for at, text in self.lines:
            if text.startswith(prefix):
                return at
        return None

    def samples(self):
        return self.stats.get("samples", []) if self.stats else []


def host_is_pvm():
    """Whether this host's /dev/kvm is the kvm_pvm back end, the only one with
    `--mode native` and `--mode emulated`."""
    return os.path.isdir(PVM_MODULE)


def add_modes_argument(parser):
    parser.add_argument("--modes", default=None, metavar="native,emulated",
                        help="toro-vmm --mode values to measure, comma-separated (default: native,emulated on a "
                             "kvm_pvm host, auto elsewhere, where only auto exists)")


def chosen_modes(args, script):
    """The `--mode` values to measure, and one line that says why, for the output."""
    pvm = host_is_pvm()
    if args.modes is None:
        modes = list(PVM_MODES) if pvm else ["auto"]
    else:
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in ("auto",) + PVM_MODES:
            sys.exit(f"{script}: --modes: unknown mode '{mode}' (native, emulated or auto)")
        if mode in PVM_MODES and not pvm:
            sys.exit(f"{script}: --modes {mode}: this host's KVM is not kvm_pvm ({PVM_MODULE} is missing); only auto exists here")
    if pvm:
        note = f"host KVM: kvm_pvm; modes measured in this run: {', '.join(modes)}"
    else:
        note = ("host KVM: not kvm_pvm, so only the default mode exists (hardware virtualisation); "
                "the native/emulated comparison is skipped")
    return modes, note


def mode_args(mode):
    return ["--mode", mode]


def total(stats, key):
    """A counter summed over the vCPUs (`traps`, `vmm_exits`, ...), or None where KVM lacks it."""
    value = stats["totals"].get(key) if stats else None
    return value


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def median(values):
    return statistics.median(values) if values else float("nan")


def run(vmm, args, timeout=120):
    """Runs `vmm run ARGS --stats json` and returns a Run."""
    directory = tempfile.mkdtemp(prefix="toro-bench-")
    stats_path = os.path.join(directory, "stats.json")
    command = [vmm, "run"] + args + ["--stats", "json", "--stats-file", stats_path]
    start = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    lines = []
    for raw in process.stdout:
        lines.append((time.monotonic() - start, raw.decode(errors="replace").rstrip("\n")))
    status = process.wait(timeout=timeout)
    stats = None
    if os.path.exists(stats_path):
        with open(stats_path) as f:
            stats = json.load(f)
        os.remove(stats_path)
    os.rmdir(directory)
    return Run(status, lines, stats)


def mean(values):
    return statistics.fmean(values) if values else 0.0


def window(samples, start_s, end_s):
    """Samples whose interval lies inside [start_s, end_s] seconds (VMM time)."""
    chosen = []
    for sample in samples:
        end = sample["t_ns"] / 1e9
        begin = end - sample["interval_ns"] / 1e9
        if begin >= start_s - 1e-3 and end <= end_s + 1e-3:
            chosen.append(sample)
    return chosen


def table(header, rows):
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header))]
    out = []
    for row in [header] + rows:
        out.append("  ".join(str(cell).rjust(width) if i else str(cell).ljust(width) for i, (cell, width) in enumerate(zip(row, widths))))
    return "\n".join(out)
