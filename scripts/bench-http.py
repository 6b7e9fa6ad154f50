#!/usr/bin/env python3
"""The seed's experiment, HTTP load on the WebServer example then silence, per
execution mode, next to nginx serving the same page in the same run.

All traffic stays in a network namespace this script creates: a TAP at
10.77.0.1/24 for the guest (10.77.0.2), and wrk and nginx inside it.

1. For every mode measured (on a kvm_pvm host: native and emulated; elsewhere
   the default mode alone, and the output says so), and for idle=halt and
   idle=poll: boots Examples/WebServer on 2 vCPUs, waits 1 s after it listens,
   runs `wrk -t1 -cCONNECTIONS -dLOADs --latency` on PATH over keep-alive, then
   leaves the VM idle for IDLE seconds, sampling every second. Prints the
   per-second table (the seed's `top` view), then per mode and idle policy:
   requests/s, p50/p99, VMM CPU under load and idle (leaving out the idle
   phase's first 2 s, the wind-down; 1 s when IDLE is 3), how long after the load the VMM fell
   under 1%, and per request: KVM traps (insn_emulation:
   privileged operations in native mode, every guest instruction in emulated
   mode) and VMM exits summed over the vCPUs, device notifications and
   interrupts. The per-request counts subtract a baseline VM, run right after
   with the same mode and command line, that boots and idles exactly as long
   after listening as the loaded VM lived, so boot and idling are not charged
   to the requests. (With idle=poll an idle vCPU executes, and in emulated
   mode traps, all the time, so there the difference is what the requests
   changed, not what they cost.)
2. A `wrk -c1` latency run on the same page, keep-alive, idle=halt, in native
   mode (the first mode measured where native is not): requests/s, p50, p99,
   and per request counts against the same baseline (it lives as long). Its VM
   also serves one curl of PATH first, which gives the page's bytes (counted
   as one more request).
3. nginx, one process, keep-alive on, access log off, on 10.77.0.1:8080 in the
   same namespace, serving those bytes with the guest's content type: the
   same wrk commands (-cCONNECTIONS and -c1), and Toro's requests/s as a ratio
   of nginx's (idle=halt runs), next to the CPU each server used meanwhile
   (nginx's process, the VMM's). (nginx's traffic goes over the namespace's loopback, Toro's
   through the TAP and the VMM; response headers differ a little: both sizes
   are printed.)

Needs root, /dev/kvm, /dev/net/tun, ip, curl, wrk and nginx
(scripts/install-bench-deps.sh installs them; `make bench-http` runs it).

Usage: scripts/bench-http.py [--load 10] [--idle 10] [--connections 4] [--path /]
                             [--modes native,emulated] [--workers local|spread]
                             [--no-nginx] [--vmm .build/release/toro-vmm]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import toro_bench as tb

GUEST_URL = f"http://{tb.GUEST_ADDRESS}"


class WebServerVM:
    """Examples/WebServer on 2 vCPUs in the namespace, with JSON statistics
    sampled every second; `stop()` ends it and returns the statistics."""

    def __init__(self, args, namespace, mode, idle):
        self.directory = tempfile.mkdtemp(prefix="toro-bench-http-")
        self.stats_path = os.path.join(self.directory, "stats.json")
        lifetime = args.load + args.idle + 60  # a bound: the script stops it long before
        cmdline = f"ip={tb.GUEST_ADDRESS}/24 idle={idle} workers={args.workers} seconds={lifetime}"
        command = namespace.command(args.vmm, "run", tb.image("WebServer"), "--cpus", "2", "--net", f"tap={tb.TAP}",
                                    "--cmdline", cmdline, "--stats-interval", "1", "--stats", "json",
                                    "--stats-file", self.stats_path, *tb.mode_args(mode))
        self.start = time.monotonic()
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, text=True)
        for line in self.process.stdout:
            if line.startswith("webserver: http://"):
                break
            if line.startswith("webserver: FAIL") or line.startswith("toro-vmm:"):
                sys.exit(f"bench-http: --mode {mode} idle={idle}: {line.strip()}")
        else:
            sys.exit(f"bench-http: --mode {mode} idle={idle}: the server never started")
        self.listening = self.now()
        # Keep draining the console so the VMM never blocks on a full pipe.
        threading.Thread(target=lambda: self.process.stdout.read(), daemon=True).start()

    def now(self):
        """Seconds since spawn, the VMM's own time base to a few milliseconds."""
        return time.monotonic() - self.start

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        with open(self.stats_path) as f:
            stats = json.load(f)
        shutil.rmtree(self.directory, ignore_errors=True)
        return stats


