import Foundation
import XCTest

/// An idle Toro VM costs the host (almost) nothing: the kernel is tickless and
/// halts every CPU that has nothing to do. Compared, in the same test, with the
/// same image polling instead of halting.
final class IdleTests: XCTestCase {
    func testIdleVMHaltsAndCostsAlmostNothing() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Idle")
        let halted = try VMMHarness.run([image, "--cpus", "2", "--cmdline", "seconds=4", "--stats-interval", "0.5"])
        let polled = try VMMHarness.run([image, "--cpus", "2", "--cmdline", "seconds=2 idle=poll", "--stats-interval", "0.5"])
        XCTAssertEqual(halted.status, 0, halted.stderr)
        XCTAssertEqual(polled.status, 0, polled.stderr)
        XCTAssertTrue(halted.stdout.contains("idle: done"), halted.stdout)

        let haltedStats = try XCTUnwrap(halted.stats)
        let polledStats = try XCTUnwrap(polled.stats)
        for vcpu in halted.vcpus {
            // Halted for most of the 4 s, with hardly any exits: no periodic tick.
            XCTAssertGreaterThan(vcpu["halted_percent"] as? Double ?? 0, 75, "\(vcpu)")
            XCTAssertLessThan(vcpu.int("exits") ?? .max, 200, "\(vcpu)")
        }
        let haltedCPU = haltedStats["process_cpu_percent"] as? Double ?? 100
        let polledCPU = polledStats["process_cpu_percent"] as? Double ?? 0
        print("idle: halted run used \(haltedCPU)% of one host CPU, polling run \(polledCPU)%")
        XCTAssertLessThan(haltedCPU, 5, "the halted VM cost \(haltedCPU)% of a host CPU")
        XCTAssertGreaterThan(polledCPU, 10 * haltedCPU, "polling \(polledCPU)% vs halted \(haltedCPU)%")
        // Once booted, the idle VM costs next to nothing; booting is most of the run's cost.
        let idleSamples = (haltedStats["samples"] as? [[String: Any]] ?? []).filter { ($0["t_ns"] as? Int ?? 0) > 1_000_000_000 }
        XCTAssertGreaterThanOrEqual(idleSamples.count, 3)
        for sample in idleSamples.dropLast() {
            XCTAssertLessThan(sample["process_cpu_percent"] as? Double ?? 100, 1, "\(sample)")
        }
        for vcpu in polled.vcpus {
            XCTAssertLessThan(vcpu["halted_percent"] as? Double ?? 100, 25, "\(vcpu)")
        }
    }
}
