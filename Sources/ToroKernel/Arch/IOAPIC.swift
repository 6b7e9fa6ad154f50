import KernelSupport

/// The I/O APIC: routes device interrupt lines (GSIs) to a vector on a CPU.
///
/// KVM's in-kernel IOAPIC sits at the standard 0xFEC00000. Its registers are
/// reached indirectly: write the register number to IOREGSEL (offset 0x00),
/// then read or write IOWIN (offset 0x10), 32 bits at a time (Intel 82093AA
/// I/O APIC datasheet, 3.0 and 3.2.4). The two steps must not interleave
/// between CPUs, hence the lock.
///
/// The page is mapped uncacheable by the VMM's identity map of the MMIO hole
/// [3 GiB, 4 GiB) (boot/toro_boot.h); if the memory subsystem rebuilds the
/// page tables it must keep this page mapped and uncacheable. Accesses go
/// through the volatile kernel_mmio_* helpers.
public enum IOAPIC {
    /// How a device signals on its line.
    public enum Trigger: Sendable {
        /// One interrupt per rising edge (ISA-style devices).
        case edge
        /// Asserted until the device is serviced (PCI and virtio-mmio lines):
        /// the IOAPIC delivers again if the line is still high after the EOI.
        case level
    }

    /// Which level of the line means "asserted".
    public enum Polarity: Sendable {
        case activeHigh
        case activeLow
    }

    static let base: UInt = 0xFEC0_0000
    private static let selectRegister = base
    private static let windowRegister = base + 0x10
    private static let versionRegister: UInt32 = 0x01
    /// Redirection entry n: two 32-bit registers from 0x10 + 2n (datasheet 3.2.4).
    private static func redirectionRegister(_ gsi: Int) -> UInt32 { 0x10 + 2 * UInt32(gsi) }
    private static let masked: UInt32 = 1 << 16
    private static let levelTriggered: UInt32 = 1 << 15
    private static let activeLow: UInt32 = 1 << 13

    /// Number of interrupt lines (redirection entries): bits 23:16 of the
    /// version register hold the highest entry's index (24 lines on KVM).
    public static var lineCount: Int {
        lock.withLock { _ in Int((read(versionRegister) >> 16) & 0xFF) + 1 }
    }

    /// Routes line `gsi` to `vector` on CPU `cpu` (fixed delivery, physical
    /// destination), and unmasks it unless `masked` is true. Register a handler
    /// for `vector` first (``Interrupts/register(vector:handler:)``).
    public static func route(
        gsi: Int, vector: UInt8, cpu: Int, trigger: Trigger, polarity: Polarity = .activeHigh, masked: Bool = false
    ) {
        let destination = BootInfo.current.apicID(ofCPU: cpu)
        var low = UInt32(vector)  // delivery mode 000 (fixed), destination mode 0 (physical)
        if trigger == .level { low |= levelTriggered }
        if polarity == .activeLow { low |= activeLow }
        if masked { low |= Self.masked }
        lock.withLock { _ in
            checkLine(gsi)
            // Masked while the halves disagree, so no interrupt goes out half-routed.
            write(redirectionRegister(gsi), Self.masked)
            // The destination field, bits 63:56, holds an 8-bit APIC ID:
            // enough for the at most 32 CPUs (APIC IDs 0-31) a Toro VM has.
            write(redirectionRegister(gsi) + 1, destination << 24)
            write(redirectionRegister(gsi), low)
        }
    }

    /// Stops line `gsi` from interrupting, keeping its routing.
    public static func mask(gsi: Int) {
        lock.withLock { _ in
            checkLine(gsi)
            write(redirectionRegister(gsi), read(redirectionRegister(gsi)) | masked)
        }
    }

    /// Lets line `gsi` interrupt again, as routed.
    public static func unmask(gsi: Int) {
        lock.withLock { _ in
            checkLine(gsi)
            write(redirectionRegister(gsi), read(redirectionRegister(gsi)) & ~masked)
        }
    }

    /// The routing of line `gsi` as the IOAPIC holds it: (vector, destination
    /// APIC ID, level-triggered, masked).
    public static func routing(gsi: Int) -> (vector: UInt8, apicID: UInt32, level: Bool, masked: Bool) {
        lock.withLock { _ in
            checkLine(gsi)
            let low = read(redirectionRegister(gsi))
            let high = read(redirectionRegister(gsi) + 1)
            return (UInt8(low & 0xFF), high >> 24, low & levelTriggered != 0, low & masked != 0)
        }
    }

    private static func checkLine(_ gsi: Int) {
        let count = Int((read(versionRegister) >> 16) & 0xFF) + 1
        guard gsi >= 0, gsi < count else {
            Kernel.panic { message in
                message.write("IOAPIC line ")
                message.write(decimal: UInt64(UInt(bitPattern: gsi)))
                message.write(" does not exist (")
                message.write(decimal: UInt64(count))
                message.write(" lines)")
            }
        }
    }

    private static func read(_ register: UInt32) -> UInt32 {
        kernel_mmio_write32(selectRegister, register)
        return kernel_mmio_read32(windowRegister)
    }

    private static func write(_ register: UInt32, _ value: UInt32) {
        kernel_mmio_write32(selectRegister, register)
        kernel_mmio_write32(windowRegister, value)
    }

    /// Serialises the select-then-access pairs between CPUs.
    private static let lock = SpinLock<Void>(())
}
