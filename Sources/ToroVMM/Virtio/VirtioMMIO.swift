import CKVM
import Glibc

// MARK: - Device side

/// Why a virtio device or its transport stopped serving the driver. The transport
/// answers every case by setting DEVICE_NEEDS_RESET and reporting the first one.
public enum VirtioDeviceError: Error, Equatable, CustomStringConvertible {
    /// A queue's rings or descriptors broke the rules of §2.7.
    case queue(index: Int, VirtqueueError)
    /// The driver used a queue before FEATURES_OK (§3.1.1: queues are set up after it).
    case queueBeforeFeaturesOK(register: String)
    /// The driver notified a queue before DRIVER_OK, or a queue that is not ready.
    case notifyNotReady(queue: Int)
    /// The driver wrote a queue register after DRIVER_OK: the device already runs
    /// the queues as they were (§3.1.1: queues are set up before DRIVER_OK).
    case queueAfterDriverOK(register: String)
    /// The driver cleared status bits without a reset (§2.1.2: it must not).
    case statusCleared(from: UInt32, to: UInt32)
    /// A guest memory access the queue checks should have made impossible was refused.
    case memory(queue: Int, GuestMemoryError)
    /// A virtio-net buffer has the wrong shape for its queue (§5.1.6).
    case network(VirtioNetError)

    public var description: String {
        switch self {
        case let .queue(index, error): return "queue \(index): \(error)"
        case let .queueBeforeFeaturesOK(register): return "driver wrote \(register) before FEATURES_OK"
        case let .notifyNotReady(queue): return "driver notified queue \(queue) before it was ready and DRIVER_OK was set"
        case let .queueAfterDriverOK(register): return "driver wrote \(register) after DRIVER_OK"
        case let .statusCleared(from, to):
            return "driver cleared device status bits without a reset (0x\(String(from, radix: 16)) to 0x\(String(to, radix: 16)))"
        case let .memory(queue, error): return "queue \(queue): \(error)"
        case let .network(error): return error.description
        }
    }
}

/// What a device is given at DRIVER_OK: the negotiated features, guest memory and
/// the queues the driver set up (nil for a queue the driver left unready).
public struct VirtioActivation {
    public var features: UInt64
    public var memory: GuestMemory
    public var queues: [SplitVirtqueue?]
}

/// A virtio device behind a transport (§2, §3): what it offers and how it runs.
/// The transport does negotiation and queue setup; the device sees only the result.
public protocol VirtioDevice: AnyObject {
    /// The device type (§5: 1 = network card).
    var deviceID: UInt32 { get }
    /// Feature bits offered (§2.2), VIRTIO_F_VERSION_1 included.
    var deviceFeatures: UInt64 { get }
    /// The device-specific configuration space (§4.2.2: at offset 0x100).
    var configSpace: [UInt8] { get }
    var queueCount: Int { get }
    /// The largest size the driver may give `queue`.
    func maxQueueSize(_ queue: Int) -> UInt16
    /// DRIVER_OK was set: start serving.
    func activate(_ activation: VirtioActivation)
    /// Forget the driver: back to the state before negotiation (§2.4).
    func reset()
    /// The driver notified `queue` `count` times (more than once when notifications
    /// add up in an eventfd before the device looks). Returns whether used buffers are
    /// to be signalled.
    func notify(queue: Int, count: UInt64) throws(VirtioDeviceError) -> Bool
    /// Work that does not come from the driver (a frame arrived from the host),
    /// and while busy polling (``setBusyPolling(_:)``) the queues the driver
    /// no longer notifies. Returns whether used buffers are to be signalled.
    func poll() throws(VirtioDeviceError) -> Bool
    /// Buffers the device has returned to the driver so far (used-ring
    /// entries): how the I/O thread tells a poll that found work.
    var buffersUsed: UInt64 { get }
    /// Busy polling on or off: while on, the I/O thread calls ``poll()`` in a
    /// loop, so the device asks the driver for no notifications of the
    /// queues ``poll()`` serves (§2.7.10); turned off, it asks for them again
    /// and looks at those queues once more (a buffer published in between
    /// notified nobody). Returns whether used buffers are to be signalled.
    func setBusyPolling(_ active: Bool) throws(VirtioDeviceError) -> Bool
}

