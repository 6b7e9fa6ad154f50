import FuzzSupport
import XCTest

@testable import ToroVMM

/// Replays the committed fuzz corpora (Tests/Fuzz/<Target>/corpus: seeds, and
/// the inputs that found bugs) through the very checks the libFuzzer targets
/// run (Fuzz/ in this folder), so that each stays a regression test of
/// `make test`. `make fuzz` runs the fuzzers themselves (scripts/fuzz.sh).
final class VMMFuzzCorpusTests: XCTestCase {
    func testELFLoaderCorpus() {
        XCTAssertEqual(FuzzCorpus.failures(of: "ELFLoader", ELFLoaderFuzz.check), [])
    }

    func testVirtioCorpus() {
        XCTAssertEqual(FuzzCorpus.failures(of: "Virtio", VirtioFuzz.check), [])
    }
}
