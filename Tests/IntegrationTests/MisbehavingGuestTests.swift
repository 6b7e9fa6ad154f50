import Foundation
import XCTest

/// A hostile or broken guest gets a clear report and a documented status; toro-vmm itself never crashes.
final class MisbehavingGuestTests: XCTestCase {
    func boot(_ mode: String, _ extra: [String] = [], limit: TimeInterval = 30,
              signal: VMMHarness.SignalAfterOutput? = nil) throws -> VMMHarness.Result {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        return try VMMHarness.run([image, "--cmdline", "mode=\(mode)"] + extra, limit: limit, signal: signal)
    }

    func stopReason(_ result: VMMHarness.Result) -> String? {
        (result.stats?["stop"] as? [String: Any])?["reason"] as? String
    }

    func testTripleFaultIsACrashReport() throws {
        let result = try boot("triple-fault", ["--cpus", "2"])
        XCTAssertEqual(result.status, 125, result.stderr)
        XCTAssertTrue(result.stderr.contains("guest crashed on vCPU 0"), result.stderr)
        XCTAssertTrue(result.stderr.contains("triple fault"), result.stderr)
        XCTAssertTrue(result.stderr.contains("rip"), result.stderr)
        XCTAssertTrue(result.stderr.contains("rax"), result.stderr)
        XCTAssertEqual(stopReason(result), "guest_crashed")
        XCTAssertEqual(result.vcpus.count, 2, "statistics are still written after a crash")
        // A real triple fault: the guest emptied its IDT first, so the kernel's
        // exception handlers (status 5 and a report) never saw the fault.
        XCTAssertTrue(result.stdout.contains("misbehave: triple-fault"), result.stdout)
        XCTAssertFalse(result.stdout.contains("exception "), result.stdout)
    }

    func testExitStatusOutOfRangeIsACrash() throws {
        let result = try boot("bad-exit")
        XCTAssertEqual(result.status, 125, result.stderr)
        XCTAssertTrue(result.stderr.contains("exit status 300"), result.stderr)
    }

    func testMalformedConsoleDescriptorsAreRefusedAndCounted() throws {
        let result = try boot("bad-console")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("misbehave: still running"), result.stdout)
        XCTAssertEqual(result.stats?.int("rejected_requests"), 3)
        XCTAssertEqual(result.stderr.components(separatedBy: "console").count - 1, 1, "warned once: \(result.stderr)")
    }

    func testStrayIOIsIgnored() throws {
        let result = try boot("stray-io")
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("port read 0xff, mmio read 0xffffffff"), result.stdout)
        let reasons = result.vcpus.first?["vmm_exits_by_reason"] as? [String: Int]
        XCTAssertGreaterThanOrEqual(reasons?["mmio_read"] ?? 0, 1)
        XCTAssertGreaterThanOrEqual(reasons?["mmio_write"] ?? 0, 1)
    }

    func testTimeoutStopsASpinningGuest() throws {
        let result = try boot("spin", ["--timeout", "0.5"])
        XCTAssertEqual(result.status, 124, result.stderr)
        XCTAssertTrue(result.stderr.contains("--timeout"), result.stderr)
        XCTAssertEqual(stopReason(result), "timeout")
    }

    func testTimeoutStopsHaltedVCPUs() throws {
        let result = try boot("halt", ["--cpus", "2", "--timeout", "1"])
        XCTAssertEqual(result.status, 124, result.stderr)
        XCTAssertEqual(result.vcpus.count, 2)
        for vcpu in result.vcpus {
            XCTAssertGreaterThan(vcpu.int("hlt_exits") ?? 0, 0, "\(vcpu)")
            // Halted, the vCPU threads sleep in the host kernel: far less CPU than wall time.
            XCTAssertLessThan(Double(vcpu.int("cpu_ns") ?? .max), 0.5 * Double(vcpu.int("wall_ns") ?? 0), "\(vcpu)")
        }
    }

    /// The signal goes once the guest has said which mode it runs: the VM is
    /// up, whatever the host's load made that take.
    func testSIGINTStopsCleanlyWithStatistics() throws {
        let result = try boot("halt", ["--cpus", "2"], signal: .init(signal: SIGINT, text: "misbehave: halt"))
        XCTAssertEqual(result.status, 130, result.stderr)
        XCTAssertEqual(stopReason(result), "signal")
        XCTAssertEqual(result.vcpus.count, 2)
    }

    func testSIGTERMStopsCleanlyWithStatistics() throws {
        let result = try boot("spin", signal: .init(signal: SIGTERM, text: "misbehave: spin"))
        XCTAssertEqual(result.status, 143, result.stderr)
        XCTAssertEqual(stopReason(result), "signal")
    }
}