def loaded(args, namespace, mode, idle, connections, fetch_page=False):
    """One run of the experiment: listening, 1 s, wrk, IDLE s of silence."""
    vm = WebServerVM(args, namespace, mode, idle)
    time.sleep(1.0)
    page = None
    if fetch_page:
        page_path = os.path.join(vm.directory, "page")
        info = tb.fetch(namespace, GUEST_URL + args.path, page_path)
        if info is None:
            sys.exit(f"bench-http: curl {GUEST_URL}{args.path} failed")
        with open(page_path, "rb") as f:
            page = dict(info, bytes=f.read())
    load_start = vm.now()
    result = tb.wrk(namespace, GUEST_URL + args.path, connections, args.load)
    load_end = vm.now()
    time.sleep(args.idle + 0.5)
    held = vm.now() - vm.listening
    stats = vm.stop()
    result["requests_served"] = result["requests"] + (1 if fetch_page else 0)
    return {"wrk": result, "stats": stats, "listening": vm.listening, "held": held, "page": page,
            "load": (load_start, load_end), "idle": (load_end, load_end + args.idle)}


def baseline(args, namespace, mode, idle, held):
    """The same VM, booted and left idle for `held` seconds after it listens."""
    vm = WebServerVM(args, namespace, mode, idle)
    time.sleep(max(0.0, held - (vm.now() - vm.listening)))
    return vm.stop()


def device_total(stats, key):
    return sum(device.get(key, 0) for device in stats.get("devices", []))


def per_request(run, base):
    """Per served request, the run's counts less the baseline VM's."""
    requests = run["wrk"]["requests_served"]
    figures = {}
    for name, value in (("traps", lambda s: tb.total(s, "traps")), ("vmm_exits", lambda s: tb.total(s, "vmm_exits")),
                        ("notifications", lambda s: device_total(s, "notifications")),
                        ("interrupts", lambda s: device_total(s, "interrupts"))):
        a, b = value(run["stats"]), value(base)
        figures[name] = (a - b) / requests if requests and a is not None and b is not None else None
    return figures


def idle_skip(args):
    """Seconds of the idle phase left out of its CPU figure: the wind-down after the load."""
    return max(0, min(2, args.idle - 2))


def cpu_figures(args, run):
    samples = run["stats"].get("samples", [])
    load = tb.window(samples, *run["load"])
    idle = tb.window(samples, run["idle"][0] + idle_skip(args), run["idle"][1])
    settle = "never"
    for sample in samples:
        end = sample["t_ns"] / 1e9
        if end > run["idle"][0] and sample["process_cpu_percent"] < 1.0:
            settle = f"{end - run['idle'][0]:.1f} s"
            break
    def cpu(window, decimals):
        return f"{tb.mean([s['process_cpu_percent'] for s in window]):.{decimals}f}" if window else "-"
    return cpu(load, 1), cpu(idle, 3), settle


def print_seconds(label, run):
    load_start, load_end = run["load"]
    print(f"{label}: per second (VMM CPU%, then per vCPU CPU% / HLT exits/s / halted%)")
    rows = []
    for sample in tb.window(run["stats"].get("samples", []), load_start - 1, run["idle"][1]):
        end = sample["t_ns"] / 1e9
        phase = "load" if end <= load_end + 0.5 else "idle"
        row = [f"{end - load_start:.0f} s", phase, f"{sample['process_cpu_percent']:.2f}"]
        for vcpu in sample["vcpus"]:
            row.append(f"{vcpu['cpu_percent']:.1f} / {vcpu['hlt_exits_per_s']:.0f} / {vcpu['halted_percent']:.0f}")
        rows.append(row)
    print(tb.table(["t", "phase", "vmm cpu%", "vcpu0", "vcpu1"], rows))
    if run["wrk"]["errors"]:
        print(f"wrk: {run['wrk']['errors']}")
    print()


