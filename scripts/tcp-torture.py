#!/usr/bin/env python3
"""tcp-torture.py: hand-made TCP/IP packets against a guest's stack, for testing.

    scripts/tcp-torture.py --interface torotapt --target 10.77.0.2 \
        --source 10.77.0.3 --port 80

Built for Examples/WebServer on a TAP device, run by the integration tests
inside the network namespace they made (root: raw sockets need
CAP_NET_RAW). Python 3 standard library only.

How it bypasses the host's own TCP: it speaks from an address the host does
not own (--source, default 10.77.0.3) with a made-up MAC address, through an
AF_PACKET socket bound to the TAP. What it writes there goes straight to the
guest; what the guest sends to that MAC reaches the host as a frame for
another host, which the host's IP stack drops, so the host never answers with
resets of its own. The script answers the guest's ARP requests for --source
itself, and announces itself first with an ARP request for the guest.

Cases, each on a fresh connection (its own source port) unless said:
- out-of-order: a request in four pieces sent last first; reassembled, answered.
- overlapping: pieces that overlap each other and a duplicate, in a mixed order.
- rst-in-window / rst-out-of-window: a reset at a sequence number in the
  window but not the next expected one gets a challenge ACK (RFC 5961 §3.2);
  one outside the window is ignored; the connection stays and serves.
- syn-on-established: a SYN with another sequence number gets a challenge ACK
  (RFC 5961 §4.2); the connection stays and serves.
- rst-exact: the control: a reset at exactly the next sequence number ends
  the connection (later data gets a reset).
- bad-tcp-checksum / bad-ip-checksum: a request with a corrupted checksum is
  dropped (not acknowledged, not answered); the same bytes sent correctly are.
- ip-fragments: a request split into two IPv4 fragments is dropped (the stack
  does not reassemble) and counted.
- bad-ip-lengths: header length under 5 words, total length under the header,
  total length beyond the frame: dropped.
- bad-tcp-offsets: data offset under 5 words, or beyond the segment: dropped.
- zero-window: the client advertises a zero window from its handshake on; the
  server may send only one-byte window probes, and once a probe came the
  window opens and the whole response must follow.
- fin-out-of-order: the request's last piece, with our FIN, comes first.
- rst-in-syn-received: an inexact reset during the handshake gets a challenge
  ACK (RFC 5961 §3.2); the handshake completes and the request is served.
- many-tiny-pieces: 140 one-byte segments sent last first (more than the 64
  out-of-order pieces the stack holds), then the whole request again.
- tiny-mss: a SYN announcing an MSS of 1: the answer comes in 48-byte segments.
- linux-options: SACK permitted, timestamps and window scale in the SYN and
  timestamps on the data: ignored, served.
- bad-tcp-options: an option of length 0, one running past the header: dropped.
- ack-of-unsent-data: data acknowledging bytes never sent is dropped with a
  challenge ACK (RFC 5961 §5.2).
- beyond-window: data past the advertised window is not taken.
- syn-flood: 300 SYNs from spoofed off-link sources, then a normal request.

After every case a normal GET /health from this address on a new raw
connection must be served (200 "ok"). Prints one line per case, `PASS name:
detail` or `FAIL name: detail`, then `tcp-torture: N passed, M failed` and
`tcp-torture: sent fragments=F checksum=C length=L truncated=T syn_flood=S`,
how many frames of each kind it sent that the guest must have dropped and
counted, and how many spoofed SYNs.
Exits 0 only when every case passed.
"""

import argparse
import random
import select
import socket
import struct
import sys
import time

from packets import checksum, syn_packet
from torture_cases import run_cases

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
PACKET_OUTGOING = 4
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
TIMEOUT = 20.0  # a generous bound on anything we wait for: a dead guest fails, never hangs

HEALTH = b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
NOPE = b"GET /nope HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
SENT_DROPS = {"fragments": 0, "checksum": 0, "length": 0, "truncated": 0}
SYN_FLOOD = [0]  # spoofed SYNs sent


