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

    /// Numbers are read with overflow checks and digits only: a value the
    /// reader cannot hold, or a sign, is not a number (never a trap).
    func testDecimalBoundaries() {
        XCTAssertEqual(KernelCommandLine.decimal("0"), 0)
        XCTAssertEqual(KernelCommandLine.decimal("007"), 7)
        XCTAssertEqual(KernelCommandLine.decimal("9223372036854775807"), Int.max)
        XCTAssertEqual(KernelCommandLine.decimal("0009223372036854775807"), Int.max)
        XCTAssertNil(KernelCommandLine.decimal("9223372036854775808"), "2^63")
        XCTAssertNil(KernelCommandLine.decimal("18446744073709551616"), "2^64")
        XCTAssertNil(KernelCommandLine.decimal("99999999999999999999999"))
        for text in ["", "-1", "+1", " 1", "1 ", "1.5", "0x10", "1e3", "١"] {
            XCTAssertNil(KernelCommandLine.decimal(text), text)
        }
        let line = KernelCommandLine("a=-5 b=18446744073709551616 c=42")
        XCTAssertNil(line.integer("a"), "negative numbers are not read: no option takes one")
        XCTAssertNil(line.integer("b"))
        XCTAssertEqual(line.integer("c"), 42)
    }

    /// The ranged reader the kernel's and the applications' numeric options
    /// use (pollgrace=, tcpidle=, timewait=, the web server's maxconn=...).
    func testNumbersInARange() {
        let line = KernelCommandLine(
            "tcpidle=86400 timewait=240001 pollgrace=-1 maxconn=4096 port=65536 seconds=2147483647 keepalive=9223372036854775808 flag")
        XCTAssertEqual(line.number("tcpidle", in: 0...86_400), .value(86_400))
        XCTAssertEqual(line.number("timewait", in: 0...240_000), .invalid("240001"))
        XCTAssertEqual(line.number("pollgrace", in: 0...60_000_000), .invalid("-1"))
        XCTAssertEqual(line.number("maxconn", in: 1...4096), .value(4096))
        XCTAssertEqual(line.number("port", in: 1...65535), .invalid("65536"))
        XCTAssertEqual(line.number("seconds", in: 1...Int(Int32.max)), .value(Int(Int32.max)))
        XCTAssertEqual(line.number("keepalive", in: 1...3600), .invalid("9223372036854775808"))
        XCTAssertEqual(line.number("flag", in: 0...1), .absent, "a bare flag has no value")
        XCTAssertEqual(line.number("missing", in: 0...1), .absent)
        XCTAssertEqual(KernelCommandLine("n=").number("n", in: 0...1), .invalid(""))
    }

    func testUnknownKeysEachOnce() {
        let line = KernelCommandLine("idle=poll foo=1 bar foo=2 ip=1.2.3.4")
        XCTAssertEqual(line.unknownKeys(known: ["idle", "ip"]), ["foo", "bar"])
    }
}