/// The line a transport raises to interrupt the guest: an irqfd, or KVM_IRQ_LINE pulses.
public protocol VirtioInterruptLine: AnyObject {
    func trigger()
}

/// Where a queue's notifications arrive when they do not come as QueueNotify writes
/// the transport sees: a counter the guest's writes add to (an ioeventfd).
public protocol VirtioNotificationSource: AnyObject {
    /// The notifications since the last call, and the count back to 0. Never blocks.
    func take() -> UInt64
}

/// An interrupt line that calls a closure; for tests and for wiring.
public final class ClosureInterruptLine: VirtioInterruptLine {
    private let body: () -> Void
    public init(_ body: @escaping () -> Void) { self.body = body }
    public func trigger() { body() }
}

// MARK: - Transport

/// Constants of virtio 1.2 §2.1 (status) and §6 (reserved feature bits).
public enum Virtio {
    public static let statusAcknowledge: UInt32 = 1
    public static let statusDriver: UInt32 = 2
    public static let statusDriverOK: UInt32 = 4
    public static let statusFeaturesOK: UInt32 = 8
    public static let statusDeviceNeedsReset: UInt32 = 64
    public static let statusFailed: UInt32 = 128
    /// The bits a driver may write (§2.1): every defined one but DEVICE_NEEDS_RESET,
    /// which only the device sets.
    public static let statusDriverBits: UInt32 = statusAcknowledge | statusDriver | statusDriverOK | statusFeaturesOK | statusFailed

    public static let featureVersion1: UInt64 = 1 << 32
    public static let featureIndirectDescriptors: UInt64 = 1 << 28
    public static let featureEventIndex: UInt64 = 1 << 29
}

/// The virtio-mmio register file (virtio 1.2 §4.2.2), modern interface only
/// (Version 2), over one ``VirtioDevice``.
///
/// Pure logic: the MMIO exit path calls ``read(offset:size:)`` and
/// ``write(offset:size:value:)`` with offsets relative to the device's base; a
/// queue whose QueueNotify writes go to an ioeventfd instead has a
/// ``VirtioNotificationSource``, which the I/O thread has served with
/// ``serviceNotifications(queue:)``. Everything runs under one lock, whichever
/// thread calls.
/// Guest mistakes never trap: they set DEVICE_NEEDS_RESET (§2.1.2), which is
/// reported once through `onError` until the driver resets the device. Until
/// then the device ignores every write but a reset (status 0), the selectors
/// and InterruptACK. Accesses that name no register or use the wrong width
/// (registers take aligned 32-bit accesses, §4.2.2), writes to read-only
/// registers and the configuration space, and reads of write-only registers
/// are ignored and counted (``ignoredAccesses``); they are no error.
public final class VirtioMMIOTransport: @unchecked Sendable {
    /// §4.2.2 register offsets.
    public enum Register {
        public static let magicValue = 0x000
        public static let version = 0x004
        public static let deviceID = 0x008
        public static let vendorID = 0x00C
        public static let deviceFeatures = 0x010
        public static let deviceFeaturesSel = 0x014
        public static let driverFeatures = 0x020
        public static let driverFeaturesSel = 0x024
        public static let queueSel = 0x030
        public static let queueNumMax = 0x034
        public static let queueNum = 0x038
        public static let queueReady = 0x044
        public static let queueNotify = 0x050
        public static let interruptStatus = 0x060
        public static let interruptACK = 0x064
        public static let status = 0x070
        public static let queueDescLow = 0x080
        public static let queueDescHigh = 0x084
        public static let queueDriverLow = 0x090
        public static let queueDriverHigh = 0x094
        public static let queueDeviceLow = 0x0A0
        public static let queueDeviceHigh = 0x0A4
        public static let shmSel = 0x0AC
        public static let shmLenLow = 0x0B0
        public static let shmLenHigh = 0x0B4
        public static let shmBaseLow = 0x0B8
        public static let shmBaseHigh = 0x0BC
        public static let configGeneration = 0x0FC
        public static let config = 0x100
    }

    /// "virt" in little-endian (§4.2.2 MagicValue).
    public static let magic: UInt32 = 0x7472_6976
    public static let version: UInt32 = 2
    /// Vendor ID reported to the driver ("TORO", no meaning beyond identification).
    public static let vendor: UInt32 = 0x4F52_4F54
    /// Bytes of MMIO space a device occupies (registers + config space).
    public static let windowSize: UInt64 = 0x200

