import KernelSupport
import Synchronization

/// The driver for the virtio-net device (virtio 1.2 §5.1) on a virtio-mmio
/// transport: queue 0 receives, queue 1 transmits, features VERSION_1 and
/// MAC only, so every buffer starts with the 12-byte `virtio_net_hdr`.
///
/// One core owns the driver (the one that calls ``send(frame:)`` and
/// ``receive()``); the device's interrupt is routed to that core, and its
/// handler only wakes the core's pollers (``Thread/workArrived(on:)``), so a
/// thread can wait with the polling API: `receive()`, and
/// `Thread.pollFoundNothing()` when it returns nil. Where the VMM pulses the
/// line once per event (TORO_DEVICE_FLAG_PULSED_INTERRUPT) the handler
/// touches no register: reading InterruptStatus and writing InterruptACK
/// would be two VM exits per interrupt, for nothing.
///
/// Receive interrupts are for a poller about to sleep: it turns them off
/// while it finds frames by polling and on only before it idles
/// (``setReceiveInterrupts(_:)``), so a busy network core takes none.
///
/// Notifications cost a VM exit each, so the driver sends as few as it can
/// (§2.7.7, §2.7.10): a batch of frames or of reposted receive buffers is
/// published with one write of the available idx and at most one
/// notification, which is skipped when the device's used ring says
/// VIRTQ_USED_F_NO_NOTIFY (the device sets it on the receive queue while it
/// holds buffers). The transmit queue asks for no interrupts: the driver
/// takes finished transmit buffers back itself, when it sends or receives.
public final class VirtioNetDriver {
    static let deviceID: UInt32 = 1
    static let featureMAC: UInt64 = 1 << 5
    static let featureVersion1: UInt64 = 1 << 32
    /// §5.1.6: `virtio_net_hdr` with `num_buffers` (VERSION_1).
    public static let headerSize = 12
    /// §5.1.6.3.1: without merged buffers, room for 1514 bytes plus VLAN tag and FCS.
    public static let maximumFrame = 1526
    static let receiveQueueIndex = 0
    static let transmitQueueIndex = 1
    /// The vector the device's line is routed to.
    public static let vector: UInt8 = 0x50

    private let transport: VirtioMMIO
    private var receiveQueue: Virtqueue
    private var transmitQueue: Virtqueue
    /// Transmit descriptors not given to the device.
    private var freeTransmit: [Int]
    /// Whether the receive queue asks for interrupts (``setReceiveInterrupts(_:)``).
    private var receiveInterrupts = true
    /// The device's MAC address (config space bytes 0-5).
    public let mac: [UInt8]
    /// The IOAPIC line and the core its interrupt goes to.
    public let irq: Int
    public let core: Int

    /// Finds the first virtio-net device the boot information lists and
    /// brings it up, its interrupt routed (edge-triggered) to the calling
    /// core. Nil, with one printed line saying why, if there is none or it
    /// will not start.
    public static func start() -> VirtioNetDriver? {
        for device in BootInfo.current.devices where device.type == TORO_DEVICE_VIRTIO_MMIO {
            let transport = VirtioMMIO(base: device.base)
            if transport.isDevice(deviceID) {
                return VirtioNetDriver(transport: transport, irq: device.irq, pulsed: device.interruptIsPulsed)
            }
        }
        print("virtio-net: no device")
        return nil
    }

