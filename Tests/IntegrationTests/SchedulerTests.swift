import Foundation
import XCTest

/// Boots Examples/Threads: threads on every core, spawned and joined across
/// cores, sleeps, a producer/consumer pair on two cores, per-thread status.
final class SchedulerTests: XCTestCase {
    func boot(cpus: Int, file: StaticString = #filePath, line: UInt = #line) throws -> VMMHarness.Result {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Threads")
        let result = try VMMHarness.run([image, "--cpus", "\(cpus)"], limit: 60)
        XCTAssertEqual(result.status, 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stdout.contains("FAIL"), result.stdout, file: file, line: line)
        let consumer = cpus > 1 ? 1 : 0
        var expected = [
            "threads: \(cpus) cpus, main is thread 1 on cpu 0",
            "every core: \(cpus) threads ran and were joined from cpu 0",
            "cross-core: \(cpus + 1) threads on \(cpus) cpus joined one thread on cpu \(cpus - 1)",
            "sleep: 3 threads slept 10, 20 and 30 ms and woke in that order",
            "producer/consumer: 1000 items from cpu 0 to cpu \(consumer) in order, sum 499500",
            "status: per thread (main 7, thread ",
            "threads: ok",
        ]
        for core in 0..<cpus {
            expected.append(" on cpu \(core): hello")
        }
        for text in expected {
            XCTAssertTrue(result.stdout.contains(text), "no '\(text)' in: \(result.stdout)", file: file, line: line)
        }
        let crossCore = #"cross-core: thread \d+ on cpu \#(cpus - 1) spawned thread \d+ on cpu 0 and joined it"#
        XCTAssertNotNil(result.stdout.range(of: crossCore, options: .regularExpression), result.stdout, file: file, line: line)
        let stacks = #"stacks: 2 rounds of \#(4 * cpus) threads, every stack given back \(\d+ pages free after each\)"#
        XCTAssertNotNil(result.stdout.range(of: stacks, options: .regularExpression), result.stdout, file: file, line: line)
        // Every thread has ended, on every core.
        let leftovers = result.stdout.split(separator: "\n").filter { $0.hasPrefix("cpu ") && $0.contains(" threads left") }
        XCTAssertEqual(leftovers.count, cpus, result.stdout, file: file, line: line)
        for summary in leftovers {
            XCTAssertTrue(summary.hasSuffix(", 0 threads left"), String(summary), file: file, line: line)
        }
        XCTAssertEqual(result.vcpus.count, cpus, file: file, line: line)
        return result
    }

    func testOneCPU() throws {
        _ = try boot(cpus: 1)
    }

    /// Threads wait for each other by blocking, not spinning: every vCPU halts
    /// (idle cases 2 and 3), and the wake-ups across cores are IPIs.
    func testTwoCPUsBlockByHalting() throws {
        let result = try boot(cpus: 2)
        for vcpu in result.vcpus {
            XCTAssertGreaterThan(vcpu.int("hlt_exits") ?? 0, 0, "\(vcpu)")
        }
        let ap = result.vcpus[1]
        XCTAssertGreaterThanOrEqual((ap["kvm"] as? [String: Any])?.int("halt_wakeup") ?? 0, 2, "\(ap)")
    }

    func testFourCPUs() throws {
        let result = try boot(cpus: 4)
        for vcpu in result.vcpus {
            XCTAssertGreaterThan(vcpu.int("hlt_exits") ?? 0, 0, "\(vcpu)")
        }
    }
}
