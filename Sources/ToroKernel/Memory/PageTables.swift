import KernelSupport
import Synchronization

/// The kernel's changes to the identity map the VMM built.
///
/// The kernel keeps the VMM's page tables (in the boot region, shared by every
/// CPU through the same CR3) and edits them in place rather than building its
/// own: everything they promise stays true by construction (all RAM identity
/// mapped, page 0 and the boot-stack guards unmapped, the MMIO hole
/// uncacheable), and taking over costs nothing at boot. Only two edits are ever
/// made, both for stack guard pages:
///
/// - **Splitting** a 2 MiB page into a table of 512 4 KiB pages that map the
///   same memory the same way, the first time a guard page falls inside it.
///   The table is filled before the directory entry points at it, so a CPU
///   walking the tables meanwhile finds either the old large page or the
///   complete table, and both translate every address alike.
/// - **Guarding** a 4 KiB page: marking it not present, with a record of its
///   stack in the entry's ignored bits (``PageTableEntry``), and undoing that.
///
/// Splits are never undone: a split costs one page and maps exactly what the
/// large page did. Every edit is serialised by one lock; reading (to explain
/// a fault) takes none.
///
/// TLBs: after guarding a page, this CPU runs `invlpg` for it, which drops any
/// entry covering it, 4 KiB or 2 MiB, and the cached directory entries. Other
/// CPUs may still hold a translation covering it; see ``Stacks`` for why that
/// is safe without a shootdown. Making a page present again needs no flush at
/// all: x86 never caches a translation for a page that is not present.
enum PageTables {
    /// The entry mapping the 4 KiB page at `address` (page-aligned) in a
    /// table, splitting the 2 MiB page holding it if need be. Nil if the
    /// address is not mapped at all or sits in a 1 GiB page (the VMM uses
    /// neither for RAM), or if there is no free page for the new table.
    /// Call with the lock held.
    private static func smallEntry(for address: UInt, splits: inout Int) -> UnsafeMutablePointer<UInt64>? {
        guard let directory = directoryEntry(for: address) else { return nil }
        let entry = PageTableEntry(directory.pointee)
        if !entry.isLargePage {
            return table(at: entry.address) + index(of: address, level: 1)
        }
        guard let newTable = PageAllocator.allocate(pages: 1) else { return nil }
        let table = UnsafeMutablePointer<UInt64>(bitPattern: newTable)!
        for slot in 0..<512 {
            table[slot] = entry.splitEntry(slot).raw
        }
        // One 8-byte store publishes the table, after every entry in it (a
        // releasing store: the compiler may not sink the loop below it, and
        // x86 keeps stores in order for the page walker on other CPUs).
        UnsafeMutablePointer<Atomic<UInt64>>(OpaquePointer(directory)).pointee.store(
            entry.directoryEntry(pointingTo: UInt64(newTable)).raw, ordering: .releasing)
        // No flush here: the old large page and the new table translate alike.
        // The caller's invlpg of the guard drops the large page's TLB entry
        // and the cached directory entry along with the guard's.
        splits += 1
        return table + index(of: address, level: 1)
    }

    /// The page-directory entry covering `address`, if the levels above are
    /// present and it is not inside a 1 GiB page. Takes no lock: the upper
    /// levels never change, and a directory entry changes in one store.
    private static func directoryEntry(for address: UInt) -> UnsafeMutablePointer<UInt64>? {
        let pml4e = PageTableEntry(table(at: topLevelTable)[index(of: address, level: 4)])
        guard pml4e.isPresent else { return nil }
        let pdpte = PageTableEntry(table(at: pml4e.address)[index(of: address, level: 3)])
        guard pdpte.isPresent, !pdpte.isLargePage else { return nil }
        let directory = table(at: pdpte.address) + index(of: address, level: 2)
        return PageTableEntry(directory.pointee).isPresent ? directory : nil
    }

    /// The PML4's address, read from CR3 once: the kernel never changes CR3,
    /// and reading it is a trap to the host in kvm_pvm's native mode.
    private static let topLevelTable = PageTableEntry(kernel_read_cr3()).address

    private static func table(at address: UInt64) -> UnsafeMutablePointer<UInt64> {
        UnsafeMutablePointer<UInt64>(bitPattern: UInt(address))!
    }

    /// The index into a table at `level` (4 = PML4, 1 = page table) for `address`.
    private static func index(of address: UInt, level: Int) -> Int {
        Int((address >> UInt(12 + 9 * (level - 1))) & 511)
    }

    // MARK: - Guards

    /// Makes the page at `page` a guard for a stack of `stackPages` pages
    /// allocated by `core`, and drops it from this CPU's TLB. False if the
    /// page cannot be given its own entry (see ``smallEntry(for:splits:)``).
    static func makeGuard(page: UInt, core: Int, stackPages: UInt) -> Bool {
        pageTableEdits.withLock { splits in
            guard let slot = smallEntry(for: page, splits: &splits) else { return false }
            slot.pointee = PageTableEntry(slot.pointee).guardEntry(core: core, stackPages: stackPages).raw
            kernel_invlpg(page)
            return true
        }
    }

    /// Maps the guard page at `page` again, as it was, if it guards a stack
    /// of `stackPages` pages; false (and nothing changed) otherwise.
    static func removeGuard(page: UInt, stackPages: UInt) -> Bool {
        pageTableEdits.withLock { _ in
            guard let directory = directoryEntry(for: page), !PageTableEntry(directory.pointee).isLargePage else {
                return false
            }
            let slot = table(at: PageTableEntry(directory.pointee).address) + index(of: page, level: 1)
            let entry = PageTableEntry(slot.pointee)
            guard let info = entry.guardInfo, info.stackPages == stackPages else { return false }
            slot.pointee = entry.restoredFromGuard(address: UInt64(page)).raw
            return true
        }
    }

    /// What the guard entry for the page holding `address` records; nil if
    /// that page is not a guard made by ``makeGuard(page:core:stackPages:)``.
    /// Takes no lock, allocates nothing: safe in a fault handler.
    static func guardInfo(at address: UInt) -> (core: Int, stackPages: UInt)? {
        guard let directory = directoryEntry(for: address) else { return nil }
        let entry = PageTableEntry(directory.pointee)
        guard !entry.isLargePage else { return nil }
        return PageTableEntry(table(at: entry.address)[index(of: address, level: 1)]).guardInfo
    }

    /// How many 2 MiB pages have been split into 4 KiB pages since boot.
    static var splitCount: Int {
        pageTableEdits.withLock { $0 }
    }
}

/// Serialises edits to the page tables; holds the number of splits so far.
/// Taken before the page allocator's lock (a split takes a page), never after.
let pageTableEdits = SpinLock(0)
