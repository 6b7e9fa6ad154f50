import Foundation
import XCTest

/// Boots Tests/Guests/WakeLatency: a thread on CPU 1 woken by an IPI from
/// CPU 0, and by its own timer, timed with the TSC. The host script that
/// compares idle=halt/poll and --halt-poll-ns runs the same image; here only
/// the output's shape and sanity are checked.
final class WakeLatencyTests: XCTestCase {
    struct Latency {
        var n: Int
        var p50: Int
        var p99: Int
        var max: Int
    }

    /// `latency NAME n=… p50_ns=… p99_ns=… max_ns=…`
    func latency(_ name: String, in stdout: String) -> Latency? {
        guard let line = stdout.split(separator: "\n").first(where: { $0.hasPrefix("latency \(name) ") }) else { return nil }
        var fields: [String: Int] = [:]
        for word in line.split(separator: " ").dropFirst(2) {
            let parts = word.split(separator: "=")
            if parts.count == 2, let value = Int(parts[1]) { fields[String(parts[0])] = value }
        }
        guard let n = fields["n"], let p50 = fields["p50_ns"], let p99 = fields["p99_ns"], let max = fields["max_ns"] else {
            return nil
        }
        return Latency(n: n, p50: p50, p99: p99, max: max)
    }

    func testBothLatenciesArePrintedAndSane() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("WakeLatency")
        let result = try VMMHarness.run([image, "--cpus", "2", "--cmdline", "count=200"], limit: 60)
        XCTAssertEqual(result.status, 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
        for name in ["ipi", "timer"] {
            let measured = try XCTUnwrap(latency(name, in: result.stdout), "no 'latency \(name)' line in: \(result.stdout)")
            print("wake latency \(name): p50 \(measured.p50) ns, p99 \(measured.p99) ns, max \(measured.max) ns")
            XCTAssertEqual(measured.n, 200, result.stdout)
            XCTAssertGreaterThan(measured.p50, 0, result.stdout)
            XCTAssertLessThanOrEqual(measured.p50, measured.p99, result.stdout)
            XCTAssertLessThanOrEqual(measured.p99, measured.max, result.stdout)
            // How long a wake-up takes depends on the host's load; that it was
            // measured within the run does not: no latency exceeds the run itself.
            XCTAssertLessThan(measured.max, result.stats?.int("wall_ns") ?? 0, result.stdout)
        }
        // CPU 1 halted between rounds: each IPI round and each timer round woke it.
        let ap = result.vcpus[1]
        XCTAssertGreaterThanOrEqual(ap.int("hlt_exits") ?? 0, 400, "\(ap)")
    }
}
