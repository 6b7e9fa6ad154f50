/// A run of whole physical pages, `[start, end)` in bytes.
///
/// Physical and virtual addresses are the same in Toro (everything is
/// identity mapped), so a run is also the range a pointer into it covers.
/// Plain Swift over integers: it builds for the host and is tested there.
struct PageRun: Equatable {
    /// The page size everything in `Memory/` counts in.
    static let pageSize: UInt = 4096

    /// First byte; a multiple of ``pageSize``.
    var start: UInt
    /// One past the last byte; a multiple of ``pageSize``, at least ``start``.
    var end: UInt

    /// A run from `start` to `end`, both page-aligned.
    init(start: UInt, end: UInt) {
        self.start = start
        self.end = end
    }

    /// A run of `pages` pages from `start`, or nil if it would wrap around.
    init?(start: UInt, pages: UInt) {
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: Self.pageSize)
        let (end, wrapped) = start.addingReportingOverflow(bytes)
        guard !overflow, !wrapped else { return nil }
        self.init(start: start, end: end)
    }

    /// Pages in the run.
    var pages: UInt { (end - start) / Self.pageSize }

    var isEmpty: Bool { end <= start }

    func contains(_ other: PageRun) -> Bool { other.start >= start && other.end <= end }

    func overlaps(_ other: PageRun) -> Bool { other.start < end && start < other.end }

    /// The whole pages of a memory-map region `[base, base + length)` at or
    /// above `floor`, or nil if there are none.
    ///
    /// The boot memory map is the VMM's word, so nothing about it is assumed:
    /// a region may start or end mid-page (only whole pages inside it are
    /// used), reach past the top of the address space (clipped), or lie
    /// entirely below `floor` (the end of the kernel image: the VMM reports the
    /// image as kernel memory, but its .bss is not in the file, so the kernel
    /// checks for itself that no usable page overlaps it).
    static func usable(base: UInt64, length: UInt64, floor: UInt) -> PageRun? {
        guard base <= UInt64(UInt.max) else { return nil }
        let (rawEnd, wrapped) = base.addingReportingOverflow(length)
        let end = wrapped || rawEnd > UInt64(UInt.max) ? UInt.max : UInt(rawEnd)
        let start = max(UInt(base), floor)
        guard start <= UInt.max - (pageSize - 1) else { return nil }
        let run = PageRun(start: alignUp(start, pageSize), end: end & ~(pageSize - 1))
        return run.isEmpty ? nil : run
    }

    /// `value` rounded up to `alignment` (a power of two); the caller makes
    /// sure it does not overflow.
    static func alignUp(_ value: UInt, _ alignment: UInt) -> UInt {
        (value + alignment - 1) & ~(alignment - 1)
    }
}
