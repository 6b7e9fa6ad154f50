/// An Ethernet MAC address: six bytes, written `52:54:00:12:34:56`.
public struct MACAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let bytes: [UInt8]

    /// The address in `bytes`, or nil unless there are exactly six.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 6 else { return nil }
        self.bytes = bytes
    }

    /// Parses six two-digit hexadecimal bytes separated by colons.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard part.count == 2, let byte = UInt8(part, radix: 16) else { return nil }
            bytes.append(byte)
        }
        self.bytes = bytes
    }

    /// A locally administered unicast address (bit 1 of the first byte set, bit 0 clear)
    /// ending in `index`, for devices given no address.
    public static func local(index: UInt8) -> MACAddress { MACAddress(bytes: [0x52, 0x54, 0x00, 0x12, 0x34, index])! }

    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
    }
}

/// A virtio-net buffer chain of the wrong shape (§5.1.6): the driver broke the
/// device's rules, so the device needs a reset. Each description is the report.
public enum VirtioNetError: Error, Equatable, CustomStringConvertible {
    /// A transmit chain has device-writable buffers (§5.1.6.2: they are all device-readable).
    case transmitWritable(head: UInt16)
    /// A transmit chain is shorter than the 12-byte virtio_net_hdr.
    case transmitShort(head: UInt16, length: UInt64)
    /// A transmit chain is longer than a header and the largest frame.
    case transmitLong(head: UInt16, length: UInt64)
    /// A receive chain has a device-readable buffer (§5.1.6.3: they are all device-writable).
    case receiveReadable(head: UInt16)
    /// A receive chain cannot even hold the 12-byte virtio_net_hdr.
    case receiveShort(head: UInt16, length: UInt64)

    public var description: String {
        switch self {
        case let .transmitWritable(head):
            return "transmit chain \(head) has device-writable buffers"
        case let .transmitShort(head, length):
            return "transmit chain \(head) holds \(length) bytes, less than the 12-byte virtio_net_hdr"
        case let .transmitLong(head, length):
            return "transmit chain \(head) holds \(length) bytes, more than a header and the largest frame"
        case let .receiveReadable(head):
            return "receive chain \(head) has a device-readable buffer"
        case let .receiveShort(head, length):
            return "receive chain \(head) holds \(length) bytes, less than the 12-byte virtio_net_hdr"
        }
    }
}

/// What one network device did; the statistics print it.
public struct VirtioNetCounters: Equatable, Sendable {
    /// Frames (without the virtio header) sent to the backend, and their bytes.
    public var txFrames: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Frames written into guest receive buffers, and their bytes (without the header).
    public var rxFrames: UInt64 = 0
    public var rxBytes: UInt64 = 0
    /// Frames dropped on the way out (fault injection, shorter than an Ethernet header,
    /// the backend refused them).
    public var txDrops: UInt64 = 0
    /// Frames dropped on the way in (fault injection, larger than the guest's buffer).
    public var rxDrops: UInt64 = 0
    /// Queue notifications from the driver (QueueNotify writes, whether they exited to
    /// the VMM or were counted by an ioeventfd).
    public var notifications: UInt64 = 0
    /// Times the device asked for a used-buffer interrupt.
    public var interrupts: UInt64 = 0

    public init() {}
}

/// Drops a given share of frames, deterministically from a seed (`drop=PERCENT`),
/// so that a test or a benchmark can rerun the same losses.
public struct DropInjection: Sendable {
    /// 0-100: the share of frames dropped.
    public let percent: UInt8
    private var state: UInt64

    public init(percent: UInt8, seed: UInt64 = 0x746F_726F) {
        self.percent = min(percent, 100)
        self.state = seed
    }

    /// Whether the next frame is dropped.
    public mutating func shouldDrop() -> Bool {
        guard percent > 0 else { return false }
        // splitmix64: one add, three xor-shift-multiplies; good enough for loss patterns.
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return z % 100 < UInt64(percent)
    }
}

