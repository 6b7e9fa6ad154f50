import CKVM
import Glibc
import XCTest

@testable import ToroVMM

/// The exit, console and COM1 ports with odd widths and garbage.
final class GuestPortTests: XCTestCase {
    func testConsoleTakesOneDescriptorPerThirtyTwoBitElement() {
        XCTAssertEqual(ConsolePort.descriptors(size: 4, data: [0x10, 0x20, 0, 0]), [0x2010])
        // `rep outsl` with two elements: two descriptors, not one 64-bit address.
        XCTAssertEqual(ConsolePort.descriptors(size: 4, data: [1, 0, 0, 0, 2, 0, 0, 0]), [1, 2])
        XCTAssertNil(ConsolePort.descriptors(size: 1, data: [1]))
        XCTAssertNil(ConsolePort.descriptors(size: 2, data: [1, 0]))
    }

    func testCOM1TransmitsTheLowByteOfEachElement() {
        XCTAssertEqual(SerialPort.transmitted(size: 1, data: Array("hi".utf8)), Array("hi".utf8))
        XCTAssertEqual(SerialPort.transmitted(size: 2, data: [0x41, 0x00]), [0x41])
        XCTAssertEqual(SerialPort.transmitted(size: 4, data: [0x42, 0x43, 0x44, 0x45, 0x46, 0, 0, 0]), [0x42, 0x46])
    }

    func testConsoleWritesAreValidatedBeforeAnyByteIsCopied() throws {
        let memory = try GuestMemory(size: 2 << 20)
        var ends: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&ends), 0)
        defer { close(ends[0]); close(ends[1]) }
        XCTAssertEqual(fcntl(ends[0], F_SETFL, O_NONBLOCK), 0)
        let console = ConsoleSink(fd: ends[1])
        let ramEnd: UInt64 = 2 << 20
        try memory.write(Array("hello".utf8), at: GuestAddress(0x2000))

        func descriptor(_ address: UInt64, _ length: UInt32, at place: UInt64 = 0x1000) throws -> UInt64 {
            try memory.store(toro_console_write(address: address, length: length, reserved: 0), at: GuestAddress(place))
            return place
        }
        XCTAssertNil(ConsolePort.write(descriptor: try descriptor(0x2000, 5), memory: memory, console: console))
        var refusals: [String] = []
        for (address, length) in [
            (ramEnd - 2, UInt32(5)), (UInt64.max - 1, 5), (0x2000, TORO_CONSOLE_WRITE_MAX + 1), (0x2000, UInt32.max),
            (0xD100_0000, 4),
        ] {
            refusals.append(ConsolePort.write(descriptor: try descriptor(address, length), memory: memory, console: console) ?? "")
        }
        // The descriptor itself outside RAM, across its end, far above it.
        for place in [ramEnd - 8, ramEnd, 0xFFFF_FFF0, UInt64.max - 7] {
            refusals.append(ConsolePort.write(descriptor: place, memory: memory, console: console) ?? "")
        }
        XCTAssertFalse(refusals.contains(""), "\(refusals)")
        XCTAssertTrue(refusals[2].contains("over the 65536-byte limit"), refusals[2])
        // Only the valid write came through.
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(ends[0], &buffer, buffer.count)
        XCTAssertEqual(count, 5)
        XCTAssertEqual(console.bytesWritten, 5)
    }
}
