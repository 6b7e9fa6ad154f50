import KernelSupport
import ToroKernel

/// A guest that misbehaves on purpose, so that the host tests can check that
/// toro-vmm reports each case clearly and never crashes itself.
///
/// `mode=` on the kernel command line selects the misdeed:
/// - `triple-fault`: loads an empty IDT (limit 0), then touches page 0, which is
///   unmapped: the #PF finds no gate (#GP), nor does the #GP (#DF), nor the #DF,
///   which is a triple fault. (With the kernel's IDT the #PF would be reported.)
/// - `bad-exit`: writes 300 to the exit port (statuses are 0-255).
/// - `bad-console`: sends malformed console descriptors, then exits 0 if it is still running.
/// - `stray-io`: pokes ports and MMIO addresses where no device lives, then exits 0.
/// - `virtio-probe`: reads the identification registers and the MAC address of the
///   virtio-mmio device that `--net` puts at 0xD1000000, prints them, then exits 0.
/// - `spin`: busy-loops forever (for --timeout and signal tests).
/// - `halt`: halts forever with interrupts off (the VMM must still be able to stop it).
@main
struct Misbehave {
    static func main() {
        let mode = option("mode", in: BootInfo.current.commandLine) ?? "none"
        print("misbehave: \(mode)")
        Console.flush()
        switch mode {
        case "triple-fault":
            kernel_load_idt(0, 0)
            UnsafeMutablePointer<UInt64>(bitPattern: 0x10)!.pointee = 1
        case "bad-exit":
            kernel_outl(UInt16(TORO_PORT_EXIT), 300)
        case "bad-console":
            badConsoleWrites()
            print("misbehave: still running")
        case "stray-io":
            strayIO()
            print("misbehave: still running")
        case "virtio-probe":
            virtioProbe()
        case "spin":
            while true { kernel_pause() }
        case "halt":
            kernel_cli()
            while true { kernel_hlt() }
        default:
            print("misbehave: unknown mode \(mode)")
            Kernel.exit(status: 1)
        }
    }

    /// Descriptors the VMM must refuse: outside RAM, naming bytes outside RAM, and too long.
    static func badConsoleWrites() {
        kernel_outl(UInt16(TORO_PORT_CONSOLE), 0xFFFF_FFF0)
        let descriptor = UnsafeMutablePointer<toro_console_write>.allocate(capacity: 1)
        descriptor.pointee = toro_console_write(address: 0x7FFF_FFFF_0000, length: 16, reserved: 0)
        kernel_outl(UInt16(TORO_PORT_CONSOLE), UInt32(UInt(bitPattern: descriptor)))
        descriptor.pointee = toro_console_write(address: 0x200000, length: 1 << 30, reserved: 0)
        kernel_outl(UInt16(TORO_PORT_CONSOLE), UInt32(UInt(bitPattern: descriptor)))
        descriptor.deallocate()
    }

    /// Writes and reads where nothing answers: ports and the MMIO hole.
    static func strayIO() {
        kernel_outb(0x80, 0x42)
        kernel_outl(0x1234, 0xDEAD_BEEF)
        let value = kernel_inb(0x1235)
        // Volatile accessors: a plain store and load would be folded by the compiler.
        let mmio: UInt = 0xD000_0000
        kernel_mmio_write32(mmio, 0x1234_5678)
        let read = kernel_mmio_read32(mmio)
        print("misbehave: port read 0x\(String(value, radix: 16)), mmio read 0x\(String(read, radix: 16))")
    }

    /// The virtio-mmio registers at the window toro-vmm uses for `--net`.
    static func virtioProbe() {
        let base: UInt = 0xD100_0000
        func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
        let magic = kernel_mmio_read32(base)
        let version = kernel_mmio_read32(base + 0x4)
        let device = kernel_mmio_read32(base + 0x8)
        var mac: [String] = []
        for i in 0..<6 {
            let byte = kernel_mmio_read8(base + 0x100 + UInt(i))
            mac.append((byte < 16 ? "0" : "") + String(byte, radix: 16))
        }
        print("virtio: magic \(hex(magic)) version \(version) device \(device)")
        print("virtio: mac \(mac.joined(separator: ":"))")
    }

    /// The value of `key=value` in the command line.
    static func option(_ key: String, in commandLine: String) -> String? {
        for word in commandLine.split(separator: " ") where word.hasPrefix(key + "=") {
            return String(word.dropFirst(key.count + 1))
        }
        return nil
    }
}
