import Foundation
import XCTest

/// Boots Tests/Guests/CrashTest and checks the kernel's exception reports:
/// exit status 5, the `exception N (#XX ...)` line, the registers, and what
/// the report adds for page faults and stack overflows.
///
/// In kvm_pvm's native mode (the default on such hosts) exceptions are
/// delivered on the stack that faulted, so a stack overflow cannot be
/// reported by the kernel: the VMM reports it (status 125). Those tests check
/// the VMM's report there and the kernel's with `--mode emulated`.
final class CrashTests: XCTestCase {
    /// `toro-vmm run CrashTest.elf --cmdline crash=MODE`, checked for what every crash shares.
    func crash(_ mode: String, cpus: Int = 1, vmmMode: String? = nil, file: StaticString = #filePath, line: UInt = #line)
        throws -> String
    {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("CrashTest")
        let result = try VMMHarness.run(
            [image, "--cpus", "\(cpus)", "--cmdline", "crash=\(mode)"] + (vmmMode.map { ["--mode", $0] } ?? []))
        XCTAssertEqual(result.status, 5, "stdout: \(result.stdout)\nstderr: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stdout.contains("crash test: \(mode)"), result.stdout, file: file, line: line)
        for register in ["  rip 0x", " rsp 0x", " rflags 0x", " cr2 0x", "  rax 0x", " rbx 0x", " rcx 0x", " rdx 0x",
                         "  rsi 0x", " rdi 0x", " rbp 0x", " r8 0x", "  r9 0x", " r10 0x", " r11 0x", " r12 0x",
                         "  r13 0x", " r14 0x", " r15 0x"] {
            XCTAssertTrue(result.stdout.contains(register), "no '\(register)' in: \(result.stdout)", file: file, line: line)
        }
        // The VMM saw an ordinary guest exit with the kernel's status, not a crash of its own.
        let stop = result.stats?["stop"] as? [String: Any]
        XCTAssertEqual(stop?["reason"] as? String, "guest_exit", "\(String(describing: stop))", file: file, line: line)
        XCTAssertEqual(stop?["guest_status"] as? Int, 5, "\(String(describing: stop))", file: file, line: line)
        XCTAssertEqual(stop?["exit_status"] as? Int, 5, "\(String(describing: stop))", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("guest crashed"), result.stderr, file: file, line: line)
        XCTAssertFalse(result.stdout.contains("crash test: cpu 1 did not crash"), result.stdout, file: file, line: line)
        return result.stdout
    }

    func testDivideByZeroIsDivideError() throws {
        let report = try crash("divide")
        XCTAssertTrue(report.contains("exception 0 (#DE divide error) on cpu 0, error code 0x0000000000000000"), report)
    }

    func testUnmappedWriteIsPageFaultWithTheAddressInCR2() throws {
        let report = try crash("page")
        XCTAssertTrue(report.contains("exception 14 (#PF page fault) on cpu 0, error code 0x0000000000000002"), report)
        XCTAssertTrue(report.contains("cr2 0x0000400000000000"), report)
        XCTAssertTrue(report.contains("page fault: write, page not present"), report)
        XCTAssertFalse(report.contains("stack overflow"), report)
    }

    /// The mode a plain run gets here: native on kvm_pvm, where the kernel
    /// cannot report a stack overflow; the kernel's report is then checked in
    /// emulated mode, and the VMM's in native mode.
    var kernelReportMode: String? { VMMHarness.isPVMHost ? "emulated" : nil }

    func testBootStackOverflowIsReportedAsSuch() throws {
        let report = try crash("stack", vmmMode: kernelReportMode)
        XCTAssertTrue(report.contains("exception 14 (#PF page fault) on cpu 0"), report)
        XCTAssertTrue(report.contains("stack overflow: cr2 is in the guard page below cpu 0's stack"), report)
        XCTAssertTrue(report.contains("  in thread 1\n"), "main is thread 1: \(report)")
        // CPU 0's boot stack starts at 0x101000 (BootLayout): its guard is the page below.
        let cr2 = try XCTUnwrap(report.range(of: "cr2 0x").map { report[$0.upperBound...].prefix(16) })
        let address = try XCTUnwrap(UInt64(cr2, radix: 16), report)
        XCTAssertTrue((0x100000..<0x101000).contains(address), "cr2 \(cr2) is not in CPU 0's guard page")
    }

    /// A spawned thread's stack has a guard page too, and the report names the stack and the thread.
    func testThreadStackOverflowIsReportedWithTheThread() throws {
        let report = try crash("thread", cpus: 2, vmmMode: kernelReportMode)
        XCTAssertTrue(report.contains("crash test: thread 2 recursing on cpu 1"), report)
        XCTAssertTrue(report.contains("exception 14 (#PF page fault) on cpu 1"), report)
        XCTAssertTrue(report.contains("stack overflow: cr2 is in the guard page below the stack at 0x"), report)
        XCTAssertTrue(report.contains("  in thread 2\n"), report)
    }

    /// Native mode: the overflow's exception cannot be delivered, the vCPU
    /// triple-faults, and the VMM says it was a stack overflow, on which vCPU.
    func testStackOverflowInNativeModeIsReportedByTheVMM() throws {
        try VMMHarness.requirePVM()
        let image = try VMMHarness.requireImage("CrashTest")
        for (crash, cpus, vcpu) in [("stack", 1, 0), ("thread", 2, 1)] {
            let result = try VMMHarness.run([image, "--cpus", "\(cpus)", "--cmdline", "crash=\(crash)", "--mode", "native"])
            XCTAssertEqual(result.status, 125, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
            XCTAssertEqual(result.stats?["mode"] as? String, "native")
            XCTAssertTrue(result.stdout.contains("crash test: \(crash)"), result.stdout)
            XCTAssertTrue(
                result.stderr.contains("guest crashed on vCPU \(vcpu): triple fault (KVM_EXIT_SHUTDOWN): stack overflow (rsp 0x"),
                result.stderr)
            let stop = result.stats?["stop"] as? [String: Any]
            XCTAssertEqual(stop?["reason"] as? String, "guest_crashed", "\(String(describing: stop))")
        }
    }

    /// A double fault needs IST stacks, which native mode does not have: checked where they exist.
    func testFaultWhileDeliveringAFaultIsDoubleFault() throws {
        let report = try crash("double", vmmMode: kernelReportMode)
        XCTAssertTrue(report.contains("exception 8 (#DF double fault) on cpu 0, error code 0x0000000000000000"), report)
    }

    func testUD2IsInvalidOpcode() throws {
        let report = try crash("ud")
        XCTAssertTrue(report.contains("exception 6 (#UD invalid opcode) on cpu 0"), report)
        XCTAssertTrue(report.contains("ud2: a Swift runtime trap"), report)
        // The unfinished line this CPU printed comes out first, on a line of its own.
        XCTAssertTrue(report.contains("crash test: half a line, then ud2\nexception 6"), report)
    }

    func testFatalErrorIsReported() throws {
        let report = try crash("fatal")
        XCTAssertTrue(report.contains("exception 6 (#UD invalid opcode) on cpu 0"), report)
    }

    func testSwiftRuntimeTrapIsReported() throws {
        let report = try crash("trap")
        XCTAssertTrue(report.contains("exception 6 (#UD invalid opcode) on cpu 0"), report)
        XCTAssertTrue(report.contains("ud2: a Swift runtime trap"), report)
    }

    /// The NMI almost always lands while CPU 0 holds the console lock: the
    /// report waits a bounded time for the lock, then writes without it.
    func testNMIWhileHoldingTheConsoleLockStillReports() throws {
        let report = try crash("nmi", cpus: 2)
        XCTAssertTrue(report.contains("\nexception 2 (NMI non-maskable interrupt) on cpu 0"), report)
    }

    func testFaultInAnInterruptHandlerOnAnotherCPU() throws {
        let report = try crash("remote", cpus: 2)
        XCTAssertTrue(report.contains("exception 14 (#PF page fault) on cpu 1, error code 0x0000000000000002"), report)
        XCTAssertTrue(report.contains("cr2 0x0000400000000000"), report)
    }
}
