@testable import ToroKernelPortable
import XCTest

/// The local APIC timer's rate against the TSC, in 32.32 fixed point.
final class TickRatioTests: XCTestCase {
    func testKVMTimerAgainstTheTestHostTSC() throws {
        // KVM's APIC timer: 1 GHz. The test host's TSC: 2,445,406 kHz. 2 ms measured.
        let ratio = try XCTUnwrap(TickRatio(targetTicks: 2_000_000, sourceTicks: 4_890_812))
        let oneSecond = ratio.targetTicks(forSourceTicks: 2_445_406_000)
        XCTAssertLessThanOrEqual(oneSecond, 1_000_000_000)
        XCTAssertGreaterThan(oneSecond, 1_000_000_000 - 2)
        XCTAssertEqual(ratio.targetTicks(forSourceTicks: 0), 0)
    }

    func testAgainstWideArithmetic() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let source = UInt64.random(in: 1..<(1 << 32), using: &generator)
            let target = UInt64.random(in: 0...(source * 8), using: &generator)
            guard let ratio = TickRatio(targetTicks: target, sourceTicks: source) else {
                XCTAssertLessThan(target << 32 / source, 1, "only a zero ratio is refused here")
                continue
            }
            XCTAssertEqual(ratio.fixed, source.dividingFullWidth((target >> 32, target << 32)).quotient)
            let ticks = UInt64.random(in: 0...(1 << 40), using: &generator)
            let product = ticks.multipliedFullWidth(by: ratio.fixed)
            XCTAssertEqual(ratio.targetTicks(forSourceTicks: ticks), product.high << 32 | product.low >> 32)
        }
    }

    func testUnrepresentableRatios() {
        XCTAssertNil(TickRatio(targetTicks: 100, sourceTicks: 0))
        XCTAssertNil(TickRatio(targetTicks: 100, sourceTicks: 1 << 32), "window too long")
        XCTAssertNil(TickRatio(targetTicks: 1 << 40, sourceTicks: 1), "target 2^32 times faster")
        XCTAssertNil(TickRatio(targetTicks: 0, sourceTicks: 1000), "a counter that did not move")
        XCTAssertNil(TickRatio(fixed: 0))
        XCTAssertEqual(TickRatio(fixed: 5)?.fixed, 5)
    }

    func testSaturates() throws {
        let ratio = try XCTUnwrap(TickRatio(targetTicks: 1000, sourceTicks: 1))
        XCTAssertEqual(ratio.targetTicks(forSourceTicks: .max), .max)
        XCTAssertEqual(ratio.targetTicks(forSourceTicks: 1 << 40), 1000 << 40)
    }
}
