import KernelSupport

/// Whether the kernel runs in kvm_pvm's native mode, and the selectors that follow.
///
/// On a kvm_pvm host the VMM may opt the vCPUs in to native execution
/// (boot/toro_boot.h): the kernel then runs at hardware privilege level 3,
/// ordinary instructions at full speed and each privileged one as a trap to
/// the host (about 15 µs). The same image runs there, under kvm_pvm's
/// instruction emulator and on hardware KVM; what differs is decided here,
/// once, from the CS the kernel starts with:
///
/// - the selectors: the DPL-3 descriptors at 0x33/0x2b instead of 0x08/0x10
///   (``CPUTables``), also written into every interrupt frame before `iretq`;
/// - the IDT: gates at DPL 3 and without IST stacks, which this host does not
///   support, so exceptions and interrupts arrive on the interrupted stack
///   (``InterruptDescriptorTable``; for why that is safe, see
///   ``Interrupts``);
/// - no TSS is loaded, it would serve nothing.
public enum NativeMode {
    /// True in kvm_pvm's native mode. Every CPU starts in the same mode.
    public static var isActive: Bool {
        kernel_running_code_selector() & 3 == 3
    }

    /// On CPU 0, first thing at entry: records the selectors this kernel runs
    /// with, for the descriptor tables and the interrupt return path.
    static func detect() {
        if kernel_read_cs() & 3 == 3 {
            kernel_set_running_selectors(UInt16(KERNEL_SELECTOR_NATIVE_CODE), UInt16(KERNEL_SELECTOR_NATIVE_DATA))
        }
    }

    /// The code selector (and privilege level) of this CPU, read from CS:
    /// for the APs, which may start before CPU 0 has run ``detect()``.
    static var codeSelectorOfThisCPU: UInt16 {
        kernel_read_cs() & 3 == 3 ? UInt16(KERNEL_SELECTOR_NATIVE_CODE) : UInt16(KERNEL_SELECTOR_CODE)
    }
}
