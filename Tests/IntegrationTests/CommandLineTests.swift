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
        try assertRefused([image, "--cmdline", String(repeating: "x", count: 2000)], status: 2, mentions: "command line")
    }

    func testUnwritableStatsFile() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run([image, "--stats", "json", "--stats-file", "/nonexistent/dir/stats.json"], stats: false)
        XCTAssertEqual(result.status, 126, result.stderr)
        XCTAssertTrue(result.stderr.contains("cannot write statistics"), result.stderr)
    }
}
