#!/usr/bin/env python3
"""http-torture.py: throws malformed, hostile and odd HTTP/1.1 at a server, for testing.

    scripts/http-torture.py --host 10.77.0.2 --port 80 --maxconn 8 --keepalive 2

Built for Examples/WebServer (its pages /, /health and /big, and the answers
its protocol core documents), run by the integration tests inside a network
namespace they made. Plain sockets, Python 3 standard library only.

Each case sends something (a malformed request line, HTTP/0.9, the HTTP/2
preface, a 64 KiB URI, oversized or 1,000 tiny header fields, NUL and
non-ASCII bytes, bare LF, bad Content-Lengths, chunked bodies, 100 pipelined
requests, a request a byte at a time, a head that never ends, more
connections than --maxconn, a reset mid-request, a half-close...) and checks
the answer: the statuses of the responses in order, and whether the server
closed the connection after them (a clean close: end of stream, no stray
bytes). After every case a normal GET on a new connection must be served.

Prints one line per case, `PASS name: detail` or `FAIL name: detail`, then
`http-torture: N passed, M failed` and `http-torture: responses=R`, the
number of complete responses other than 503 it read (what the server's
`requests=` counter counts at least). Exits 0 only when every case passed.
"""

import argparse
import select
import socket
import struct
import sys
import time

from torture_cases import run_cases

HOST = "10.77.0.2"
PORT = 80
KEEPALIVE = 2.0
MAXCONN = 8
TIMEOUT = 20.0  # a generous bound on any one exchange: a dead server fails, never hangs
RESPONSES = 0  # complete non-503 responses read


class Response:
    def __init__(self, code, reason, fields, body):
        self.code = code
        self.reason = reason
        self.fields = fields
        self.body = body

    def field(self, name):
        return self.fields.get(name.lower())

    @property
    def closes(self):
        return (self.field("connection") or "").lower() == "close"


def parse_responses(data, heads=()):
    """The complete responses at the front of `data`, and the bytes after them.
    `heads[i]` true: the i-th answers a HEAD (no body, whatever Content-Length says).
    Raises ValueError on bytes that are not a response."""
    responses = []
    position = 0
    while position < len(data):
        end = data.find(b"\r\n\r\n", position)
        if end < 0:
            break
        lines = data[position:end].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or parts[0] != "HTTP/1.1" or not parts[1].isdigit():
            raise ValueError(f"not a status line: {lines[0][:80]!r}")
        fields = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"not a field line: {line[:80]!r}")
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length", "0"))
        if len(responses) < len(heads) and heads[len(responses)]:
            length = 0
        start = end + 4
        if len(data) < start + length:
            break
        responses.append(Response(int(parts[1]), parts[2] if len(parts) > 2 else "", fields, data[start:start + length]))
        position = start + length
    return responses, data[position:]


class Exchange:
    """What one connection got: the responses, stray bytes, how it ended
    ("eof", "reset", "timeout", or "open" when we stopped reading), and time."""

    def __init__(self):
        self.responses = []
        self.rest = b""
        self.end = "open"
        self.elapsed = 0.0
        self.error = ""

    def codes(self):
        return [r.code for r in self.responses]

    def describe(self):
        text = f"got {self.codes()}, {self.end}"
        if self.rest:
            text += f", {len(self.rest)} stray bytes {self.rest[:40]!r}"
        if self.error:
            text += f", {self.error}"
        return text


