#!/usr/bin/env python3
"""syn-flood.py: sends TCP SYNs from spoofed source addresses, for testing.

    scripts/syn-flood.py --target 10.77.0.2 --port 80 --count 500 \
        --sources 10.77.0.0/24,198.18.0.0/24 --avoid 10.77.0.1,10.77.0.2

Each SYN comes from a random address of the --sources networks (round robin
over the networks; network and broadcast addresses and --avoid excluded) and a
random port, with a random sequence number and an MSS option, like a real
client's first segment; nobody will ever answer the SYN-ACKs. Raw IPv4
(IP_HDRINCL), so it needs root (CAP_NET_RAW). The integration tests run it only
inside a network namespace they made, towards a guest on that namespace's TAP.
Prints one line: how many were sent and how long it took.
"""

import argparse
import errno
import ipaddress
import random
import socket
import sys
import time

from packets import syn_packet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", required=True, help="the address the SYNs go to")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--sources", required=True, help="comma-separated networks the spoofed sources come from")
    parser.add_argument("--avoid", default="", help="comma-separated addresses never used as a source")
    parser.add_argument("--seed", type=int, default=5961)
    arguments = parser.parse_args()

    avoid = {ipaddress.ip_address(a) for a in arguments.avoid.split(",") if a}
    networks = [ipaddress.ip_network(n, strict=False) for n in arguments.sources.split(",") if n]
    pools = []
    for network in networks:
        pool = [a for a in network.hosts() if a not in avoid]
        if not pool:
            print(f"syn-flood: no usable source address in {network}", file=sys.stderr)
            return 2
        pools.append(pool)
    rng = random.Random(arguments.seed)
    packets = []
    for index in range(arguments.count):
        pool = pools[index % len(pools)]
        source = str(rng.choice(pool))
        packets.append(
            syn_packet(source, arguments.target, rng.randrange(1024, 65536), arguments.port,
                       rng.randrange(0, 1 << 32), rng.randrange(1, 1 << 16)))

    sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)  # IP_HDRINCL implied
    sent = 0
    start = time.monotonic()
    for packet in packets:
        while True:
            try:
                sender.sendto(packet, (arguments.target, 0))
                sent += 1
                break
            except OSError as error:
                if error.errno not in (errno.ENOBUFS, errno.EAGAIN):
                    raise
                time.sleep(0.001)  # the device's queue is full: wait a moment rather than lose it
    elapsed = time.monotonic() - start
    print(f"syn-flood: sent {sent} SYNs to {arguments.target}:{arguments.port} in {elapsed:.3f} s")
    return 0 if sent == arguments.count else 1


if __name__ == "__main__":
    sys.exit(main())
