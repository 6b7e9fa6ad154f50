/// Free physical memory as a sorted table of free page runs.
///
/// The table holds one entry per run of free pages, not one per page: boot
/// costs a handful of entries whatever the size of RAM (a 63 GiB machine has
/// three usable regions), and nothing walks or touches the pages themselves.
/// Allocation is first fit, lowest address first, with any power-of-two
/// alignment (2 MiB chunks for the heaps, single pages for page tables); a
/// free merges the run with its neighbours, so the table stays as short as the
/// fragmentation is. Neither is on a hot path: the heaps take memory in 2 MiB
/// chunks, and stacks are taken once per thread.
///
/// The table lives in memory the allocator manages: it starts in one page and
/// doubles (taking pages from itself, returning the old ones) before it can
/// run out of entries. Besides the free runs it keeps the *arenas*, the memory
/// it manages at all, so that freeing pages it never handed out is caught, and
/// so is freeing free pages (a double free): both are refused with an error
/// instead of corrupting the table.
///
/// Plain Swift over integers, except that the table is memory at an address
/// (the kernel's, or a host buffer in the tests). Not thread-safe: the kernel
/// keeps it behind a lock (``PageAllocator``).
struct PageRunAllocator {
    /// Why an operation was refused. Nothing changed when one is thrown.
    enum Failure: Error, Equatable {
        /// An address or size that is not a whole number of pages.
        case misaligned
        /// Pages outside every arena: this allocator never owned them.
        case notManaged
        /// Pages that are (partly) free already: a double free.
        case notAllocated
        /// ``reserve(_:)`` of pages that are not all free.
        case notFree
        /// ``addArena(_:)`` of memory overlapping an arena.
        case overlaps
        /// More separate arenas than ``maxArenas``.
        case tooManyArenas
        /// No table entry left and no memory to grow the table.
        case tableFull
    }

    /// Separate ranges of RAM the allocator can manage; adjacent ones merge.
    /// The boot memory map has at most 16 regions, so this is never short.
    static let maxArenas = 16

    /// The table: `maxArenas` arena slots, then the runs.
    private var table: UnsafeMutablePointer<PageRun>?
    /// The pages the table occupies, handed back when it moves.
    private var tableRun = PageRun(start: 0, end: 0)
    private var arenaCount = 0
    private(set) var runCount = 0
    private var runCapacity = 0

    /// Pages free now.
    private(set) var freePages: UInt = 0
    /// Pages in all arenas, free or not.
    private(set) var totalPages: UInt = 0

    /// An allocator with no memory: every allocation fails.
    init() {}

    /// An allocator over `runs` (page-aligned, any order, possibly empty ones),
    /// keeping its table in the first page of the first run with a page to
    /// spare. Runs that overlap an earlier one are left out and counted in
    /// `rejected`; none of the memory in the runs is touched but the table page.
    init(runs: UnsafeBufferPointer<PageRun>, rejected: inout Int) {
        guard let home = runs.firstIndex(where: { !$0.isEmpty && $0.start % Self.pageSize == 0 }) else {
            self.init()
            rejected = runs.count
            return
        }
        self.init(table: runs[home].start, pages: 1)
        do throws(Failure) {
            // The table's page first, taken off the free runs at once, so that
            // nothing can allocate it while it holds the table.
            try addArena(runs[home])
            try reserve(tableRun)
        } catch {
            self.init()
            rejected = runs.count
            return
        }
        for (index, run) in runs.enumerated() where index != home {
            do throws(Failure) { try addArena(run) } catch { rejected += 1 }
        }
    }

    /// An empty allocator whose table is `pages` pages at `address`.
    /// The table page is not in any arena until the caller adds one holding it.
    init(table address: UInt, pages: UInt) {
        let bytes = Int(pages * Self.pageSize)
        let capacity = bytes / MemoryLayout<PageRun>.stride - Self.maxArenas
        guard address != 0, capacity >= 4 else { return }
        table = UnsafeMutablePointer<PageRun>(bitPattern: address)
        tableRun = PageRun(start: address, end: address + UInt(bytes))
        runCapacity = capacity
    }

    private static var pageSize: UInt { PageRun.pageSize }

    // MARK: - Arenas

