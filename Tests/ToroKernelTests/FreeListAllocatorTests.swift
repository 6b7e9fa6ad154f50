@testable import ToroKernelPortable
import XCTest

/// The kernel's first-fit allocator, run over an ordinary host buffer.
final class FreeListAllocatorTests: XCTestCase {
    var buffer: UnsafeMutableRawPointer!
    let size = 64 * 1024

    override func setUp() { buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096) }
    override func tearDown() { buffer.deallocate() }

    func makeAllocator() -> FreeListAllocator {
        let start = UInt(bitPattern: buffer)
        return FreeListAllocator(start: start, end: start + UInt(size))
    }

    func testAllocateFreeReturnsToEmpty() throws {
        var heap = makeAllocator()
        let empty = heap.bytesInUse
        var pointers: [UnsafeMutableRawPointer] = []
        for size in [1, 16, 100, 4000, 33] {
            let pointer = try XCTUnwrap(heap.allocate(size: size, alignment: 16))
            XCTAssertEqual(UInt(bitPattern: pointer) % 16, 0)
            memset(pointer, 0xAB, size)
            pointers.append(pointer)
        }
        XCTAssertGreaterThan(heap.bytesInUse, empty)
        for pointer in pointers.reversed() { try heap.free(pointer) }
        XCTAssertEqual(heap.bytesInUse, empty)
        XCTAssertEqual(heap.allocationCount, 0)
        // Everything merged back: one allocation of nearly the whole heap fits again.
        XCTAssertNotNil(heap.allocate(size: size - 1024, alignment: 16))
    }

    func testLargeAlignment() throws {
        var heap = makeAllocator()
        _ = heap.allocate(size: 24, alignment: 16)
        let aligned = try XCTUnwrap(heap.allocate(size: 100, alignment: 4096))
        XCTAssertEqual(UInt(bitPattern: aligned) % 4096, 0)
        try heap.free(aligned)
    }

    func testExhaustionReturnsNil() {
        var heap = makeAllocator()
        XCTAssertNil(heap.allocate(size: size * 2, alignment: 16))
    }

    func testDoubleFreeAndForeignPointersAreRefused() throws {
        var heap = makeAllocator()
        let pointer = try XCTUnwrap(heap.allocate(size: 64, alignment: 16))
        try heap.free(pointer)
        XCTAssertThrowsError(try heap.free(pointer))
        var local = 0
        XCTAssertThrowsError(try withUnsafeMutablePointer(to: &local) { try heap.free(UnsafeMutableRawPointer($0)) })
    }
}
