import Foundation
import ToroVMM
import XCTest

/// `toro-vmm --help` and README's option table describe the same command: the
/// same options, and every limit README states is in the help too.
final class HelpTextTests: XCTestCase {
    static let readme = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("README.md")

    /// The rows of README's `toro-vmm run` option table, by option (`--cpus`).
    func readmeRows() throws -> [String: String] {
        let text = try String(contentsOf: Self.readme, encoding: .utf8)
        var rows: [String: String] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("| `--") {
            let name = line.dropFirst(3).prefix { $0 != " " && $0 != "`" }
            rows[String(name)] = String(line)
        }
        return rows
    }

    /// The options the help text lists (`  --name ...` lines).
    func helpOptions() -> Set<String> {
        var names: Set<String> = []
        for line in CommandLineOptions.usage.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            guard line.hasPrefix("  "), trimmed.hasPrefix("--") else { continue }
            names.insert(String(trimmed.prefix { $0 != " " }))
        }
        return names
    }

    func testSameOptions() throws {
        let readme = Set(try readmeRows().keys)
        let help = helpOptions().subtracting(["--help", "--version"])
        XCTAssertFalse(readme.isEmpty, "no option table found in README")
        XCTAssertEqual(readme, help, "README's option table and --help differ")
    }

    /// Each limit appears in README's row for the option and in the help text.
    func testEveryLimitIsStatedInBoth() throws {
        let limits: [(String, [String])] = [
            ("--cpus", ["1-32", "default 1"]),
            ("--memory", ["K", "M", "G", "T", "powers of 1024", "2 MiB", "8 MiB", "63 GiB", "128M"]),
            ("--cmdline", ["1023 bytes"]),
            ("--stats", ["text", "json", "none"]),
            ("--stats-interval", ["0.01", "1000000"]),
            ("--timeout", ["1000000000"]),
            ("--halt-poll-ns", ["1 s", "0 turns polling off"]),
            ("--net", ["15 bytes", "0-100", "52:54:00:12:34:01"]),
            ("--profile", ["-"]),
            ("--profile-interval", ["100", "1000000", "1000"]),
        ]
        let rows = try readmeRows()
        let help = CommandLineOptions.usage.replacingOccurrences(of: "\n", with: " ")
            .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        for (option, texts) in limits {
            let row = try XCTUnwrap(rows[option], "README has no row for \(option)")
            for text in texts {
                XCTAssertTrue(row.contains(text), "README's \(option) row lacks '\(text)': \(row)")
                XCTAssertTrue(help.contains(text), "--help lacks '\(text)' (\(option))")
            }
        }
    }

    /// The exit statuses of README's table are all in the help.
    func testExitStatuses() {
        for status in ["0-255", "2 ", "64", "124", "125", "126", "130", "143"] {
            XCTAssertTrue(CommandLineOptions.usage.contains("  \(status)"), "--help lacks exit status \(status)")
        }
    }
}
