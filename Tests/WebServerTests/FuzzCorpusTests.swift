import Foundation
import XCTest

@testable import WebServerCore

/// Replays the committed fuzz corpora (Tests/Fuzz/<Target>/corpus: seeds, and
/// the inputs that found bugs) through the very checks the libFuzzer targets
/// run (Fuzz/ in this folder), so that each stays a regression test of
/// `make test`. `make fuzz` runs the fuzzers themselves (scripts/fuzz.sh).
final class WebServerFuzzCorpusTests: XCTestCase {
    func testHTTPRequestCorpus() throws {
        try replay("HTTPRequest") { bytes throws(FuzzViolation) in try HTTPRequestFuzz.check(bytes) }
    }

    func testHTTPSessionCorpus() throws {
        try replay("HTTPSession") { bytes throws(FuzzViolation) in try HTTPSessionFuzz.check(bytes) }
    }

    /// Every file of Tests/Fuzz/`target`/corpus through `check`; there must be some.
    func replay(
        _ target: String, file: StaticString = #filePath, line: UInt = #line,
        _ check: ([UInt8]) throws(FuzzViolation) -> Void
    ) throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/\(target)/corpus")
        let names = try FileManager.default.contentsOfDirectory(atPath: corpus.path).sorted()
        XCTAssertFalse(names.isEmpty, "no corpus in \(corpus.path)", file: file, line: line)
        for name in names {
            let bytes = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(name)))
            do {
                try check(bytes)
            } catch {
                XCTFail("\(target)/corpus/\(name): \(error)", file: file, line: line)
            }
        }
    }
}