def connect(nodelay=False):
    sock = socket.create_connection((HOST, PORT), timeout=TIMEOUT)
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def converse(sock, payload=b"", count=None, shutdown=False, heads=(), timeout=TIMEOUT, trickle=None):
    """Sends `payload` (all of it, while reading, so that a server that answers
    and closes early cannot wedge us), optionally half-closes, and reads until
    the end of the stream, or, with `count`, until that many responses came.
    `trickle` = (bytes, interval): after the payload, one more byte every
    interval while the connection lasts (a head that never ends)."""
    result = Exchange()
    start = time.monotonic()
    deadline = start + timeout
    pending = payload
    received = b""
    sock.setblocking(False)
    trickled = 0
    next_trickle = start
    sending = True
    if not pending and shutdown:
        sock.shutdown(socket.SHUT_WR)
    while True:
        now = time.monotonic()
        if now >= deadline:
            result.end = "timeout"
            break
        wait = deadline - now
        if trickle and not pending and sending:
            wait = max(0.0, min(wait, next_trickle - now))
        writers = [sock] if pending and sending else []
        readable, writable, _ = select.select([sock], writers, [], wait)
        if writable:
            try:
                sent = sock.send(pending[:65536])
                pending = pending[sent:]
                if not pending and shutdown:
                    sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError) as error:
                result.error = f"send: {error.strerror}"
                sending = False
        if trickle and not pending and sending and time.monotonic() >= next_trickle:
            data, interval = trickle
            try:
                sock.send(data[trickled % len(data):trickled % len(data) + 1])
                trickled += 1
            except (BrokenPipeError, ConnectionResetError) as error:
                result.error = f"send: {error.strerror}"
                sending = False
            next_trickle = time.monotonic() + interval
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                result.end = "reset"
                break
            except BlockingIOError:
                continue
            if not data:
                result.end = "eof"
                break
            received += data
            if count is not None:
                try:
                    responses, _ = parse_responses(received, heads)
                except ValueError:
                    responses = []
                if len(responses) >= count:
                    break
    result.elapsed = time.monotonic() - start
    try:
        result.responses, result.rest = parse_responses(received, heads)
    except ValueError as error:
        result.error = str(error)
        result.rest = received
    global RESPONSES
    RESPONSES += sum(1 for r in result.responses if r.code != 503)
    return result


def exchange(payload, **options):
    with connect(nodelay=options.pop("nodelay", False)) as sock:
        return converse(sock, payload, **options)


def verdict(result, codes, close=True, bodies=None, announced=True):
    """Whether `result` is exactly `codes` and, with `close`, a clean close
    after the last (end of stream, nothing after it, and unless `announced`
    is false Connection: close on the last response); without, a connection
    left open (Connection: keep-alive)."""
    problems = []
    if result.codes() != codes:
        problems.append(f"expected {codes}")
    if result.rest:
        problems.append("stray bytes")
    if result.error and not result.error.startswith("send:"):
        problems.append("unreadable")
    if close:
        if result.end != "eof":
            problems.append("expected a clean close (end of stream)")
        if announced and result.responses and not result.responses[-1].closes:
            problems.append("last response lacks Connection: close")
    else:
        if result.end != "open":
            problems.append("expected the connection to stay open")
        if result.responses and result.responses[-1].closes:
            problems.append("last response says Connection: close")
    for index, body in (bodies or {}).items():
        if index < len(result.responses) and result.responses[index].body != body:
            problems.append(f"response {index} has the wrong body ({len(result.responses[index].body)} bytes)")
    detail = result.describe()
    return (not problems, detail + ("" if not problems else " -- " + "; ".join(problems)))


def request(line, fields=("Host: t",), body=b""):
    head = line + "\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n"
    return head.encode("latin-1") + body


HEALTH = request("GET /health HTTP/1.1")
HEALTH_CLOSE = request("GET /health HTTP/1.1", ("Host: t", "Connection: close"))


def simple(name, payload, codes, close=True, heads=(), bodies=None):
    """A case: send `payload` on a new connection, expect `codes`."""
    def run():
        count = None if close else len(codes)
        return verdict(exchange(payload, count=count, heads=heads), codes, close, bodies)
    return (name, run)


# MARK: - Cases that need more than one exchange


def case_pipelined_100():
    payload = HEALTH * 99 + HEALTH_CLOSE
    result = exchange(payload)
    return verdict(result, [200] * 100, True, {i: b"ok\n" for i in range(100)})


