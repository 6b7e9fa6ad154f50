#!/usr/bin/env bash
# install-bench-deps.sh: installs the host tools the benchmarks drive when
# they are missing and this is root on a Debian-like system: a C compiler and
# the kernel's KVM header for bench-boot's minimal C loader (gcc, libc6-dev,
# linux-libc-dev), and for bench-http ip (iproute2), curl, wrk and nginx, the
# server Toro's WebServer is compared against in the same run. Only nginx's
# binary is used: scripts/bench-http.py runs it itself, inside its own network
# namespace, with a configuration of its own; the package's system service is
# not started. Anything it cannot install is only reported: the benchmark
# that needs it then says what is missing.
set -euo pipefail
# ip and nginx live in /usr/sbin, which a plain user's PATH (or env -i's) may lack.
PATH="$PATH:/usr/sbin:/sbin"

missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
[[ -e /usr/include/stdio.h ]] || missing+=(libc6-dev)
[[ -e /usr/include/linux/kvm.h ]] || missing+=(linux-libc-dev)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || missing+=(nginx)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-bench-deps: missing ${missing[*]}; not root or no apt-get, so the benchmarks that need them cannot run"
    exit 0
fi
echo "install-bench-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# policy-rc.d refusing every start keeps the package's own nginx service from
# starting (and listening on the host's port 80) during the install.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
    trap 'rm -f "$policy"' EXIT
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
fi
install() { apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }
if ! install; then
    apt-get update -qq >/dev/null 2>&1 || true
    install || echo "install-bench-deps: could not install ${missing[*]}; the benchmarks that need them cannot run"
fi
exit 0
