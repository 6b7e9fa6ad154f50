import KernelSupport
import Synchronization

/// What the VMM tells the kernel about the machine: `struct toro_boot_info`
/// from boot/toro_boot.h, read in place and never written.
public struct BootInfo {
    private let raw: UnsafePointer<toro_boot_info>

    private init(raw: UnsafePointer<toro_boot_info>) {
        self.raw = raw
    }

    /// This machine's boot info. Available to the application and to every
    /// CPU once it is online (the bootstrap processor publishes it first).
    public static var current: BootInfo {
        BootInfo(raw: UnsafePointer(bitPattern: published.load(ordering: .acquiring))!)
    }

    /// ``current`` once CPU 0 has published it, else nil: for crash reports,
    /// which may come before that.
    static var publishedIfAny: BootInfo? {
        UnsafePointer<toro_boot_info>(bitPattern: published.load(ordering: .acquiring)).map { BootInfo(raw: $0) }
    }

    /// Number of CPUs (vCPUs) in the machine.
    public var cpuCount: Int { Int(raw.pointee.cpu_count) }

    /// Bytes of RAM.
    public var memorySize: UInt64 { raw.pointee.memory_size }

    /// Time-stamp counter rate in kHz; 0 if the VMM could not tell.
    public var tscKHz: UInt64 { raw.pointee.tsc_khz }

    /// The kernel command line given to the VMM (empty if none).
    public var commandLine: String {
        String(decoding: commandLineBytes, as: UTF8.self)
    }

    /// The command line's bytes in the boot info, without copying them.
    public var commandLineBytes: UnsafeBufferPointer<UInt8> {
        let length = min(Int(raw.pointee.cmdline_length), Int(TORO_CMDLINE_MAX) - 1)
        return UnsafeBufferPointer(start: kernel_boot_cmdline(raw), count: length)
    }

    /// The local APIC id of CPU `index` (0 ..< ``cpuCount``).
    public func apicID(ofCPU index: Int) -> UInt32 {
        kernel_boot_cpu(raw, UInt32(index)).pointee.apic_id
    }

    /// CPU `index`'s boot stack: its lowest usable byte and size. The VMM
    /// leaves the page below `base` unmapped, as a guard.
    func bootStack(ofCPU index: Int) -> (base: UInt, size: UInt) {
        let cpu = kernel_boot_cpu(raw, UInt32(index)).pointee
        return (UInt(cpu.stack_base), UInt(cpu.stack_size))
    }

    /// A device the VMM lists: its kind (`TORO_DEVICE_VIRTIO_MMIO`), the
    /// IOAPIC line it interrupts on and its guest-physical MMIO window.
    public struct Device: Sendable {
        public var type: UInt32
        public var irq: Int
        public var base: UInt
        public var size: UInt
        /// The device pulses its line once per event, so its driver need not
        /// acknowledge an interrupt for the next one to come
        /// (TORO_DEVICE_FLAG_PULSED_INTERRUPT).
        public var interruptIsPulsed: Bool
    }

    /// The devices the VMM lists, in its order (empty without any).
    public var devices: [Device] {
        let count = min(Int(raw.pointee.device_count), Int(TORO_MAX_DEVICES))
        var result: [Device] = []
        for index in 0..<count {
            let device = kernel_boot_device(raw, UInt32(index)).pointee
            if device.type == TORO_DEVICE_NONE { continue }
            result.append(
                Device(
                    type: device.type, irq: Int(device.irq), base: UInt(device.base), size: UInt(device.size),
                    interruptIsPulsed: device.flags & TORO_DEVICE_FLAG_PULSED_INTERRUPT != 0))
        }
        return result
    }

    /// Whether the VMM's paravirtual console port exists.
    var hasConsolePort: Bool { raw.pointee.flags & TORO_BOOT_FLAG_CONSOLE_PORT != 0 }
    var exitPort: UInt16 { raw.pointee.exit_port }
    var consolePort: UInt16 { raw.pointee.console_port }
    var serialPort: UInt16 { raw.pointee.serial_port }

    var memoryRegionCount: Int { Int(raw.pointee.memory_region_count) }

    func memoryRegion(_ index: Int) -> toro_memory_region {
        kernel_boot_memory_region(raw, UInt32(index)).pointee
    }

    // MARK: - Validation

    /// The boot info at `address` if it is one this kernel understands.
    ///
    /// Otherwise writes one line saying why to COM1 (the boot info's own
    /// console settings cannot be trusted) and returns nil.
    static func validated(address: UInt) -> BootInfo? {
        guard address != 0, address % 8 == 0, let raw = UnsafePointer<toro_boot_info>(bitPattern: address) else {
            report(.badAddress, at: address)
            return nil
        }
        if let problem = BootInfoProblem(raw.pointee) {
            report(problem, at: address)
            return nil
        }
        return BootInfo(raw: raw)
    }

    private static func report(_ problem: BootInfoProblem, at address: UInt) {
        var serial = SerialWriter(port: UInt16(TORO_PORT_COM1))
        serial.write("toro: bad boot info at ")
        serial.write(hex: UInt64(address))
        serial.write(": ")
        problem.describe(to: &serial)
        serial.write("\n")
    }

    /// Makes `self` ``current`` for every CPU.
    func publish() {
        published.store(UInt(bitPattern: raw), ordering: .releasing)
    }
}

/// Address of the validated boot info; 0 until the bootstrap processor publishes it.
private let published = Atomic<UInt>(0)

/// Why a boot info is unusable; checked in this order.
enum BootInfoProblem {
    case badAddress
    case magic(UInt64)
    case version(UInt32)
    case size(UInt32)
    case cpuCount(UInt32)
    case memoryRegionCount(UInt32)

    /// The first problem with `info`, or nil if there is none.
    init?(_ info: toro_boot_info) {
        if info.magic != TORO_BOOT_MAGIC {
            self = .magic(info.magic)
        } else if info.version != TORO_BOOT_VERSION {
            self = .version(info.version)
        } else if info.size != UInt32(MemoryLayout<toro_boot_info>.size) {
            self = .size(info.size)
        } else if info.cpu_count == 0 || info.cpu_count > TORO_MAX_CPUS {
            self = .cpuCount(info.cpu_count)
        } else if info.memory_region_count > TORO_MAX_MEMORY_REGIONS {
            self = .memoryRegionCount(info.memory_region_count)
        } else {
            return nil
        }
    }

    /// Writes e.g. `version 2, expected 1`, without allocating.
    func describe(to sink: inout some TextSink) {
        switch self {
        case .badAddress:
            sink.write("not a valid address")
        case .magic(let magic):
            sink.write("magic ")
            sink.write(hex: magic)
            sink.write(", expected ")
            sink.write(hex: TORO_BOOT_MAGIC)
        case .version(let version):
            sink.write("version ")
            sink.write(decimal: UInt64(version))
            sink.write(", expected ")
            sink.write(decimal: UInt64(TORO_BOOT_VERSION))
        case .size(let size):
            sink.write("size ")
            sink.write(decimal: UInt64(size))
            sink.write(", expected ")
            sink.write(decimal: UInt64(MemoryLayout<toro_boot_info>.size))
        case .cpuCount(let count):
            sink.write("cpu_count ")
            sink.write(decimal: UInt64(count))
            sink.write(", expected 1 to ")
            sink.write(decimal: UInt64(TORO_MAX_CPUS))
        case .memoryRegionCount(let count):
            sink.write("memory_region_count ")
            sink.write(decimal: UInt64(count))
            sink.write(", expected at most ")
            sink.write(decimal: UInt64(TORO_MAX_MEMORY_REGIONS))
        }
    }
}
