#!/usr/bin/env bash
# run-example.sh: boots an example image with the release VMM (what `make run` does).
#
#   scripts/run-example.sh NAME [CPUS]
#
# WebServer needs a network: the script creates TAP device $TORO_TAP (default
# toro0) with the host address $TORO_HOST (default 10.0.0.1/24), boots the
# server at $TORO_GUEST (default 10.0.0.2/24) and deletes the TAP when the VM
# stops (Ctrl-C). From another terminal: curl http://10.0.0.2/
# That needs root (a TAP device), and refuses to take a subnet the host
# already routes. Every other example only needs /dev/kvm.
#
# Ctrl-C is how the user stops the VM: toro-vmm stops it cleanly and exits
# 130, and this script then exits 0 (after deleting the TAP), so that
# `make run` does not report a failure. At a terminal the VMM runs as a job
# of its own (job control, set -m), which the terminal makes its foreground:
# Ctrl-C then reaches only toro-vmm, not make, which would otherwise stop
# with status 130 of its own whatever this script returned.
set -euo pipefail
cd "$(dirname "$0")/.."
# ip lives in /usr/sbin, which a plain user's PATH may lack.
PATH="$PATH:/usr/sbin:/sbin"

name="${1:?usage: $0 NAME [CPUS]}"
cpus="${2:-2}"
vmm=.build/release/toro-vmm
image=".build/images/$name.elf"
[[ -x "$vmm" ]] || { echo "run-example: $vmm is missing; run make release" >&2; exit 2; }
[[ -f "$image" ]] || { echo "run-example: $image is missing; run make images" >&2; exit 2; }

# Runs toro-vmm with ARGS and exits with its status, 0 for a stop by Ctrl-C.
run_vm() {
    local status=0
    [[ -t 0 ]] && set -m
    "$vmm" run "$@" || status=$?
    # Ctrl-Z stops only the VM's job, behind make's back, where nobody could
    # resume it: resume it at once instead.
    while [[ $status -ge 147 && $status -le 150 ]] && [[ -n "$(jobs -s)" ]]; do
        echo "run-example: the VM cannot be suspended here; Ctrl-C stops it" >&2
        status=0
        fg %% >/dev/null || status=$?
    done
    set +m
    if [[ $status -eq 130 ]]; then
        echo "run-example: stopped by Ctrl-C" >&2
        status=0
    fi
    return "$status"
}

if [[ "$name" != "WebServer" ]]; then
    status=0
    run_vm "$image" --cpus "$cpus" || status=$?
    exit "$status"
fi

tap="${TORO_TAP:-toro0}"
host="${TORO_HOST:-10.0.0.1/24}"
guest="${TORO_GUEST:-10.0.0.2/24}"
if [[ $(id -u) -ne 0 ]]; then
    echo "run-example: WebServer needs root to create TAP device $tap (try: sudo make run)" >&2
    exit 2
fi
if ! command -v ip >/dev/null 2>&1; then
    echo "run-example: the ip command (iproute2) is missing" >&2
    exit 2
fi
if ip link show "$tap" >/dev/null 2>&1; then
    echo "run-example: $tap already exists; delete it (ip link delete $tap) or set TORO_TAP" >&2
    exit 2
fi
prefix="${host%.*}."
if ip -4 -o addr show | grep -q "inet ${prefix//./\\.}"; then
    echo "run-example: the host already has an address in ${prefix}0; pick another subnet with TORO_HOST and TORO_GUEST" >&2
    exit 2
fi

ip tuntap add dev "$tap" mode tap
trap 'ip link delete "$tap" 2>/dev/null || true' EXIT
ip addr add "$host" dev "$tap"
ip link set "$tap" up
echo "run-example: TAP $tap at $host; the server will be at http://${guest%/*}/ (Ctrl-C stops it)"
status=0
run_vm "$image" --cpus "$cpus" --net "tap=$tap" --cmdline "ip=$guest" --stats-interval 10 || status=$?
exit "$status"
