import FuzzSupport
import XCTest

@testable import ToroKernelPortable

/// Replays the committed fuzz corpora (Tests/Fuzz/<Target>/corpus: seeds, and
/// the inputs that found bugs) through the very checks the libFuzzer targets
/// run (Fuzz/ in this folder), so that each stays a regression test of
/// `make test`. `make fuzz` runs the fuzzers themselves (scripts/fuzz.sh).
final class KernelFuzzCorpusTests: XCTestCase {
    func testNetPacketsCorpus() {
        XCTAssertEqual(FuzzCorpus.failures(of: "NetPackets", NetPacketsFuzz.check), [])
    }

    func testNetStackCorpus() {
        XCTAssertEqual(FuzzCorpus.failures(of: "NetStack", NetStackFuzz.check), [])
    }
}