    // §4.2.2 InterruptStatus bits.
    public static let interruptUsedBuffer: UInt32 = 1
    public static let interruptConfigChange: UInt32 = 2

    /// Per-queue registers as the driver left them.
    struct QueueSetup {
        var size: UInt16 = 0
        var ready = false
        var descriptors: UInt64 = 0
        var driver: UInt64 = 0
        var device: UInt64 = 0
    }

    public let device: any VirtioDevice
    public let memory: GuestMemory
    private let interrupt: any VirtioInterruptLine
    private let onError: (VirtioDeviceError) -> Void
    private let lock = HostLock()

    private var status: UInt32 = 0
    private var deviceFeaturesSel: UInt32 = 0
    private var driverFeaturesSel: UInt32 = 0
    private var driverFeatures: UInt64 = 0
    private var queueSel: UInt32 = 0
    private var queues: [QueueSetup]
    private var interruptStatus: UInt32 = 0
    private var configGeneration: UInt32 = 0
    private var reported = false
    /// Per queue, the counter its notifications arrive in instead of QueueNotify writes.
    private var notificationSources: [Int: any VirtioNotificationSource] = [:]

    /// Every error since the VM started, including the ones not reported.
    public private(set) var errorCount: UInt64 = 0
    /// Register accesses ignored since the VM started (see the type's description),
    /// and notifications that came while the device waited for a reset.
    public private(set) var ignoredAccesses: UInt64 = 0
    /// Interrupts raised.
    public private(set) var interruptCount: UInt64 = 0
    /// The first error since the last reset, if any.
    public private(set) var lastError: VirtioDeviceError?

    /// A transport for `device` over `memory`. `interrupt` is triggered outside the
    /// transport's lock; `onError` is called under it (it must not call back into the
    /// transport), once per failure until the driver resets the device.
    public init(
        device: any VirtioDevice, memory: GuestMemory, interrupt: any VirtioInterruptLine,
        onError: @escaping (VirtioDeviceError) -> Void = { _ in }
    ) {
        self.device = device
        self.memory = memory
        self.interrupt = interrupt
        self.onError = onError
        self.queues = [QueueSetup](repeating: QueueSetup(), count: device.queueCount)
    }

    /// The device status register (§2.1).
    public var deviceStatus: UInt32 { lock.withLock { status } }
    /// Whether the device has given up until the driver resets it.
    public var needsReset: Bool { deviceStatus & Virtio.statusDeviceNeedsReset != 0 }

    // MARK: Reads

    /// The value of a `size`-byte read at `offset`. Registers below 0x100 take only
    /// 32-bit accesses (§4.2.2); other widths and unknown registers read as 0.
    public func read(offset: Int, size: Int) -> UInt64 {
        lock.withLock {
            if offset >= Register.config { return readConfig(offset - Register.config, size: size) }
            guard size == 4, offset & 3 == 0, let value = readRegister(offset) else {
                ignoredAccesses &+= 1
                return 0
            }
            return UInt64(value)
        }
    }

    /// A register's value; nil where no readable register is (reserved offsets and
    /// the write-only registers, which read as 0).
    private func readRegister(_ offset: Int) -> UInt32? {
        switch offset {
        case Register.magicValue: return VirtioMMIOTransport.magic
        case Register.version: return VirtioMMIOTransport.version
        case Register.deviceID: return device.deviceID
        case Register.vendorID: return VirtioMMIOTransport.vendor
        case Register.deviceFeatures:
            // §4.2.2: DeviceFeaturesSel picks the 32-bit window: 0 = bits 0-31, 1 = 32-63.
            switch deviceFeaturesSel {
            case 0: return UInt32(truncatingIfNeeded: device.deviceFeatures)
            case 1: return UInt32(truncatingIfNeeded: device.deviceFeatures >> 32)
            default: return 0
            }
        case Register.queueNumMax:
            guard let index = selectedQueue else { return 0 }
            return UInt32(device.maxQueueSize(index))
        case Register.queueReady:
            guard let index = selectedQueue else { return 0 }
            return queues[index].ready ? 1 : 0
        case Register.interruptStatus: return interruptStatus
        case Register.status: return status
        case Register.shmLenLow, Register.shmLenHigh, Register.shmBaseLow, Register.shmBaseHigh:
            return 0xFFFF_FFFF  // §4.2.2: no shared memory region
        case Register.configGeneration: return configGeneration
        default: return nil
        }
    }