/// A virtio network device (virtio 1.2 §5.1): one receive queue (0) and one
/// transmit queue (1), a MAC address and link status in its configuration
/// space, no offloads. Frames cross to a ``NetworkBackend`` without the
/// 12-byte `virtio_net_hdr`, which is stripped on transmit and prepended on receive.
///
/// Not locked itself: its transport calls it under the transport's lock.
public final class VirtioNet: VirtioDevice {
    /// §5.1.1: device ID 1.
    public static let networkDeviceID: UInt32 = 1
    /// §5.1.3 feature bits offered.
    public static let featureMAC: UInt64 = 1 << 5
    public static let featureStatus: UInt64 = 1 << 16
    /// §5.1.4: `status` bit VIRTIO_NET_S_LINK_UP.
    public static let linkUp: UInt16 = 1
    /// §5.1.6: struct virtio_net_hdr with `num_buffers`, which VERSION_1 always includes.
    public static let headerSize = 12
    /// Destination, source, EtherType.
    public static let ethernetHeaderSize = 14
    public static let receiveQueue = 0
    public static let transmitQueue = 1
    /// Largest frame accepted from the guest or read from the backend (64 KiB + Ethernet header).
    public static let maximumFrame = 65536 + 14

    public let mac: MACAddress
    public let backend: any NetworkBackend
    public let queueSize: UInt16
    public private(set) var counters = VirtioNetCounters()
    /// The first error the backend reported (frames are dropped, the guest keeps running).
    public private(set) var backendError: NetworkBackendError?
    public var drop: DropInjection

    private var memory: GuestMemory?
    private var queues: [SplitVirtqueue?] = [nil, nil]
    /// Whether the receive queue's used ring says VIRTQ_USED_F_NO_NOTIFY (§2.7.10).
    private var receiveNotificationsSuppressed = false
    /// Busy polling (``setBusyPolling(_:)``): ``poll()`` serves the transmit
    /// queue too, whose notifications are then suppressed.
    private var busyPolling = false
    public private(set) var buffersUsed: UInt64 = 0
    private var scratch = [UInt8](repeating: 0, count: VirtioNet.headerSize + VirtioNet.maximumFrame)

    /// A device with MAC address `mac`, frames going to `backend`, queues of at most
    /// `queueSize` entries (a power of two, at most 32768).
    public init(
        mac: MACAddress, backend: any NetworkBackend, queueSize: UInt16 = 256, drop: DropInjection = DropInjection(percent: 0)
    ) {
        self.mac = mac
        self.backend = backend
        self.queueSize = queueSize
        self.drop = drop
    }

    // MARK: VirtioDevice

    public var deviceID: UInt32 { VirtioNet.networkDeviceID }
    public var deviceFeatures: UInt64 { Virtio.featureVersion1 | VirtioNet.featureMAC | VirtioNet.featureStatus }
    public var queueCount: Int { 2 }
    public func maxQueueSize(_ queue: Int) -> UInt16 { queueSize }

    /// §5.1.4: struct virtio_net_config { u8 mac[6]; le16 status; ... } (the fields after
    /// `status` exist only with features this device does not offer).
    public var configSpace: [UInt8] {
        mac.bytes + [UInt8(VirtioNet.linkUp & 0xFF), UInt8(VirtioNet.linkUp >> 8)]
    }

    public func activate(_ activation: VirtioActivation) {
        memory = activation.memory
        queues = activation.queues
        receiveNotificationsSuppressed = false  // the driver zeroed the used ring's flags
        busyPolling = false
    }

    public func reset() {
        memory = nil
        queues = [nil, nil]
        receiveNotificationsSuppressed = false
        busyPolling = false
    }

    public func notify(queue: Int, count: UInt64) throws(VirtioDeviceError) -> Bool {
        counters.notifications += count
        switch queue {
        case VirtioNet.transmitQueue: return try transmit()
        case VirtioNet.receiveQueue: return try receive()  // new buffers: deliver what waits
        default: throw .notifyNotReady(queue: queue)
        }
    }

