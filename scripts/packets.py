"""IPv4/TCP packet building shared by syn-flood.py and tcp-torture.py."""

import socket
import struct


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_packet(source: str, destination: str, source_port: int, port: int, sequence: int, ident: int) -> bytes:
    src = socket.inet_aton(source)
    dst = socket.inet_aton(destination)
    options = struct.pack("!BBH", 2, 4, 1460)  # MSS
    offset_words = (20 + len(options)) // 4
    tcp = struct.pack("!HHIIBBHHH", source_port, port, sequence, 0, offset_words << 4, 0x02, 64240, 0, 0) + options
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    total = 20 + len(tcp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, 64, socket.IPPROTO_TCP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp
