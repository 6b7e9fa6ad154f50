@testable import ToroKernelPortable
import XCTest

final class KernelCommandLineTests: XCTestCase {
    func testKeysValuesAndFlags() {
        let line = KernelCommandLine("idle=halt  ip=10.0.0.2/24 verbose\tgw=10.0.0.1")
        XCTAssertEqual(line.options.map(\.key), ["idle", "ip", "verbose", "gw"])
        XCTAssertEqual(line.value("idle"), "halt")
        XCTAssertEqual(line.value("ip"), "10.0.0.2/24")
        XCTAssertNil(line.value("verbose"), "a flag has no value")
        XCTAssertTrue(line.contains("verbose"))
        XCTAssertFalse(line.contains("quiet"))
        XCTAssertTrue(line.malformed.isEmpty)
    }

    func testLastDuplicateWinsAndValuesMayContainEquals() {
        let line = KernelCommandLine("exit=1 exit=7 expr=a=b")
        XCTAssertEqual(line.integer("exit"), 7)
        XCTAssertEqual(line.value("expr"), "a=b")
    }

    func testQuotedValues() {
        let line = KernelCommandLine("name=\"a b  c\" empty= x")
        XCTAssertEqual(line.value("name"), "a b  c")
        XCTAssertEqual(line.value("empty"), "")
        XCTAssertTrue(line.contains("x"))
    }

    func testMalformedWordsAreSetAside() {
        let line = KernelCommandLine("=oops ok=1 bad=\"unterminated")
        XCTAssertEqual(line.malformed, ["=oops", "bad=unterminated"])
        XCTAssertEqual(line.options.map(\.key), ["ok"])
    }

    func testEmptyAndBlank() {
        XCTAssertTrue(KernelCommandLine("").options.isEmpty)
        XCTAssertTrue(KernelCommandLine("   \t ").options.isEmpty)
    }

    func testIntegersAndChoices() {
        let line = KernelCommandLine("cpus=4 idle=nap n=abc")
        XCTAssertEqual(line.integer("cpus"), 4)
        XCTAssertNil(line.integer("n"))
        XCTAssertNil(line.integer("missing"))
        let idle = line.choice("idle", of: ["halt", "poll"], default: "halt")
        XCTAssertEqual(idle.value, "halt")
        XCTAssertEqual(idle.invalid, "nap")
        XCTAssertEqual(line.choice("spin", of: ["pause", "nopause"], default: "pause").value, "pause")
    }

    func testUnknownKeysEachOnce() {
        let line = KernelCommandLine("idle=poll foo=1 bar foo=2 ip=1.2.3.4")
        XCTAssertEqual(line.unknownKeys(known: ["idle", "ip"]), ["foo", "bar"])
    }
}