def mac_bytes(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


class Link:
    """The AF_PACKET socket on the TAP: frames to and from the guest, ARP answered."""

    def __init__(self, interface, source_ip, source_mac, target_ip):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((interface, 0))
        self.source_ip = socket.inet_aton(source_ip)
        self.target_ip = socket.inet_aton(target_ip)
        self.mac = mac_bytes(source_mac)
        self.guest_mac = None
        self.ident = random.randrange(1, 1 << 16)

    def send_frame(self, payload: bytes, ethertype=ETH_P_IP, destination=None):
        frame = (destination or self.guest_mac) + self.mac + struct.pack("!H", ethertype) + payload
        if len(frame) < 60:
            frame += b"\0" * (60 - len(frame))
        self.sock.send(frame)

    def arp(self, operation, target_mac, target_ip, destination):
        packet = struct.pack("!HHBBH", 1, ETH_P_IP, 6, 4, operation) + self.mac + self.source_ip + target_mac + target_ip
        self.send_frame(packet, ETH_P_ARP, destination)

    def resolve_guest(self):
        """Asks the guest for its MAC (which also teaches it ours)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            self.arp(1, b"\0" * 6, self.target_ip, b"\xff" * 6)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                self.receive(0.1)
                if self.guest_mac:
                    return
        raise RuntimeError("the guest never answered ARP")

    def receive(self, timeout):
        """IPv4 frames from the guest to us within `timeout` (ARP handled here)."""
        frames = []
        end = time.monotonic() + timeout
        while True:
            # Until the first frame comes (or the time is up); then only what is there already.
            wait = 0.0 if frames else max(0.0, end - time.monotonic())
            readable, _, _ = select.select([self.sock], [], [], wait)
            if not readable:
                break
            frame, address = self.sock.recvfrom(65536)
            if address[2] == PACKET_OUTGOING or len(frame) < 14:
                continue
            destination, ethertype = frame[0:6], struct.unpack("!H", frame[12:14])[0]
            if ethertype == ETH_P_ARP and len(frame) >= 42:
                operation = struct.unpack("!H", frame[20:22])[0]
                sender_mac, sender_ip, target_ip = frame[22:28], frame[28:32], frame[38:42]
                if sender_ip == self.target_ip:
                    if operation == 2 and destination == self.mac:
                        self.guest_mac = sender_mac
                    elif operation == 1 and target_ip == self.source_ip:
                        self.guest_mac = sender_mac
                        self.arp(2, sender_mac, sender_ip, sender_mac)
                continue
            if ethertype == ETH_P_IP and destination == self.mac and frame[26:30] == self.target_ip:
                frames.append(frame)
        return frames

    def ip_packet(self, protocol, body, flags_offset=0x4000, ihl=5, total=None, bad_checksum=False, ident=None):
        ident = ident if ident is not None else self.next_ident()
        total = total if total is not None else 20 + len(body)
        header = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, ident, flags_offset, 64, protocol, 0,
                             self.source_ip, self.target_ip)
        value = checksum(header)
        if bad_checksum:
            value ^= 0x5555
        return header[:10] + struct.pack("!H", value) + header[12:] + body

    def next_ident(self):
        self.ident = (self.ident + 1) & 0xFFFF
        return self.ident


def tcp_segment(link, sport, dport, seq, ack, flags, window, payload=b"", options=b"", offset=None, bad_checksum=False):
    words = offset if offset is not None else (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, words << 4, flags,
                         window, 0, 0) + options
    segment = header + payload
    pseudo = link.source_ip + link.target_ip + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(segment))
    value = checksum(pseudo + segment)
    if bad_checksum:
        value ^= 0x00FF
    return segment[:16] + struct.pack("!H", value) + segment[18:]


class Segment:
    def __init__(self, frame):
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        tcp = ip[ihl:total]
        self.protocol = ip[9]
        (self.sport, self.dport, self.seq, self.ack, offset, self.flags, self.window) = struct.unpack(
            "!HHIIBBH", tcp[:16]) if len(tcp) >= 16 else (0, 0, 0, 0, 0, 0, 0)
        self.payload = tcp[(offset >> 4) * 4:]

    def has(self, flag):
        return self.flags & flag != 0


class Connection:
    """One TCP connection from (source, sport) to the guest, driven by hand."""

    def __init__(self, link, port, window=65535):
        self.link = link
        self.port = port
        self.sport = random.randrange(20000, 60000)
        self.iss = random.randrange(0, 1 << 32)
        self.snd_nxt = self.iss
        self.rcv_nxt = 0
        self.window = window
        self.received = b""  # in-order stream from the guest
        self.held = {}  # out-of-order pieces: seq -> bytes
        self.fin = False
        self.reset = False
        self.log = []  # every segment the guest sent on this connection
        self.syn_options = struct.pack("!BBH", 2, 4, 1460)  # MSS

    def send(self, flags, payload=b"", seq=None, window=None, **options):
        seq = self.snd_nxt if seq is None else seq
        window = self.window if window is None else window
        ack = self.rcv_nxt if flags & ACK else 0
        ack = options.pop("ack_override", ack)
        segment = tcp_segment(self.link, self.sport, self.port, seq, ack, flags, window, payload,
                              options=options.pop("tcp_options", b""), offset=options.pop("data_offset", None),
                              bad_checksum=options.pop("bad_tcp_checksum", False))
        self.link.send_frame(self.link.ip_packet(socket.IPPROTO_TCP, segment, **options))

    def send_data(self, payload, offset=0, **options):
        """Payload bytes at stream offset `offset` (from the first byte after our SYN).
        A well-formed segment (no `options` spoiling it) moves SND.NXT to its end."""
        seq = (self.iss + 1 + offset) & 0xFFFFFFFF
        self.send(ACK | PSH, payload, seq=seq, **options)
        end = (seq + len(payload)) & 0xFFFFFFFF
        if not options and 0 < ((end - self.snd_nxt) & 0xFFFFFFFF) < (1 << 31):
            self.snd_nxt = end

    def pump(self, timeout, until=None):
        """Takes the guest's segments for `timeout` or until `until(self)`; acknowledges data as a receiver does."""
        end = time.monotonic() + timeout
        while True:
            if until and until(self):
                return True
            remaining = end - time.monotonic()
            if remaining <= 0:
                return until(self) if until else True
            for frame in self.link.receive(min(remaining, 0.2)):
                segment = Segment(frame)
                if segment.protocol != socket.IPPROTO_TCP or segment.sport != self.port or segment.dport != self.sport:
                    continue
                self.log.append(segment)
                self.take(segment)

    def take(self, segment):
        if segment.has(RST):
            self.reset = True
            return
        if segment.has(SYN):
            return
        length = len(segment.payload) + (1 if segment.has(FIN) else 0)
        if length == 0:
            return
        if self.window == 0:
            # A closed window takes nothing (a probe's byte included): the ACK says so.
            self.send(ACK)
            return
        offset = (segment.seq - self.rcv_nxt) & 0xFFFFFFFF
        if offset < (1 << 31) and offset > 0:
            self.held[segment.seq] = (segment.payload, segment.has(FIN))
        elif offset >= (1 << 31):
            skip = (self.rcv_nxt - segment.seq) & 0xFFFFFFFF
            if skip < len(segment.payload):
                self.accept(segment.payload[skip:], segment.has(FIN))
            elif skip == len(segment.payload) and segment.has(FIN) and not self.fin:
                self.accept(b"", True)
        else:
            self.accept(segment.payload, segment.has(FIN))
        self.drain()
        self.send(ACK)

    def accept(self, data, fin):
        self.received += data
        self.rcv_nxt = (self.rcv_nxt + len(data)) & 0xFFFFFFFF
        if fin and not self.fin:
            self.fin = True
            self.rcv_nxt = (self.rcv_nxt + 1) & 0xFFFFFFFF

    def drain(self):
        progress = True
        while progress and not self.fin:
            progress = False
            for seq in list(self.held):
                data, fin = self.held[seq]
                skip = (self.rcv_nxt - seq) & 0xFFFFFFFF
                if skip >= (1 << 31):
                    continue  # still ahead
                del self.held[seq]
                if skip < len(data) or (skip == len(data) and fin):
                    self.accept(data[skip:], fin)
                    progress = True

    def open(self):
        """The three-way handshake; False if no SYN-ACK came."""
        self.send(SYN, seq=self.iss, tcp_options=self.syn_options)

        def synack(connection):
            return any(s.has(SYN) and s.has(ACK) for s in connection.log)

        end = time.monotonic() + TIMEOUT
        while time.monotonic() < end:
            if self.pump(1.0, synack):
                break
            self.send(SYN, seq=self.iss, tcp_options=self.syn_options)  # lost? again
        answers = [s for s in self.log if s.has(SYN) and s.has(ACK)]
        if not answers or answers[0].ack != (self.iss + 1) & 0xFFFFFFFF:
            return False
        self.rcv_nxt = (answers[0].seq + 1) & 0xFFFFFFFF
        self.snd_nxt = (self.iss + 1) & 0xFFFFFFFF
        self.send(ACK)
        return True

    def response_complete(self):
        end = self.received.find(b"\r\n\r\n")
        if end < 0:
            return False
        length = 0
        for line in self.received[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        return len(self.received) >= end + 4 + length

    def read_response(self, timeout=TIMEOUT):
        """Waits for a whole response (and the guest's FIN, which Connection: close brings)."""
        self.pump(timeout, lambda c: c.reset or (c.response_complete() and c.fin))
        return self.received

    def finish(self):
        """Our FIN after the guest's (or a reset if the guest never closed): leaves the guest nothing."""
        if self.reset:
            return
        if self.fin:
            self.send(FIN | ACK)
            self.snd_nxt = (self.snd_nxt + 1) & 0xFFFFFFFF
            self.pump(0.3)
        else:
            self.send(RST | ACK)

    def acks_beyond(self, limit):
        """Segments from the guest acknowledging beyond stream offset `limit` (bytes after our SYN)."""
        edge = (self.iss + 1 + limit) & 0xFFFFFFFF
        return [s for s in self.log if s.has(ACK) and 0 < ((s.ack - edge) & 0xFFFFFFFF) < (1 << 31)]


def health_ok(data):
    return data.startswith(b"HTTP/1.1 200 ") and data.endswith(b"\r\n\r\nok\n")


def describe(data):
    first = data.split(b"\r\n", 1)[0]
    return f"{first.decode('latin-1')!r} ({len(data)} bytes)" if data else "nothing"


# MARK: - Cases


def opened(link, port, window=65535, syn_options=None):
    connection = Connection(link, port, window)
    if syn_options is not None:
        connection.syn_options = syn_options
    if not connection.open():
        raise RuntimeError("no SYN-ACK")
    return connection


def served(connection, what=""):
    data = connection.read_response()
    connection.finish()
    if health_ok(data):
        return True, f"{what}answered {describe(data)}"
    return False, f"{what}got {describe(data)}{', reset' if connection.reset else ''}"


def dropped_then_served(c, what):
    """After bad copies of a request: the guest took none (no ACK beyond what
    it had, no data back), and then serves the good copy."""
    c.pump(0.5)
    if c.acks_beyond(0) or c.received:
        c.finish()
        return False, f"{what} was taken"
    c.send_data(HEALTH)
    return served(c, "dropped; the good copy ")


def case_out_of_order(link, port):
    c = opened(link, port)
    pieces = [(0, 12), (12, 25), (25, 40), (40, len(HEALTH))]
    for start, end in reversed(pieces):
        c.send_data(HEALTH[start:end], start)
        c.pump(0.05)
    return served(c, "4 pieces sent last first: ")


def case_overlapping(link, port):
    c = opened(link, port)
    n = len(HEALTH)
    order = [(30, n), (10, 35), (10, 35), (20, 31), (0, 15), (5, 25), (0, 8)]
    for start, end in order:
        c.send_data(HEALTH[start:end], start)
        c.pump(0.05)
    return served(c, "7 overlapping pieces and a duplicate: ")


def case_rst_in_window(link, port):
    c = opened(link, port)
    before = len(c.log)
    c.send(RST, seq=c.snd_nxt + 1000)
    challenged = c.pump(5.0, lambda x: any(s.has(ACK) and not s.has(RST) and s.ack == c.snd_nxt
                                           for s in x.log[before:]))
    if not challenged:
        c.finish()
        return False, "no challenge ACK for a reset 1000 bytes into the window"
    c.send_data(HEALTH)
    ok, detail = served(c, "challenge ACK, then ")
    return ok, detail


def case_rst_out_of_window(link, port):
    c = opened(link, port)
    c.send(RST, seq=c.snd_nxt + 200000)
    c.send(RST | ACK, seq=c.snd_nxt - 70000)
    c.pump(0.3)
    if c.reset:
        return False, "the guest answered a reset with a reset"
    c.send_data(HEALTH)
    return served(c, "two resets outside the window ignored, then ")


def case_syn_on_established(link, port):
    c = opened(link, port)
    before = len(c.log)
    c.send(SYN, seq=c.snd_nxt + 12345, tcp_options=struct.pack("!BBH", 2, 4, 1460))
    challenged = c.pump(5.0, lambda x: any(s.has(ACK) and not s.has(RST) and not s.has(SYN) and s.ack == c.snd_nxt
                                           for s in x.log[before:]))
    if not challenged or c.reset:
        c.finish()
        return False, "no challenge ACK for a SYN on an established connection"
    c.send_data(HEALTH)
    return served(c, "challenge ACK, then ")


def case_rst_exact(link, port):
    c = opened(link, port)
    c.send(RST, seq=c.snd_nxt)
    c.pump(0.3)
    before = len(c.log)
    c.send_data(HEALTH)
    reset = c.pump(5.0, lambda x: any(s.has(RST) for s in x.log[before:]))
    if not reset:
        return False, "data after an exact reset got no reset: the connection lived on"
    return True, "an exact reset closed the connection; later data got a reset"


def case_bad_tcp_checksum(link, port):
    c = opened(link, port)
    c.send_data(NOPE, bad_tcp_checksum=True)
    SENT_DROPS["checksum"] += 1
    return dropped_then_served(c, "a segment with a bad TCP checksum")


def case_bad_ip_checksum(link, port):
    c = opened(link, port)
    c.send_data(NOPE, bad_checksum=True)
    SENT_DROPS["checksum"] += 1
    return dropped_then_served(c, "a packet with a bad IP header checksum")


def case_ip_fragments(link, port):
    c = opened(link, port)
    segment = tcp_segment(link, c.sport, port, c.snd_nxt, c.rcv_nxt, ACK | PSH, c.window, NOPE)
    ident = link.next_ident()
    first, second = segment[:24], segment[24:]
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, first, flags_offset=0x2000, ident=ident))
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, second, flags_offset=24 // 8, ident=ident))
    # And a lone last fragment, and a whole segment in one "fragment" (offset 0, MF set).
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, second, flags_offset=0x4000 | (24 // 8)))
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, segment, flags_offset=0x2000))
    SENT_DROPS["fragments"] += 4
    c.pump(0.5)
    if c.acks_beyond(0) or c.received:
        c.finish()
        return False, "fragments were taken"
    c.send_data(HEALTH)
    return served(c, "4 fragments dropped; the whole packet ")


