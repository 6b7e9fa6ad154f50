import Foundation
import XCTest

/// `--stats-interval`: live lines on stderr and the same series in the JSON statistics.
final class LiveStatisticsTests: XCTestCase {
    func samples(_ result: VMMHarness.Result) -> [[String: Any]] {
        result.stats?["samples"] as? [[String: Any]] ?? []
    }

    func testHaltedGuestShowsHaltedAndIdle() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let result = try VMMHarness.run([image, "--cpus", "2", "--cmdline", "mode=halt", "--timeout", "1.6", "--stats-interval", "0.25"])
        XCTAssertEqual(result.status, 124, result.stderr)
        let series = samples(result)
        XCTAssertGreaterThanOrEqual(series.count, 4, "\(series)")
        XCTAssertGreaterThanOrEqual(result.stderr.components(separatedBy: "| vcpu1 cpu").count - 1, 4, result.stderr)
        // After boot, both vCPUs sit in HLT: halted nearly all the time, nearly no CPU.
        for sample in series.suffix(2) {
            let vcpus = try XCTUnwrap(sample["vcpus"] as? [[String: Any]])
            XCTAssertEqual(vcpus.count, 2)
            for vcpu in vcpus {
                XCTAssertGreaterThan(vcpu["halted_percent"] as? Double ?? 0, 90, "\(sample)")
                XCTAssertLessThan(vcpu["cpu_percent"] as? Double ?? 100, 10, "\(sample)")
            }
        }
    }

    func testSpinningGuestShowsBusy() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let result = try VMMHarness.run([image, "--cmdline", "mode=spin", "--timeout", "1.2", "--stats-interval", "0.25", "--halt-poll-ns", "0"])
        XCTAssertEqual(result.status, 124, result.stderr)
        let last = try XCTUnwrap(samples(result).last?["vcpus"] as? [[String: Any]])
        XCTAssertGreaterThan(last[0]["cpu_percent"] as? Double ?? 0, 50, "\(last)")
        XCTAssertLessThan(last[0]["halted_percent"] as? Double ?? 100, 5, "\(last)")
    }
}
