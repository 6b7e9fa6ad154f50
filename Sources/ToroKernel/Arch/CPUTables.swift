import KernelSupport

/// Each CPU's own GDT and TSS, and the interrupt stacks its TSS names.
///
/// The VMM enters every vCPU with one shared boot GDT and an empty TSS. Each
/// CPU switches to a GDT of its own (null, 64-bit code, data, a 16-byte TSS
/// descriptor, then the DPL-3 data and code of kvm_pvm's native mode, at the
/// boot GDT's selectors) whose TSS holds that CPU's interrupt stack table
/// (IST, Intel SDM vol. 3A, 6.14.5).
///
/// **Every gate in the IDT switches to an IST stack, where the host allows
/// it.** Swift cannot be told to stay out of the 128-byte red zone below RSP
/// (C can, with `-mno-red-zone`; Swift has no such switch), so compiled Swift
/// code keeps live data there. An exception delivered on the interrupted
/// stack would push its frame right over that data, and a stack overflow
/// would have no stack left for its report. With an IST slot in every gate
/// the CPU always switches to a fresh stack first.
///
/// In kvm_pvm's native mode a gate with an IST slot triple-faults, so there
/// the gates have none: see ``Interrupts`` for why interrupts are still safe
/// (they only arrive inside out-of-line assembly), and ``Exceptions`` for
/// what that costs the crash reports (a stack overflow's is lost).
///
/// The stacks are static storage (KernelStorage.c), 16 KiB each, without
/// guard pages: the memory subsystem can move them to guarded stacks later.
enum CPUTables {
    /// Builds CPU `cpu`'s GDT and TSS and switches to them: `lgdt`, CS and the
    /// data segments reloaded, `ltr` (not in native mode). Call first thing at
    /// entry: reloading GS clears the GS base, which
    /// ``CPULocal/install(index:)`` then sets.
    static func install(cpu: Int) {
        let tables = kernel_cpu_tables_block(UInt32(cpu))
        let gdt = kernel_cpu_tables_gdt(tables)
        let tss = kernel_cpu_tables_tss(tables)
        // Slots 1 ... KERNEL_IST_COUNT (a range, not allCases: that would
        // allocate an array, and the heap does not exist yet).
        for slot in 1...KERNEL_IST_COUNT {
            kernel_tss_set_ist(tables, slot, UInt64(kernel_interrupt_stack_top(UInt32(cpu), slot)))
        }
        kernel_tss_set_no_io_bitmap(tables)

        gdt[0] = 0
        gdt[Int(KERNEL_SELECTOR_CODE) / 8] = Descriptors.code64
        gdt[Int(KERNEL_SELECTOR_DATA) / 8] = Descriptors.data
        let descriptor = Descriptors.taskState(base: UInt64(tss), limit: KERNEL_TSS_SIZE - 1)
        gdt[Int(KERNEL_SELECTOR_TSS) / 8] = descriptor.low
        gdt[Int(KERNEL_SELECTOR_TSS) / 8 + 1] = descriptor.high
        gdt[Int(KERNEL_SELECTOR_NATIVE_DATA) / 8] = Descriptors.nativeData
        gdt[Int(KERNEL_SELECTOR_NATIVE_CODE) / 8] = Descriptors.nativeCode64
        let code = NativeMode.codeSelectorOfThisCPU
        let native = code & 3 == 3
        kernel_load_cpu_tables(
            gdt, UInt16(KERNEL_GDT_ENTRIES * 8 - 1), native ? 0 : UInt16(KERNEL_SELECTOR_TSS), code,
            native ? UInt16(KERNEL_SELECTOR_NATIVE_DATA) : UInt16(KERNEL_SELECTOR_DATA))
    }
}

/// The interrupt stack table slots every CPU's TSS fills, and what each is for.
///
/// Separate stacks for the double fault and the NMI, because those can arrive
/// while another handler is running on its stack; one for all other
/// exceptions; one for external interrupts and IPIs, which never nest (the
/// gates clear IF). An exception inside an exception handler restarts the
/// exception stack from the top, which is fine only because every exception
/// ends the VM (see ``Exceptions``).
enum InterruptStack: Int {
    case doubleFault = 1
    case nmi = 2
    case exception = 3
    case interrupt = 4

    /// The slot the gate for `vector` uses.
    static func forVector(_ vector: UInt8) -> InterruptStack {
        switch vector {
        case 2: .nmi
        case 8: .doubleFault
        case 0..<32: .exception
        default: .interrupt
        }
    }
}
