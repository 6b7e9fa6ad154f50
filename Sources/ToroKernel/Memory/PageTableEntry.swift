/// An x86-64 page-table entry, and the encodings the kernel gives the entries
/// it changes in the VMM's identity map.
///
/// Two changes are ever made (see ``PageTables``): a 2 MiB page is split into
/// a table of 512 4 KiB pages mapping the same memory the same way, and a
/// 4 KiB page becomes a stack's guard. A guard entry is not present, so the
/// processor ignores its other 63 bits (Intel SDM vol. 3, 4.5: "if the P flag
/// is 0, the processor ignores the rest of the entry"); the kernel keeps there
/// what it needs to undo the guard and to explain a fault in it:
///
/// ```
/// bit  0       0 (not present)
/// bits 1-11    the page's flags before it became a guard
/// bits 12-19   the core that allocated the stack
/// bits 20-51   the stack's size in pages (the guard not counted)
/// bits 52-62   guardMarker, telling a guard from any other absent page
/// bit  63      the page's no-execute flag before it became a guard
/// ```
///
/// Plain Swift over integers: builds for the host and is tested there.
struct PageTableEntry: Equatable {
    var raw: UInt64

    init(_ raw: UInt64) { self.raw = raw }

    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let user: UInt64 = 1 << 2
    static let accessed: UInt64 = 1 << 5
    static let dirty: UInt64 = 1 << 6
    /// In a directory entry: this maps a 2 MiB page rather than pointing at a table.
    static let largePage: UInt64 = 1 << 7
    /// The PAT bit's place in a 4 KiB entry (in a 2 MiB entry it is ``largePAT``).
    static let smallPAT: UInt64 = 1 << 7
    static let largePAT: UInt64 = 1 << 12
    static let noExecute: UInt64 = 1 << 63
    /// Bits 12-51: the physical address of the page or the next table.
    static let addressMask: UInt64 = 0x000F_FFFF_FFFF_F000
    /// The flags a 4 KiB entry and a guard entry share: bits 1-11 and 63.
    static let flagMask: UInt64 = 0x0000_0000_0000_0FFE | noExecute

    static let guardMarker: UInt64 = 0x5AC
    private static let guardCoreShift: UInt64 = 12
    private static let guardPagesShift: UInt64 = 20
    private static let guardPagesLimit: UInt64 = 1 << 32

    var isPresent: Bool { raw & Self.present != 0 }
    var isLargePage: Bool { raw & Self.largePage != 0 }
    var address: UInt64 { raw & Self.addressMask }

    // MARK: - Splitting a 2 MiB page

    /// Entry `index` (0 ..< 512) of the table replacing the present 2 MiB
    /// page `self`: the same memory, with the same permissions and caching.
    func splitEntry(_ index: Int) -> PageTableEntry {
        let address = (raw & Self.addressMask & ~((2 << 20) - 1)) + UInt64(index) * 4096
        var flags = raw & (Self.present | Self.flagMask) & ~(Self.largePage | Self.dirty | Self.accessed)
        if raw & Self.largePAT != 0 {
            flags |= Self.smallPAT
        }
        return PageTableEntry(address | flags)
    }

    /// The directory entry pointing at `table`, the split of the 2 MiB page
    /// `self`. As permissive as the page was (the 4 KiB entries below it say
    /// the rest); no-execute stays with them, not here.
    func directoryEntry(pointingTo table: UInt64) -> PageTableEntry {
        PageTableEntry(table | Self.present | Self.writable | (raw & Self.user))
    }

    // MARK: - Guards

    /// The guard entry replacing the present 4 KiB page `self`, for a stack
    /// of `stackPages` pages allocated by `core`.
    func guardEntry(core: Int, stackPages: UInt) -> PageTableEntry {
        precondition(core >= 0 && core < 256 && UInt64(stackPages) < Self.guardPagesLimit)
        let flags = raw & Self.flagMask & ~(Self.accessed | Self.dirty)
        return PageTableEntry(
            flags | UInt64(core) << Self.guardCoreShift | UInt64(stackPages) << Self.guardPagesShift
                | Self.guardMarker << 52)
    }

    /// What a guard entry records; nil for any other entry.
    var guardInfo: (core: Int, stackPages: UInt)? {
        guard !isPresent, (raw >> 52) & 0x7FF == Self.guardMarker else { return nil }
        return (Int((raw >> Self.guardCoreShift) & 0xFF), UInt((raw >> Self.guardPagesShift) & (Self.guardPagesLimit - 1)))
    }

    /// The present entry a guard entry for the page at `address` replaced.
    func restoredFromGuard(address: UInt64) -> PageTableEntry {
        PageTableEntry((address & Self.addressMask) | (raw & Self.flagMask) | Self.present)
    }
}