    private init?(transport: VirtioMMIO, irq: Int, pulsed: Bool) {
        typealias Status = VirtioMMIO.Status
        // §3.1.1 Driver Requirements: Device Initialization, in order.
        transport.write(VirtioMMIO.Register.status, 0)  // reset
        transport.write(VirtioMMIO.Register.status, Status.acknowledge)
        transport.write(VirtioMMIO.Register.status, Status.acknowledge | Status.driver)
        let wanted = Self.featureVersion1 | Self.featureMAC
        guard transport.deviceFeatures & wanted == wanted else {
            Self.fail(transport, "the device lacks VERSION_1 or MAC")
            return nil
        }
        transport.setDriverFeatures(wanted)
        transport.write(VirtioMMIO.Register.status, Status.acknowledge | Status.driver | Status.featuresOK)
        guard transport.read(VirtioMMIO.Register.status) & Status.featuresOK != 0 else {
            Self.fail(transport, "the device refused the features")
            return nil
        }
        let receiveSize = min(Virtqueue.maxSize, transport.maxQueueSize(Self.receiveQueueIndex))
        let transmitSize = min(Virtqueue.maxSize, transport.maxQueueSize(Self.transmitQueueIndex))
        guard receiveSize > 0, transmitSize > 0, receiveSize & (receiveSize - 1) == 0,
            transmitSize & (transmitSize - 1) == 0,
            let receiveQueue = Virtqueue(size: receiveSize), let transmitQueue = Virtqueue(size: transmitSize)
        else {
            Self.fail(transport, "cannot set up the queues")
            return nil
        }
        self.transport = transport
        self.receiveQueue = receiveQueue
        self.transmitQueue = transmitQueue
        self.freeTransmit = Array(0..<transmitSize)
        self.irq = irq
        self.core = CPULocal.index
        var mac: [UInt8] = []
        for offset in 0..<6 { mac.append(transport.configByte(UInt(offset))) }
        self.mac = mac
        transport.enableQueue(Self.receiveQueueIndex, receiveQueue)
        transport.enableQueue(Self.transmitQueueIndex, transmitQueue)
        for id in 0..<receiveSize {
            self.receiveQueue.place(id, length: Self.headerSize + Self.maximumFrame, deviceWrites: true)
        }
        self.receiveQueue.publish()
        self.transmitQueue.suppressInterrupts()

        interruptTransport.store(pulsed ? 0 : transport.base, ordering: .releasing)
        interruptCore.store(core, ordering: .releasing)
        Interrupts.register(vector: Self.vector, handler: Self.interrupt)
        // virtio-mmio lines are level-triggered in general; this VMM pulses
        // its line (an edge), so the pin is routed edge-triggered.
        IOAPIC.route(gsi: irq, vector: Self.vector, cpu: core, trigger: .edge)
        transport.write(VirtioMMIO.Register.status, Status.acknowledge | Status.driver | Status.featuresOK | Status.driverOK)
        transport.notify(Self.receiveQueueIndex)
    }

    private static func fail(_ transport: VirtioMMIO, _ reason: String) {
        transport.write(VirtioMMIO.Register.status, VirtioMMIO.Status.failed)
        print("virtio-net: \(reason)")
    }

    /// Sends one Ethernet frame (destination, source, EtherType, payload; at
    /// most ``maximumFrame`` bytes). Waits, yielding, while every transmit
    /// descriptor is with the device. Returns false for a frame too long.
    @discardableResult
    public func send(frame: [UInt8]) -> Bool {
        send(frames: [frame]) == 1
    }

    /// Sends `frames` in order, published together with at most one
    /// notification. Waits, yielding, while every transmit descriptor is
    /// with the device (after publishing what it has placed, so the device
    /// can free some). Stops at a frame longer than ``maximumFrame``.
    /// Returns how many frames were posted.
    @discardableResult
    public func send(frames: [[UInt8]]) -> Int {
        reclaimTransmitted()
        var posted = 0
        for frame in frames {
            guard frame.count <= Self.maximumFrame else { break }
            if freeTransmit.isEmpty {
                publishTransmitted()
                while freeTransmit.isEmpty {
                    Thread.yield()
                    reclaimTransmitted()
                }
            }
            _ = place(frameOfSize: frame.count) { destination in
                frame.withUnsafeBytes { bytes in
                    if let base = bytes.baseAddress { destination.copyMemory(from: base, byteCount: bytes.count) }
                }
            }
            posted += 1
        }
        publishTransmitted()
        return posted
    }

