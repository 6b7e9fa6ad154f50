import KernelSupport

/// The processor instructions the kernel uses, by name.
///
/// Each is a `static inline` function in KernelSupport.h (Swift has no inline
/// assembly); these wrappers only give them Swift names and types.
public enum CPU {
    /// Hints that the caller is in a spin-wait loop (`pause`).
    ///
    /// Saves power on the core, avoids a memory-order mis-speculation when the
    /// loop exits, and under KVM lets pause-loop exiting notice a spinning vCPU.
    @inline(__always)
    public static func pause() {
        kernel_pause()
    }

    /// Reads the time-stamp counter (`rdtsc`); it ticks at the rate in ``BootInfo/tscKHz``.
    @inline(__always)
    public static func timestamp() -> UInt64 {
        kernel_rdtsc()
    }

    /// Stops this CPU for good: interrupts off, then `hlt`.
    ///
    /// The loop guards against a non-maskable interrupt waking the CPU. Under
    /// the VMM each `hlt` is a VM exit, counted as such in its statistics.
    public static func haltForever() -> Never {
        while true {
            kernel_cli()
            kernel_hlt()
        }
    }

    /// Runs `cpuid` for `leaf` (and `subleaf`). Always a VM exit, so callers cache what they learn.
    static func identify(leaf: UInt32, subleaf: UInt32 = 0) -> kernel_cpuid_result {
        kernel_cpuid(leaf, subleaf)
    }

    /// Whether the CPU implements `rdrand` (CPUID.01H:ECX bit 30).
    static let hasRDRAND: Bool = (identify(leaf: 1).ecx & (1 << 30)) != 0
}
