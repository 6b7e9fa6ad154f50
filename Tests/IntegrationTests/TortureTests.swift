import Foundation
import XCTest

/// Hostile clients against Examples/WebServer, from inside a network namespace
/// the test makes: `scripts/http-torture.py` (malformed and odd HTTP/1.1 over
/// ordinary sockets) and `scripts/tcp-torture.py` (hand-made TCP/IP packets
/// through an AF_PACKET socket on the TAP, from an address the host does not
/// own, so that the host's own TCP never answers). Each script runs every
/// case, checks the answer and that a normal GET is served after it, and
/// prints one line per case; the test asserts that every case passed, that
/// the VM is still running, and that its counters add up.
final class TortureTests: XCTestCase {
    static let guest = "10.77.0.2"

    /// Boots WebServer on a fresh namespace's TAP and waits until it listens.
    func boot(_ prefix: String, tap: String, cmdline: String) throws -> (TestNetworkNamespace, BackgroundVMM) {
        try BackgroundVMM.webServer(prefix, tap: tap, cmdline: cmdline, timeout: 240)
    }

    /// The lines a driver printed for its cases, checked: every one passed,
    /// and each of `required` is among them.
    func checkCases(_ output: String, driver: String, required: [String], file: StaticString = #filePath, line: UInt = #line) {
        let lines = output.split(separator: "\n").map(String.init)
        let passed = lines.filter { $0.hasPrefix("PASS ") }
        let failed = lines.filter { $0.hasPrefix("FAIL ") }
        XCTAssertEqual(failed, [], "\(driver): cases failed", file: file, line: line)
        XCTAssertTrue(output.contains("\(driver): \(passed.count) passed, 0 failed"), output, file: file, line: line)
        let names = Set(passed.map { String($0.dropFirst(5).prefix(while: { $0 != ":" })) })
        for name in required {
            XCTAssertTrue(names.contains(name), "\(driver): case \(name) did not pass", file: file, line: line)
        }
    }

    /// The server's counters, printed at its exit.
    func printCounters(_ vm: BackgroundVMM) {
        print(vm.output.split(separator: "\n").filter { $0.hasPrefix("webserver: requests=") || $0.hasPrefix("net: ") }
            .joined(separator: "\n"))
    }

