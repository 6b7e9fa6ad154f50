import KernelSupport

/// Data private to one CPU, reached through the GS segment base.
///
/// Each CPU points GS at its own `kernel_cpu_local` block (static storage in
/// KernelStorage.c) once, first thing at entry; after that a single
/// `mov %gs:0` finds the block without a lock or a lookup.
enum CPULocal {
    /// Points this CPU's GS base at block `index`. Call once, before anything
    /// that uses ``current`` (the console's putchar path does).
    static func install(index: Int) {
        let block = kernel_cpu_local_block(UInt32(index))
        block.pointee.self_pointer = block
        block.pointee.index = UInt32(index)
        block.pointee.line_length = 0
        kernel_wrmsr(KERNEL_MSR_GS_BASE, UInt64(UInt(bitPattern: block)))
    }

    /// This CPU's block.
    @inline(__always)
    static var current: UnsafeMutablePointer<kernel_cpu_local> {
        kernel_cpu_local_current()
    }

    /// This CPU's index (0 is the bootstrap processor).
    static var index: Int {
        Int(current.pointee.index)
    }
}

extension Kernel {
    /// The index of the CPU running the caller (0 is the bootstrap processor).
    public static var currentCPU: Int { CPULocal.index }

    /// The address of this CPU's per-CPU block (reached through GS).
    public static var currentCPUBlockAddress: UInt { UInt(bitPattern: CPULocal.current) }
}
