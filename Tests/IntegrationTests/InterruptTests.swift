import Foundation
import XCTest

/// Boots Tests/Guests/InterruptTest: IPIs, the local APIC timer and the IOAPIC
/// on 1, 2 and 4 vCPUs, and what an idle application processor costs.
final class InterruptTests: XCTestCase {
    func boot(cpus: Int, file: StaticString = #filePath, line: UInt = #line) throws -> VMMHarness.Result {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("InterruptTest")
        let result = try VMMHarness.run([image, "--cpus", "\(cpus)"])
        XCTAssertEqual(result.status, 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stdout.contains("FAIL"), result.stdout, file: file, line: line)
        for expected in ["ipi: self ok", "interrupts: taken only in windows", "fired after", "timer: disarmed timer stayed silent",
                         "timer: one-shot fired after", "ioapic: 24 lines", "interrupt test: ok"] {
            XCTAssertTrue(result.stdout.contains(expected), "no '\(expected)' in: \(result.stdout)", file: file, line: line)
        }
        XCTAssertEqual(result.vcpus.count, cpus, file: file, line: line)
        return result
    }

    func testOneCPU() throws {
        _ = try boot(cpus: 1)
    }

    func testTwoCPUsTakeIPIsAndTimers() throws {
        let result = try boot(cpus: 2)
        XCTAssertTrue(result.stdout.contains("ipi: 1 of 1 other cpus answered"), result.stdout)
        XCTAssertTrue(result.stdout.contains("timer: fired on 1 of 1 other cpus"), result.stdout)
        XCTAssertTrue(result.stdout.contains("vector 66 on APIC id 1"), result.stdout)
    }

    func testFourCPUsTakeIPIsAndTimers() throws {
        let result = try boot(cpus: 4)
        XCTAssertTrue(result.stdout.contains("ipi: 3 of 3 other cpus answered"), result.stdout)
        XCTAssertTrue(result.stdout.contains("timer: fired on 3 of 3 other cpus"), result.stdout)
        for cpu in 1..<4 {
            XCTAssertTrue(result.stdout.contains("cpu \(cpu) online"), result.stdout)
        }
    }

    /// The application processors wait with interrupts enabled (so IPIs reach
    /// them) and still cost nothing: KVM keeps their threads asleep in HLT,
    /// and each IPI (answer, wake-up, arm the timer, the timer) wakes them.
    func testIdleApplicationProcessorsHaltAndWakeUp() throws {
        let result = try boot(cpus: 2)
        let ap = result.vcpus[1]
        XCTAssertGreaterThan(ap.int("hlt_exits") ?? 0, 3, "\(ap)")
        // Halted longer than it ran. Not a share of the wall time: the run
        // lasts some 25 ms, and on a loaded host a fair part of that is the
        // vCPU thread waiting for a host core, neither halted nor running.
        XCTAssertGreaterThan(ap.int("halt_wait_ns") ?? 0, ap.int("cpu_ns") ?? .max, "\(ap)")
        XCTAssertLessThan(Double(ap.int("cpu_ns") ?? .max), 0.5 * Double(ap.int("wall_ns") ?? 0), "\(ap)")
        let wakeups = (ap["kvm"] as? [String: Any])?.int("halt_wakeup")
        XCTAssertGreaterThanOrEqual(wakeups ?? 0, 3, "\(ap)")
    }
}