    /// §4.2.2: the device-specific configuration space, 8/16/32-bit little-endian
    /// accesses; bytes past its end read as 0.
    private func readConfig(_ offset: Int, size: Int) -> UInt64 {
        guard size == 1 || size == 2 || size == 4 || size == 8 else {
            ignoredAccesses &+= 1
            return 0
        }
        let bytes = device.configSpace
        var value: UInt64 = 0
        for i in 0..<size where offset + i < bytes.count {
            value |= UInt64(bytes[offset + i]) << (8 * UInt64(i))
        }
        return value
    }

    private var selectedQueue: Int? { queueSel < UInt32(queues.count) ? Int(queueSel) : nil }

    // MARK: Writes

    /// A `size`-byte write of `value` at `offset`. The configuration space is
    /// read-only here (virtio-net has no writable fields); other widths are ignored.
    public func write(offset: Int, size: Int, value: UInt64) {
        var raise = false
        lock.withLock {
            guard offset < Register.config, size == 4, offset & 3 == 0 else {
                ignoredAccesses &+= 1
                return
            }
            raise = writeRegister(offset, UInt32(truncatingIfNeeded: value))
        }
        if raise { signal() }
    }

    /// Returns whether an interrupt is to be raised.
    private func writeRegister(_ offset: Int, _ value: UInt32) -> Bool {
        if status & Virtio.statusDeviceNeedsReset != 0 {
            // §2.1.2: the device waits for a reset; what the driver writes meanwhile
            // would act on state it has already given up (and could activate queues).
            switch offset {
            case Register.deviceFeaturesSel, Register.driverFeaturesSel, Register.queueSel, Register.interruptACK: break
            case Register.status where value == 0: break
            default:
                ignoredAccesses &+= 1
                return false
            }
        }
        switch offset {
        case Register.deviceFeaturesSel: deviceFeaturesSel = value
        case Register.driverFeaturesSel: driverFeaturesSel = value
        case Register.driverFeatures:
            // §3.1.1: features are written before FEATURES_OK and not after.
            guard status & Virtio.statusFeaturesOK == 0 else {
                ignoredAccesses &+= 1
                return false
            }
            switch driverFeaturesSel {
            case 0: driverFeatures = (driverFeatures & ~0xFFFF_FFFF) | UInt64(value)
            case 1: driverFeatures = (driverFeatures & 0xFFFF_FFFF) | (UInt64(value) << 32)
            default: ignoredAccesses &+= 1  // no feature bits beyond 63 (§4.2.2)
            }
        case Register.queueSel: queueSel = value
        case Register.queueNum, Register.queueDescLow, Register.queueDescHigh, Register.queueDriverLow,
            Register.queueDriverHigh, Register.queueDeviceLow, Register.queueDeviceHigh, Register.queueReady:
            return writeQueueRegister(offset, value)
        case Register.queueNotify:
            return notify(queue: Int(value), count: 1)
        case Register.interruptACK:
            interruptStatus &= ~value
        case Register.status:
            return writeStatus(value)
        default:
            ignoredAccesses &+= 1  // read-only or reserved
        }
        return false
    }

    private func writeQueueRegister(_ offset: Int, _ value: UInt32) -> Bool {
        guard status & Virtio.statusFeaturesOK != 0 else {
            return fail(.queueBeforeFeaturesOK(register: registerName(offset)))
        }
        guard status & Virtio.statusDriverOK == 0 else {
            return fail(.queueAfterDriverOK(register: registerName(offset)))
        }
        guard let index = selectedQueue else {
            ignoredAccesses &+= 1  // QueueSel names no queue
            return false
        }
        // §4.2.2: queue registers may change only while QueueReady is 0.
        if offset != Register.queueReady && queues[index].ready {
            ignoredAccesses &+= 1
            return false
        }
        switch offset {
        case Register.queueNum: queues[index].size = UInt16(truncatingIfNeeded: value)
        case Register.queueDescLow: setLow(&queues[index].descriptors, value)
        case Register.queueDescHigh: setHigh(&queues[index].descriptors, value)
        case Register.queueDriverLow: setLow(&queues[index].driver, value)
        case Register.queueDriverHigh: setHigh(&queues[index].driver, value)
        case Register.queueDeviceLow: setLow(&queues[index].device, value)
        case Register.queueDeviceHigh: setHigh(&queues[index].device, value)
        case Register.queueReady:
            guard value == 1 else {
                queues[index].ready = false
                return false
            }
            // Check the layout now, so that the driver hears about it before DRIVER_OK.
            do throws(VirtqueueError) {
                let queue = try makeQueue(index)
                try checkOverlap(queue, index: index)
                queues[index].ready = true
            } catch {
                return fail(.queue(index: index, error))
            }
        default: break
        }
        return false
    }

