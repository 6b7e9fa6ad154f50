import CKVM

/// The boot information the VMM hands to the kernel (struct toro_boot_info in boot/toro_boot.h).
public struct BootInfo: Sendable, Equatable {
    public struct Region: Sendable, Equatable {
        public var base: UInt64
        public var length: UInt64
        public var type: UInt32
        public init(base: UInt64, length: UInt64, type: UInt32) {
            self.base = base
            self.length = length
            self.type = type
        }
    }

    /// One device in `toro_boot_info.devices` (struct toro_device).
    public struct Device: Sendable, Equatable {
        public var type: UInt32
        /// The GSI of its interrupt on the IOAPIC.
        public var irq: UInt32
        public var base: UInt64
        public var size: UInt64
        /// `TORO_DEVICE_FLAG_*` bits.
        public var flags: UInt32
        public init(type: UInt32, irq: UInt32, base: UInt64, size: UInt64, flags: UInt32 = 0) {
            self.type = type
            self.irq = irq
            self.base = base
            self.size = size
            self.flags = flags
        }
    }

    public var cpuCount: Int
    public var memorySize: UInt64
    public var tscKHz: UInt64
    public var commandLine: String
    public var memoryMap: [Region]
    /// The VMM's devices, in the order the kernel should find them.
    public var devices: [Device] = []

    /// Boot information for `memory` and a kernel that occupies `kernelRanges`.
    public init(cpuCount: Int, memory: GuestMemory, kernelRanges: [Range<UInt64>], tscKHz: UInt64, commandLine: String) {
        self.cpuCount = cpuCount
        self.memorySize = memory.size
        self.tscKHz = tscKHz
        self.commandLine = commandLine
        self.memoryMap = BootInfo.memoryMap(regions: memory.regions, kernel: kernelRanges)
    }

    /// Splits RAM into the boot region, the kernel's pages and usable memory, in address order.
    public static func memoryMap(regions: [GuestMemoryRegion], kernel: [Range<UInt64>]) -> [Region] {
        let page: UInt64 = 4096
        var reserved: [(Range<UInt64>, UInt32)] = [(BootLayout.bootRegion, TORO_MEMORY_BOOT)]
        for range in kernel {
            let start = range.lowerBound / page * page
            let end = (range.upperBound + page - 1) / page * page
            reserved.append((start..<end, TORO_MEMORY_KERNEL))
        }
        reserved.sort { $0.0.lowerBound < $1.0.lowerBound }
        var map: [Region] = []
        func append(_ base: UInt64, _ end: UInt64, _ type: UInt32) {
            guard end > base else { return }
            if let last = map.last, last.type == type, last.base + last.length == base {
                map[map.count - 1].length += end - base
            } else {
                map.append(Region(base: base, length: end - base, type: type))
            }
        }
        for region in regions {
            var cursor = region.guestBase
            for (range, type) in reserved where range.upperBound > region.guestBase && range.lowerBound < region.guestEnd {
                let start = max(range.lowerBound, cursor)
                append(cursor, start, TORO_MEMORY_USABLE)
                let end = min(range.upperBound, region.guestEnd)
                append(start, end, type)
                cursor = max(cursor, end)
            }
            append(cursor, region.guestEnd, TORO_MEMORY_USABLE)
        }
        return map
    }

    /// Why boot information cannot be written.
    public enum Problem: Error, Equatable, CustomStringConvertible {
        case commandLineTooLong(Int)
        case tooManyRegions(Int)
        case tooManyCPUs(Int)
        case tooManyDevices(Int)
        public var description: String {
            switch self {
            case let .commandLineTooLong(n): return "command line is \(n) bytes; at most \(TORO_CMDLINE_MAX - 1) fit"
            case let .tooManyRegions(n): return "memory map has \(n) regions; at most \(TORO_MAX_MEMORY_REGIONS) fit"
            case let .tooManyCPUs(n): return "\(n) CPUs requested; at most \(TORO_MAX_CPUS) are supported"
            case let .tooManyDevices(n): return "\(n) devices configured; at most \(TORO_MAX_DEVICES) fit"
            }
        }
    }

    /// The C structure, fully filled in.
    public func encoded() throws(Problem) -> toro_boot_info {
        let command = Array(commandLine.utf8)
        guard command.count < Int(TORO_CMDLINE_MAX) else { throw .commandLineTooLong(command.count) }
        guard memoryMap.count <= Int(TORO_MAX_MEMORY_REGIONS) else { throw .tooManyRegions(memoryMap.count) }
        guard cpuCount <= Int(TORO_MAX_CPUS) else { throw .tooManyCPUs(cpuCount) }
        guard devices.count <= Int(TORO_MAX_DEVICES) else { throw .tooManyDevices(devices.count) }
        var info = toro_boot_info()
        info.magic = TORO_BOOT_MAGIC
        info.version = TORO_BOOT_VERSION
        info.size = UInt32(MemoryLayout<toro_boot_info>.size)
        info.flags = TORO_BOOT_FLAG_CONSOLE_PORT
        info.cpu_count = UInt32(cpuCount)
        info.memory_size = memorySize
        info.tsc_khz = tscKHz
        info.exit_port = UInt16(TORO_PORT_EXIT)
        info.console_port = UInt16(TORO_PORT_CONSOLE)
        info.serial_port = UInt16(TORO_PORT_COM1)
        info.memory_region_count = UInt32(memoryMap.count)
        info.device_count = UInt32(devices.count)
        info.cmdline_length = UInt32(command.count)
        withUnsafeMutableBytes(of: &info.memory) { raw in
            let slots = raw.bindMemory(to: toro_memory_region.self)
            for (i, region) in memoryMap.enumerated() {
                slots[i] = toro_memory_region(base: region.base, length: region.length, type: region.type, reserved: 0)
            }
        }
        withUnsafeMutableBytes(of: &info.cpus) { raw in
            let slots = raw.bindMemory(to: toro_cpu_info.self)
            for cpu in 0..<cpuCount {
                let stack = BootLayout.stack(cpu: cpu)
                slots[cpu] = toro_cpu_info(apic_id: UInt32(cpu), reserved: 0, stack_base: stack.base, stack_size: stack.size)
            }
        }
        withUnsafeMutableBytes(of: &info.devices) { raw in
            let slots = raw.bindMemory(to: toro_device.self)
            for (i, device) in devices.enumerated() {
                slots[i] = toro_device(
                    type: device.type, irq: device.irq, base: device.base, size: device.size, flags: device.flags, reserved: 0)
            }
        }
        withUnsafeMutableBytes(of: &info.cmdline) { raw in
            for (i, byte) in command.enumerated() { raw[i] = byte }
        }
        return info
    }

    /// Writes the structure at ``BootLayout/bootInfo``.
    public func write(into memory: GuestMemory) throws(VMMError) {
        let info: toro_boot_info
        do { info = try encoded() } catch { throw .config(error.description) }
        do { try memory.store(info, at: GuestAddress(BootLayout.bootInfo)) } catch { throw .memory(error) }
    }
}
