import CKVM

/// Where the VMM puts its own boot structures in guest-physical memory.
///
/// Everything lives in the first 2 MiB, which the memory map reports as
/// ``TORO_MEMORY_BOOT`` and the ELF loader refuses to overwrite. Kernels link
/// at ``kernelBase`` or above.
///
/// ```
/// 0x000000  page 0: not mapped (null pointers fault)
/// 0x001000  GDT
/// 0x001800  TSS (the one KVM needs to enter; the kernel installs its own)
/// 0x002000  struct toro_boot_info (two pages)
/// 0x004000  console-write scratch (unused by the VMM, free for the kernel)
/// 0x008000  PDPT for the first 512 GiB
/// 0x009000  PML4 (an odd 4 KiB frame: kvm_pvm runs a vCPU natively only then)
/// 0x00A000  page table for the first 2 MiB (4 KiB pages, for page 0 and the guard pages)
/// 0x010000  page directories, one per GiB identity mapped (up to 64 + 4)
/// 0x100000  boot stacks: 32 KiB slots, each an unmapped guard page + 28 KiB of stack
/// 0x200000  kernel image
/// ```
public enum BootLayout {
    public static let gdt: UInt64 = 0x1000
    public static let tss: UInt64 = 0x1800
    public static let bootInfo: UInt64 = 0x2000
    /// In an odd 4 KiB frame: kvm_pvm's native mode runs a vCPU natively only
    /// while CR3 names one (see boot/toro_boot.h). Harmless everywhere else.
    public static let pml4: UInt64 = 0x9000
    public static let pdpt: UInt64 = 0x8000
    public static let lowPageTable: UInt64 = 0xA000
    public static let pageDirectories: UInt64 = 0x10000
    public static let maxPageDirectories: UInt64 = 0xF0  // (0x100000 - 0x10000) / 4096
    public static let stacks: UInt64 = 0x100000
    public static let stackSlot: UInt64 = 0x8000
    public static let guardSize: UInt64 = 0x1000
    /// End of the VMM's boot region; the first address a kernel segment may use.
    public static let kernelBase: UInt64 = 0x200000
    /// The whole boot region, `[0, kernelBase)`.
    public static let bootRegion: Range<UInt64> = 0..<kernelBase

    /// The most CPUs a VM may have.
    public static let maxCPUs = Int(TORO_MAX_CPUS)
    /// The most RAM the identity map can cover (page directories for RAM plus the MMIO hole).
    public static let maxMemory: UInt64 = 64 << 30

    /// The usable boot stack of vCPU `index`: `[base, base + size)`.
    public static func stack(cpu index: Int) -> (base: UInt64, size: UInt64) {
        let slot = stacks + UInt64(index) * stackSlot
        return (slot + guardSize, stackSlot - guardSize)
    }
}