def case_bad_ip_lengths(link, port):
    c = opened(link, port)
    segment = tcp_segment(link, c.sport, port, c.snd_nxt, c.rcv_nxt, ACK | PSH, c.window, NOPE)
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, segment, ihl=4))  # header under 20 bytes
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, segment, total=16))  # total under the header
    SENT_DROPS["length"] += 2
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, segment, total=20 + len(segment) + 200))  # beyond the frame
    # A 60-byte header in a packet of 40 (a bare ACK; the frame padded to 60 bytes).
    bare = tcp_segment(link, c.sport, port, c.snd_nxt, c.rcv_nxt, ACK, c.window)
    link.send_frame(link.ip_packet(socket.IPPROTO_TCP, bare, ihl=15))
    SENT_DROPS["truncated"] += 2
    return dropped_then_served(c, "a packet with a bad length")


def case_bad_tcp_offsets(link, port):
    c = opened(link, port)
    for words in (0, 4, 15):  # under 5 words (0, 4); 60 bytes, beyond a segment of 50 (15)
        c.send_data(NOPE[:30], data_offset=words)
        SENT_DROPS["length"] += 1
    return dropped_then_served(c, "a segment with a bad data offset")


def case_zero_window(link, port):
    c = opened(link, port, window=0)
    c.send_data(HEALTH)
    # The server has a response and no window: only probes (at most one byte) may come.
    probed = c.pump(TIMEOUT, lambda x: any(len(s.payload) > 0 for s in x.log))
    big = [s for s in c.log if len(s.payload) > 1]
    if big:
        c.finish()
        return False, f"{len(big[0].payload)} bytes sent into a zero window"
    if not probed:
        c.finish()
        return False, f"no window probe within {TIMEOUT:g} s"
    probes = sum(1 for s in c.log if len(s.payload) == 1)
    c.window = 65535
    c.send(ACK)  # the window opens
    ok, detail = served(c, f"{probes} one-byte probe(s) while closed; opened: ")
    return ok, detail


