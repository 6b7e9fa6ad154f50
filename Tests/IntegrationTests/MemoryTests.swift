import Foundation
import XCTest

/// Boots Tests/Guests/MemoryCheck: per-CPU heaps and frees across CPUs, the
/// page allocator, guarded stacks, and what running out of memory looks like.
final class MemoryTests: XCTestCase {
    func boot(_ mode: String, _ extra: [String] = []) throws -> VMMHarness.Result {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("MemoryCheck")
        return try VMMHarness.run([image, "--cmdline", "mode=\(mode)"] + extra, limit: 60)
    }

    func testBlocksFreedOnTheOtherCPUGoBackToTheirOwner() throws {
        let result = try boot("check", ["--cpus", "2"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("memory check: ok"), result.stdout)
        // Each CPU freed every block of the other's, and each got them all back.
        let lines = result.stdout.split(separator: "\n")
        for cpu in 0..<2 {
            let line = lines.first { $0.hasPrefix("memory check: cpu \(cpu): ") }
            XCTAssertTrue(line?.hasSuffix(" 600 remote frees received") ?? false, result.stdout)
        }
    }

    func testMemoryAbove4GiBIsUsable() throws {
        let result = try boot("high", ["--memory", "5G"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("memory check: ok"), result.stdout)
    }

    // MARK: - Running out

    func testOneHugeAllocationPanicsWithItsSize() throws {
        let result = try boot("oom")
        XCTAssertEqual(result.status, 3, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("panic (cpu 0): out of memory: cannot allocate 1099511627776 bytes"), result.stdout)
    }

    func testExhaustingTheHeapPanicsWithTheSize() throws {
        let result = try boot("oom-gradual", ["--memory", "64M"])
        XCTAssertEqual(result.status, 3, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("memory check: 32 MiB"), "the heap grew well past one chunk: \(result.stdout)")
        XCTAssertTrue(result.stdout.contains("panic (cpu 0): out of memory: cannot allocate 1048576 bytes"), result.stdout)
    }

    // MARK: - Misuse

    func testDoubleFreesPanic() throws {
        let local = try boot("double-free")
        XCTAssertEqual(local.status, 3, local.stdout + local.stderr)
        XCTAssertTrue(local.stdout.contains("panic (cpu 0): free of 0x"), local.stdout)
        XCTAssertTrue(local.stdout.contains("which is not allocated"), local.stdout)

        let remote = try boot("remote-double-free", ["--cpus", "2"])
        XCTAssertEqual(remote.status, 3, remote.stdout + remote.stderr)
        XCTAssertTrue(remote.stdout.contains("panic (cpu 1): free of 0x"), remote.stdout)
        XCTAssertTrue(remote.stdout.contains("which is not allocated"), remote.stdout)

        let stack = try boot("stack-double-free")
        XCTAssertEqual(stack.status, 3, stack.stdout + stack.stderr)
        XCTAssertTrue(stack.stdout.contains("which is not an allocated stack"), stack.stdout)
    }

    func testAWriteBelowAStackIsReportedAsAStackOverflow() throws {
        let result = try boot("stack-overflow")
        XCTAssertEqual(result.status, 5, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("#PF"), result.stdout)
        XCTAssertTrue(result.stdout.contains("stack overflow: cr2 is in the guard page below the stack at 0x"), result.stdout)
    }

    func testTheGuardHoldsOnACPUThatAdoptedTheStack() throws {
        let result = try boot("remote-stack-overflow", ["--cpus", "2"])
        XCTAssertEqual(result.status, 5, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("on cpu 1"), result.stdout)
        XCTAssertTrue(result.stdout.contains("stack overflow: cr2 is in the guard page below the stack at 0x"), result.stdout)
    }

    // MARK: - Cost

    /// The page allocator keeps runs, not pages: booting with 63 GiB must cost
    /// the guest (whose instructions this host emulates one by one) no more
    /// than booting with 128 MiB.
    func testBootCostDoesNotGrowWithMemory() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        var instructions: [String: Int] = [:]
        for memory in ["128M", "63G"] {
            let result = try VMMHarness.run([image, "--cpus", "1", "--memory", memory])
            XCTAssertEqual(result.status, 0, result.stderr)
            guard let count = (result.vcpus.first?["kvm"] as? [String: Any])?.int("insn_emulation") else {
                throw XCTSkip("this KVM does not count emulated instructions")
            }
            instructions[memory] = count
        }
        let small = try XCTUnwrap(instructions["128M"]), large = try XCTUnwrap(instructions["63G"])
        XCTAssertLessThan(abs(large - small), 2000, "128M: \(small), 63G: \(large) emulated instructions")
    }
}