    /// §2.7: no part of a queue may share bytes with a part of another ready queue
    /// (the device writes its device area, and frames into receive buffers).
    private func checkOverlap(_ queue: SplitVirtqueue, index: Int) throws(VirtqueueError) {
        for other in queues.indices where other != index && queues[other].ready {
            guard let ready = try? makeQueue(other) else { continue }
            for part in queue.parts {
                for otherPart in ready.parts where otherPart.overlaps(part.start, part.length) {
                    throw .ringsOverlap(
                        part: part.name, address: part.start, other: "queue \(other) \(otherPart.name)",
                        otherAddress: otherPart.start)
                }
            }
        }
    }

    private func makeQueue(_ index: Int) throws(VirtqueueError) -> SplitVirtqueue {
        let setup = queues[index]
        var queue = try SplitVirtqueue(
            size: setup.size, maximumSize: device.maxQueueSize(index),
            descriptorTable: GuestAddress(setup.descriptors), availRing: GuestAddress(setup.driver),
            usedRing: GuestAddress(setup.device), memory: memory)
        queue.eventIndex = driverFeatures & Virtio.featureEventIndex != 0
        return queue
    }

    /// §2.1, §3.1.1: the driver's side of initialization, and reset by writing 0.
    /// The driver sets bits and never clears one (§2.1.2) but to reset, or to say it
    /// gave up (FAILED); bits it may not write (DEVICE_NEEDS_RESET, undefined ones)
    /// are ignored.
    private func writeStatus(_ value: UInt32) -> Bool {
        if value == 0 {
            resetLocked()
            return false
        }
        if value & ~Virtio.statusDriverBits != 0 { ignoredAccesses &+= 1 }
        let written = value & Virtio.statusDriverBits
        let cleared = status & Virtio.statusDriverBits & ~written
        if cleared != 0 && written & Virtio.statusFailed == 0 {
            return fail(.statusCleared(from: status, to: written))
        }
        let added = written & ~status
        var newStatus = (status & Virtio.statusDeviceNeedsReset) | written
        if added & Virtio.statusFeaturesOK != 0 {
            // §2.2.2: accept only a subset of what was offered, with VERSION_1 (modern only).
            let offered = device.deviceFeatures
            let acceptable = driverFeatures & ~offered == 0 && driverFeatures & Virtio.featureVersion1 != 0
            if !acceptable { newStatus &= ~Virtio.statusFeaturesOK }
        }
        if newStatus & Virtio.statusDriverOK != 0 && newStatus & Virtio.statusFeaturesOK == 0 {
            // DRIVER_OK never stands without FEATURES_OK (§3.1.1 order): refused when added
            // first, and dropped (the device stops) when a driver giving up with FAILED
            // writes DRIVER_OK but not FEATURES_OK (found by the Virtio fuzz target).
            newStatus &= ~Virtio.statusDriverOK
        }
        status = newStatus
        if added & Virtio.statusDriverOK != 0 && status & Virtio.statusDriverOK != 0 {
            var ready: [SplitVirtqueue?] = []
            for index in queues.indices {
                ready.append(queues[index].ready ? try? makeQueue(index) : nil)
            }
            // A device-writable buffer must stay clear of every ready queue's rings.
            let guarded = ready.enumerated().flatMap { index, queue in
                (queue?.parts ?? []).map { RingPart(name: "queue \(index) \($0.name)", start: $0.start, length: $0.length) }
            }
            for index in ready.indices { ready[index]?.guardedParts = guarded }
            device.activate(VirtioActivation(features: driverFeatures, memory: memory, queues: ready))
        }
        return false
    }