    /// Writes one frame of `size` bytes (at most ``maximumFrame``) straight
    /// into a free transmit buffer with `write`, and places it; false, with
    /// nothing written, when no buffer is free (it does not wait) or the
    /// frame is too long. The frame goes with the next ``send(frames:)`` or
    /// ``publishTransmitted()``, in the order placed.
    public func place(frameOfSize size: Int, _ write: (UnsafeMutableRawPointer) -> Void) -> Bool {
        guard size <= Self.maximumFrame else { return false }
        if freeTransmit.isEmpty { reclaimTransmitted() }
        guard let id = freeTransmit.popLast() else { return false }
        let buffer = UnsafeMutableRawPointer(bitPattern: transmitQueue.buffer(id))!
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: Self.headerSize)
        write(buffer + Self.headerSize)
        transmitQueue.place(id, length: Self.headerSize + size, deviceWrites: false)
        return true
    }

    /// Publishes the placed transmit buffers and notifies if the device asks.
    public func publishTransmitted() {
        guard transmitQueue.publish() else { return }
        if transmitQueue.deviceWantsNotification { transport.notify(Self.transmitQueueIndex) }
    }

    /// The next received Ethernet frame, without its virtio header; nil if
    /// none has arrived. Its buffer goes straight back to the device.
    public func receive() -> [UInt8]? {
        receive(maximum: 1).first
    }

    /// Up to `maximum` received Ethernet frames, oldest first, without their
    /// virtio headers; empty if none has arrived. Their buffers go back to
    /// the device together, with at most one notification.
    public func receive(maximum: Int) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        receive(into: &frames, maximum: maximum)
        return frames
    }

    /// ``receive(maximum:)``, appending to `frames` (up to `maximum` of
    /// them): a caller that keeps its array across polls allocates only
    /// the frames themselves.
    public func receive(into frames: inout [[UInt8]], maximum: Int) {
        reclaimTransmitted()
        let start = frames.count
        while frames.count - start < maximum, let (id, length) = receiveQueue.takeUsed() {
            // A device that names a descriptor it was never given is ignored.
            guard id >= 0 && id < receiveQueue.size else { continue }
            let count = min(max(length - Self.headerSize, 0), Self.maximumFrame)
            let start = UnsafePointer<UInt8>(bitPattern: receiveQueue.buffer(id) + UInt(Self.headerSize))!
            frames.append([UInt8](copying: start, count: count))
            receiveQueue.place(id, length: Self.headerSize + Self.maximumFrame, deviceWrites: true)
        }
        guard frames.count > start else { return }
        receiveQueue.publish()
        // §2.7.10: the device suppresses receive notifications while it has
        // buffers; it asks again only once it has run out.
        if receiveQueue.deviceWantsNotification { transport.notify(Self.receiveQueueIndex) }
    }

    /// Turns the device's receive interrupts on or off (§2.7.7); they start
    /// on. Returns whether frames are waiting already: a caller that turned
    /// them on before it sleeps must then take those first, since they came
    /// without an interrupt.
    public func setReceiveInterrupts(_ enabled: Bool) -> Bool {
        guard enabled != receiveInterrupts else { return receiveQueue.hasUsed }
        receiveInterrupts = enabled
        receiveQueue.setInterrupts(enabled)
        return receiveQueue.hasUsed
    }

    /// Takes back the transmit descriptors the device has finished with.
    private func reclaimTransmitted() {
        while let (id, _) = transmitQueue.takeUsed() {
            if id >= 0 && id < transmitQueue.size { freeTransmit.append(id) }
        }
    }

    /// The device's interrupt: acknowledge what it reports (§4.2.2
    /// InterruptStatus/InterruptACK) unless its line is pulsed, then let the
    /// owning core's pollers look.
    private static let interrupt: InterruptHandler = { _ in
        let base = interruptTransport.load(ordering: .acquiring)
        if base != 0 {
            let transport = VirtioMMIO(base: base)
            let pending = transport.read(VirtioMMIO.Register.interruptStatus)
            if pending != 0 { transport.write(VirtioMMIO.Register.interruptACK, pending) }
        }
        Thread.workArrived(on: interruptCore.load(ordering: .acquiring))
    }
}

/// What the interrupt handler, a C function, needs: the window to acknowledge
/// interrupts at (0 where the line is pulsed and needs no acknowledgement) and the core.
private let interruptTransport = Atomic<UInt>(0)
private let interruptCore = Atomic<Int>(0)
