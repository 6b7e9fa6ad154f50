/// The identity map every vCPU starts with.
///
/// Guest RAM and the 32-bit MMIO hole are mapped 1:1 with 2 MiB pages, except
/// the first 2 MiB, which uses 4 KiB pages so that page 0 and the guard page
/// below each boot stack can stay unmapped. The hole `[3 GiB, 4 GiB)` is mapped
/// uncacheable for the interrupt controllers and device registers.
public enum PageTables {
    public static let present: UInt64 = 1 << 0
    public static let writable: UInt64 = 1 << 1
    public static let user: UInt64 = 1 << 2
    public static let writeThrough: UInt64 = 1 << 3
    public static let cacheDisable: UInt64 = 1 << 4
    public static let largePage: UInt64 = 1 << 7
    public static let noExecute: UInt64 = 1 << 63

    static let twoMiB: UInt64 = 2 << 20
    static let oneGiB: UInt64 = 1 << 30

    /// Top of the identity map: all RAM, and at least the whole first 4 GiB.
    public static func mappedEnd(for memory: GuestMemory) -> UInt64 {
        let end = max(memory.guestEnd, 1 << 32)
        return (end + oneGiB - 1) / oneGiB * oneGiB
    }

    /// Page-table entries as (guest address, value) pairs, for a memory of `memory`
    /// with `cpus` boot stacks. Pure, so that tests can check the layout.
    ///
    /// `userAccessible` sets U in every entry: kvm_pvm's native mode runs the
    /// kernel at hardware privilege level 3, where a page without U faults.
    public static func entries(for memory: GuestMemory, cpus: Int, userAccessible: Bool = false)
        -> [(address: UInt64, value: UInt64)]
    {
        var entries: [(UInt64, UInt64)] = []
        let table = present | writable | (userAccessible ? user : 0)
        entries.append((BootLayout.pml4, BootLayout.pdpt | table))
        let gigabytes = mappedEnd(for: memory) / oneGiB
        for gib in 0..<gigabytes {
            let directory = BootLayout.pageDirectories + gib * 4096
            entries.append((BootLayout.pdpt + gib * 8, directory | table))
            for slot in 0..<UInt64(512) {
                let address = gib * oneGiB + slot * twoMiB
                let isRAM = memory.contains(GuestAddress(address), length: twoMiB)
                let isHole = address >= GuestMemory.mmioHoleBase && address < (1 << 32)
                let value: UInt64
                if address == 0 {
                    value = BootLayout.lowPageTable | table
                } else if isRAM {
                    value = address | table | largePage
                } else if isHole {
                    value = address | table | largePage | cacheDisable | writeThrough | noExecute
                } else {
                    continue
                }
                entries.append((directory + slot * 8, value))
            }
        }
        // The first 2 MiB in 4 KiB pages: everything but page 0 and the stack guards.
        let guards = Set((0..<cpus).map { BootLayout.stack(cpu: $0).base - BootLayout.guardSize })
        for page in 1..<UInt64(512) {
            let address = page * 4096
            if guards.contains(address) { continue }
            entries.append((BootLayout.lowPageTable + page * 8, address | table))
        }
        return entries
    }

    /// Writes the identity map into guest memory.
    ///
    /// Only the table pages in use are cleared: touching the whole 1 MiB table
    /// area would cost a host page fault per page on every boot.
    public static func write(into memory: GuestMemory, cpus: Int, userAccessible: Bool = false) throws(GuestMemoryError) {
        let directories = mappedEnd(for: memory) / oneGiB
        guard directories <= BootLayout.maxPageDirectories else { throw .badSize(memory.size) }
        for table in [BootLayout.pml4, BootLayout.pdpt, BootLayout.lowPageTable] {
            try memory.fill(0, at: GuestAddress(table), count: 4096)
        }
        try memory.fill(0, at: GuestAddress(BootLayout.pageDirectories), count: directories * 4096)
        for entry in entries(for: memory, cpus: cpus, userAccessible: userAccessible) {
            try memory.store(entry.value, at: GuestAddress(entry.address))
        }
    }

    /// Whether the guest's page tables rooted at `cr3` map `address`: a
    /// four-level walk through guest memory (2 MiB and 1 GiB pages included),
    /// as the CPU would do it. Nil when a table lies outside guest RAM, which
    /// a crashed guest's tables may. Used to explain a crash, never trusted
    /// for anything else.
    public static func maps(_ address: UInt64, cr3: UInt64, in memory: GuestMemory) -> Bool? {
        let frame: UInt64 = 0x000F_FFFF_FFFF_F000
        var table = cr3 & frame
        for level in stride(from: 3, through: 0, by: -1) {
            let index = (address >> UInt64(12 + 9 * level)) & 511
            guard let entry = try? memory.load(UInt64.self, at: GuestAddress(table &+ index &* 8)) else { return nil }
            guard entry & present != 0 else { return false }
            if level == 0 || (level <= 2 && entry & largePage != 0) { return true }
            table = entry & frame
        }
        return true
    }
}