    private func resetLocked() {
        status = 0
        deviceFeaturesSel = 0
        driverFeaturesSel = 0
        driverFeatures = 0
        queueSel = 0
        queues = [QueueSetup](repeating: QueueSetup(), count: device.queueCount)
        interruptStatus = 0
        reported = false
        lastError = nil
        // Notifications the old driver sent and the I/O thread has not served yet
        // belong to it: served now, they would find the device reset and fail it.
        for source in notificationSources.values { _ = source.take() }
        device.reset()
    }

    private func notify(queue: Int, count: UInt64) -> Bool {
        guard status & Virtio.statusDeviceNeedsReset == 0 else {
            ignoredAccesses &+= count
            return false
        }
        guard status & Virtio.statusDriverOK != 0, queue < queues.count, queues[queue].ready else {
            return fail(.notifyNotReady(queue: queue))
        }
        do throws(VirtioDeviceError) {
            return usedBuffers(try device.notify(queue: queue, count: count))
        } catch {
            return fail(error)
        }
    }

    private func usedBuffers(_ wanted: Bool) -> Bool {
        guard wanted else { return false }
        interruptStatus |= VirtioMMIOTransport.interruptUsedBuffer
        return true
    }

    /// §2.1.2: the device has met an error it cannot recover from; the driver must reset it.
    private func fail(_ error: VirtioDeviceError) -> Bool {
        errorCount += 1
        let alreadyFailed = status & Virtio.statusDeviceNeedsReset != 0
        status |= Virtio.statusDeviceNeedsReset
        if !reported {
            reported = true
            lastError = error
            onError(error)
        }
        // After DRIVER_OK the device tells the driver through a configuration change notification.
        guard !alreadyFailed, status & Virtio.statusDriverOK != 0 else { return false }
        interruptStatus |= VirtioMMIOTransport.interruptConfigChange
        return true
    }

    private func signal() {
        lock.withLock { interruptCount += 1 }
        interrupt.trigger()
    }

    /// Runs `body` on the device under the transport's lock (to read its counters
    /// while the VM runs).
    public func withDevice<T>(_ body: (any VirtioDevice) -> T) -> T {
        lock.withLock { body(device) }
    }

    // MARK: Device-side events

    /// Makes `source` the place queue `queue`'s notifications arrive (nil: QueueNotify
    /// writes only). Writes to QueueNotify still work: a source adds a path, it does not
    /// take one away.
    public func setNotificationSource(_ source: (any VirtioNotificationSource)?, queue: Int) {
        lock.withLock { notificationSources[queue] = source }
    }

    /// Serves the notifications waiting in queue `queue`'s source: call when it is readable.
    /// The count is taken under the lock, so a reset (which empties the sources) and this
    /// call cannot interleave.
    public func serviceNotifications(queue: Int) {
        var raise = false
        lock.withLock {
            guard let count = notificationSources[queue]?.take(), count > 0 else { return }
            raise = notify(queue: queue, count: count)
        }
        if raise { signal() }
    }

    /// Runs the device's own work (received frames, and the queues it busy
    /// polls): call when its backend is readable, and in a loop while busy
    /// polling. Returns whether the device returned buffers.
    @discardableResult
    public func poll() -> Bool {
        var raise = false
        var used = false
        lock.withLock {
            guard status & Virtio.statusDriverOK != 0, status & Virtio.statusDeviceNeedsReset == 0 else { return }
            let before = device.buffersUsed
            do throws(VirtioDeviceError) {
                raise = usedBuffers(try device.poll())
            } catch {
                raise = fail(error)
            }
            used = device.buffersUsed != before
        }
        if raise { signal() }
        return used
    }

    /// Turns the device's busy polling on or off (``VirtioDevice/setBusyPolling(_:)``);
    /// nothing before DRIVER_OK or once the device needs a reset.
    public func setBusyPolling(_ active: Bool) {
        var raise = false
        lock.withLock {
            guard status & Virtio.statusDriverOK != 0, status & Virtio.statusDeviceNeedsReset == 0 else { return }
            do throws(VirtioDeviceError) {
                raise = usedBuffers(try device.setBusyPolling(active))
            } catch {
                raise = fail(error)
            }
        }
        if raise { signal() }
    }

