/// The bit layouts of the x86-64 descriptors the kernel writes: GDT segment
/// descriptors, the TSS descriptor and IDT interrupt gates.
///
/// Pure arithmetic with no kernel imports, so it also builds for the host and
/// is unit-tested there against the layouts in the Intel SDM.
enum Descriptors {
    /// A 64-bit code segment: present, DPL 0, execute/read, L = 1 (long mode),
    /// 4 KiB granularity (Intel SDM vol. 3A, 3.4.5 and 5.2.1). Base and limit
    /// are ignored in 64-bit mode; they are set the way the VMM's boot GDT does.
    static let code64: UInt64 = 0x00AF_9A00_0000_FFFF

    /// A data segment: present, DPL 0, read/write, 4 GiB.
    static let data: UInt64 = 0x00CF_9200_0000_FFFF

    /// ``code64`` and ``data`` at DPL 3: the descriptors kvm_pvm's native mode
    /// runs the kernel with (boot/toro_boot.h).
    static let nativeCode64: UInt64 = code64 | 3 << 45
    static let nativeData: UInt64 = data | 3 << 45

    /// The two 8-byte halves of a 64-bit TSS descriptor for a TSS at `base`
    /// with limit `limit` (its size minus one): type 9, available 64-bit TSS;
    /// present; DPL 0; byte granularity (Intel SDM vol. 3A, 7.2.3, figure 7-4).
    static func taskState(base: UInt64, limit: UInt32) -> (low: UInt64, high: UInt64) {
        let availableTSS: UInt64 = 0x9
        let present: UInt64 = 1 << 47
        let limitValue = UInt64(limit)
        var low = limitValue & 0xFFFF
        low |= (base & 0xFF_FFFF) << 16
        low |= availableTSS << 40
        low |= present
        low |= ((limitValue >> 16) & 0xF) << 48
        low |= ((base >> 24) & 0xFF) << 56
        return (low, base >> 32)
    }

    /// The two halves of a 64-bit interrupt gate to `handler` in code segment
    /// `selector`, switching to interrupt stack table slot `ist` (1-7; 0 keeps
    /// the current stack): type 0xE, present, privilege level `dpl` (Intel SDM
    /// vol. 3A, 6.14.1, figure 6-8). An interrupt gate, not a trap gate, so
    /// the CPU clears IF on entry and handlers never nest.
    static func interruptGate(handler: UInt64, selector: UInt16, ist: Int, dpl: UInt8 = 0) -> (low: UInt64, high: UInt64) {
        let interruptGateType: UInt64 = 0xE
        let present: UInt64 = 1 << 47
        var low = handler & 0xFFFF
        low |= UInt64(selector) << 16
        low |= (UInt64(ist) & 0x7) << 32
        low |= interruptGateType << 40
        low |= UInt64(dpl & 3) << 45
        low |= present
        low |= ((handler >> 16) & 0xFFFF) << 48
        return (low, handler >> 32)
    }
}