def count(value, decimals=1):
    return "-" if value is None else f"{value:.{decimals}f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--load", type=int, default=10, help="seconds of wrk per run")
    parser.add_argument("--idle", type=int, default=10, help="seconds of silence after the load")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--path", default="/")
    parser.add_argument("--workers", default="local", choices=["local", "spread"])
    parser.add_argument("--no-nginx", action="store_true", help="skip the comparison with nginx")
    parser.add_argument("--vmm", default=tb.DEFAULT_VMM)
    tb.add_modes_argument(parser)
    args = parser.parse_args()
    tb.require([args.vmm, tb.image("WebServer")])
    if os.geteuid() != 0:
        sys.exit("bench-http: needs root (network namespace and TAP)")
    os.environ["PATH"] += ":/usr/sbin:/sbin"
    for tool in ("ip", "wrk", "curl") + (() if args.no_nginx else ("nginx",)):
        if shutil.which(tool) is None:
            sys.exit(f"bench-http: {tool} is missing; run scripts/install-bench-deps.sh (or pass --no-nginx for nginx)")
    modes, note = tb.chosen_modes(args, "bench-http")
    c1_mode = "native" if "native" in modes else modes[0]

    runs, bases = {}, {}
    with tb.Namespace("toro-bench-http") as namespace:
        for mode in modes:
            for idle in ("halt", "poll"):
                runs[mode, idle] = loaded(args, namespace, mode, idle, args.connections)
                bases[mode, idle] = baseline(args, namespace, mode, idle, runs[mode, idle]["held"])
        c1 = loaded(args, namespace, c1_mode, "halt", 1, fetch_page=True)
        page = c1["page"]
        nginx = {}
        if not args.no_nginx:
            with tb.Nginx(namespace, page["bytes"], page["content_type"]) as server:
                nginx_page = tb.fetch(namespace, server.url + args.path, os.path.join(server.directory, "check"))
                for connections in (args.connections, 1):
                    cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
                    nginx[connections] = tb.wrk(namespace, server.url + args.path, connections, args.load)
                    nginx[connections]["cpu"] = 100 * (server.cpu_seconds() - cpu_before) / (time.monotonic() - wall_before)

    print(note)
    print()
    for (mode, idle), run in runs.items():
        print_seconds(f"mode {run['stats']['mode']}, idle={idle}, workers={args.workers}, wrk -c{args.connections}", run)

    print(f"summary: {args.load} s of wrk -t1 -c{args.connections} on {args.path} (keep-alive), then {args.idle} s idle, "
          f"2 vCPUs; per request = (run's counts - an idle VM's over the same time) / requests served")
    rows = []
    for (mode, idle), run in list(runs.items()) + [(("c1", "halt"), c1)]:
        wrk = run["wrk"]
        load_cpu, idle_cpu, settle = cpu_figures(args, run)
        base = bases[c1_mode, "halt"] if mode == "c1" else bases[mode, idle]
        figures = per_request(run, base)
        rows.append([run["stats"]["mode"], f"idle={idle}", "1" if mode == "c1" else str(args.connections),
                     f"{run['listening'] * 1000:.0f}", f"{wrk['rps']:.1f}", f"{wrk['p50']:.3f}", f"{wrk['p99']:.3f}",
                     load_cpu, idle_cpu, settle, str(wrk["requests_served"]),
                     count(figures["traps"]), count(figures["vmm_exits"], 3), count(figures["notifications"], 3),
                     count(figures["interrupts"], 3)])
    print(tb.table(["mode", "idle", "conns", "spawn to listening ms", "req/s", "p50 ms", "p99 ms", "load cpu%",
                    f"idle cpu% (from +{idle_skip(args)} s)", "under 1% after", "requests", "traps/req", "vmm exits/req",
                    "notifications/req", "interrupts/req"], rows))
    print("baseline VMs (boot, then idle as long as the loaded VM lived after listening): "
          + "; ".join(f"{b['mode']} idle={idle}: {tb.total(b, 'traps')} traps, {tb.total(b, 'vmm_exits')} vmm exits"
                      for (mode, idle), b in bases.items()))
    print("(with idle=poll the idle baseline polls too, so its per-request figures are what the requests changed, "
          "not what they cost; in emulated mode they can be negative)")

    for mode in modes:
        halt, poll = runs[mode, "halt"]["wrk"], runs[mode, "poll"]["wrk"]
        actual = runs[mode, "halt"]["stats"]["mode"]
        if poll["rps"] > 0:
            print(f"mode {actual}: throughput halt/poll {halt['rps'] / poll['rps']:.3f}; "
                  f"added p50 latency halt - poll {(halt['p50'] - poll['p50']) * 1000:.0f} us")
    if set(tb.PVM_MODES) <= set(modes) and runs["emulated", "halt"]["wrk"]["rps"] > 0:
        print(f"throughput native/emulated (idle=halt): "
              f"{runs['native', 'halt']['wrk']['rps'] / runs['emulated', 'halt']['wrk']['rps']:.1f}x")

    if nginx:
        print()
        print(f"nginx on {tb.HOST_ADDRESS}:{tb.NGINX_PORT} in the same namespace (1 process, keep-alive, no access log), "
              f"the same wrk commands for {args.load} s each; "
              f"{args.path}: Toro sends {page['header_bytes']} header + {page['body_bytes']} body bytes, "
              f"nginx {nginx_page['header_bytes']} + {nginx_page['body_bytes']}")
        rows = [["nginx", str(c), f"{r['rps']:.1f}", f"{r['p50']:.3f}", f"{r['p99']:.3f}", f"{r['cpu']:.1f}", "", r["errors"]]
                for c, r in nginx.items()]
        for mode, idle, connections, run in [(m, "halt", args.connections, runs[m, "halt"]) for m in modes] + [(c1_mode, "halt", 1, c1)]:
            r = run["wrk"]
            rows.append([f"toro {run['stats']['mode']}", str(connections), f"{r['rps']:.1f}", f"{r['p50']:.3f}", f"{r['p99']:.3f}",
                         cpu_figures(args, run)[0], f"{r['rps'] / nginx[connections]['rps']:.3f}", r["errors"]])
        print(tb.table(["server", "conns", "req/s", "p50 ms", "p99 ms", "server cpu% (nginx process, toro-vmm)",
                        "toro/nginx req/s", "wrk errors"], rows))


if __name__ == "__main__":
    main()