    /// Adds `run` to the memory managed, all of it free.
    mutating func addArena(_ run: PageRun) throws(Failure) {
        guard run.start % Self.pageSize == 0, run.end % Self.pageSize == 0 else { throw .misaligned }
        guard !run.isEmpty else { return }
        guard let table else { throw .tableFull }
        var position = 0
        while position < arenaCount && table[position].start < run.start {
            position += 1
        }
        if (position > 0 && table[position - 1].overlaps(run))
            || (position < arenaCount && table[position].overlaps(run))
        {
            throw .overlaps
        }
        let mergesBelow = position > 0 && table[position - 1].end == run.start
        let mergesAbove = position < arenaCount && table[position].start == run.end
        guard mergesBelow || mergesAbove || arenaCount < Self.maxArenas else { throw .tooManyArenas }
        try makeRoom()

        switch (mergesBelow, mergesAbove) {
        case (true, true):
            table[position - 1].end = table[position].end
            Self.removeEntry(at: position, end: arenaCount, in: table)
            arenaCount -= 1
        case (true, false):
            table[position - 1].end = run.end
        case (false, true):
            table[position].start = run.start
        case (false, false):
            Self.insertEntry(run, at: position, end: arenaCount, in: table)
            arenaCount += 1
        }
        try insertFree(run)  // cannot fail: the run overlaps no arena, so no free run, and there is room
        totalPages += run.pages
    }

    /// Whether every page of `run` belongs to one arena.
    func manages(_ run: PageRun) -> Bool {
        guard let table else { return false }
        for index in 0..<arenaCount where table[index].contains(run) {
            return true
        }
        return false
    }

    // MARK: - Allocation

    /// The address of `pages` free pages aligned to `alignment` bytes (a power
    /// of two; anything below a page means a page), now in use; nil if no run
    /// of free pages is long enough.
    mutating func allocate(pages: UInt, alignment: UInt = PageRun.pageSize) -> UInt? {
        guard pages > 0, alignment & (alignment &- 1) == 0,
            let size = PageRun(start: 0, pages: pages)?.end
        else {
            return nil
        }
        let align = max(alignment, Self.pageSize)
        // Best effort: an allocation that splits a run in two needs one entry,
        // one that takes a run's head or tail does not.
        try? makeRoom()
        for index in 0..<runCount {
            let run = self.run(index)
            guard run.start <= UInt.max - (align - 1) else { continue }
            let start = PageRun.alignUp(run.start, align)
            guard start < run.end, run.end - start >= size else { continue }
            if carve(PageRun(start: start, end: start + size), fromRunAt: index) {
                return start
            }
        }
        return nil
    }

    /// Takes the pages of `run` off the free runs: they must all be free.
    /// For memory that is in use before the allocator knew it (its own table).
    mutating func reserve(_ run: PageRun) throws(Failure) {
        guard run.start % Self.pageSize == 0, run.end % Self.pageSize == 0 else { throw .misaligned }
        guard !run.isEmpty else { return }
        let index = firstRun(startingAbove: run.start) - 1
        guard index >= 0, self.run(index).contains(run) else { throw .notFree }
        try makeRoom()
        guard carve(run, fromRunAt: index) else { throw .tableFull }
    }

    /// Removes `piece` from the free run at `index`, which contains it.
    /// False, and nothing changed, if that would need an entry there is no room for.
    private mutating func carve(_ piece: PageRun, fromRunAt index: Int) -> Bool {
        let run = self.run(index)
        let keepsHead = piece.start > run.start
        let keepsTail = piece.end < run.end
        switch (keepsHead, keepsTail) {
        case (false, false):
            Self.removeEntry(at: Self.maxArenas + index, end: Self.maxArenas + runCount, in: table!)
            runCount -= 1
        case (false, true):
            table![Self.maxArenas + index].start = piece.end
        case (true, false):
            table![Self.maxArenas + index].end = piece.start
        case (true, true):
            guard runCount < runCapacity else { return false }
            table![Self.maxArenas + index].end = piece.start
            Self.insertEntry(
                PageRun(start: piece.end, end: run.end), at: Self.maxArenas + index + 1,
                end: Self.maxArenas + runCount, in: table!)
            runCount += 1
        }
        freePages -= piece.pages
        return true
    }

    // MARK: - Freeing