def case_fin_out_of_order(link, port):
    """The request's last piece carries our FIN and comes first: the FIN waits
    with it until the gap fills; then the answer, and the server's FIN."""
    c = opened(link, port)
    split = 20
    c.send(ACK | PSH | FIN, HEALTH[split:], seq=(c.iss + 1 + split) & 0xFFFFFFFF)
    c.pump(0.1)
    c.send_data(HEALTH[:split], 0)
    c.snd_nxt = (c.iss + 1 + len(HEALTH) + 1) & 0xFFFFFFFF  # after our data and FIN
    data = c.read_response()
    if c.reset or not health_ok(data) or not c.fin:
        c.finish()
        return False, f"got {describe(data)}{', reset' if c.reset else ''}{'' if c.fin else ', no FIN'}"
    # Our FIN is in; only the final ACK of the server's FIN remains (sent by take()).
    return True, f"answered {describe(data)} and closed"


def case_rst_in_syn_received(link, port):
    """A reset with a wrong sequence number during the handshake gets a challenge
    ACK; the handshake then completes and the request is served."""
    c = Connection(link, port)
    c.send(SYN, seq=c.iss, tcp_options=c.syn_options)
    if not c.pump(TIMEOUT, lambda x: any(s.has(SYN) and s.has(ACK) for s in x.log)):
        return False, "no SYN-ACK"
    synack = [s for s in c.log if s.has(SYN)][0]
    c.rcv_nxt = (synack.seq + 1) & 0xFFFFFFFF
    c.snd_nxt = (c.iss + 1) & 0xFFFFFFFF
    before = len(c.log)
    c.send(RST, seq=c.snd_nxt + 500)
    challenged = c.pump(5.0, lambda x: any(s.has(ACK) for s in x.log[before:]))
    if not challenged or c.reset:
        return False, "no challenge ACK for an inexact reset in SYN-RECEIVED"
    c.send(ACK)
    c.send_data(HEALTH)
    return served(c, "challenge ACK; the handshake completed and ")