    /// The device's configuration space changed (e.g. link status): bump the generation
    /// and send a configuration change notification (§2.5.1, §4.2.3.1).
    public func configChanged() {
        var raise = false
        lock.withLock {
            configGeneration &+= 1
            if status & Virtio.statusDriverOK != 0 {
                interruptStatus |= VirtioMMIOTransport.interruptConfigChange
                raise = true
            }
        }
        if raise { signal() }
    }

    private func registerName(_ offset: Int) -> String {
        switch offset {
        case Register.queueNum: return "QueueNum"
        case Register.queueReady: return "QueueReady"
        case Register.queueDescLow: return "QueueDescLow"
        case Register.queueDescHigh: return "QueueDescHigh"
        case Register.queueDriverLow: return "QueueDriverLow"
        case Register.queueDriverHigh: return "QueueDriverHigh"
        case Register.queueDeviceLow: return "QueueDeviceLow"
        case Register.queueDeviceHigh: return "QueueDeviceHigh"
        default: return "register 0x" + String(offset, radix: 16)
        }
    }
}

// MARK: - Bus

/// The virtio-mmio devices of a VM by guest-physical window, and the way an MMIO
/// exit reaches them: accesses are split into an offset and a little-endian value.
public final class VirtioMMIOBus: @unchecked Sendable {
    /// One device: its window `[base, base + windowSize)` and the GSI its interrupt line drives.
    public struct Slot {
        public var base: UInt64
        public var irq: UInt32
        public var transport: VirtioMMIOTransport
    }

    public private(set) var slots: [Slot] = []

    public init() {}

    /// Adds a device at `base` (page aligned, not overlapping another window).
    /// Returns false if it does not fit.
    @discardableResult
    public func add(_ transport: VirtioMMIOTransport, base: UInt64, irq: UInt32) -> Bool {
        guard base % GuestMemory.pageSize == 0, slots.count < Int(TORO_MAX_DEVICES) else { return false }
        let end = base + VirtioMMIOTransport.windowSize
        for slot in slots where base < slot.base + VirtioMMIOTransport.windowSize && slot.base < end { return false }
        slots.append(Slot(base: base, irq: irq, transport: transport))
        return true
    }

    /// The device whose window holds all of `[address, address + length)` (1-8 bytes),
    /// and the offset in it. Written so that no address, however high, wraps.
    private func slot(for address: UInt64, length: Int) -> (Slot, Int)? {
        for slot in slots where address >= slot.base && address - slot.base <= VirtioMMIOTransport.windowSize - UInt64(length) {
            return (slot, Int(address - slot.base))
        }
        return nil
    }

    /// The bytes of an MMIO read at `address`, or nil if no device claims it.
    public func read(address: UInt64, length: Int) -> [UInt8]? {
        guard (1...8).contains(length), let (slot, offset) = slot(for: address, length: length) else { return nil }
        let value = slot.transport.read(offset: offset, size: length)
        return (0..<length).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    /// Delivers an MMIO write; returns false if no device claims `address`.
    @discardableResult
    public func write(address: UInt64, data: [UInt8]) -> Bool {
        guard (1...8).contains(data.count), let (slot, offset) = slot(for: address, length: data.count) else { return false }
        var value: UInt64 = 0
        for (i, byte) in data.enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
        slot.transport.write(offset: offset, size: data.count, value: value)
        return true
    }

    /// The entries for `toro_boot_info.devices` (boot/toro_boot.h), one per device.
    /// Every transport pulses its line once per event (``VirtioInterruptLine``:
    /// an irqfd edge, or KVM_IRQ_LINE up then down), whatever InterruptStatus
    /// holds, so each is listed with TORO_DEVICE_FLAG_PULSED_INTERRUPT.
    public var bootDevices: [toro_device] {
        slots.map {
            toro_device(
                type: TORO_DEVICE_VIRTIO_MMIO, irq: $0.irq, base: $0.base, size: VirtioMMIOTransport.windowSize,
                flags: TORO_DEVICE_FLAG_PULSED_INTERRUPT, reserved: 0)
        }
    }
}

private func setLow(_ field: inout UInt64, _ value: UInt32) { field = (field & ~0xFFFF_FFFF) | UInt64(value) }
private func setHigh(_ field: inout UInt64, _ value: UInt32) { field = (field & 0xFFFF_FFFF) | (UInt64(value) << 32) }