    /// The integer after `key=` on the driver's line that starts with `prefix`.
    func value(_ key: String, in output: String, line prefix: String) -> Int? {
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(prefix) }) else { return nil }
        return line.components(separatedBy: "\(key)=").dropFirst().first.flatMap { Int($0.prefix(while: { $0.isNumber })) }
    }

    /// Every case of scripts/http-torture.py: RFC 9112 answers (400, 405, 408,
    /// 411, 413, 414, 431, 501, 505) or a clean close, a normal GET after each,
    /// and the server still up at the end with every connection released.
    func testHTTPTorture() throws {
        let python = try TestNetworkNamespace.requirePython("the torture drivers are Python scripts")
        let (namespace, vm) = try boot("webhttp", tap: "torotaph", cmdline: "maxconn=8 keepalive=2 idleexit=5 seconds=200")
        defer { namespace.delete() }
        let driver = VMMHarness.root.appendingPathComponent("scripts/http-torture.py").path
        let (status, output) = try namespace.exec(
            python, [driver, "--host", Self.guest, "--port", "80", "--maxconn", "8", "--keepalive", "2"])
        print(output.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(status, 0, "http-torture.py failed:\n" + output)
        checkCases(output, driver: "http-torture", required: [
            "malformed-request-line", "missing-host", "http09", "http2-preface", "uri-64k", "header-9k",
            "headers-1000-tiny", "nul-in-target", "non-ascii-in-target", "bare-lf", "content-length-too-short",
            "content-length-too-long-get", "content-length-negative", "content-length-huge", "chunked-post",
            "pipelined-100", "byte-at-a-time", "slowloris", "flood-past-maxconn", "reset-mid-request", "half-close",
        ])
        XCTAssertTrue(vm.process.isRunning, "the VM is still running:\n" + vm.output)

        XCTAssertEqual(vm.finish(seconds: 60), 0, "a clean exit (5 would be a trap):\n" + vm.output)
        printCounters(vm)
        let responses = value("responses", in: output, line: "http-torture: responses=") ?? 0
        XCTAssertGreaterThan(responses, 200, output)
        // Every response the driver read was counted; a few more may have been
        // sent that it never read (the reset cases).
        XCTAssertGreaterThanOrEqual(vm.counter("requests") ?? 0, responses, vm.output)
        XCTAssertGreaterThanOrEqual(vm.counter("refused") ?? 0, 5, "the connections past maxconn got 503:\n" + vm.output)
        XCTAssertGreaterThanOrEqual(vm.counter("request_timeouts") ?? 0, 2, "the slow heads got 408:\n" + vm.output)
        XCTAssertGreaterThanOrEqual(vm.counter("keepalive_timeouts") ?? 0, 4, vm.output)
        XCTAssertEqual(vm.counter("active"), 0, "every connection was released:\n" + vm.output)
        // And the stack holds none: a client that went on sending to a closed
        // connection (a 1 MiB body after its 405) cannot keep one alive.
        XCTAssertEqual(vm.counter("connections"), 0, "connections left in the stack:\n" + vm.output)
    }

    /// Every case of scripts/tcp-torture.py: out-of-order, overlapping and
    /// tiny segments reassembled, RFC 5961 challenge ACKs for inexact resets,
    /// SYNs and ACKs of unsent data, bad checksums, IP fragments, bad lengths,
    /// offsets and options dropped and counted, a zero window probed and then
    /// filled, an MSS of 1, Linux's SYN options, a bounded SYN flood; a normal
    /// GET after each, and no connection left behind.
    func testTCPTorture() throws {
        let python = try TestNetworkNamespace.requirePython("the torture drivers are Python scripts")
        let tap = "torotapt"
        let (namespace, vm) = try boot("webtcp", tap: tap, cmdline: "idleexit=5 seconds=200")
        defer { namespace.delete() }
        // Room in the TAP's queue for the SYN flood, whatever the default.
        let (queued, queueOutput) = try namespace.ip(["link", "set", tap, "txqueuelen", "1000"])
        XCTAssertEqual(queued, 0, queueOutput)
        let driver = VMMHarness.root.appendingPathComponent("scripts/tcp-torture.py").path
        let (status, output) = try namespace.exec(
            python, [driver, "--interface", tap, "--target", Self.guest, "--source", "10.77.0.3", "--port", "80"])
        print(output.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(status, 0, "tcp-torture.py failed:\n" + output)
        checkCases(output, driver: "tcp-torture", required: [
            "out-of-order", "overlapping", "rst-in-window", "rst-out-of-window", "syn-on-established", "rst-exact",
            "bad-tcp-checksum", "bad-ip-checksum", "ip-fragments", "bad-ip-lengths", "bad-tcp-offsets", "zero-window",
            "fin-out-of-order", "rst-in-syn-received", "many-tiny-pieces", "tiny-mss", "linux-options",
            "bad-tcp-options", "ack-of-unsent-data", "beyond-window", "syn-flood",
        ])
        XCTAssertTrue(vm.process.isRunning, "the VM is still running:\n" + vm.output)

        XCTAssertEqual(vm.finish(seconds: 60), 0, "a clean exit (5 would be a trap):\n" + vm.output)
        printCounters(vm)
        // What the driver sent to be dropped was dropped and counted, by kind.
        for (sent, counted) in [("fragments", "dropped_fragments"), ("checksum", "dropped_checksum"),
                                ("length", "dropped_length"), ("truncated", "dropped_truncated")] {
            let count = value(sent, in: output, line: "tcp-torture: sent ") ?? 0
            XCTAssertGreaterThan(count, 0, "the driver sent \(sent) frames:\n" + output)
            XCTAssertGreaterThanOrEqual(vm.counter(counted) ?? 0, count, "\(counted):\n" + vm.output)
        }
        let evictions = vm.counter("syn_evictions") ?? 0
        XCTAssertGreaterThan(evictions, 0, "the flood filled the SYN queue:\n" + vm.output)
        XCTAssertEqual(vm.counter("backlog_drops"), 0, vm.output)
        XCTAssertEqual(vm.counter("active"), 0, "every connection was released:\n" + vm.output)
        // What the stack still holds is the flood's half-open connections (they
        // last 63 s), each SYN that was not evicted: none of the raw
        // connections of the other cases is left behind.
        let flood = value("syn_flood", in: output, line: "tcp-torture: sent ") ?? 0
        XCTAssertEqual(vm.counter("connections"), flood - evictions, "connections left in the stack:\n" + vm.output)
    }
}
