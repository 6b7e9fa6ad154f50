@testable import ToroKernelPortable
import XCTest

final class TSCConversionTests: XCTestCase {
    func testAgainstWideArithmetic() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let khz = UInt64.random(in: 1_000...5_000_000, using: &generator)
            let tsc = try XCTUnwrap(TSCConversion(khz: khz))
            let ticks = UInt64.random(in: 0...(1 << 50), using: &generator)
            let product = ticks.multipliedFullWidth(by: 1_000_000)
            XCTAssertEqual(tsc.nanoseconds(ticks: ticks), khz.dividingFullWidth(product).quotient)
            let nanoseconds = UInt64.random(in: 0...(1 << 50), using: &generator)
            let wide = nanoseconds.multipliedFullWidth(by: khz)
            let (quotient, remainder) = UInt64(1_000_000).dividingFullWidth(wide)
            XCTAssertEqual(tsc.ticks(nanoseconds: nanoseconds), remainder == 0 ? quotient : quotient + 1)
        }
    }

    func testRoundTrip() throws {
        let tsc = try XCTUnwrap(TSCConversion(khz: 2_445_406))
        XCTAssertEqual(tsc.nanoseconds(ticks: 2_445_406), 1_000_000)
        XCTAssertEqual(tsc.ticks(nanoseconds: 1_000_000), 2_445_406)
        // Rounded up: a deadline computed from a duration is never early.
        XCTAssertGreaterThanOrEqual(tsc.nanoseconds(ticks: tsc.ticks(nanoseconds: 333)), 333)
        XCTAssertNil(TSCConversion(khz: 0))
    }

    func testNoOverflowForLongUptimes() throws {
        let tsc = try XCTUnwrap(TSCConversion(khz: 3_000_000))
        // Ten years of ticks at 3 GHz: ticks * 10^6 overflows 64 bits, the conversion must not.
        let tenYears: UInt64 = 3_000_000_000 * 86_400 * 3650
        XCTAssertEqual(tsc.nanoseconds(ticks: tenYears), 1_000_000_000 * 86_400 * 3650)
        XCTAssertEqual(tsc.nanoseconds(ticks: .max), UInt64.max / 3_000_000 * 1_000_000 + (UInt64.max % 3_000_000) * 1_000_000 / 3_000_000)
        XCTAssertEqual(try XCTUnwrap(TSCConversion(khz: 1)).nanoseconds(ticks: .max), .max, "saturates")
        XCTAssertEqual(tsc.ticks(nanoseconds: .max), .max, "saturates")
        XCTAssertNil(TSCConversion(khz: 1 << 32))
    }
}