def case_pipelined_big():
    payload = request("GET /big HTTP/1.1") * 9 + request("GET /big HTTP/1.1", ("Host: t", "Connection: close"))
    result = exchange(payload)
    ok, detail = verdict(result, [200] * 10, True)
    if ok and any(len(r.body) != 65536 for r in result.responses):
        return False, detail + " -- a /big body is not 65536 bytes"
    return ok, detail


def case_byte_at_a_time():
    with connect(nodelay=True) as sock:
        for byte in HEALTH_CLOSE:
            sock.sendall(bytes([byte]))
            time.sleep(0.003)
        result = converse(sock)
    return verdict(result, [200], True, {0: b"ok\n"})


def case_split_everywhere():
    """The same request in pieces of 1 to 7 bytes, pipelined with a second one."""
    with connect(nodelay=True) as sock:
        payload = HEALTH + HEALTH_CLOSE
        position = 0
        size = 1
        while position < len(payload):
            sock.sendall(payload[position:position + size])
            position += size
            size = size % 7 + 1
            time.sleep(0.002)
        result = converse(sock)
    return verdict(result, [200, 200], True, {0: b"ok\n", 1: b"ok\n"})


def case_slowloris():
    """A head that never ends, one byte at a time: the server must give up
    within its keep-alive time (twice it at most), answer 408 and close."""
    payload = b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: "
    bound = 4 * KEEPALIVE + 15
    with connect(nodelay=True) as sock:
        result = converse(sock, payload, trickle=(b"abcdefghij", 0.1), timeout=bound)
    ok, detail = verdict(result, [408], True)
    return ok, f"{detail} after {result.elapsed:.1f} s (keepalive {KEEPALIVE:g} s)"


def case_slow_blank_lines():
    """Empty lines before a request line, forever: also a request under way."""
    bound = 4 * KEEPALIVE + 15
    with connect(nodelay=True) as sock:
        result = converse(sock, b"\r\n", trickle=(b"\r\n", 0.1), timeout=bound)
    ok, detail = verdict(result, [408], True)
    return ok, f"{detail} after {result.elapsed:.1f} s"


def case_idle_after_request():
    """An idle keep-alive connection is closed after the keep-alive time, with no answer."""
    with connect() as sock:
        first = converse(sock, HEALTH, count=1)
        if first.codes() != [200] or first.end != "open":
            return False, "the request before the idle time: " + first.describe()
        result = converse(sock, timeout=4 * KEEPALIVE + 15)
    ok, detail = verdict(result, [], True)
    return ok, f"{detail} after {result.elapsed:.1f} s idle"


def case_idle_never_sends():
    with connect() as sock:
        result = converse(sock, timeout=4 * KEEPALIVE + 15)
    ok, detail = verdict(result, [], True)
    return ok, f"{detail} after {result.elapsed:.1f} s"


def case_flood_past_maxconn():
    """--maxconn connections each served once and held open; five more get 503 and a close."""
    holders = []

    def closed_by_server(sock):
        """Whether the server closed an idle holder (its keep-alive time passed)."""
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def fill():
        """Keeps the holders' slots: a holder idle for half the keep-alive time
        is used again; one the server closed anyway is replaced."""
        for holder in list(holders):
            if closed_by_server(holder[0]):
                holder[0].close()
                holders.remove(holder)
            elif time.monotonic() - holder[1] > KEEPALIVE / 2:
                got = converse(holder[0], HEALTH, count=1)
                if got.codes() == [200] and got.end == "open":
                    holder[1] = time.monotonic()
                else:
                    holder[0].close()
                    holders.remove(holder)
        attempts = 0
        while len(holders) < MAXCONN:
            attempts += 1
            if attempts > MAXCONN + 60:
                raise RuntimeError(f"could not fill {MAXCONN} slots")
            sock = connect()
            got = converse(sock, HEALTH, count=1)
            if got.codes() == [200] and got.end == "open":
                holders.append([sock, time.monotonic()])
                continue
            sock.close()
            if got.codes() != [503]:
                raise RuntimeError(f"holder {len(holders)}: {got.describe()}")
            time.sleep(0.2)  # a connection of an earlier case not yet released

    try:
        answers = []
        retries = 0
        while len(answers) < 5:
            fill()
            result = exchange(HEALTH)
            if result.codes() == [200] and any(closed_by_server(h[0]) for h in holders):
                # A holder's keep-alive time ran out (a slow host): its slot was
                # free, rightly. Not the server's fault: fill again and retry.
                retries += 1
                if retries > 10:
                    return False, "the holders kept losing their connections"
                continue
            ok, detail = verdict(result, [503], True)
            if not ok:
                return False, "a connection past the bound: " + detail
            if (result.responses[0].field("retry-after") or "") != "1":
                return False, "503 without Retry-After: 1"
            answers.append(result.responses[0].code)
        return True, f"{MAXCONN} held, 5 more got {answers} and a close" + (f" ({retries} retried)" if retries else "")
    finally:
        for holder in holders:
            holder[0].close()


