import KernelSupport

/// Inter-processor interrupts: one CPU interrupting another.
///
/// Sent through the local APIC's interrupt command register, which in x2APIC
/// mode is a single 64-bit MSR: destination APIC ID in bits 63:32, the
/// vector in bits 7:0, fixed delivery (bits 10:8 = 0), physical destination
/// (bit 11 = 0), level assert (bit 14), edge-triggered (Intel SDM vol. 3A,
/// 10.12.9 and 10.6.1). One `wrmsr`, no waiting: x2APIC has no
/// delivery-status bit to poll.
public enum IPI {
    /// The vector of ``wake(cpu:)``. Its entry stub only acknowledges the
    /// interrupt: the point is that the CPU leaves `hlt`.
    public static let wakeVector: UInt8 = 0xF0

    private static let levelAssert: UInt64 = 1 << 14

    /// Interrupts CPU `cpu` (an index, 0 ..< ``BootInfo/cpuCount``; it may be
    /// this CPU) on `vector`, whose handler must be registered with
    /// ``Interrupts/register(vector:handler:)``. The target takes it once its
    /// interrupts are enabled, that is, at its next ``Interrupts/enableAndHalt()``.
    /// Every CPU is online (its local APIC accepting IPIs) by the time the
    /// application's `main` runs; an IPI sent to a CPU before then is lost.
    public static func send(vector: UInt8, to cpu: Int) {
        let bootInfo = BootInfo.current
        guard cpu >= 0, cpu < bootInfo.cpuCount else {
            Kernel.panic { message in
                message.write("IPI to cpu ")
                message.write(decimal: UInt64(UInt(bitPattern: cpu)))
                message.write(", which does not exist")
            }
        }
        // The VMM makes APIC ID = CPU index; the boot info says so for certain.
        let destination = UInt64(bootInfo.apicID(ofCPU: cpu))
        kernel_wrmsr(LocalAPIC.interruptCommandMSR, destination << 32 | levelAssert | UInt64(vector))
    }

    /// Wakes CPU `cpu` from ``Interrupts/enableAndHalt()``, or makes its next
    /// one return at once if it is not halted yet. Nothing else happens on it.
    public static func wake(cpu: Int) {
        send(vector: wakeVector, to: cpu)
    }
}
