import Foundation
import XCTest

/// Boots the in-guest self-test of the kernel core on 1, 2 and 4 vCPUs.
final class SelfTestTests: XCTestCase {
    func boot(cpus: Int) throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("SelfTest")
        let result = try VMMHarness.run([image, "--cpus", String(cpus)], limit: 60)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let closing = result.stdout.split(separator: "\n").last { $0.hasSuffix(" failed") }
        XCTAssertNotNil(closing, result.stdout)
        XCTAssertTrue(closing?.hasSuffix(" passed, 0 failed") ?? false, result.stdout)
        let passed = Int(closing?.split(separator: " ").first ?? "") ?? 0
        XCTAssertGreaterThanOrEqual(passed, 10 * cpus, result.stdout)
        XCTAssertFalse(result.stdout.contains("FAIL"), result.stdout)
    }

    func testOneCPU() throws { try boot(cpus: 1) }
    func testTwoCPUs() throws { try boot(cpus: 2) }
    func testFourCPUs() throws { try boot(cpus: 4) }
}
