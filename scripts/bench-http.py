#!/usr/bin/env python3
"""The seed's experiment: HTTP load on the WebServer example, then silence.

For idle=halt and idle=poll: boots Examples/WebServer on 2 vCPUs with a TAP
inside a network namespace this script creates (10.77.0.1/24 host side,
10.77.0.2 guest), runs `wrk` from inside that namespace for LOAD seconds
(default 10) against the small page over keep-alive, then leaves the VM
idle for IDLE seconds (default 10). Prints, per second, the VMM's CPU% and
each vCPU's CPU%, HLT exits/s and halted share, as the seed's table did; then
requests/s and p50/p99 latency for both modes, how long after the load the
VMM fell under 1% CPU, and the ratios halt/poll.

Traffic goes only to the guest inside the namespace. Needs root, /dev/kvm,
/dev/net/tun, ip and wrk (scripts/install-test-deps.sh installs wrk).

Usage: scripts/bench-http.py [--load 10] [--idle 10] [--connections 4] [--path /]
                             [--workers local|spread] [--vmm .build/release/toro-vmm]
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import toro_bench as tb

GUEST = "10.77.0.2"
TAP = "torobench0"


def sh(*command, check=True):
    return subprocess.run(command, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Namespace:
    def __init__(self):
        self.name = f"toro-bench-http-{os.getpid()}"

    def __enter__(self):
        sh("ip", "netns", "add", self.name)
        for args in (["tuntap", "add", "dev", TAP, "mode", "tap"], ["addr", "add", "10.77.0.1/24", "dev", TAP], ["link", "set", TAP, "up"]):
            sh("ip", "-n", self.name, *args)
        return self

    def __exit__(self, *exc):
        sh("ip", "netns", "delete", self.name, check=False)

    def command(self, *args):
        return ["ip", "netns", "exec", self.name, *args]


def to_ms(text):
    """wrk's latency cell (`812.00us`, `1.20ms`, `2.01s`) in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}[unit]


def parse_wrk(output):
    result = {"rps": 0.0, "p50": float("nan"), "p99": float("nan"), "requests": 0, "errors": ""}
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match:
        result["rps"] = float(match.group(1))
    match = re.search(r"(\d+) requests in", output)
    if match:
        result["requests"] = int(match.group(1))
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}(?:\.000)?%\s+(\S+)", output, re.M)
        if match:
            result["p" + percentile] = to_ms(match.group(1))
    match = re.search(r"Socket errors:.*|Non-2xx.*", output)
    if match:
        result["errors"] = match.group(0)
    return result


def one_mode(args, namespace, mode):
    stats_dir = tempfile.mkdtemp(prefix="toro-bench-http-")
    stats_path = os.path.join(stats_dir, "stats.json")
    total = args.load + args.idle + 30  # boot and margins: the guest stops itself
    cmdline = f"ip={GUEST}/24 idle={mode} workers={args.workers} seconds={total}"
    command = namespace.command(args.vmm, "run", tb.image("WebServer"), "--cpus", "2", "--net", f"tap={TAP}",
                                "--cmdline", cmdline, "--stats-interval", "1", "--stats", "json", "--stats-file", stats_path)
    start = time.monotonic()
    vm = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    listening = None
    for line in vm.stdout:
        if line.startswith("webserver: http://"):
            listening = time.monotonic() - start
            break
        if line.startswith("webserver: FAIL"):
            sys.exit(f"bench-http: {line.strip()}")
    else:
        sys.exit("bench-http: the server never started")
    # Keep draining the console so the VMM never blocks on a full pipe.
    drained = []
    threading.Thread(target=lambda: drained.extend(vm.stdout), daemon=True).start()
    time.sleep(1.0)
    load_start = time.monotonic() - start
    wrk = subprocess.run(namespace.command("wrk", "-t1", f"-c{args.connections}", f"-d{args.load}s", "--timeout", "5s", "--latency",
                                           f"http://{GUEST}{args.path}"),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    load_end = time.monotonic() - start
    time.sleep(args.idle + 0.5)
    vm.terminate()
    vm.wait(timeout=30)
    with open(stats_path) as f:
        stats = json.load(f)
    shutil.rmtree(stats_dir, ignore_errors=True)
    return {"wrk": parse_wrk(wrk.stdout), "wrk_output": wrk.stdout, "stats": stats, "listening": listening,
            "load": (load_start, load_end), "idle": (load_end, load_end + args.idle)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=10)
    parser.add_argument("--idle", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--path", default="/")
    parser.add_argument("--workers", default="local", choices=["local", "spread"])
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    args = parser.parse_args()
    tb.require([args.vmm, tb.image("WebServer")])
    if os.geteuid() != 0:
        sys.exit("bench-http: needs root (network namespace and TAP)")
    for tool in ("ip", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"bench-http: {tool} is missing; run scripts/install-test-deps.sh")

    results = {}
    with Namespace() as namespace:
        for mode in ("halt", "poll"):
            results[mode] = one_mode(args, namespace, mode)

    for mode, result in results.items():
        load_start, _ = result["load"]
        _, idle_end = result["idle"]
        print(f"idle={mode}, workers={args.workers}: per second (VMM CPU%, then per vCPU CPU% / HLT exits/s / halted%)")
        rows = []
        for sample in tb.window(result["stats"].get("samples", []), load_start - 1, idle_end):
            end = sample["t_ns"] / 1e9
            phase = "load" if end <= result["load"][1] + 0.5 else "idle"
            row = [f"{end - load_start:.0f} s", phase, f"{sample['process_cpu_percent']:.2f}"]
            for vcpu in sample["vcpus"]:
                row.append(f"{vcpu['cpu_percent']:.1f} / {vcpu['hlt_exits_per_s']:.0f} / {vcpu['halted_percent']:.0f}")
            rows.append(row)
        print(tb.table(["t", "phase", "vmm cpu%", "vcpu0", "vcpu1"], rows))
        if result["wrk"]["errors"]:
            print(f"wrk: {result['wrk']['errors']}")
        print()

    print(f"summary: {args.load} s of wrk -c{args.connections} on {args.path}, then {args.idle} s idle, 2 vCPUs")
    rows = []
    for mode, result in results.items():
        samples = result["stats"].get("samples", [])
        load = tb.window(samples, *result["load"])
        idle = tb.window(samples, result["idle"][0] + 2, result["idle"][1])
        settle = "never"
        for sample in samples:
            end = sample["t_ns"] / 1e9
            if end > result["idle"][0] and sample["process_cpu_percent"] < 1.0:
                settle = f"{end - result['idle'][0]:.1f} s"
                break
        wrk = result["wrk"]
        rows.append([f"idle={mode}", f"{result['listening'] * 1000:.0f}", f"{wrk['rps']:.1f}", f"{wrk['p50']:.2f}", f"{wrk['p99']:.2f}",
                     f"{tb.mean([s['process_cpu_percent'] for s in load]):.1f}",
                     f"{tb.mean([s['process_cpu_percent'] for s in idle]):.3f}", settle])
    print(tb.table(["mode", "spawn to listening ms", "req/s", "p50 ms", "p99 ms", "load cpu%", "idle cpu% (from +2 s)", "under 1% after"], rows))
    halt, poll = results["halt"]["wrk"], results["poll"]["wrk"]
    if poll["rps"] > 0:
        print(f"throughput halt/poll: {halt['rps'] / poll['rps']:.3f}")
    print(f"added p50 latency halt - poll: {(halt['p50'] - poll['p50']) * 1000:.0f} us")


if __name__ == "__main__":
    main()
