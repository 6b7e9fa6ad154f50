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
        // Polling never halts after boot: the same image, judged by what its
        // vCPUs did rather than by the share of a host CPU they were given.
        for vcpu in polled.vcpus {
            XCTAssertLessThan(vcpu["halted_percent"] as? Double ?? 100, 25, "\(vcpu)")
            XCTAssertLessThanOrEqual(vcpu.int("hlt_exits") ?? .max, 2, "\(vcpu)")
        }
        let haltedCPU = haltedStats["process_cpu_percent"] as? Double ?? 100
        let polledCPU = polledStats["process_cpu_percent"] as? Double ?? 0
        print("idle: halted run used \(haltedCPU)% of one host CPU, polling run \(polledCPU)%")
        // An upper bound only: the halted VM's cost is its boot (CPU time that a
        // loaded host delays but does not make larger) plus nothing.
        XCTAssertLessThan(haltedCPU, 5, "the halted VM cost \(haltedCPU)% of a host CPU")
        // Once booted, the idle VM costs next to nothing: in every interval in
        // which neither vCPU exited (the guest did nothing at all), the whole
        // process, sampling included, used under 1% of a CPU. Those intervals
        // are picked by what the guest did, not by a guess of when boot ends.
        let samples = haltedStats["samples"] as? [[String: Any]] ?? []
        let quiet = samples.filter { sample in
            let vcpus = sample["vcpus"] as? [[String: Any]] ?? []
            return !vcpus.isEmpty && vcpus.allSatisfy { ($0["exits_per_s"] as? Double ?? 1) == 0 }
        }
        XCTAssertGreaterThanOrEqual(quiet.count, 3, "intervals with no exit at all: \(samples)")
        for sample in quiet {
            XCTAssertLessThan(sample["process_cpu_percent"] as? Double ?? 100, 1, "\(sample)")
            for vcpu in sample["vcpus"] as? [[String: Any]] ?? [] {
                XCTAssertGreaterThan(vcpu["halted_percent"] as? Double ?? 0, 99, "\(sample)")
            }
        }
    }
}