    public func poll() throws(VirtioDeviceError) -> Bool {
        let received = try receive()
        guard busyPolling else { return received }
        return try transmit() || received
    }

    /// §2.7.10: while busy polling, the transmit queue's frames are found by
    /// ``poll()``, and the driver's notifications (a trap each, on some hosts
    /// tens of microseconds of the guest's time) are suppressed.
    public func setBusyPolling(_ active: Bool) throws(VirtioDeviceError) -> Bool {
        guard active != busyPolling, let memory else { return false }
        let index = VirtioNet.transmitQueue
        guard let queue = queues[index] else { return false }
        queue.suppressNotifications(active, memory: memory)
        busyPolling = active
        // Back to notifications: the flag is written and fenced; the driver
        // publishes, fences, then reads it. A frame published before the
        // driver could see the flag notified nobody: look once more.
        return active ? false : try transmit()
    }

    // MARK: Transmit

    /// §5.1.6.2 device side: each chain is a header and a frame, device-readable only.
    private func transmit() throws(VirtioDeviceError) -> Bool {
        let index = VirtioNet.transmitQueue
        guard let memory, var queue = queues[index] else { throw .notifyNotReady(queue: index) }
        defer { queues[index] = queue }
        let before = queue.usedIndex
        while true {
            let popped: DescriptorChain?
            do throws(VirtqueueError) { popped = try queue.popAvailable(memory) } catch { throw .queue(index: index, error) }
            guard let chain = popped else { break }
            guard chain.writable.isEmpty else {
                throw .network(.transmitWritable(head: chain.head))
            }
            let length = chain.readableLength
            guard length >= UInt64(VirtioNet.headerSize) else {
                throw .network(.transmitShort(head: chain.head, length: length))
            }
            guard length <= UInt64(VirtioNet.headerSize + VirtioNet.maximumFrame) else {
                throw .network(.transmitLong(head: chain.head, length: length))
            }
            let bytes: [UInt8]
            do throws(GuestMemoryError) { bytes = try chain.gatherReadable(from: memory) } catch {
                throw .memory(queue: index, error)
            }
            send(bytes[VirtioNet.headerSize...])
            do throws(VirtqueueError) { try queue.pushUsed(head: chain.head, length: 0, memory: memory) } catch {
                throw .queue(index: index, error)
            }
            buffersUsed &+= 1
        }
        return wantsInterrupt(queue, since: before, memory: memory)
    }

    private func send(_ frame: ArraySlice<UInt8>) {
        // Shorter than an Ethernet header: nothing a host interface would take.
        if frame.count < VirtioNet.ethernetHeaderSize || drop.shouldDrop() {
            counters.txDrops += 1
            return
        }
        var sent = false
        // withUnsafeBytes rethrows untyped errors: carry the typed one out in a Result.
        let result = frame.withUnsafeBytes { bytes in
            Result { () throws(NetworkBackendError) -> Bool in try backend.send(bytes) }
        }
        switch result {
        case let .success(accepted): sent = accepted
        case let .failure(error): if backendError == nil { backendError = error }
        }
        if sent {
            counters.txFrames += 1
            counters.txBytes += UInt64(frame.count)
        } else {
            counters.txDrops += 1
        }
    }

    // MARK: Receive

