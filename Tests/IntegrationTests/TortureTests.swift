import Foundation
import XCTest

/// Hostile clients against Examples/WebServer, from inside a network namespace
/// the test makes: `scripts/http-torture.py` (malformed and odd HTTP/1.1 over
/// ordinary sockets). The script runs every case, checks the answer and that
/// a normal GET is served after it, and prints one line per case; the test
/// asserts that every case passed, that the VM is still running, and that its
/// counters add up.
final class TortureTests: XCTestCase {
    static let guest = "10.77.0.2"

    func requirePython() throws -> String {
        guard let python = TestNetworkNamespace.executable(["/usr/bin/python3", "/bin/python3", "/usr/local/bin/python3"])
        else { return try TestNetworkNamespace.skip("python3 is missing: the torture drivers are Python scripts") }
        return python
    }

    /// Boots WebServer on a fresh namespace's TAP and waits until it listens.
    func boot(_ prefix: String, tap: String, cmdline: String) throws -> (TestNetworkNamespace, BackgroundVMM) {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("WebServer")
        let namespace = try TestNetworkNamespace.open(prefix: prefix, tap: tap)
        do {
            let vm = try BackgroundVMM(
                in: namespace,
                [image, "--cpus", "2", "--cmdline", "ip=\(Self.guest)/24 " + cmdline, "--net", "tap=\(tap)",
                 "--timeout", "240"])
            guard vm.waitFor("webserver: http://\(Self.guest):80/") else {
                namespace.delete()
                XCTFail("the server never listened:\n" + vm.output)
                throw XCTSkip("no server")
            }
            return (namespace, vm)
        } catch {
            namespace.delete()
            throw error
        }
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
        let python = try requirePython()
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
}
