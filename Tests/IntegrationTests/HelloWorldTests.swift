import Foundation
import XCTest

/// Boots Examples/HelloWorld on /dev/kvm and checks what a user would see.
final class HelloWorldTests: XCTestCase {
    func testBootsOnOneVCPU() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run([image, "--cpus", "1", "--memory", "64M", "--cmdline", "hello=world"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Toro for Swift"), result.stdout)
        XCTAssertTrue(result.stdout.contains("1 CPU"), result.stdout)
        XCTAssertTrue(result.stdout.contains("64 MiB"), result.stdout)
        XCTAssertTrue(result.stdout.contains("hello=world"), result.stdout)
        XCTAssertTrue(result.stdout.contains("Hello from Embedded Swift on Toro!"), result.stdout)
        XCTAssertTrue(result.stdout.contains("array:"), result.stdout)
        XCTAssertTrue(result.stdout.contains("dictionary:"), result.stdout)
        XCTAssertTrue(result.stdout.contains("class:"), result.stdout)

        let stats = try XCTUnwrap(result.stats, "no JSON statistics")
        XCTAssertEqual((stats["stop"] as? [String: Any])?["reason"] as? String, "guest_exit")
        XCTAssertEqual(result.vcpus.count, 1)
        let vcpu = result.vcpus[0]
        XCTAssertEqual(vcpu.int("index"), 0)
        XCTAssertGreaterThan(vcpu.int("exits") ?? 0, 0)
        XCTAssertGreaterThan(vcpu.int("vmm_exits") ?? 0, 0)
        XCTAssertGreaterThan(vcpu.int("wall_ns") ?? 0, 0)
        XCTAssertGreaterThan(vcpu.int("cpu_ns") ?? 0, 0)
        XCTAssertGreaterThan(stats.int("first_output_ns") ?? 0, 0)
        XCTAssertLessThanOrEqual(stats.int("first_output_ns") ?? .max, stats.int("wall_ns") ?? 0)
        XCTAssertGreaterThan(stats.int("console_bytes") ?? 0, 100)
        // Batched console output: far fewer console exits than bytes printed.
        XCTAssertLessThan(vcpu.int("vmm_exits") ?? .max, (stats.int("console_bytes") ?? 0) / 4)
    }

    func testBootsOnTwoVCPUsAndTheApplicationProcessorHalts() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run([image, "--cpus", "2"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("2 CPUs"), result.stdout)
        XCTAssertTrue(result.stdout.contains("cpu 1 online"), result.stdout)
        XCTAssertFalse(result.stdout.contains("did not check in"), result.stdout)
        XCTAssertEqual(result.vcpus.map { $0.int("index") }, [0, 1])
        for vcpu in result.vcpus {
            XCTAssertGreaterThan(vcpu.int("exits") ?? 0, 0)
            XCTAssertLessThanOrEqual(vcpu.int("cpu_ns") ?? .max, (vcpu.int("wall_ns") ?? 0) + 5_000_000)
        }
        // The AP checks in and halts until the VM ends: KVM sees its HLT.
        XCTAssertGreaterThan(result.vcpus[1].int("hlt_exits") ?? 0, 0, "\(result.vcpus[1])")
    }

    func testGuestExitStatusBecomesTheProcessStatus() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run([image, "--cmdline", "exit=42"])
        XCTAssertEqual(result.status, 42, result.stderr)
        XCTAssertEqual((result.stats?["stop"] as? [String: Any])?["guest_status"] as? Int, 42)
    }

    func testTextStatisticsHaveOneRowPerVCPU() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run([image, "--cpus", "2", "--stats", "text"], stats: false)
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.contains("vcpu") && $0.contains("hlt") && $0.contains("cpu%") }, result.stderr)
        XCTAssertEqual(lines.filter { $0.hasPrefix("  0 ") || $0.hasPrefix("  1 ") }.count, 2, result.stderr)
    }
}
