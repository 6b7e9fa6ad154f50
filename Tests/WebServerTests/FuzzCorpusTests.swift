import FuzzSupport
import XCTest

@testable import WebServerCore

/// Replays the committed fuzz corpora (Tests/Fuzz/<Target>/corpus: seeds, and
/// the inputs that found bugs) through the very checks the libFuzzer targets
/// run (Fuzz/ in this folder), so that each stays a regression test of
/// `make test`. `make fuzz` runs the fuzzers themselves (scripts/fuzz.sh).
final class WebServerFuzzCorpusTests: XCTestCase {
    func testHTTPRequestCorpus() {
        XCTAssertEqual(FuzzCorpus.failures(of: "HTTPRequest", HTTPRequestFuzz.check), [])
    }

    func testHTTPSessionCorpus() {
        XCTAssertEqual(FuzzCorpus.failures(of: "HTTPSession", HTTPSessionFuzz.check), [])
    }
}