def case_many_tiny_pieces(link, port):
    """150 one-byte segments, last first: more than the 64 pieces the stack
    holds out of order. What it could not hold is sent again, in order, as a
    sender would after its timeout; the request is then answered."""
    c = opened(link, port)
    request = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Pad: " + b"p" * 80 + b"\r\nConnection: close\r\n\r\n"
    for index in range(len(request) - 1, 0, -1):
        c.send_data(request[index:index + 1], index)
    c.send_data(request[0:1], 0)
    c.pump(0.5)
    acked = max(((s.ack - c.iss - 1) & 0xFFFFFFFF for s in c.log if s.has(ACK)), default=0)
    c.send_data(request)
    ok, detail = served(c, f"{len(request)} pieces, {acked} acknowledged before the resend; ")
    if ok and not 1 <= acked < len(request):
        return False, detail + f" -- expected the held pieces to be bounded (acknowledged {acked})"
    return ok, detail


def case_tiny_mss(link, port):
    """A peer announcing an MSS of 1 is held to 48: the answer comes in 48-byte segments."""
    c = opened(link, port, syn_options=struct.pack("!BBH", 2, 4, 1))
    c.send_data(HEALTH)
    ok, detail = served(c, "MSS 1: ")
    sizes = sorted({len(s.payload) for s in c.log if s.payload})
    if ok and (not sizes or sizes[-1] != 48):
        return False, f"{detail} -- segment sizes {sizes}, expected at most 48 and some of 48"
    return ok, f"{detail} in segments of {sizes[-1] if sizes else 0} bytes at most"


