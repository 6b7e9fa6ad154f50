#!/usr/bin/env python3
"""Writes the seed inputs of each fuzz target's corpus (Tests/Fuzz/TARGET/corpus/seed-*).

The seeds are what the fuzzers start from: a real ELF header layout, real
frames, real HTTP requests, and, for the targets whose input is a program
(Virtio, NetStack), programs that drive the device or the stack through its
normal paths. Their byte layouts follow the checks in Tests/*/Fuzz/*.swift;
change both together. Inputs the fuzzers found (crash-*) sit next to the
seeds and are not written here. Run it from anywhere; it rewrites seed-* only.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    folder = os.path.join(HERE, target, "corpus")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(bytes(data))


def checksum(data):
    if len(data) % 2:
        data = data + b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip(a, b, c, d):
    return bytes([a, b, c, d])


# ---------------------------------------------------------------- ELFLoader

def elf(segments, entry=0x200000, sections=b"", shoff=0, shnum=0):
    """An ELF64 x86-64 ET_EXEC: header, program headers, segment data, then `sections`."""
    phoff = 64
    data_offset = phoff + 56 * len(segments)
    headers = b""
    data = b""
    for kind, flags, address, content, memsz in segments:
        headers += struct.pack("<IIQQQQQQ", kind, flags, data_offset + len(data), address, address,
                               len(content), memsz, 0x1000)
        data += content
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, phoff, shoff, 0, 64, 56, len(segments), 64, shnum, 0)
    return header + headers + data + sections


code = bytes([0xF4, 0xEB, 0xFD, 0x90])  # hlt; jmp $-3; nop
kernel = [(1, 5, 0x200000, code, 4), (1, 6, 0x210000, bytes(range(1, 9)), 0x2000)]
write("ELFLoader", "kernel", elf(kernel))
# A PT_NOTE and an empty PT_LOAD among them (both ignored), and a bss-only segment.
write("ELFLoader", "ignored-segments", elf(
    [(4, 4, 0, b"note", 4), (1, 5, 0x200000, code, 0x1000), (1, 6, 0x300000, b"", 0), (1, 6, 0x220000, b"", 0x10000)]))
# Placed only in the larger layouts (above 4 MiB), and one over the boot region (refused).
write("ELFLoader", "high-segment", elf([(1, 5, 0x100000000, code, 4)], entry=0x100000000))
write("ELFLoader", "boot-region", elf([(1, 5, 0x1000, code, 4)], entry=0x1000))


def with_symbols():
    """The kernel plus section headers: .text (alloc, exec), .symtab and .strtab with a few symbols."""
    body = elf(kernel)
    strtab = b"\0main\0_start\0$s4Toro4mainyyF\0.Llocal\0"
    names = {n: strtab.index(n.encode()) for n in ["main", "_start", "$s4Toro4mainyyF", ".Llocal"]}
    symbols = bytes(24)  # the null symbol
    for name, kind, value, size in [("main", 2, 0x200000, 4), ("_start", 0, 0x200000, 0),
                                    ("$s4Toro4mainyyF", 2, 0x200002, 2), (".Llocal", 0, 0x200003, 0)]:
        symbols += struct.pack("<IBBHQQ", names[name], kind, 0, 1, value, size)
    symtab_offset = len(body)
    strtab_offset = symtab_offset + len(symbols)
    shoff = strtab_offset + len(strtab)
    shoff += (8 - shoff % 8) % 8
    padding = bytes(shoff - strtab_offset - len(strtab))

    def section(kind, flags, address, offset, size, link=0, entsize=0):
        return struct.pack("<IIQQQQIIQQ", 0, kind, flags, address, offset, size, link, 0, 1, entsize)

    sections = section(0, 0, 0, 0, 0)
    sections += section(1, 0x6, 0x200000, 64 + 56 * 2, 4)  # .text
    sections += section(2, 0, 0, symtab_offset, len(symbols), link=3, entsize=24)  # .symtab
    sections += section(3, 0, 0, strtab_offset, len(strtab))  # .strtab
    header_fix = bytearray(body)
    struct.pack_into("<Q", header_fix, 40, shoff)
    struct.pack_into("<H", header_fix, 60, 4)
    return bytes(header_fix) + symbols + strtab + padding + sections


write("ELFLoader", "symbols", with_symbols())
write("ELFLoader", "truncated", b"\x7fELF\x02\x01\x01\0")

# ------------------------------------------------------------------- Virtio
# Op codes: the order of VirtioFuzz.Op.
(WRITE_REGISTER, READ_REGISTER, BUS_WRITE, BUS_READ, WRITE_MEMORY, STORE16, SET_UP, PUBLISH_CHAIN, NOTIFY,
 INJECT_FRAME, POLL, SERVICE_NOTIFICATIONS, BUSY_POLLING, CONFIG_CHANGED, BACKEND_MODE, RESET) = range(16)

ethernet_frame = (bytes([0xFF] * 6) + bytes([0x52, 0x54, 0, 0x12, 0x34, 1]) + b"\x08\x06"
                  + bytes.fromhex("0001080006040001525400123401") + ip(10, 0, 0, 2) + bytes(6) + ip(10, 0, 0, 1)
                  + bytes(18))  # an ARP request, padded to 60


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def register(offset, value):
    return bytes([WRITE_REGISTER, offset // 4]) + u32(value)


def memory(address, data):
    return bytes([WRITE_MEMORY]) + u32(address) + bytes([len(data)]) + data


def chain(queue, descriptors, notify=True):
    """descriptors: (buffer index: address 0x10000 + 16 * index, length, writable)."""
    control = queue | (len(descriptors) - 1) << 1 | (0x10 if notify else 0)
    out = bytes([PUBLISH_CHAIN, control])
    for index, length, writable in descriptors:
        out += bytes([1 if writable else 0]) + u16(index) + u16(length)
    return out


header = bytes([0, 0])  # queue size 256, no drops
set_up = bytes([SET_UP, 1, 0])  # features VERSION_1 | MAC | STATUS, queues of 256
packet = bytes(12) + ethernet_frame
write("Virtio", "transmit", header + set_up + memory(0x10000, packet) + chain(1, [(0, len(packet), False)]))
write("Virtio", "receive", header + set_up + bytes([INJECT_FRAME]) + u16(len(ethernet_frame)) + b"\0"
      + ethernet_frame + chain(0, [(0x100, 1526, True)]) + bytes([POLL]))
# Two-part chains: the header and the frame apart, both ways.
write("Virtio", "chains", header + set_up + memory(0x10000, bytes(12)) + memory(0x10010, ethernet_frame)
      + chain(1, [(0, 12, False), (1, len(ethernet_frame), False)])
      + bytes([INJECT_FRAME]) + u16(60) + b"\0" + ethernet_frame
      + chain(0, [(0x100, 12, True), (0x101, 1514, True)]))
# The driver's set-up by hand, register by register, then reading the MAC through the bus.
write("Virtio", "registers", header + register(0x70, 1) + register(0x70, 3) + register(0x24, 0) + register(0x20, 0x20)
      + register(0x24, 1) + register(0x20, 1) + register(0x70, 0xB) + register(0x30, 0) + register(0x38, 8)
      + register(0x80, 0x1000) + register(0x90, 0x2000) + register(0xA0, 0x3000) + register(0x44, 1)
      + register(0x70, 0xF) + bytes([BUS_READ, 2]) + u16(0x100) + bytes([6])
      + bytes([BUS_READ, 2]) + u16(0x60) + bytes([4]) + register(0x64, 3))
# Busy polling: a frame published without a notification is found by a poll; then
# ioeventfd notifications, a configuration change, a refusing backend and a reset.
write("Virtio", "busy-polling", header + set_up + bytes([BUSY_POLLING, 1]) + memory(0x10000, packet)
      + chain(1, [(0, len(packet), False)], notify=False) + bytes([POLL, BUSY_POLLING, 0])
      + bytes([SERVICE_NOTIFICATIONS, 1, 3, CONFIG_CHANGED, BACKEND_MODE, 1])
      + chain(1, [(0, len(packet), False)]) + bytes([RESET]))

# -------------------------------------------------------------- NetPackets

OUR_MAC = bytes([0x52, 0x54, 0x00, 0x12, 0x34, 0x02])
PEER_MAC = bytes([0x02, 0, 0, 0, 0, 1])
US = ip(10, 0, 0, 2)
PEER = ip(10, 0, 0, 3)


def ipv4(protocol, source, destination, payload, options=b""):
    length = 20 + len(options) + len(payload)
    head = struct.pack("!BBHHHBBH4s4s", 0x40 | (5 + len(options) // 4), 0, length, 1, 0x4000, 64, protocol, 0,
                       source, destination) + options
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return head + payload


def tcp(source, destination, sport, dport, seq, ack, flags, payload=b"", options=b"", window=65535):
    offset = (20 + len(options)) // 4
    head = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, offset << 4, flags, window, 0, 0) + options
    pseudo = source + destination + struct.pack("!BBH", 0, 6, len(head) + len(payload))
    value = checksum(pseudo + head + payload)
    return head[:16] + struct.pack("!H", value) + head[18:] + payload


def udp(source, destination, sport, dport, payload):
    head = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    pseudo = source + destination + struct.pack("!BBH", 0, 17, 8 + len(payload))
    value = checksum(pseudo + head + payload) or 0xFFFF
    return head[:6] + struct.pack("!H", value) + payload


def frame(payload, ethertype=0x0800, destination=OUR_MAC):
    data = destination + PEER_MAC + struct.pack("!H", ethertype) + payload
    return data + bytes(max(0, 60 - len(data)))


arp_request = frame(bytes.fromhex("000108000604") + b"\0\x01" + PEER_MAC + PEER + bytes(6) + US, 0x0806,
                    b"\xff" * 6)
echo = b"\x08\0\0\0\x12\x34\0\x01" + b"abcdefghijklmnop"
echo = echo[:2] + struct.pack("!H", checksum(echo)) + echo[4:]
syn = tcp(PEER, US, 40000, 80, 1000, 0, 0x02, options=b"\x02\x04\x05\xb4\x01\x03\x03\x07")
data = tcp(PEER, US, 40000, 80, 1001, 5000, 0x18, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
           options=b"\x01\x01\x08\x0a\0\0\0\x01\0\0\0\x02")
write("NetPackets", "arp-request", arp_request)
write("NetPackets", "ping", frame(ipv4(1, PEER, US, echo)))
write("NetPackets", "tcp-syn", frame(ipv4(6, PEER, US, syn)))
write("NetPackets", "tcp-data", frame(ipv4(6, PEER, US, data, options=b"\x01\x01\x01\x00")))
write("NetPackets", "udp", frame(ipv4(17, PEER, US, udp(PEER, US, 5353, 7, b"hello"))))

# ---------------------------------------------------------------- NetStack
# Op codes: the order of NetStackFuzz.Op.
(RAW, TCP, UDP, ARP, PING, ADVANCE, ACCEPT, SEND, RECEIVE, CLOSE, ABORT, CONNECT, SEND_UDP, RECEIVE_UDP, LISTEN,
 BIND_UDP) = range(16)
GATEWAY, HOST, FAR, OURS = 0, 1, 2, 3  # NetStackFuzz.peers
PORT_80, PORT_40000, PORT_40001, PORT_7, PORT_RAW = 0, 2, 3, 4, 5  # pickPort


def segment(flags, seq=None, ack=None, payload=b"", mss=None, source=HOST, sport=(PORT_40000,), dport=(PORT_80,),
            control=0):
    """A TCP op: seq/ack None means "where the stack expects it" (the relative modes)."""
    out = bytes([TCP, control, source]) + bytes(sport) + bytes(dport) + bytes([flags])
    out += b"\x80" if seq is None else b"\0" + u32(seq)
    out += b"\x80" if ack is None else b"\0" + u32(ack)
    out += u16(65535)
    out += b"\x01" + struct.pack("!H", mss) if mss is not None else b"\0"
    return out + bytes([len(payload)]) + payload


stack_header = bytes([0]) + u32(0x12345678) + bytes([2])  # default configuration, secret, 2 frames a poll in place
arp_from_host = bytes([ARP, 0, 0, HOST])  # a request for our address from 10.0.0.3
request = b"GET / HTTP/1.0\r\n\r\n"
write("NetStack", "connection", stack_header + arp_from_host
      + segment(0x02, seq=1000, ack=0, mss=1460) + segment(0x10) + bytes([ACCEPT])
      + segment(0x18, payload=request) + bytes([ADVANCE, 2, RECEIVE, 0]) + u16(1100)
      + bytes([SEND, 0]) + u16(3000) + bytes([CLOSE, 0]) + segment(0x10) + segment(0x11)
      + bytes([ADVANCE, 4, ADVANCE, 4]))
write("NetStack", "udp-ping", stack_header + arp_from_host
      + bytes([UDP, 0, HOST, PORT_40000, PORT_7, 5]) + b"hello" + bytes([RECEIVE_UDP, PORT_7])
      + bytes([SEND_UDP]) + u16(100) + bytes([HOST, PORT_40000, PORT_7])
      + bytes([PING, 0, HOST]) + b"\0\x01\0\x01" + bytes([4]) + b"ping")
# An active open: ARP for the peer, its reply, its SYN-ACK from port 80 to our ephemeral port 49152.
write("NetStack", "connect", stack_header + bytes([CONNECT, HOST, PORT_80, ADVANCE, 1])
      + bytes([ARP, 0x20, 1, HOST])
      + segment(0x12, seq=5000, ack=None, mss=1400, sport=(PORT_80,), dport=(PORT_RAW, 0x00, 0xC0))
      + bytes([SEND, 0]) + u16(2000) + bytes([ADVANCE, 3, ADVANCE, 5, ABORT, 0]))
# The small configuration: a SYN flood past the SYN queue, the queue's timeouts, a stray segment.
write("NetStack", "syn-flood", bytes([1]) + u32(7) + bytes([0]) + arp_from_host
      + b"".join(segment(0x02, seq=n, ack=0, sport=(PORT_RAW, n, 0x90)) for n in range(1, 5))
      + bytes([ADVANCE, 5, ADVANCE, 7]) + segment(0x10, seq=1, ack=1) + bytes([LISTEN, LISTEN, 2]))

# ------------------------------------------------------------- HTTP

requests = {
    "get": b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
    "browser": b"GET /index.html?x=1 HTTP/1.1\r\nHost: 10.0.0.2\r\nConnection: keep-alive\r\n"
               b"Accept-Encoding: gzip, deflate\r\nAccept-Language: en-US,en;q=0.9\r\n\r\n",
    "head-close": b"HEAD /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "http10": b"GET /health HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
    "post-body": b"POST /form HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    "pipelined": b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nGET /big HTTP/1.1\r\nHost: a\r\n\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n",
    "options-star": b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "chunked": b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "bad": b"GET / HTTP/2.0\r\nHost: a\r\n folded\r\nContent-Length: 99999999999999999999\r\n\r\n",
}
for name, data in requests.items():
    write("HTTPRequest", name, data)
    write("HTTPSession", name, data)
# Smaller limits (a first byte below 8 picks them): a head over 64 bytes; a body within 16.
write("HTTPRequest", "limit", b"\x01" + requests["browser"])
write("HTTPSession", "body-limit", b"\x01POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789"
      + b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