def case_reset_mid_request():
    with connect() as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\nX-Unfinished: ")
        time.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return True, "sent half a head, then a reset"


def case_reset_mid_response():
    with connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(request("GET /big HTTP/1.1"))
        sock.settimeout(TIMEOUT)
        first = sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if not first.startswith(b"HTTP/1.1 200"):
        return False, f"the response began {first[:40]!r}"
    return True, "reset after the first bytes of /big"


def case_half_close():
    """A whole request, then shutdown(SHUT_WR): the response must still come,
    then the close (the response was to a keep-alive request: it need not
    announce the close the client's end of stream brings)."""
    result = exchange(HEALTH, shutdown=True)
    return verdict(result, [200], True, {0: b"ok\n"}, announced=False)


def case_half_close_big():
    result = exchange(request("GET /big HTTP/1.1") + HEALTH, shutdown=True)
    ok, detail = verdict(result, [200, 200], True, {1: b"ok\n"}, announced=False)
    if ok and len(result.responses[0].body) != 65536:
        return False, detail + " -- /big is not 65536 bytes"
    return ok, detail


def case_half_close_mid_head():
    """Half a head, then the end of the stream: nothing to answer; the server closes."""
    result = exchange(b"GET /health HTTP/1.1\r\nHo", shutdown=True)
    return verdict(result, [], True)


def normal_get():
    """GET /health on a new connection: 200 "ok". A 503 (a connection of the
    case before not yet released) is retried, for a while."""
    last = None
    for _ in range(50):
        result = exchange(HEALTH_CLOSE)
        last = result
        if result.codes() == [503]:
            time.sleep(0.2)
            continue
        return verdict(result, [200], True, {0: b"ok\n"})
    return False, "503 for 10 s: " + last.describe()