def case_linux_options(link, port):
    """A SYN with the options Linux sends (SACK permitted, timestamps, window
    scale), and timestamps on every segment: the stack uses none of them and
    must not scale its window; it serves."""
    syn = (struct.pack("!BBH", 2, 4, 1460) + struct.pack("!BB", 4, 2) + struct.pack("!BBII", 8, 10, 12345, 0)
           + struct.pack("!B", 1) + struct.pack("!BBB", 3, 3, 7))
    c = opened(link, port, syn_options=syn)
    synack = [s for s in c.log if s.has(SYN)][0]
    timestamps = struct.pack("!BBBBII", 1, 1, 8, 10, 12346, 0)
    c.send(ACK | PSH, HEALTH, tcp_options=timestamps)
    c.snd_nxt = (c.snd_nxt + len(HEALTH)) & 0xFFFFFFFF
    return served(c, f"SYN-ACK window {synack.window}; ")


def case_bad_tcp_options(link, port):
    c = opened(link, port)
    # An option of length 0, and one that runs past the header.
    for options in (struct.pack("!BBH", 8, 0, 0), struct.pack("!BBBB", 1, 1, 8, 40)):
        c.send_data(NOPE, tcp_options=options)
        SENT_DROPS["length"] += 1
    return dropped_then_served(c, "a segment with a malformed option list")


