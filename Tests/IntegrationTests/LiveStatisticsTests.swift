import Foundation
import XCTest

/// `--stats-interval`: live lines on stderr and the same series in the JSON statistics.
///
/// Nothing here bounds a CPU share from below: how much of a host CPU a busy
/// vCPU gets depends on what else the host runs. What a vCPU did does not:
/// whether it halted, and whether it took HLT exits.
final class LiveStatisticsTests: XCTestCase {
    func samples(_ result: VMMHarness.Result) -> [[String: Any]] {
        result.stats?["samples"] as? [[String: Any]] ?? []
    }

    func vcpus(_ sample: [String: Any]) throws -> [[String: Any]] {
        try XCTUnwrap(sample["vcpus"] as? [[String: Any]], "\(sample)")
    }

    /// A vCPU thread is not halted while it runs: no sample shows more than
    /// 100% between the two.
    func assertCPUAndHaltedFit(_ series: [[String: Any]], file: StaticString = #filePath, line: UInt = #line) throws {
        for sample in series {
            for vcpu in try vcpus(sample) {
                let cpu = vcpu["cpu_percent"] as? Double ?? 0
                let halted = vcpu["halted_percent"] as? Double ?? 0
                XCTAssertLessThanOrEqual(halted, 100 - min(cpu, 100) + 1e-6, "\(sample)", file: file, line: line)
            }
        }
    }

    func testHaltedGuestShowsHaltedAndIdle() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let result = try VMMHarness.run([image, "--cpus", "2", "--cmdline", "mode=halt", "--timeout", "1.6", "--stats-interval", "0.25"])
        XCTAssertEqual(result.status, 124, result.stderr)
        let series = samples(result)
        XCTAssertGreaterThanOrEqual(series.count, 4, "\(series)")
        XCTAssertGreaterThanOrEqual(result.stderr.components(separatedBy: "| vcpu1 cpu").count - 1, 4, result.stderr)
        // After boot, both vCPUs sit in HLT: halted nearly all the time, nearly no CPU
        // (a halted vCPU cannot use CPU, however loaded the host is).
        for sample in series.suffix(2) {
            let vcpus = try vcpus(sample)
            XCTAssertEqual(vcpus.count, 2)
            for vcpu in vcpus {
                XCTAssertGreaterThan(vcpu["halted_percent"] as? Double ?? 0, 90, "\(sample)")
                XCTAssertLessThan(vcpu["cpu_percent"] as? Double ?? 100, 10, "\(sample)")
                XCTAssertEqual(vcpu["hlt_exits_per_s"] as? Double, 0, "\(sample)")
            }
        }
        try assertCPUAndHaltedFit(series)
    }

    /// KVM accounts a halt only when it ends; the first sample of a guest that
    /// booted and halted for good still shows its vCPUs halted, not 0%.
    func testFirstSampleOfAnIdleGuestShowsItHalted() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let result = try VMMHarness.run([image, "--cpus", "2", "--cmdline", "mode=halt", "--timeout", "2.5", "--stats-interval", "1"])
        XCTAssertEqual(result.status, 124, result.stderr)
        let series = samples(result)
        let first = try XCTUnwrap(series.first, "no samples: \(result.stderr)")
        let vcpus = try vcpus(first)
        XCTAssertEqual(vcpus.count, 2)
        // Booting takes a small part of the first second; the rest is one halt that has not ended.
        for vcpu in vcpus {
            XCTAssertGreaterThan(vcpu["halted_percent"] as? Double ?? 0, 50, "first sample: \(first)")
        }
        // The live line says so too.
        let firstLine = try XCTUnwrap(result.stderr.split(separator: "\n").first { $0.contains("| vcpu0 cpu") }, result.stderr)
        XCTAssertFalse(firstLine.contains("halted   0.0%"), String(firstLine))
        try assertCPUAndHaltedFit(series)
    }

    /// A spinning vCPU never halts: no HLT exits and 0% halted in its samples.
    func testSpinningGuestShowsBusy() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let result = try VMMHarness.run([image, "--cmdline", "mode=spin", "--timeout", "1.2", "--stats-interval", "0.25", "--halt-poll-ns", "0"])
        XCTAssertEqual(result.status, 124, result.stderr)
        let series = samples(result)
        XCTAssertGreaterThanOrEqual(series.count, 2, "\(series)")
        for sample in series.dropFirst() {
            let vcpu = try XCTUnwrap(vcpus(sample).first)
            XCTAssertEqual(vcpu["halted_percent"] as? Double, 0, "\(sample)")
            XCTAssertEqual(vcpu["hlt_exits_per_s"] as? Double, 0, "\(sample)")
        }
        XCTAssertGreaterThan(result.vcpus.first?.int("cpu_ns") ?? 0, 0, "\(result.vcpus)")
        try assertCPUAndHaltedFit(series)
    }
}