    /// Returns `pages` pages at `start` (an earlier allocation, or part of one).
    mutating func free(start: UInt, pages: UInt) throws(Failure) {
        guard start % Self.pageSize == 0, pages > 0, let run = PageRun(start: start, pages: pages) else {
            throw .misaligned
        }
        guard manages(run) else { throw .notManaged }
        try? makeRoom()  // only a free that merges with no neighbour needs an entry
        try insertFree(run)
    }

    /// Puts `run` on the free runs, merged with the free runs it touches.
    private mutating func insertFree(_ run: PageRun) throws(Failure) {
        let position = firstRun(startingAbove: run.start)
        if (position > 0 && self.run(position - 1).end > run.start)
            || (position < runCount && self.run(position).start < run.end)
        {
            throw .notAllocated
        }
        let mergesBelow = position > 0 && self.run(position - 1).end == run.start
        let mergesAbove = position < runCount && self.run(position).start == run.end
        let slot = Self.maxArenas + position
        switch (mergesBelow, mergesAbove) {
        case (true, true):
            table![slot - 1].end = table![slot].end
            Self.removeEntry(at: slot, end: Self.maxArenas + runCount, in: table!)
            runCount -= 1
        case (true, false):
            table![slot - 1].end = run.end
        case (false, true):
            table![slot].start = run.start
        case (false, false):
            guard runCount < runCapacity else { throw .tableFull }
            Self.insertEntry(run, at: slot, end: Self.maxArenas + runCount, in: table!)
            runCount += 1
        }
        freePages += run.pages
    }

    // MARK: - The table

    /// Free run `index` (0 ..< ``runCount``), in address order.
    func run(_ index: Int) -> PageRun {
        table![Self.maxArenas + index]
    }

    /// The longest free run, in pages.
    var largestFreeRun: UInt {
        var largest: UInt = 0
        for index in 0..<runCount {
            largest = max(largest, run(index).pages)
        }
        return largest
    }

    /// The index of the first free run starting above `address` (binary search).
    private func firstRun(startingAbove address: UInt) -> Int {
        var low = 0
        var high = runCount
        while low < high {
            let middle = (low + high) / 2
            if run(middle).start <= address { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Moves the entries `slot ..< end` of `table` up one and puts `run` at `slot`.
    private static func insertEntry(_ run: PageRun, at slot: Int, end: Int, in table: UnsafeMutablePointer<PageRun>) {
        var index = end
        while index > slot {
            table[index] = table[index - 1]
            index -= 1
        }
        table[slot] = run
    }

    /// Moves the entries `slot + 1 ..< end` of `table` down one, over `slot`.
    private static func removeEntry(at slot: Int, end: Int, in table: UnsafeMutablePointer<PageRun>) {
        for index in slot..<(end - 1) {
            table[index] = table[index + 1]
        }
    }

    /// Makes sure an operation can add one run: grows the table (to twice the
    /// entries) while two or more are still left, so that growing, which takes
    /// pages and may free the old table's, never itself runs out of room.
    private mutating func makeRoom() throws(Failure) {
        guard table != nil else { throw .tableFull }
        if runCapacity - runCount >= 2 { return }
        grow()
        if runCapacity - runCount < 1 { throw .tableFull }
    }

    private mutating func grow() {
        let entries = Self.maxArenas + 2 * runCapacity
        let pages = (UInt(entries * MemoryLayout<PageRun>.stride) + Self.pageSize - 1) / Self.pageSize
        // A page-aligned allocation takes a run's head: it never needs an entry.
        guard let address = allocateWithoutGrowing(pages: pages),
            let moved = UnsafeMutablePointer<PageRun>(bitPattern: address)
        else {
            return  // no memory: carry on with the room there is
        }
        moved.update(from: table!, count: Self.maxArenas + runCount)
        let old = tableRun
        table = moved
        tableRun = PageRun(start: address, end: address + pages * Self.pageSize)
        runCapacity = Int(pages * Self.pageSize) / MemoryLayout<PageRun>.stride - Self.maxArenas
        // The old table's pages are ours to give back if they came from an
        // arena (the kernel's boot page); a table the caller lent us is not.
        if manages(old) {
            try? insertFree(old)
        }
    }

    private mutating func allocateWithoutGrowing(pages: UInt) -> UInt? {
        let size = pages * Self.pageSize
        for index in 0..<runCount where run(index).end - run(index).start >= size {
            let start = run(index).start
            _ = carve(PageRun(start: start, end: start + size), fromRunAt: index)
            return start
        }
        return nil
    }
}