def case_ack_of_unsent_data(link, port):
    """RFC 5961 §5.2: data whose ACK covers bytes never sent is dropped, with a challenge ACK."""
    c = opened(link, port)
    before = len(c.log)
    c.send(ACK | PSH, NOPE, seq=c.snd_nxt, ack_override=(c.rcv_nxt + 100000) & 0xFFFFFFFF)
    challenged = c.pump(5.0, lambda x: any(s.has(ACK) and s.ack == c.snd_nxt for s in x.log[before:]))
    if not challenged or c.acks_beyond(0) or c.received:
        c.finish()
        return False, "no challenge ACK, or the data was taken"
    c.send_data(HEALTH)
    return served(c, "challenge ACK, data dropped; then ")


def case_beyond_window(link, port):
    """Data past the advertised window is not taken (an ACK says where the window is)."""
    c = opened(link, port)
    c.send_data(NOPE, 70000)
    c.pump(0.5)
    if c.acks_beyond(0) or c.received:
        c.finish()
        return False, "data beyond the window was taken"
    c.snd_nxt = (c.iss + 1) & 0xFFFFFFFF
    c.send_data(HEALTH)
    return served(c, "not taken; then ")


def case_syn_flood(link, port, count=300):
    rng = random.Random(5961)
    start = time.monotonic()
    for _ in range(count):
        source = f"198.18.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
        sport = rng.randrange(1024, 65536)
        seq = rng.randrange(0, 1 << 32)
        packet = syn_packet(source, socket.inet_ntoa(link.target_ip), sport, port, seq, link.next_ident())
        while True:
            try:
                link.send_frame(packet)
                break
            except OSError:
                time.sleep(0.001)  # the TAP's queue is full: wait rather than lose it
    SYN_FLOOD[0] += count
    return True, f"{count} SYNs from spoofed off-link sources in {time.monotonic() - start:.2f} s"


def normal_get(link, port):
    c = opened(link, port)
    c.send_data(HEALTH)
    return served(c)


CASES = [
    ("out-of-order", case_out_of_order),
    ("overlapping", case_overlapping),
    ("rst-in-window", case_rst_in_window),
    ("rst-out-of-window", case_rst_out_of_window),
    ("syn-on-established", case_syn_on_established),
    ("rst-exact", case_rst_exact),
    ("bad-tcp-checksum", case_bad_tcp_checksum),
    ("bad-ip-checksum", case_bad_ip_checksum),
    ("ip-fragments", case_ip_fragments),
    ("bad-ip-lengths", case_bad_ip_lengths),
    ("bad-tcp-offsets", case_bad_tcp_offsets),
    ("zero-window", case_zero_window),
    ("fin-out-of-order", case_fin_out_of_order),
    ("rst-in-syn-received", case_rst_in_syn_received),
    ("many-tiny-pieces", case_many_tiny_pieces),
    ("tiny-mss", case_tiny_mss),
    ("linux-options", case_linux_options),
    ("bad-tcp-options", case_bad_tcp_options),
    ("ack-of-unsent-data", case_ack_of_unsent_data),
    ("beyond-window", case_beyond_window),
    ("syn-flood", case_syn_flood),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interface", required=True, help="the TAP device the guest is on")
    parser.add_argument("--target", default="10.77.0.2", help="the guest's address")
    parser.add_argument("--source", default="10.77.0.3", help="an on-link address no host owns, spoken from")
    parser.add_argument("--mac", default="02:00:00:4d:00:03", help="the made-up MAC address of --source")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--only", default="", help="comma-separated case names to run (default: all)")
    parser.add_argument("--seed", type=int, default=9293)
    arguments = parser.parse_args()
    random.seed(arguments.seed)
    only = {name for name in arguments.only.split(",") if name}

    link = Link(arguments.interface, arguments.source, arguments.mac, arguments.target)
    link.resolve_guest()
    port = arguments.port
    cases = [(name, lambda run=run: run(link, port)) for name, run in CASES]
    failed = run_cases("tcp-torture", cases, only, lambda: normal_get(link, port))
    print("tcp-torture: sent " + " ".join(f"{key}={value}" for key, value in SENT_DROPS.items())
          + f" syn_flood={SYN_FLOOD[0]}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
