#!/usr/bin/env python3
"""A long soak of the WebServer example: does anything leak or fail under
hours-like load compressed into minutes?

Boots Examples/WebServer on 2 vCPUs in a network namespace of its own (the
guest's TAP at 10.77.0.1/24, the guest at 10.77.0.2, wrk inside the namespace:
no traffic leaves it), waits until it listens, then runs wrk for SECONDS in
total (default 600), alternating SEGMENT-second runs (default 30, at most half
of SECONDS) on `/`
(`-cCONNECTIONS`, default 4) and on `/big` (64 KiB, `-cBIG_CONNECTIONS`,
default 2), all keep-alive.

Every INTERVAL seconds (default 5) from the moment it listens it samples the
toro-vmm process: VmRSS from /proc/PID/status, the share of it that is guest
RAM (the Rss of the guest-memory mapping in /proc/PID/smaps; the guest
touching pages it never touched before grows it, which is no leak of the VMM),
open file descriptors and threads.

It prints the requests, socket errors and non-2xx responses per path and in
total, the RSS at the start (right after listening), at the end (after the load
and a short pause) and its maximum, with a verdict: flat when the end is within
MARGIN MiB (default 8) of the start, for the whole process and for toro-vmm's
own part (VmRSS less guest RAM); and the RSS once a minute.

Pass criteria (exit status 0): every wrk run made requests, no socket error
(connect, read, write, timeout), no non-2xx response, and the VM still ran
at the end. The RSS verdict is printed, not judged.

Needs root, /dev/kvm, /dev/net/tun, ip and wrk (scripts/install-bench-deps.sh;
`make bench-soak` runs it). Validate with a short run: --seconds 30.

Usage: scripts/bench-soak.py [--seconds 600] [--segment 30] [--interval 5]
                             [--connections 4] [--big-connections 2] [--margin 8]
                             [--mode auto] [--vmm .build/release/toro-vmm]
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import toro_bench as tb

GUEST_URL = f"http://{tb.GUEST_ADDRESS}"
MEMORY_MIB = 128
MIB = 1024 * 1024


def parse_wrk(output):
    """Requests, socket errors (summed) and non-2xx responses from wrk's report."""
    result = {"requests": 0, "socket_errors": 0, "non2xx": 0, "socket_detail": "", "rps": 0.0}
    match = re.search(r"(\d+) requests in", output)
    if match:
        result["requests"] = int(match.group(1))
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match:
        result["rps"] = float(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if match:
        result["socket_errors"] = sum(int(n) for n in match.groups())
        result["socket_detail"] = match.group(0)
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if match:
        result["non2xx"] = int(match.group(1))
    return result


def vmm_pid(process):
    """The toro-vmm process: `ip netns exec` execs it, so normally the PID Popen
    started; else its child."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{process.pid}/comm") as f:
                if f.read().strip().startswith("toro-vmm"):
                    return process.pid
            with open(f"/proc/{process.pid}/task/{process.pid}/children") as f:
                for child in f.read().split():
                    with open(f"/proc/{child}/comm") as c:
                        if c.read().strip().startswith("toro-vmm"):
                            return int(child)
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("bench-soak: cannot find the toro-vmm process")


class Sample:
    def __init__(self, t, rss, guest, fds, threads):
        self.t, self.rss, self.guest, self.fds, self.threads = t, rss, guest, fds, threads

    @property
    def own(self):
        """toro-vmm's own resident memory: VmRSS less the guest RAM."""
        return self.rss - self.guest


def sample(pid, t0):
    """One reading of the process, in bytes; None once it is gone."""
    try:
        rss = threads = 0
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        guest = 0
        size = None
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                if line.startswith("Size:"):
                    size = int(line.split()[1])
                elif line.startswith("Rss:") and size == MEMORY_MIB * 1024:
                    guest = max(guest, int(line.split()[1]) * 1024)
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return Sample(time.monotonic() - t0, rss, guest, fds, threads)
    except OSError:
        return None


class Sampler(threading.Thread):
    """Samples the process every `interval` seconds until stopped."""

    def __init__(self, pid, t0, interval):
        super().__init__(daemon=True)
        self.pid, self.t0, self.interval = pid, t0, interval
        self.samples = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def take(self):
        s = sample(self.pid, self.t0)
        if s:
            with self.lock:
                self.samples.append(s)
        return s

    def run(self):
        while not self.stopping.wait(self.interval):
            self.take()

    def stop(self):
        self.stopping.set()
        self.join()


def mib(value):
    return f"{value / MIB:.1f}"


def verdict(name, start, end, peak, margin):
    grew = end - start
    flat = grew <= margin * MIB
    word = "flat" if flat else "GREW"
    return flat, (f"{name}: start {mib(start)} MiB, end {mib(end)} MiB, max {mib(peak)} MiB; "
                  f"{word} (end - start = {grew / MIB:+.1f} MiB, margin {margin} MiB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=600, help="seconds of load in total")
    parser.add_argument("--segment", type=int, default=30, help="seconds of each wrk run; the paths alternate")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections on /")
    parser.add_argument("--big-connections", type=int, default=2, help="wrk connections on /big")
    parser.add_argument("--margin", type=float, default=8.0, help="MiB the RSS may end above its start and count as flat")
    parser.add_argument("--mode", default="auto", help="toro-vmm --mode (auto, native, emulated)")
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    args = parser.parse_args()
    if args.seconds < 1 or args.segment < 1 or args.interval <= 0:
        sys.exit("bench-soak: --seconds and --segment must be at least 1, --interval above 0")
    # A short run still has both paths: no run longer than half of it.
    args.segment = min(args.segment, max(1, args.seconds // 2))
    tb.require([args.vmm, tb.image("WebServer")])
    if os.geteuid() != 0:
        sys.exit("bench-soak: needs root (network namespace and TAP)")
    os.environ["PATH"] += ":/usr/sbin:/sbin"
    for tool in ("ip", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"bench-soak: {tool} is missing; run scripts/install-bench-deps.sh")

    directory = tempfile.mkdtemp(prefix="toro-bench-soak-")
    stats_path = os.path.join(directory, "stats.json")
    lifetime = args.seconds + 300  # a bound only: the script stops the VM itself
    paths = [("/", args.connections), ("/big", args.big_connections)]
    totals = {path: {"segments": 0, "requests": 0, "socket_errors": 0, "non2xx": 0, "seconds": 0, "empty": 0}
              for path, _ in paths}
    problems = []
    with tb.Namespace("toro-bench-soak") as namespace:
        command = namespace.command(
            args.vmm, "run", tb.image("WebServer"), "--cpus", "2", "--memory", f"{MEMORY_MIB}M",
            "--net", f"tap={tb.TAP}", "--cmdline", f"ip={tb.GUEST_ADDRESS}/24 seconds={lifetime}",
            "--stats", "json", "--stats-file", stats_path, "--mode", args.mode)
        t0 = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True)
        console = []
        for line in process.stdout:
            console.append(line.rstrip("\n"))
            if line.startswith("webserver: http://"):
                break
            if line.startswith("webserver: FAIL") or line.startswith("toro-vmm:"):
                sys.exit(f"bench-soak: {line.strip()}")
        else:
            sys.exit("bench-soak: the server never started:\n" + "\n".join(console))
        listening = time.monotonic() - t0
        # Keep draining the console (the VMM must never block on a full pipe), keeping its last lines.
        threading.Thread(target=lambda: [console.append(l.rstrip("\n")) for l in process.stdout], daemon=True).start()
        pid = vmm_pid(process)
        sampler = Sampler(pid, t0, args.interval)
        start = sampler.take()
        sampler.start()
        print(f"bench-soak: WebServer listening after {listening * 1000:.0f} ms (toro-vmm pid {pid}); "
              f"{args.seconds} s of wrk alternating " + " and ".join(f"{p} (-c{c})" for p, c in paths)
              + f" in {args.segment} s runs; RSS every {args.interval:g} s", flush=True)

        load_start = time.monotonic()
        index = 0
        while True:
            left = args.seconds - (time.monotonic() - load_start)
            if left < 1:
                break
            path, connections = paths[index % len(paths)]
            index += 1
            seconds = int(min(args.segment, left))
            run = subprocess.run(namespace.command("wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
                                                   GUEST_URL + path),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            result = parse_wrk(run.stdout)
            total = totals[path]
            total["segments"] += 1
            total["seconds"] += seconds
            for key in ("requests", "socket_errors", "non2xx"):
                total[key] += result[key]
            if result["requests"] == 0:
                total["empty"] += 1
            elapsed = time.monotonic() - load_start
            latest = sampler.samples[-1] if sampler.samples else start
            print(f"  {elapsed:6.0f} s  {path:5} {result['requests']:7d} requests {result['rps']:8.1f}/s  "
                  f"socket errors {result['socket_errors']}  non-2xx {result['non2xx']}  "
                  f"RSS {mib(latest.rss)} MiB (own {mib(latest.own)})", flush=True)
            if result["socket_errors"]:
                problems.append(f"{path} at {elapsed:.0f} s: {result['socket_detail']}")
            if run.returncode != 0:
                problems.append(f"wrk on {path} exited with {run.returncode}: {run.stdout.strip()[-300:]}")
            if process.poll() is not None:
                problems.append(f"toro-vmm stopped during the load (status {process.returncode})")
                break
        load_seconds = time.monotonic() - load_start
        time.sleep(min(2.0, args.interval))
        end = sampler.take()
        sampler.stop()
        alive = process.poll() is None
        if alive:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            problems.append("toro-vmm did not stop within 30 s of SIGTERM")
    stats = None
    if os.path.exists(stats_path):
        with open(stats_path) as f:
            stats = json.load(f)
    shutil.rmtree(directory, ignore_errors=True)

    samples = sampler.samples
    if end is None:
        end = samples[-1] if samples else start
    print()
    print(f"bench-soak: {load_seconds:.0f} s of load, {len(samples)} RSS samples")
    rows = []
    grand = {"segments": 0, "requests": 0, "socket_errors": 0, "non2xx": 0, "seconds": 0, "empty": 0}
    for path, connections in paths:
        t = totals[path]
        for key in grand:
            grand[key] += t[key]
        rows.append([path, str(connections), str(t["segments"]), str(t["requests"]),
                     f"{t['requests'] / t['seconds']:.1f}" if t["seconds"] else "-", str(t["socket_errors"]), str(t["non2xx"])])
    rows.append(["total", "", str(grand["segments"]), str(grand["requests"]),
                 f"{grand['requests'] / grand['seconds']:.1f}" if grand["seconds"] else "-",
                 str(grand["socket_errors"]), str(grand["non2xx"])])
    print(tb.table(["path", "conns", "wrk runs", "requests", "req/s", "socket errors", "non-2xx"], rows))
    print()
    peak = max(samples + [start, end], key=lambda s: s.rss)
    peak_own = max(samples + [start, end], key=lambda s: s.own)
    flat, line = verdict("RSS (VmRSS)", start.rss, end.rss, peak.rss, args.margin)
    print(line + f" (max at {peak.t - start.t:.0f} s)")
    own_flat, own_line = verdict("toro-vmm's own (VmRSS less guest RAM)", start.own, end.own, peak_own.own, args.margin)
    print(own_line)
    print(f"guest RAM resident: start {mib(start.guest)} MiB, end {mib(end.guest)} MiB of {MEMORY_MIB} MiB "
          f"(pages the guest touched; grows without any leak of the VMM)")
    print(f"file descriptors: start {start.fds}, end {end.fds}; threads: start {start.threads}, end {end.threads}")
    minutes = []
    next_mark = 0.0
    for s in [start] + samples:
        if s.t - start.t >= next_mark:
            minutes.append(f"{s.t - start.t:.0f} s {mib(s.rss)}")
            next_mark += 60.0
    print("RSS once a minute (MiB): " + ", ".join(minutes))
    print(f"verdict: RSS {'flat' if flat else 'NOT flat'}; toro-vmm's own memory {'flat' if own_flat else 'NOT flat'}")
    if stats:
        device = (stats.get("devices") or [{}])[0]
        print(f"device: tx {device.get('tx_frames')} frames, rx {device.get('rx_frames')} frames, "
              f"drops {device.get('tx_drops')}/{device.get('rx_drops')}, errors {device.get('errors')}; "
              f"VM stop: {stats['stop']['reason']}")

    if grand["socket_errors"]:
        problems.append(f"{grand['socket_errors']} socket errors")
    if grand["non2xx"]:
        problems.append(f"{grand['non2xx']} non-2xx responses")
    if grand["empty"]:
        problems.append(f"{grand['empty']} wrk run(s) completed no request")
    if not alive:
        problems.append("the VM was not running at the end")
    if problems:
        print("FAIL: " + "; ".join(problems))
        print("last console lines:\n  " + "\n  ".join(console[-10:]))
        sys.exit(1)
    print(f"PASS: {grand['requests']} requests, 0 socket errors, 0 non-2xx responses")


if __name__ == "__main__":
    main()
