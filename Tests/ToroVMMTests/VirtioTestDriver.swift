import XCTest

@testable import ToroVMM

/// A virtio driver in miniature, for tests: it lays out split virtqueues in a real
/// ``GuestMemory`` and talks to a ``VirtioMMIOTransport`` only through its registers.
final class FakeVirtioDriver {
    typealias R = VirtioMMIOTransport.Register

    static let memorySize: UInt64 = 16 << 20
    /// Queue `q`'s parts start at `queueBase + q * queueStride`: descriptors, then
    /// the available ring at +0x1000 and the used ring at +0x2000 (room for 256 entries).
    static let queueBase: UInt64 = 0x10_0000
    static let queueStride: UInt64 = 0x1_0000
    /// Buffers are handed out from here on.
    static let bufferBase: UInt64 = 0x40_0000

    let memory: GuestMemory
    let backend: LoopbackBackend
    let device: VirtioNet
    let transport: VirtioMMIOTransport
    var interrupts = 0
    var errors: [VirtioDeviceError] = []
    var queueSizes: [UInt16] = [0, 0]
    var availIndex: [UInt16] = [0, 0]
    var nextDescriptor: [UInt16] = [0, 0]
    var nextBuffer = FakeVirtioDriver.bufferBase

    static let mac: [UInt8] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]

    /// A driver for a virtio-net device whose frames go to `network`, or to ``backend`` if nil.
    init(queueSize: UInt16 = 256, drop: DropInjection = DropInjection(percent: 0), network: (any NetworkBackend)? = nil) throws {
        memory = try GuestMemory(size: FakeVirtioDriver.memorySize)
        backend = try LoopbackBackend()
        device = VirtioNet(
            mac: MACAddress(bytes: FakeVirtioDriver.mac)!, backend: network ?? backend, queueSize: queueSize, drop: drop)
        var line: ClosureInterruptLine!
        var errorSink: ((VirtioDeviceError) -> Void)!
        transport = VirtioMMIOTransport(
            device: device, memory: memory, interrupt: ClosureInterruptLine { line.trigger() },
            onError: { errorSink($0) })
        line = ClosureInterruptLine { [unowned self] in self.interrupts += 1 }
        errorSink = { [unowned self] in self.errors.append($0) }
    }

    // MARK: Registers

    func read(_ offset: Int) -> UInt32 { UInt32(transport.read(offset: offset, size: 4)) }
    func write(_ offset: Int, _ value: UInt32) { transport.write(offset: offset, size: 4, value: UInt64(value)) }
    var status: UInt32 { read(R.status) }
    var needsReset: Bool { status & Virtio.statusDeviceNeedsReset != 0 }

    /// §3.1.1 steps 1-6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns the status read back.
    @discardableResult
    func negotiate(features: UInt64 = Virtio.featureVersion1 | VirtioNet.featureMAC) -> UInt32 {
        write(R.status, 0)
        write(R.status, Virtio.statusAcknowledge)
        write(R.status, Virtio.statusAcknowledge | Virtio.statusDriver)
        write(R.driverFeaturesSel, 0)
        write(R.driverFeatures, UInt32(truncatingIfNeeded: features))
        write(R.driverFeaturesSel, 1)
        write(R.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
        write(R.status, Virtio.statusAcknowledge | Virtio.statusDriver | Virtio.statusFeaturesOK)
        return status
    }

    func descriptorTable(_ q: Int) -> UInt64 { FakeVirtioDriver.queueBase + UInt64(q) * FakeVirtioDriver.queueStride }
    func availRing(_ q: Int) -> UInt64 { descriptorTable(q) + 0x1000 }
    func usedRing(_ q: Int) -> UInt64 { descriptorTable(q) + 0x2000 }

    /// §4.2.3.2: select, size, the three addresses, ready.
    func setUpQueue(_ q: Int, size: UInt16 = 256, desc: UInt64? = nil, avail: UInt64? = nil, used: UInt64? = nil) {
        queueSizes[q] = size
        write(R.queueSel, UInt32(q))
        write(R.queueNum, UInt32(size))
        for (low, address) in [
            (R.queueDescLow, desc ?? descriptorTable(q)), (R.queueDriverLow, avail ?? availRing(q)),
            (R.queueDeviceLow, used ?? usedRing(q)),
        ] {
            write(low, UInt32(truncatingIfNeeded: address))
            write(low + 4, UInt32(truncatingIfNeeded: address >> 32))
        }
        write(R.queueReady, 1)
    }

    /// Negotiates, sets up both queues and sets DRIVER_OK.
    func start(queueSize: UInt16 = 256) {
        negotiate()
        setUpQueue(0, size: queueSize)
        setUpQueue(1, size: queueSize)
        write(R.status, Virtio.statusAcknowledge | Virtio.statusDriver | Virtio.statusFeaturesOK | Virtio.statusDriverOK)
    }

    // MARK: Rings

    /// Writes descriptor `index` of queue `q` directly (for malformed chains).
    func setDescriptor(_ q: Int, _ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16 = 0) throws {
        let entry = GuestAddress(descriptorTable(q) + 16 * UInt64(index))
        try memory.store(address.littleEndian, at: entry)
        try memory.store(length.littleEndian, at: entry.adding(8))
        try memory.store(flags.littleEndian, at: entry.adding(12))
        try memory.store(next.littleEndian, at: entry.adding(14))
    }

    /// Allocates a guest buffer holding `bytes` (or `length` zero bytes).
    func buffer(_ bytes: [UInt8]) throws -> UInt64 {
        let address = nextBuffer
        nextBuffer += (UInt64(bytes.count) + 15) & ~15
        try memory.write(bytes, at: GuestAddress(address))
        return address
    }

    /// Puts a chain of (address, length, device-writable) into free descriptors; returns its head.
    func addChain(_ q: Int, _ parts: [(UInt64, UInt32, Bool)]) throws -> UInt16 {
        let head = nextDescriptor[q]
        for (i, (address, length, writable)) in parts.enumerated() {
            let index = nextDescriptor[q]
            let last = i == parts.count - 1
            let flags = (writable ? SplitVirtqueue.descriptorWrite : 0) | (last ? 0 : SplitVirtqueue.descriptorNext)
            try setDescriptor(q, index, address: address, length: length, flags: flags, next: index &+ 1)
            nextDescriptor[q] = (index + 1) % queueSizes[q]
        }
        return head
    }

    /// Places `head` in the next available slot and publishes the new index (§2.7.13).
    func publish(_ q: Int, _ head: UInt16) throws {
        let slot = UInt64(availIndex[q] % queueSizes[q])
        try memory.store(head.littleEndian, at: GuestAddress(availRing(q) + 4 + 2 * slot))
        availIndex[q] &+= 1
        try setAvailIndex(q, availIndex[q])
    }

    func setAvailIndex(_ q: Int, _ value: UInt16) throws {
        try memory.store(value.littleEndian, at: GuestAddress(availRing(q) + 2))
    }

    func setAvailFlags(_ q: Int, _ flags: UInt16) throws {
        try memory.store(flags.littleEndian, at: GuestAddress(availRing(q)))
    }

    func notify(_ q: Int) { write(R.queueNotify, UInt32(q)) }

    func usedIndex(_ q: Int) throws -> UInt16 {
        try memory.load(UInt16.self, at: GuestAddress(usedRing(q) + 2))
    }

    /// Used element `i` of queue `q`: (id, len).
    func usedElement(_ q: Int, _ i: UInt16) throws -> (UInt32, UInt32) {
        let element = GuestAddress(usedRing(q) + 4 + 8 * UInt64(i % queueSizes[q]))
        return (try memory.load(UInt32.self, at: element), try memory.load(UInt32.self, at: element.adding(4)))
    }
}
