#!/usr/bin/env bash
# install-test-deps.sh: installs the host tools the network tests drive
# (ip from iproute2, nsenter from util-linux, ping from iputils-ping, and curl
# and wrk for the web server) when they are missing and this is root on a
# Debian-like system. Anything it cannot install is only reported: the tests
# that need it skip with a printed reason.
set -euo pipefail
# ip lives in /usr/sbin, which a plain user's PATH (or env -i's) may lack.
PATH="$PATH:/usr/sbin:/sbin"

missing=()
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
command -v nsenter >/dev/null 2>&1 || missing+=(util-linux)
command -v ping >/dev/null 2>&1 || missing+=(iputils-ping)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-deps: missing ${missing[*]}; not root or no apt-get, so the tests that need them will skip"
    exit 0
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || echo "install-test-deps: could not install ${missing[*]}; the tests that need them will skip"
fi
