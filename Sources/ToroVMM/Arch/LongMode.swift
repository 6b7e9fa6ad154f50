import CKVM

/// The 64-bit entry state of a vCPU: GDT, TSS and the special registers.
public enum LongMode {
    // Control-register bits (Intel SDM vol. 3, 2.5).
    static let cr0PE: UInt64 = 1 << 0, cr0MP: UInt64 = 1 << 1, cr0ET: UInt64 = 1 << 4
    static let cr0NE: UInt64 = 1 << 5, cr0WP: UInt64 = 1 << 16, cr0AM: UInt64 = 1 << 18, cr0PG: UInt64 = 1 << 31
    static let cr4PAE: UInt64 = 1 << 5, cr4PGE: UInt64 = 1 << 7
    static let cr4OSFXSR: UInt64 = 1 << 9, cr4OSXMMEXCPT: UInt64 = 1 << 10
    static let eferSCE: UInt64 = 1 << 0, eferLME: UInt64 = 1 << 8, eferLMA: UInt64 = 1 << 10, eferNXE: UInt64 = 1 << 11

    public static let cr0 = cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0AM | cr0PG
    /// SSE is allowed (OSFXSR/OSXMMEXCPT) for guests that want it; Toro's own kernel is
    /// built integer-only (see boot/toro_boot.h), so it never depends on it.
    public static let cr4 = cr4PAE | cr4PGE | cr4OSFXSR | cr4OSXMMEXCPT
    public static let efer = eferSCE | eferLME | eferLMA | eferNXE

    static let tssLimit: UInt32 = 0x67

    /// The boot GDT: null, 64-bit code, data, a 16-byte TSS descriptor, then
    /// the DPL-3 data and 64-bit code descriptors of kvm_pvm's native mode
    /// (at TORO_BOOT_SELECTOR_NATIVE_DATA/CODE; see boot/toro_boot.h).
    public static func gdtEntries() -> [UInt64] {
        let code: UInt64 = 0x00AF_9A00_0000_FFFF  // present, DPL 0, execute/read, L=1
        let data: UInt64 = 0x00CF_9200_0000_FFFF  // present, DPL 0, read/write, 4 GiB
        let nativeData: UInt64 = 0x00CF_F200_0000_FFFF  // the same at DPL 3
        let nativeCode: UInt64 = 0x00AF_FA00_0000_FFFF  // the same at DPL 3
        let base = BootLayout.tss
        let tssLow = UInt64(tssLimit) | ((base & 0xFF_FFFF) << 16) | (0x89 << 40) | (((base >> 24) & 0xFF) << 56)
        let tssHigh = base >> 32
        return [0, code, data, tssLow, tssHigh, nativeData, nativeCode]
    }

    /// Writes the GDT and a zeroed TSS into guest memory.
    public static func writeDescriptorTables(into memory: GuestMemory) throws(GuestMemoryError) {
        for (i, entry) in gdtEntries().enumerated() {
            try memory.store(entry, at: GuestAddress(BootLayout.gdt + UInt64(i) * 8))
        }
        try memory.fill(0, at: GuestAddress(BootLayout.tss), count: UInt64(tssLimit) + 1)
        // I/O map base past the limit: no I/O permission bitmap.
        try memory.store(UInt16(tssLimit + 1), at: GuestAddress(BootLayout.tss + 0x66))
    }

    static func segment(selector: UInt16, type: UInt8, code: Bool) -> kvm_segment {
        var s = kvm_segment()
        s.base = 0
        s.limit = 0xFFFF_FFFF
        s.selector = selector
        s.type = type
        s.present = 1
        s.dpl = 0
        s.db = code ? 0 : 1
        s.s = 1
        s.l = code ? 1 : 0
        s.g = 1
        return s
    }

    /// `sregs` (as read from a fresh vCPU) changed to the long-mode entry state.
    public static func configure(_ sregs: kvm_sregs) -> kvm_sregs {
        var sregs = sregs
        sregs.cs = segment(selector: UInt16(TORO_BOOT_SELECTOR_CODE), type: 0xB, code: true)
        let data = segment(selector: UInt16(TORO_BOOT_SELECTOR_DATA), type: 0x3, code: false)
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        var tr = kvm_segment()
        tr.base = BootLayout.tss
        tr.limit = tssLimit
        tr.selector = UInt16(TORO_BOOT_SELECTOR_TSS)
        tr.type = 0xB  // 64-bit TSS, busy
        tr.present = 1
        sregs.tr = tr
        sregs.ldt = kvm_segment()
        sregs.ldt.unusable = 1
        sregs.gdt.base = BootLayout.gdt
        sregs.gdt.limit = UInt16(gdtEntries().count * 8 - 1)
        sregs.idt.base = 0
        sregs.idt.limit = 0
        sregs.cr0 = cr0
        sregs.cr3 = BootLayout.pml4
        sregs.cr4 = cr4
        sregs.efer = efer
        return sregs
    }

    /// General registers at entry: RIP, RSP and the two boot arguments.
    public static func registers(entry: UInt64, stackTop: UInt64, bootInfo: UInt64, cpu: Int) -> kvm_regs {
        var regs = kvm_regs()
        regs.rip = entry
        regs.rsp = stackTop
        regs.rdi = bootInfo
        regs.rsi = UInt64(cpu)
        regs.rflags = 0x2  // reserved bit 1; interrupts off
        return regs
    }

    /// x87 and SSE control words as after FNINIT, with all SSE exceptions masked.
    public static func fpu() -> kvm_fpu {
        var fpu = kvm_fpu()
        fpu.fcw = 0x37F
        fpu.mxcsr = 0x1F80
        return fpu
    }
}
