import Foundation
import XCTest

/// `--mode`: the mode every run reports, what native and emulated mode each
/// count as traps, and a representative set of guests forced into kvm_pvm's
/// emulated mode (the rest of the suite runs in the default, native, there).
final class ExecutionModeTests: XCTestCase {
    /// The default mode is reported, and it is native exactly where the host is kvm_pvm.
    func testAutoModeIsNativeOnKVMPVMAndHardwareElsewhere() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run([image])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stats?["mode"] as? String, VMMHarness.isPVMHost ? "native" : "hardware")
        let text = try VMMHarness.run([image], stats: false)
        XCTAssertTrue(text.stderr.contains(", mode \(VMMHarness.isPVMHost ? "native" : "hardware")\n"), text.stderr)
    }

    /// Native mode traps only on privileged instructions; emulated mode
    /// emulates every instruction. The same boot counts far more traps emulated.
    func testNativeModeTrapsOnlyOnPrivilegedInstructions() throws {
        try VMMHarness.requirePVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let native = try VMMHarness.run([image, "--mode", "native"])
        let emulated = try VMMHarness.run([image, "--mode", "emulated"])
        XCTAssertEqual(native.status, 0, native.stderr)
        XCTAssertEqual(emulated.status, 0, emulated.stderr)
        XCTAssertEqual(native.stdout, emulated.stdout)
        XCTAssertEqual(native.stats?["mode"] as? String, "native")
        XCTAssertEqual(emulated.stats?["mode"] as? String, "emulated")
        let nativeTraps = try XCTUnwrap(native.vcpus.first?.int("traps"), "\(native.vcpus)")
        let emulatedTraps = try XCTUnwrap(emulated.vcpus.first?.int("traps"), "\(emulated.vcpus)")
        print("HelloWorld: \(nativeTraps) traps native, \(emulatedTraps) instructions emulated")
        XCTAssertGreaterThan(nativeTraps, 0)
        // The boot executes tens of thousands of instructions, a few dozen of them privileged.
        XCTAssertGreaterThan(emulatedTraps, 10_000)
        XCTAssertLessThan(nativeTraps * 100, emulatedTraps)
    }

    /// Where the host has neither mode, asking for one is a one-line set-up error.
    func testAModeTheHostLacksIsAOneLineError() throws {
        try VMMHarness.requireKVM()
        guard !VMMHarness.isPVMHost else {
            print("SKIP: this host is kvm_pvm, where --mode native and --mode emulated both exist")
            throw XCTSkip("this host has both modes")
        }
        let image = try VMMHarness.requireImage("HelloWorld")
        for mode in ["native", "emulated"] {
            let result = try VMMHarness.run([image, "--mode", mode], stats: false)
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains("--mode \(mode)"), result.stderr)
        }
    }

    // MARK: - A representative set in emulated mode

    func emulated(_ name: String, _ arguments: [String]) throws -> VMMHarness.Result {
        try VMMHarness.requirePVM()
        let image = try VMMHarness.requireImage(name)
        let result = try VMMHarness.run([image] + arguments + ["--mode", "emulated"], limit: 60)
        XCTAssertEqual(result.stats?["mode"] as? String, "emulated")
        return result
    }

    func testSelfTestInEmulatedMode() throws {
        let result = try emulated("SelfTest", ["--cpus", "2"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains(" passed, 0 failed"), result.stdout)
    }

    func testThreadsInEmulatedMode() throws {
        let result = try emulated("Threads", ["--cpus", "2"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("threads: ok"), result.stdout)
    }

    func testInterruptsInEmulatedMode() throws {
        let result = try emulated("InterruptTest", ["--cpus", "2"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("interrupts: taken only in windows"), result.stdout)
        XCTAssertTrue(result.stdout.contains("interrupt test: ok"), result.stdout)
    }

    func testMemoryInEmulatedMode() throws {
        let result = try emulated("MemoryCheck", ["--cpus", "2"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("memory check: ok"), result.stdout)
    }
}
