import Foundation
import XCTest

/// Bad input to `toro-vmm run`: one clear line on stderr and a documented status, never a trap.
final class CommandLineTests: XCTestCase {
    func assertRefused(_ arguments: [String], status: Int32, mentions text: String,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let result = try VMMHarness.run(arguments, stats: false)
        XCTAssertEqual(result.status, status, result.stderr, file: file, line: line)
        XCTAssertTrue(result.stderr.contains(text), "stderr lacks '\(text)': \(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error"), result.stderr, file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Backtrac"), result.stderr, file: file, line: line)
        // One line: README promises every error is exactly one.
        XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "not one line: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(result.stdout.isEmpty, result.stdout, file: file, line: line)
    }

    func scratchFile(_ bytes: [UInt8]) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("toro-bad-\(UUID().uuidString)")
        try Data(bytes).write(to: url)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    func testMissingImage() throws {
        _ = try VMMHarness.requireImage("HelloWorld")
        try assertRefused(["/nonexistent/kernel.elf"], status: 2, mentions: "/nonexistent/kernel.elf: no such file")
    }

    func testImageThatIsNotELF() throws {
        _ = try VMMHarness.requireImage("HelloWorld")
        let path = try scratchFile(Array("just some text\n".utf8))
        try assertRefused([path], status: 2, mentions: "not an ELF file")
    }

