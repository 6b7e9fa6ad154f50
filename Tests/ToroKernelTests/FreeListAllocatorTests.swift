import Synchronization
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

    func testQuickListsHandBackTheSameBlock() throws {
        var heap = makeAllocator()
        XCTAssertTrue(heap.enableQuickLists())
        let empty = heap.bytesInUse
        let first = try XCTUnwrap(heap.allocate(size: 1500, alignment: 16))
        let other = try XCTUnwrap(heap.allocate(size: 100, alignment: 16))
        try heap.free(first)
        XCTAssertEqual(heap.quickBytes, 16 + 1504, "parked, not merged")
        XCTAssertEqual(heap.allocationCount, 1)
        XCTAssertEqual(heap.allocate(size: 1500, alignment: 16), first, "the same size comes straight back")
        XCTAssertEqual(heap.quickBytes, 0)
        XCTAssertThrowsError(try heap.free(other.advanced(by: 16)), "not a block")
        try heap.free(other)
        XCTAssertThrowsError(try heap.free(other), "a parked block cannot be freed twice") {
            XCTAssertEqual($0 as? FreeListAllocator.FreeError, .notInUse)
        }
        try heap.free(first)
        XCTAssertEqual(heap.bytesInUse, empty)
    }

    func testParkedBlocksAreMergedBackWhenMemoryRunsShort() throws {
        var heap = makeAllocator()
        XCTAssertTrue(heap.enableQuickLists())
        var pointers: [UnsafeMutableRawPointer] = []
        while let pointer = heap.allocate(size: 1000, alignment: 16) { pointers.append(pointer) }
        XCTAssertGreaterThan(pointers.count, 40)
        for pointer in pointers { try heap.free(pointer) }
        XCTAssertGreaterThan(heap.quickBytes, 0)
        // Nothing but parked blocks is free: a large allocation needs them merged.
        XCTAssertNotNil(heap.allocate(size: size / 2, alignment: 16))
        XCTAssertEqual(heap.quickBytes, 0)
    }

    func testQuickListsHoldABoundedAmount() throws {
        let bytes = 1 << 20
        let memory = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 4096)
        defer { memory.deallocate() }
        var heap = FreeListAllocator(start: UInt(bitPattern: memory), end: UInt(bitPattern: memory) + UInt(bytes))
        XCTAssertTrue(heap.enableQuickLists())
        var pointers: [UnsafeMutableRawPointer] = []
        for _ in 0..<400 { pointers.append(try XCTUnwrap(heap.allocate(size: 2000, alignment: 16))) }
        for pointer in pointers { try heap.free(pointer) }
        XCTAssertLessThanOrEqual(heap.quickBytes, FreeListAllocator.quickCapacity)
        XCTAssertEqual(heap.allocationCount, 0)
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

    func testRangesAddedLaterAreUsedAndMergeWhenTheyTouch() throws {
        let start = UInt(bitPattern: buffer)
        var heap = FreeListAllocator(owner: 3)
        XCTAssertNil(heap.allocate(size: 16, alignment: 16), "no memory yet")
        heap.add(start: start, end: start + 16 * 1024)
        heap.add(start: start + 32 * 1024, end: start + 64 * 1024)
        XCTAssertEqual(heap.capacity, 48 * 1024)
        // Too big for the first range, fits the second.
        let big = try XCTUnwrap(heap.allocate(size: 20 * 1024, alignment: 16))
        XCTAssertGreaterThanOrEqual(UInt(bitPattern: big), start + 32 * 1024)
        try heap.free(big)
        // The gap added too: all three now form one free block.
        heap.add(start: start + 16 * 1024, end: start + 32 * 1024)
        let whole = try XCTUnwrap(heap.allocate(size: 60 * 1024, alignment: 16))
        // Every block in use names its owner.
        let tag = BlockHeader.tagWord(ofPayload: UInt(bitPattern: whole)).pointee.load(ordering: .relaxed)
        XCTAssertEqual(BlockHeader.owner(ofInUse: tag), 3)
        try heap.free(whole)
        XCTAssertEqual(heap.bytesInUse, 0)
    }

    func testABlockOfAnotherOwnerIsRefused() throws {
        let start = UInt(bitPattern: buffer)
        // Core 0's ranges surround core 1's, so only the header can tell them apart.
        var mine = FreeListAllocator(start: start, end: start + 16 * 1024, owner: 0)
        mine.add(start: start + 48 * 1024, end: start + 64 * 1024)
        var theirs = FreeListAllocator(start: start + 16 * 1024, end: start + 48 * 1024, owner: 1)
        let block = try XCTUnwrap(theirs.allocate(size: 64, alignment: 16))
        XCTAssertThrowsError(try mine.free(block)) {
            XCTAssertEqual($0 as? FreeListAllocator.FreeError, .notInUse)
        }
        try theirs.free(block)
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
