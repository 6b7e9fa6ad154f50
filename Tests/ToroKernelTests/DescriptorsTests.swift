@testable import ToroKernelPortable
import XCTest

/// The descriptor encodings against the Intel SDM's layouts (vol. 3A, 3.4.5,
/// 7.2.3, 6.14.1) and against the VMM's boot GDT, which KVM accepts.
final class DescriptorsTests: XCTestCase {
    func testSegmentsMatchTheBootGDT() {
        // Sources/ToroVMM/Arch/LongMode.swift: the descriptors every vCPU starts with.
        XCTAssertEqual(Descriptors.code64, 0x00AF_9A00_0000_FFFF)
        XCTAssertEqual(Descriptors.data, 0x00CF_9200_0000_FFFF)
        XCTAssertEqual(Descriptors.code64 >> 53 & 1, 1, "L bit: 64-bit code")
        XCTAssertEqual(Descriptors.code64 >> 47 & 1, 1, "present")
    }

    func testTaskStateDescriptorAsTheVMMWritesIt() {
        // The boot TSS at 0x1800, limit 0x67: the VMM's own formula.
        let descriptor = Descriptors.taskState(base: 0x1800, limit: 0x67)
        XCTAssertEqual(descriptor.low, 0x67 | (0x1800 << 16) | (0x89 << 40))
        XCTAssertEqual(descriptor.high, 0)
    }

    func testTaskStateDescriptorSplitsAHighBase() {
        let base: UInt64 = 0x1234_5678_9ABC_DEF0
        let descriptor = Descriptors.taskState(base: base, limit: 0x1_2345)
        XCTAssertEqual(descriptor.low & 0xFFFF, 0x2345, "limit 15:0")
        XCTAssertEqual(descriptor.low >> 48 & 0xF, 0x1, "limit 19:16")
        XCTAssertEqual(descriptor.low >> 16 & 0xFF_FFFF, 0xBC_DEF0, "base 23:0")
        XCTAssertEqual(descriptor.low >> 56, 0x9A, "base 31:24")
        XCTAssertEqual(descriptor.high, 0x1234_5678, "base 63:32")
        XCTAssertEqual(descriptor.low >> 40 & 0xFF, 0x89, "present, DPL 0, available 64-bit TSS")
    }

    func testInterruptGate() {
        let handler: UInt64 = 0xFFFF_8000_1234_5678
        let gate = Descriptors.interruptGate(handler: handler, selector: 0x08, ist: 3)
        XCTAssertEqual(gate.low & 0xFFFF, 0x5678, "offset 15:0")
        XCTAssertEqual(gate.low >> 16 & 0xFFFF, 0x08, "selector")
        XCTAssertEqual(gate.low >> 32 & 0x7, 3, "IST")
        XCTAssertEqual(gate.low >> 35 & 0x1F, 0, "reserved")
        XCTAssertEqual(gate.low >> 40 & 0xFF, 0x8E, "present, DPL 0, 64-bit interrupt gate")
        XCTAssertEqual(gate.low >> 48, 0x1234, "offset 31:16")
        XCTAssertEqual(gate.high, 0xFFFF_8000, "offset 63:32, reserved half zero")
        let offset = (gate.low & 0xFFFF) | (gate.low >> 48) << 16 | gate.high << 32
        XCTAssertEqual(offset, handler)
    }

    func testGateForAKernelAddress() {
        let gate = Descriptors.interruptGate(handler: 0x20_1234, selector: 0x08, ist: 4)
        XCTAssertEqual(gate.low, 0x0020_8E04_0008_1234)
        XCTAssertEqual(gate.high, 0)
    }

    /// kvm_pvm's native mode: a gate at DPL 3 in the DPL-3 code segment, without IST.
    func testNativeModeGateAndDescriptors() {
        let gate = Descriptors.interruptGate(handler: 0x20_1234, selector: 0x33, ist: 0, dpl: 3)
        XCTAssertEqual(gate.low >> 40 & 0xFF, 0xEE, "present, DPL 3, 64-bit interrupt gate")
        XCTAssertEqual(gate.low >> 16 & 0xFFFF, 0x33, "selector")
        XCTAssertEqual(gate.low >> 32 & 0x7, 0, "no IST")
        XCTAssertEqual(Descriptors.nativeCode64 >> 40 & 0xFF, 0xFA, "present, DPL 3, execute/read")
        XCTAssertEqual(Descriptors.nativeCode64 & ~(UInt64(3) << 45), Descriptors.code64, "otherwise the kernel's code")
        XCTAssertEqual(Descriptors.nativeData >> 40 & 0xFF, 0xF2, "present, DPL 3, read/write")
        XCTAssertEqual(Descriptors.nativeData & ~(UInt64(3) << 45), Descriptors.data, "otherwise the kernel's data")
    }
}