    func testTruncatedImage() throws {
        let image = try VMMHarness.requireImage("HelloWorld")
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: image)))
        let path = try scratchFile(Array(bytes.prefix(200)))
        try assertRefused([path], status: 2, mentions: "truncated")
    }

    func testImageLargerThanMemory() throws {
        try VMMHarness.requireKVM()
        _ = try VMMHarness.requireImage("HelloWorld")
        // A valid ELF header and one 64 MiB zero-fill segment, booted with 16 MiB of RAM.
        var elf = [UInt8](repeating: 0, count: 64 + 56 + 16)
        func put(_ value: UInt64, at offset: Int, size: Int) {
            for i in 0..<size { elf[offset + i] = UInt8((value >> (8 * UInt64(i))) & 0xFF) }
        }
        elf[0...3] = [0x7F, 0x45, 0x4C, 0x46]
        elf[4] = 2; elf[5] = 1; elf[6] = 1
        put(2, at: 16, size: 2); put(62, at: 18, size: 2); put(1, at: 20, size: 4)
        put(0x200000, at: 24, size: 8); put(64, at: 32, size: 8)
        put(64, at: 52, size: 2); put(56, at: 54, size: 2); put(1, at: 56, size: 2)
        put(1, at: 64, size: 4); put(5, at: 68, size: 4); put(120, at: 72, size: 8)
        put(0x200000, at: 80, size: 8); put(0x200000, at: 88, size: 8)
        put(16, at: 96, size: 8); put(64 << 20, at: 104, size: 8)
        let path = try scratchFile(elf)
        try assertRefused([path, "--memory", "16M"], status: 2, mentions: "--memory")
    }

    func testBadFlagsAreUsageErrors() throws {
        let image = try VMMHarness.requireImage("HelloWorld")
        try assertRefused([image, "--cpus", "0"], status: 64, mentions: "--cpus")
        try assertRefused([image, "--cpus", "999"], status: 64, mentions: "--cpus")
        try assertRefused([image, "--memory", "lots"], status: 64, mentions: "--memory")
        try assertRefused([image, "--memory", "12Q"], status: 64, mentions: "unknown unit")
        try assertRefused([image, "--memory", "1M"], status: 64, mentions: "at least")
        try assertRefused([image, "--timeout", "0"], status: 64, mentions: "--timeout")
        try assertRefused([image, "--stats", "xml"], status: 64, mentions: "--stats")
        try assertRefused([image, "--cmdline", String(repeating: "x", count: 2000)], status: 64,
                          mentions: "--cmdline is 2000 bytes long; at most 1023 fit")
    }

    /// Each option's error path, as the user meets it: one line naming what is wrong, status 64.
    func testEveryOptionsUsageErrorIsOneLine() throws {
        let image = try VMMHarness.requireImage("HelloWorld")
        let cases: [([String], String)] = [
            ([], "missing IMAGE"),
            ([image, "-x"], "unknown option '-x'"),
            ([image, "--frobnicate"], "unknown option '--frobnicate'"),
            ([image, image], "unexpected argument"),
            ([image, "--cpus"], "--cpus needs a value"),
            ([image, "--cpus", "--memory", "1G"], "--cpus needs a value"),
            ([image, "--cpus", "two"], "--cpus must be a whole number, got 'two'"),
            ([image, "--cpus", "1", "--cpus", "2"], "--cpus given twice"),
            ([image, "--memory", "1K"], "--memory must be at least 8 MiB, got 1 KiB"),
            ([image, "--memory", "64G"], "--memory must be at most 63 GiB, got 64 GiB"),
            ([image, "--memory", "0"], "--memory: size must be greater than zero"),
            ([image, "--stats-interval", "0.001"], "--stats-interval must be at least 0.01"),
            ([image, "--stats-interval", "often"], "--stats-interval must be a number of seconds"),
            ([image, "--timeout", "-1"], "--timeout must be a positive number of seconds"),
            ([image, "--halt-poll-ns", "2000000000"], "--halt-poll-ns must be at most 1000000000"),
            ([image, "--halt-poll-ns", "-1"], "--halt-poll-ns must be a whole number"),
            ([image, "--stats-file", ""], "--stats-file needs a path"),
            ([image, "--stats", "none", "--stats-file", "/tmp/unused.json"], "nothing to write with --stats none"),
            ([image, "--net", "tap=t,drop=101"], "--net: drop must be a whole percentage 0-100"),
            ([image, "--net", "mac=02:00:00:00:00:01"], "--net: missing tap=NAME"),
            ([image, "--profile", ""], "--profile needs a file name"),
            ([image, "--profile-interval", "500"], "--profile-interval needs --profile FILE"),
            ([image, "--profile", "-", "--profile-interval", "99"], "--profile-interval must be between 100 and 1000000"),
        ]
        for (arguments, text) in cases {
            try assertRefused(arguments, status: 64, mentions: text)
        }
        // Before the command, an option is still named as one.
        let early = try VMMHarness.run(["--cpus", "2", image], stats: false, command: [])
        XCTAssertEqual(early.status, 64, early.stderr)
        XCTAssertTrue(early.stderr.contains("--cpus goes after the command"), early.stderr)
    }

    /// `--` ends the options, so IMAGE after it boots.
    func testDoubleDashEndsTheOptions() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run(["--cpus", "1", "--", image], stats: false)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("Hello from Embedded Swift on Toro!"), result.stdout)
    }

    /// An unwritable --stats-file (or --profile file) is found before the guest
    /// runs: status 2, one line, and no guest output at all.
    func testUnwritableOutputFilesStopBeforeTheGuestRuns() throws {
        let image = try VMMHarness.requireImage("HelloWorld")
        try assertRefused([image, "--stats", "json", "--stats-file", "/nonexistent/dir/stats.json"], status: 2,
                          mentions: "cannot write statistics to /nonexistent/dir/stats.json")
        try assertRefused([image, "--profile", "/nonexistent/dir/profile.txt"], status: 2,
                          mentions: "cannot write the profile to /nonexistent/dir/profile.txt")
    }

    /// A set-up failure leaves no empty statistics file behind, and an existing
    /// one keeps its contents: it is replaced only by a run's statistics.
    func testFailedStartLeavesTheStatsFileAlone() throws {
        _ = try VMMHarness.requireImage("HelloWorld")
        let fresh = FileManager.default.temporaryDirectory.appendingPathComponent("toro-fresh-\(UUID().uuidString).json")
        let result = try VMMHarness.run(["/nonexistent/kernel.elf", "--stats", "json", "--stats-file", fresh.path], stats: false)
        XCTAssertEqual(result.status, 2, result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fresh.path), "an empty statistics file was left")
        let kept = try scratchFile(Array("earlier statistics\n".utf8))
        _ = try VMMHarness.run(["/nonexistent/kernel.elf", "--stats", "json", "--stats-file", kept], stats: false)
        XCTAssertEqual(try String(contentsOfFile: kept, encoding: .utf8), "earlier statistics\n")
    }
}
