import KernelSupport

/// A virtio-mmio transport window (virtio 1.2 §4.2.2, version 2 "modern"
/// layout): 32-bit registers at fixed offsets, the device's configuration
/// space from 0x100. Every access goes through the volatile kernel_mmio_*
/// helpers; the window lies in the uncacheable MMIO hole.
public struct VirtioMMIO {
    /// Public for guests that drive a device themselves (Tests/Guests/Hostile).
    public enum Register {
        public static let magicValue: UInt = 0x000
        public static let version: UInt = 0x004
        public static let deviceID: UInt = 0x008
        public static let deviceFeatures: UInt = 0x010
        public static let deviceFeaturesSel: UInt = 0x014
        public static let driverFeatures: UInt = 0x020
        public static let driverFeaturesSel: UInt = 0x024
        public static let queueSel: UInt = 0x030
        public static let queueNumMax: UInt = 0x034
        public static let queueNum: UInt = 0x038
        public static let queueReady: UInt = 0x044
        public static let queueNotify: UInt = 0x050
        public static let interruptStatus: UInt = 0x060
        public static let interruptACK: UInt = 0x064
        public static let status: UInt = 0x070
        public static let queueDescLow: UInt = 0x080
        public static let queueDescHigh: UInt = 0x084
        public static let queueDriverLow: UInt = 0x090
        public static let queueDriverHigh: UInt = 0x094
        public static let queueDeviceLow: UInt = 0x0A0
        public static let queueDeviceHigh: UInt = 0x0A4
        public static let config: UInt = 0x100
    }

    /// §2.1 device status bits.
    public enum Status {
        public static let acknowledge: UInt32 = 1
        public static let driver: UInt32 = 2
        public static let driverOK: UInt32 = 4
        public static let featuresOK: UInt32 = 8
        public static let failed: UInt32 = 128
    }

    /// "virt" in little-endian.
    public static let magic: UInt32 = 0x7472_6976

    let base: UInt

    func read(_ register: UInt) -> UInt32 { kernel_mmio_read32(base + register) }
    func write(_ register: UInt, _ value: UInt32) { kernel_mmio_write32(base + register, value) }
    func configByte(_ offset: UInt) -> UInt8 { kernel_mmio_read8(base + Register.config + offset) }

    /// Whether the window holds a version-2 virtio-mmio device with `deviceID`.
    func isDevice(_ deviceID: UInt32) -> Bool {
        read(Register.magicValue) == Self.magic && read(Register.version) == 2 && read(Register.deviceID) == deviceID
    }

    /// The 64 feature bits the device offers (§4.2.2: two 32-bit halves).
    var deviceFeatures: UInt64 {
        write(Register.deviceFeaturesSel, 0)
        let low = UInt64(read(Register.deviceFeatures))
        write(Register.deviceFeaturesSel, 1)
        return low | UInt64(read(Register.deviceFeatures)) << 32
    }

    func setDriverFeatures(_ features: UInt64) {
        write(Register.driverFeaturesSel, 0)
        write(Register.driverFeatures, UInt32(truncatingIfNeeded: features))
        write(Register.driverFeaturesSel, 1)
        write(Register.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
    }

    /// §4.2.3.2: tells the device where queue `index`'s three parts are and enables it.
    func enableQueue(_ index: Int, _ queue: Virtqueue) {
        write(Register.queueSel, UInt32(index))
        write(Register.queueNum, UInt32(queue.size))
        write(Register.queueDescLow, UInt32(truncatingIfNeeded: queue.descriptors))
        write(Register.queueDescHigh, UInt32(truncatingIfNeeded: UInt64(queue.descriptors) >> 32))
        write(Register.queueDriverLow, UInt32(truncatingIfNeeded: queue.available))
        write(Register.queueDriverHigh, UInt32(truncatingIfNeeded: UInt64(queue.available) >> 32))
        write(Register.queueDeviceLow, UInt32(truncatingIfNeeded: queue.used))
        write(Register.queueDeviceHigh, UInt32(truncatingIfNeeded: UInt64(queue.used) >> 32))
        write(Register.queueReady, 1)
    }

    /// The largest size the device allows for queue `index` (0: the queue does not exist).
    func maxQueueSize(_ index: Int) -> Int {
        write(Register.queueSel, UInt32(index))
        return Int(read(Register.queueNumMax))
    }

    func notify(_ index: Int) { write(Register.queueNotify, UInt32(index)) }
}
