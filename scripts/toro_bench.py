"""Shared pieces of the benchmark scripts: run toro-vmm, timestamp its console
lines, read its JSON statistics, print medians and tables, and choose the
execution modes to compare (kvm_pvm's native and emulated modes side by side
where the host has them, the default mode alone elsewhere); and for the HTTP
benchmark, a network namespace with the guest's TAP, wrk and nginx in it."""
import json
import os
import re
import shutil
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


# --- HTTP benchmarks: a network namespace of their own, wrk, nginx ----------
#
# Every byte of benchmark traffic stays inside a namespace the script creates:
# the guest's TAP lives there, and so do wrk and nginx.

HOST_ADDRESS = "10.77.0.1"  # the namespace's end of the TAP
GUEST_ADDRESS = "10.77.0.2"
TAP = "torobench0"
NGINX_PORT = 8080


def sh(*command, check=True):
    return subprocess.run(command, check=check, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Namespace:
    """A network namespace with TAP (HOST_ADDRESS/24) and loopback up; deleted on exit."""

    def __init__(self, prefix="toro-bench"):
        self.name = f"{prefix}-{os.getpid()}"

    def __enter__(self):
        sh("ip", "netns", "add", self.name)
        for args in (["link", "set", "lo", "up"], ["tuntap", "add", "dev", TAP, "mode", "tap"],
                     ["addr", "add", f"{HOST_ADDRESS}/24", "dev", TAP], ["link", "set", TAP, "up"]):
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
    errors = re.findall(r"Socket errors:.*|Non-2xx.*", output)
    result["errors"] = "; ".join(errors)
    return result


def wrk(namespace, url, connections, seconds):
    """`wrk -t1 -cN -dS --latency URL` from inside the namespace (keep-alive, as wrk always is)."""
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency", url]
    output = subprocess.run(namespace.command(*command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    result = parse_wrk(output)
    result["output"] = output
    return result


def fetch(namespace, url, path):
    """GETs `url` once with curl from inside the namespace into `path`: (status line ok, header bytes, body bytes, content type)."""
    result = sh(*namespace.command("curl", "-sS", "--max-time", "5", "-o", path,
                                    "-w", "%{http_code} %{size_header} %{size_download} %{content_type}", url), check=False)
    fields = result.stdout.strip().split(" ", 3)
    if result.returncode != 0 or len(fields) < 3 or fields[0] != "200":
        return None
    return {"header_bytes": int(fields[1]), "body_bytes": int(fields[2]), "content_type": fields[3] if len(fields) > 3 else ""}


class Nginx:
    """nginx inside the namespace on HOST_ADDRESS:NGINX_PORT, one process (no
    master, one worker's worth of serving), keep-alive on and without a
    per-connection request limit, no access log; every path answers with the
    bytes of `page` and its content type."""

    def __init__(self, namespace, page, content_type):
        self.namespace = namespace
        self.page = page
        self.content_type = content_type or "text/html"
        self.directory = tempfile.mkdtemp(prefix="toro-bench-nginx-")
        self.process = None

    @property
    def url(self):
        return f"http://{HOST_ADDRESS}:{NGINX_PORT}"

    def config(self):
        d = self.directory
        temp_paths = "\n".join(f"    {kind}_temp_path {d}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        return f"""daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
{temp_paths}
    keepalive_timeout 5s;
    keepalive_requests 100000000;
    types {{ }}
    default_type "{self.content_type}";
    server {{
        listen {HOST_ADDRESS}:{NGINX_PORT};
        location / {{ root {d}; rewrite ^ /page break; }}
    }}
}}
"""

    def __enter__(self):
        with open(os.path.join(self.directory, "page"), "wb") as f:
            f.write(self.page)
        config = os.path.join(self.directory, "nginx.conf")
        with open(config, "w") as f:
            f.write(self.config())
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.process = subprocess.Popen(self.namespace.command(nginx, "-p", self.directory, "-c", config),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if fetch(self.namespace, self.url + "/", os.path.join(self.directory, "check")):
                return self
            time.sleep(0.1)
        self.__exit__()
        log = os.path.join(self.directory, "error.log")
        sys.exit(f"bench: nginx did not start; {open(log).read().strip() if os.path.exists(log) else 'no error log'}")

    def cpu_seconds(self):
        """CPU time nginx has used so far (`ip netns exec` execs nginx: same process)."""
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)
