import XCTest

@testable import ToroKernelPortable

/// Splitting large pages and encoding guard pages in page-table entries.
final class PageTableEntryTests: XCTestCase {
    typealias Entry = PageTableEntry

    /// The VMM's 2 MiB page for RAM at 1 GiB + 6 MiB: present, writable, large.
    let ram = Entry(0x4060_0000 | Entry.present | Entry.writable | Entry.largePage)

    func testASplitMapsTheSameMemoryTheSameWay() {
        for index in [0, 1, 255, 511] {
            let small = ram.splitEntry(index)
            XCTAssertEqual(small.address, 0x4060_0000 + UInt64(index) * 4096)
            XCTAssertEqual(small.raw & ~Entry.addressMask, Entry.present | Entry.writable, "no large-page bit")
        }
        // The MMIO hole's pages keep uncacheable and no-execute; a 2 MiB PAT bit moves to bit 7.
        let writeThrough: UInt64 = 1 << 3, cacheDisable: UInt64 = 1 << 4
        let hole = Entry(
            0xC000_0000 | Entry.present | Entry.writable | Entry.largePage | writeThrough | cacheDisable | Entry.noExecute
                | Entry.largePAT | Entry.accessed | Entry.dirty)
        let small = hole.splitEntry(3)
        XCTAssertEqual(small.address, 0xC000_3000)
        XCTAssertEqual(
            small.raw & ~Entry.addressMask,
            Entry.present | Entry.writable | writeThrough | cacheDisable | Entry.noExecute | Entry.smallPAT)
    }

    func testTheDirectoryEntryPointsAtTheTable() {
        let directory = ram.directoryEntry(pointingTo: 0x7F_3000)
        XCTAssertEqual(directory.address, 0x7F_3000)
        XCTAssertTrue(directory.isPresent)
        XCTAssertFalse(directory.isLargePage)
    }

    func testAGuardRecordsItsStackAndUndoesExactly() throws {
        let page = ram.splitEntry(7)
        let guardEntry = page.guardEntry(core: 31, stackPages: 12345)
        XCTAssertFalse(guardEntry.isPresent)
        let info = try XCTUnwrap(guardEntry.guardInfo)
        XCTAssertEqual(info.core, 31)
        XCTAssertEqual(info.stackPages, 12345)
        XCTAssertEqual(guardEntry.restoredFromGuard(address: page.address), page)

        let hole = Entry(0xC000_0000 | Entry.present | Entry.writable | Entry.noExecute | (1 << 4))
        XCTAssertEqual(hole.guardEntry(core: 0, stackPages: 1).restoredFromGuard(address: hole.address), hole)
        // Accessed and dirty are the processor's; they need not come back.
        let touched = Entry(page.raw | Entry.accessed | Entry.dirty)
        XCTAssertEqual(touched.guardEntry(core: 2, stackPages: 4).restoredFromGuard(address: page.address), page)
    }

    func testOnlyGuardsDecodeAsGuards() {
        XCTAssertNil(Entry(0).guardInfo, "the VMM's unmapped pages (page 0, boot-stack guards)")
        XCTAssertNil(ram.guardInfo)
        XCTAssertNil(ram.splitEntry(0).guardInfo)
        // A present entry with the marker's bits set is still not a guard.
        XCTAssertNil(Entry(Entry.guardMarker << 52 | Entry.present).guardInfo)
    }
}