    /// §5.1.6.3 device side: each frame waiting in the backend goes into one chain
    /// of device-writable buffers, after a header; without VIRTIO_NET_F_MRG_RXBUF
    /// `num_buffers` is 1. Frames wait in the backend while the guest posts no buffer.
    ///
    /// §2.7.10: the device needs no notification while it holds receive buffers (a
    /// frame from the backend, not the driver, is what starts it), so the used ring
    /// says VIRTQ_USED_F_NO_NOTIFY while buffers are available and stops saying it
    /// when they run out: then a buffer the driver posts notifies, and the frames
    /// waiting in the backend are delivered.
    private func receive() throws(VirtioDeviceError) -> Bool {
        let index = VirtioNet.receiveQueue
        guard let memory, var queue = queues[index] else { return false }
        defer { queues[index] = queue }
        let before = queue.usedIndex
        while true {
            var popped = try popAvailable(&queue, index, memory)
            if popped == nil {
                // Out of buffers: ask for notifications, then look again. The driver
                // publishes avail.idx, fences, then reads the flag; the device writes
                // the flag, fences (in suppressNotifications), then reads avail.idx:
                // one of the two sees the other's write, so no buffer goes unnoticed.
                if receiveNotificationsSuppressed {
                    queue.suppressNotifications(false, memory: memory)
                    receiveNotificationsSuppressed = false
                    popped = try popAvailable(&queue, index, memory)
                }
                if popped == nil { break }
            }
            if !receiveNotificationsSuppressed {
                queue.suppressNotifications(true, memory: memory)
                receiveNotificationsSuppressed = true
            }
            guard let chain = popped else { break }
            guard chain.readable.isEmpty else {
                throw .network(.receiveReadable(head: chain.head))
            }
            guard chain.writableLength >= UInt64(VirtioNet.headerSize) else {
                throw .network(.receiveShort(head: chain.head, length: chain.writableLength))
            }
            guard let length = nextFrame() else {
                queue.undoPop()
                break
            }
            if drop.shouldDrop() || chain.writableLength < UInt64(VirtioNet.headerSize + length) {
                // Dropped, or the guest's buffer is too small for it: the buffer waits for the next frame.
                counters.rxDrops += 1
                queue.undoPop()
                continue
            }
            writeHeader()
            let written: Int
            let result = scratch.withUnsafeBytes { bytes in
                Result { () throws(GuestMemoryError) -> Int in
                    try chain.scatterWritable(
                        UnsafeRawBufferPointer(rebasing: bytes[0..<VirtioNet.headerSize + length]), into: memory)
                }
            }
            switch result {
            case let .success(count): written = count
            case let .failure(error): throw .memory(queue: index, error)
            }
            do throws(VirtqueueError) { try queue.pushUsed(head: chain.head, length: UInt32(written), memory: memory) } catch {
                throw .queue(index: index, error)
            }
            buffersUsed &+= 1
            counters.rxFrames += 1
            counters.rxBytes += UInt64(length)
        }
        return wantsInterrupt(queue, since: before, memory: memory)
    }

    private func popAvailable(_ queue: inout SplitVirtqueue, _ index: Int, _ memory: GuestMemory) throws(VirtioDeviceError)
        -> DescriptorChain?
    {
        do throws(VirtqueueError) { return try queue.popAvailable(memory) } catch { throw .queue(index: index, error) }
    }

    /// Reads the next frame from the backend into the scratch buffer, after room for the header.
    private func nextFrame() -> Int? {
        let result = scratch.withUnsafeMutableBytes { bytes in
            Result { () throws(NetworkBackendError) -> Int? in
                try backend.receive(into: UnsafeMutableRawBufferPointer(rebasing: bytes[VirtioNet.headerSize...]))
            }
        }
        switch result {
        case let .success(length): return length
        case let .failure(error):
            if backendError == nil { backendError = error }
            return nil
        }
    }

    /// §5.1.6: flags 0, gso_type VIRTIO_NET_HDR_GSO_NONE, no checksum, num_buffers 1.
    private func writeHeader() {
        for i in 0..<VirtioNet.headerSize { scratch[i] = 0 }
        scratch[10] = 1
    }

    private func wantsInterrupt(_ queue: SplitVirtqueue, since before: UInt16, memory: GuestMemory) -> Bool {
        guard queue.needsInterrupt(since: before, memory: memory) else { return false }
        counters.interrupts += 1
        return true
    }
}