def cases():
    long_target = "/" + "u" * 65536
    tiny = tuple(["Host: t"] + ["a:b"] * 1000)
    return [
        simple("malformed-request-line", b"GARBAGE\r\n\r\n", [400]),
        simple("request-line-double-space", request("GET  / HTTP/1.1"), [400]),
        simple("request-line-no-target", request("GET HTTP/1.1"), [400]),
        simple("request-line-tab", request("GET\t/ HTTP/1.1"), [400]),
        simple("request-line-trailing-space", request("GET / HTTP/1.1 "), [400]),
        simple("request-line-leading-space", request(" GET / HTTP/1.1"), [400]),
        simple("absolute-form-target", request("GET http://t/ HTTP/1.1"), [400]),
        simple("lowercase-version", request("GET / http/1.1"), [400]),
        simple("version-garbage", request("GET / HTTP/1.x"), [400]),
        simple("missing-host", request("GET / HTTP/1.1", ()), [400]),
        simple("two-hosts", request("GET / HTTP/1.1", ("Host: a", "Host: b")), [400]),
        simple("http10-without-host", request("GET /health HTTP/1.0", ()), [200], bodies={0: b"ok\n"}),
        simple("http09", b"GET /\r\n", [400]),
        simple("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", [505]),
        simple("http-1.2", request("GET / HTTP/1.2"), [505]),
        simple("http-3.0", request("GET / HTTP/3.0"), [505]),
        simple("uri-64k", request(f"GET {long_target} HTTP/1.1"), [414]),
        simple("query-16k", request("GET /?" + "q" * 16384 + " HTTP/1.1"), [414]),
        simple("method-16k", request("M" * 16384 + " / HTTP/1.1"), [501]),
        simple("header-9k", request("GET / HTTP/1.1", ("Host: t", "X-Big: " + "b" * 9000)), [431]),
        simple("headers-1200-small", request("GET / HTTP/1.1", tuple(["Host: t"] + ["X-A: b"] * 1200)), [431]),
        simple("headers-1000-tiny", request("GET /health HTTP/1.1", tiny), [200], close=False, bodies={0: b"ok\n"}),
        simple("nul-in-target", b"GET /\x00 HTTP/1.1\r\nHost: t\r\n\r\n", [400]),
        simple("nul-in-field-value", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n", [400]),
        simple("nul-in-field-name", b"GET / HTTP/1.1\r\nHost: t\r\nX\x00: a\r\n\r\n", [400]),
        simple("control-in-field-value", b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n", [400]),
        simple("non-ascii-in-target", "GET /caf\u00e9 HTTP/1.1\r\nHost: t\r\n\r\n".encode("utf-8"), [400]),
        simple("non-ascii-in-field-name", "GET / HTTP/1.1\r\nHost: t\r\nX-\u00e9: a\r\n\r\n".encode("utf-8"), [400]),
        simple("non-ascii-in-field-value", b"GET /health HTTP/1.1\r\nHost: t\r\nX: caf\xc3\xa9 \xff\r\n\r\n", [200],
               close=False, bodies={0: b"ok\n"}),
        simple("non-ascii-method", b"G\xc9T / HTTP/1.1\r\nHost: t\r\n\r\n", [400]),
        simple("bare-lf", b"GET / HTTP/1.1\nHost: t\n\n", [400]),
        simple("bare-lf-in-fields", b"GET / HTTP/1.1\r\nHost: t\n\r\n", [400]),
        simple("bare-cr", b"GET / HTTP/1.1\rHost: t\r\n\r\n", [400]),
        simple("obs-fold", request("GET / HTTP/1.1", ("Host: t", "X: a", " folded")), [400]),
        simple("space-before-colon", request("GET / HTTP/1.1", ("Host : t",)), [400]),
        simple("field-without-colon", request("GET / HTTP/1.1", ("Host: t", "Nocolon")), [400]),
        simple("leading-empty-lines", b"\r\n\r\n" + HEALTH, [200], close=False, bodies={0: b"ok\n"}),
        simple("content-length-too-short",
               request("GET /health HTTP/1.1", ("Host: t", "Content-Length: 0"), b"HELLO\r\n\r\n"), [200, 400]),
        simple("content-length-too-short-post",
               request("POST / HTTP/1.1", ("Host: t", "Content-Length: 2"), b"abcdefgh"), [405]),
        simple("content-length-too-long-get",
               request("GET / HTTP/1.1", ("Host: t", "Content-Length: 100"), b"short"), [413]),
        simple("content-length-too-long-post",
               request("POST / HTTP/1.1", ("Host: t", "Content-Length: 100"), b"short"), [405]),
        simple("body-1mib-post", request("POST / HTTP/1.1", ("Host: t", "Content-Length: 1048576"), b"b" * 1048576),
               [405]),
        simple("body-1mib-get", request("GET / HTTP/1.1", ("Host: t", "Content-Length: 1048576"), b"b" * 1048576),
               [413]),
        simple("content-length-negative", request("POST / HTTP/1.1", ("Host: t", "Content-Length: -1")), [400]),
        simple("content-length-plus", request("POST / HTTP/1.1", ("Host: t", "Content-Length: +1")), [400]),
        simple("content-length-2^64", request("POST / HTTP/1.1", ("Host: t", "Content-Length: 18446744073709551616")),
               [400]),
        simple("content-length-huge", request("GET / HTTP/1.1", ("Host: t", "Content-Length: " + "9" * 100)), [400]),
        simple("content-length-int-max", request("GET / HTTP/1.1", ("Host: t", "Content-Length: 9223372036854775807")),
               [413]),
        simple("content-length-disagree", request("POST / HTTP/1.1", ("Host: t", "Content-Length: 3, 4")), [400]),
        simple("content-length-two-fields",
               request("POST / HTTP/1.1", ("Host: t", "Content-Length: 3", "Content-Length: 4")), [400]),
        simple("chunked-post", request("POST / HTTP/1.1", ("Host: t", "Transfer-Encoding: chunked"),
                                       b"5\r\nhello\r\n0\r\n\r\n"), [411]),
        simple("chunked-get", request("GET / HTTP/1.1", ("Host: t", "Transfer-Encoding: chunked"), b"0\r\n\r\n"), [411]),
        simple("chunked-and-content-length",
               request("POST / HTTP/1.1", ("Host: t", "Content-Length: 5", "Transfer-Encoding: chunked"),
                       b"0\r\n\r\n"), [411]),
        simple("chunked-not-last", request("POST / HTTP/1.1", ("Host: t", "Transfer-Encoding: chunked, gzip")), [400]),
        simple("chunked-twice", request("POST / HTTP/1.1", ("Host: t", "Transfer-Encoding: chunked, chunked")), [400]),
        simple("gzip-then-chunked", request("POST / HTTP/1.1", ("Host: t", "Transfer-Encoding: gzip, chunked")), [501]),
        simple("chunked-in-http10", request("POST / HTTP/1.0", ("Transfer-Encoding: chunked",), b"0\r\n\r\n"), [400]),
        simple("chunked-head", request("HEAD / HTTP/1.1", ("Host: t", "Transfer-Encoding: chunked")), [411],
               heads=(True,)),
        simple("head-without-host", request("HEAD / HTTP/1.1", ()), [400], heads=(True,)),
        simple("unknown-method", request("BREW / HTTP/1.1"), [501], close=False),
        simple("post", request("POST / HTTP/1.1", ("Host: t", "Content-Length: 0")), [405], close=False),
        simple("options-asterisk", request("OPTIONS * HTTP/1.1"), [405], close=False),
        simple("get-asterisk", request("GET * HTTP/1.1"), [400]),
        simple("not-found", request("GET /nope HTTP/1.1"), [404], close=False),
        ("pipelined-100", case_pipelined_100),
        ("pipelined-10-big", case_pipelined_big),
        ("byte-at-a-time", case_byte_at_a_time),
        ("split-1-to-7-bytes", case_split_everywhere),
        ("slowloris", case_slowloris),
        ("slow-empty-lines", case_slow_blank_lines),
        ("idle-keepalive-closed", case_idle_after_request),
        ("idle-never-sends", case_idle_never_sends),
        ("flood-past-maxconn", case_flood_past_maxconn),
        ("reset-mid-request", case_reset_mid_request),
        ("reset-mid-response", case_reset_mid_response),
        ("half-close", case_half_close),
        ("half-close-big-pipelined", case_half_close_big),
        ("half-close-mid-head", case_half_close_mid_head),
    ]


def main() -> int:
    global HOST, PORT, KEEPALIVE, MAXCONN
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=HOST)
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--maxconn", type=int, default=MAXCONN, help="the server's maxconn=")
    parser.add_argument("--keepalive", type=float, default=KEEPALIVE, help="the server's keepalive= (seconds)")
    parser.add_argument("--only", default="", help="comma-separated case names to run (default: all)")
    arguments = parser.parse_args()
    HOST, PORT, KEEPALIVE, MAXCONN = arguments.host, arguments.port, arguments.keepalive, arguments.maxconn
    only = {name for name in arguments.only.split(",") if name}

    failed = run_cases("http-torture", cases(), only, normal_get)
    print(f"http-torture: responses={RESPONSES}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
