import XCTest

@testable import ToroKernelPortable

/// The physical page allocator, over memory maps given as integers.
///
/// The allocator never touches the pages it manages, only its table; so a
/// 63 GiB memory map can be tested with the table in a host buffer.
final class PageRunAllocatorTests: XCTestCase {
    let page = PageRun.pageSize
    let mib: UInt = 1 << 20
    let gib: UInt = 1 << 30
    var table: UnsafeMutableRawPointer!

    override func setUp() { table = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096) }
    override func tearDown() { table.deallocate() }

    /// An allocator whose one-page table lives in a host buffer outside the managed memory.
    func makeAllocator(_ runs: [PageRun]) throws -> PageRunAllocator {
        var allocator = PageRunAllocator(table: UInt(bitPattern: table), pages: 1)
        for run in runs { try allocator.addArena(run) }
        return allocator
    }

    /// The free runs, checked to be sorted, disjoint, separated, and to add up to `freePages`.
    func freeRuns(_ allocator: PageRunAllocator, file: StaticString = #filePath, line: UInt = #line) -> [PageRun] {
        let runs = (0..<allocator.runCount).map { allocator.run($0) }
        var pages: UInt = 0
        for (index, run) in runs.enumerated() {
            XCTAssertLessThan(run.start, run.end, file: file, line: line)
            XCTAssertEqual(run.start % page, 0, file: file, line: line)
            if index > 0 {
                XCTAssertGreaterThan(run.start, runs[index - 1].end, "unmerged or overlapping", file: file, line: line)
            }
            pages += run.pages
        }
        XCTAssertEqual(pages, allocator.freePages, file: file, line: line)
        return runs
    }

    // MARK: - The memory map

    func testUsableRegionsAreClippedToWholePagesAboveTheFloor() {
        let floor: UInt = 0x23_4000
        // Entirely below the kernel image's end.
        XCTAssertNil(PageRun.usable(base: 0x20_0000, length: 0x3_0000, floor: floor))
        // Straddling it: starts at the floor.
        XCTAssertEqual(PageRun.usable(base: 0x20_0000, length: 0x10_0000, floor: floor), PageRun(start: floor, end: 0x30_0000))
        // Mid-page edges: only whole pages inside.
        XCTAssertEqual(PageRun.usable(base: 0x40_0010, length: 0x2000, floor: 0), PageRun(start: 0x40_1000, end: 0x40_2000))
        XCTAssertNil(PageRun.usable(base: 0x40_0010, length: 0x1000, floor: 0), "no whole page inside")
        XCTAssertNil(PageRun.usable(base: 0x50_0000, length: 0, floor: 0))
        // A region that runs off the top of the address space is clipped, not wrapped.
        let top = PageRun.usable(base: UInt64.max - 0x3FFF, length: 0x10000, floor: 0)
        XCTAssertEqual(top?.start, UInt.max - 0x3FFF)
        XCTAssertEqual(top?.end, UInt.max & ~(page - 1))
    }

    func testA63GiBMapCostsAFewEntries() throws {
        // What the VMM reports for --memory 63G: RAM to 3 GiB, the MMIO hole, the rest from 4 GiB.
        let low = PageRun(start: 0x23_4000, end: 3 * gib)
        let high = PageRun(start: 4 * gib, end: 64 * gib)
        var allocator = try makeAllocator([high, low])
        XCTAssertEqual(allocator.runCount, 2)
        XCTAssertEqual(allocator.totalPages, low.pages + high.pages)
        XCTAssertEqual(allocator.freePages, allocator.totalPages)

        // A 2 MiB chunk comes from the first aligned place, leaving the unaligned head free.
        let chunk = try XCTUnwrap(allocator.allocate(pages: 512, alignment: 2 * mib))
        XCTAssertEqual(chunk, 4 * mib)
        XCTAssertEqual(freeRuns(allocator).count, 3)

        // Something that cannot fit below 3 GiB comes from above 4 GiB; nothing lands in the hole.
        let big = try XCTUnwrap(allocator.allocate(pages: (4 * gib) / page))
        XCTAssertEqual(big, 4 * gib)
        XCTAssertNil(allocator.allocate(pages: (57 * gib) / page), "more than is left")

        try allocator.free(start: big, pages: (4 * gib) / page)
        try allocator.free(start: chunk, pages: 512)
        XCTAssertEqual(freeRuns(allocator), [low, high])
    }

    func testTheTableLivesInTheFirstRunAndIsReserved() throws {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: 64 * 4096, alignment: 4096)
        defer { memory.deallocate() }
        let base = UInt(bitPattern: memory)
        let runs = [
            PageRun(start: base, end: base + 16 * page),
            PageRun(start: base + 8 * page, end: base + 20 * page),  // overlaps the first: left out
            PageRun(start: base + 32 * page, end: base + 64 * page),
        ]
        var rejected = 0
        let allocator = runs.withUnsafeBufferPointer { PageRunAllocator(runs: $0, rejected: &rejected) }
        XCTAssertEqual(rejected, 1)
        XCTAssertEqual(allocator.totalPages, 48)
        XCTAssertEqual(allocator.freePages, 47, "the table's page is in use")
        XCTAssertEqual(freeRuns(allocator).first?.start, base + page)
    }

    // MARK: - Splitting and merging

    func testAlignedAllocationsSplitRunsAndFreesMergeThemBack() throws {
        let arena = PageRun(start: 0x20_3000, end: 0x100_0000)
        var allocator = try makeAllocator([arena])
        let first = try XCTUnwrap(allocator.allocate(pages: 512, alignment: 2 * mib))
        XCTAssertEqual(first, 0x40_0000)
        let second = try XCTUnwrap(allocator.allocate(pages: 3))
        XCTAssertEqual(second, 0x20_3000, "first fit: the head left in front of the chunk")
        XCTAssertEqual(
            freeRuns(allocator), [PageRun(start: 0x20_6000, end: 0x40_0000), PageRun(start: 0x60_0000, end: 0x100_0000)])
        try allocator.free(start: first, pages: 512)
        try allocator.free(start: second, pages: 3)
        XCTAssertEqual(freeRuns(allocator), [arena])
        // Part of an allocation may go back on its own.
        let run = try XCTUnwrap(allocator.allocate(pages: 4))
        try allocator.free(start: run + page, pages: 2)
        XCTAssertEqual(allocator.freePages, arena.pages - 2)
    }

    func testAdjacentArenasMerge() throws {
        var allocator = try makeAllocator([PageRun(start: 0x40_0000, end: 0x50_0000)])
        try allocator.addArena(PageRun(start: 0x30_0000, end: 0x40_0000))
        XCTAssertEqual(allocator.runCount, 1)
        // An allocation across the old boundary frees as one.
        let whole = try XCTUnwrap(allocator.allocate(pages: 512))
        try allocator.free(start: whole, pages: 512)
        XCTAssertThrowsError(try allocator.addArena(PageRun(start: 0x4F_0000, end: 0x60_0000))) {
            XCTAssertEqual($0 as? PageRunAllocator.Failure, .overlaps)
        }
    }

    // MARK: - Refusals

    func testExhaustionReturnsNil() throws {
        var allocator = try makeAllocator([PageRun(start: 0x20_0000, end: 0x20_4000)])
        XCTAssertNil(allocator.allocate(pages: 5))
        XCTAssertNotNil(allocator.allocate(pages: 4))
        XCTAssertNil(allocator.allocate(pages: 1))
        XCTAssertEqual(allocator.freePages, 0)
        XCTAssertNil(allocator.allocate(pages: 0))
        XCTAssertNil(allocator.allocate(pages: UInt.max / 2), "a size that overflows")
        XCTAssertNil(allocator.allocate(pages: 1, alignment: 3 * page), "not a power of two")
        var empty = PageRunAllocator()
        XCTAssertNil(empty.allocate(pages: 1), "an empty allocator")
    }

    func testDoubleFreesAndForeignPagesAreRefused() throws {
        let low = PageRun(start: 0x20_0000, end: 3 * gib)
        let high = PageRun(start: 4 * gib, end: 5 * gib)
        var allocator = try makeAllocator([low, high])
        let run = try XCTUnwrap(allocator.allocate(pages: 8))
        try allocator.free(start: run, pages: 8)
        let before = freeRuns(allocator)
        func refuses(_ start: UInt, _ pages: UInt, _ failure: PageRunAllocator.Failure, line: UInt = #line) {
            XCTAssertThrowsError(try allocator.free(start: start, pages: pages), line: line) {
                XCTAssertEqual($0 as? PageRunAllocator.Failure, failure, line: line)
            }
        }
        refuses(run, 8, .notAllocated)  // freed twice
        refuses(run + 4 * page, 1, .notAllocated)  // part of a free run
        let used = try XCTUnwrap(allocator.allocate(pages: 2))
        refuses(used, 4, .notAllocated)  // reaches into free pages
        refuses(0x1000, 1, .notManaged)  // the boot region
        refuses(3 * gib, 1, .notManaged)  // the MMIO hole
        refuses(3 * gib - page, 2, .notManaged)  // across the hole's start
        refuses(5 * gib, 1, .notManaged)  // past the end of RAM
        refuses(used + 1, 1, .misaligned)
        refuses(used, 0, .misaligned)
        refuses(UInt.max & ~(page - 1), 4, .misaligned)  // wraps around
        XCTAssertThrowsError(try allocator.reserve(PageRun(start: used, end: used + page))) {
            XCTAssertEqual($0 as? PageRunAllocator.Failure, .notFree)
        }
        try allocator.free(start: used, pages: 2)
        XCTAssertEqual(freeRuns(allocator), before)
    }

    // MARK: - Growing the table

    func testTheTableGrowsWhenFragmentationNeedsIt() throws {
        // Managed memory that is real, so that the table can move into it.
        let pages = 1024
        let memory = UnsafeMutableRawPointer.allocate(byteCount: pages * 4096, alignment: 4096)
        defer { memory.deallocate() }
        let base = UInt(bitPattern: memory)
        var rejected = 0
        var allocator = [PageRun(start: base, end: base + UInt(pages) * page)].withUnsafeBufferPointer {
            PageRunAllocator(runs: $0, rejected: &rejected)
        }
        // 600 single pages, leaving a long run above them for the table to grow into.
        var taken: [UInt] = []
        for _ in 0..<600 { taken.append(try XCTUnwrap(allocator.allocate(pages: 1))) }
        // Every other page back: one run each, more than one page of table holds (240).
        for (index, address) in taken.enumerated() where index % 2 == 0 {
            try allocator.free(start: address, pages: 1)
        }
        XCTAssertGreaterThan(allocator.runCount, 240)
        _ = freeRuns(allocator)
        for (index, address) in taken.enumerated() where index % 2 == 1 {
            try allocator.free(start: address, pages: 1)
        }
        // All merged again; only the (moved, larger) table is in use.
        let runs = freeRuns(allocator)
        XCTAssertLessThanOrEqual(runs.count, 2)
        XCTAssertEqual(allocator.freePages, allocator.totalPages - 2, "a two-page table")
    }

    // MARK: - Against a model

    func testRandomAllocationsAgreeWithAPageModel() throws {
        let arenas = [PageRun(start: 0x20_0000, end: 0x60_0000), PageRun(start: 0x80_0000, end: 0xA0_0000)]
        var allocator = try makeAllocator(arenas)
        var used: [UInt: UInt] = [:]  // start → pages
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            if used.isEmpty || Bool.random(using: &generator) {
                let pages = UInt.random(in: 1...40, using: &generator)
                let alignment = [page, 4 * page, 2 * mib].randomElement(using: &generator)!
                guard let start = allocator.allocate(pages: pages, alignment: alignment) else { continue }
                XCTAssertEqual(start % alignment, 0)
                XCTAssertTrue(arenas.contains { $0.contains(PageRun(start: start, pages: pages)!) })
                for (other, count) in used {
                    XCTAssertFalse(PageRun(start: other, pages: count)!.overlaps(PageRun(start: start, pages: pages)!))
                }
                used[start] = pages
            } else {
                let (start, pages) = used.randomElement(using: &generator)!
                used[start] = nil
                try allocator.free(start: start, pages: pages)
            }
            XCTAssertEqual(allocator.freePages, allocator.totalPages - used.values.reduce(0, +))
        }
        _ = freeRuns(allocator)
    }
}
