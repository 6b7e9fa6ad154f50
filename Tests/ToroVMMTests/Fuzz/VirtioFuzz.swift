// The virtio-net device model under fuzzing: a hostile guest driver. Shared by
// the libFuzzer target Virtio (make fuzz) and the corpus replay (FuzzCorpusTests).
//
// The input is a program for a guest driver (see `Op`): register writes and
// reads through the MMIO bus (any width, any address), raw writes of guest
// memory (rings, descriptors, buffers), and a few driver-shaped shortcuts
// that reach the data path quickly (negotiate and set up both queues; put a
// descriptor chain in a ring and publish it), interleaved with the host's
// side: frames arriving from the backend, polls, ioeventfd notifications,
// busy polling, configuration changes, a backend that refuses or fails.
//
// Beyond "no trap" (and no access outside guest RAM: GuestMemory checks
// every one, AddressSanitizer the host side), after every step: the
// identification registers are constant, DRIVER_OK never stands without
// FEATURES_OK, DEVICE_NEEDS_RESET is set exactly when an error is on record,
// InterruptStatus holds only its two bits, every interrupt raised reached the
// line, no error is a guest-memory fault the queue checks should have
// prevented, frames sent equal frames the backend accepted, and every frame
// taken from the backend was delivered or counted as dropped.

import FuzzSupport
@testable import ToroVMM

/// A backend whose frames come from the fuzz input; it counts what it is given.
final class FuzzNetBackend: NetworkBackend {
    var pending: [[UInt8]] = []
    /// Frames the device read (whole or truncated to its buffer).
    var framesTaken = 0
    var bytesTaken: UInt64 = 0
    var sendCalls = 0
    var accepted = 0
    /// Sends return false (a full host queue).
    var refuseSends = false
    /// The next send or receive throws.
    var failNext = false
    /// A frame outside 14 bytes...the maximum reached the backend.
    var badFrame: Int?

    var readinessFD: Int32 { -1 }

    func send(_ frame: UnsafeRawBufferPointer) throws(NetworkBackendError) -> Bool {
        sendCalls += 1
        if failNext {
            failNext = false
            throw .system(call: "fuzz send", errno: 5)
        }
        if frame.count < VirtioNet.ethernetHeaderSize || frame.count > VirtioNet.maximumFrame { badFrame = frame.count }
        if refuseSends { return false }
        accepted += 1
        return true
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetworkBackendError) -> Int? {
        if failNext {
            failNext = false
            throw .system(call: "fuzz receive", errno: 5)
        }
        guard !pending.isEmpty else { return nil }
        let frame = pending.removeFirst()
        let count = min(frame.count, buffer.count)
        frame.withUnsafeBytes { source in
            if count > 0 { buffer.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: count) }
        }
        framesTaken += 1
        bytesTaken += UInt64(count)
        return count
    }
}

/// An ioeventfd stand-in: the count the input says is waiting.
final class FuzzNotificationSource: VirtioNotificationSource {
    var count: UInt64 = 0
    func take() -> UInt64 {
        defer { count = 0 }
        return count
    }
}

enum VirtioFuzz {
    typealias R = VirtioMMIOTransport.Register

    static let memorySize: UInt64 = 2 << 20
    /// Where the device's window is on the bus (as NetDevice puts it).
    static let base: UInt64 = 0xD100_0000
    /// Where the set-up shortcut puts queue q: descriptors at 0x1000 + q * 0x4000,
    /// the available ring 0x1000 after them and the used ring 0x2000 after
    /// (room for 256 entries); buffers from 0x10000 on.
    static func descriptorTable(_ q: Int) -> UInt64 { 0x1000 + UInt64(q) * 0x4000 }
    static let bufferBase: UInt64 = 0x1_0000

    /// One step of the program; the opcode is the first byte modulo the count.
    enum Op: UInt8, CaseIterable {
        case writeRegister, readRegister, busWrite, busRead, writeMemory, store16
        case setUp, publishChain, notify, injectFrame, poll, serviceNotifications
        case busyPolling, configChanged, backendMode, reset
    }

    /// The guest driver's view of the queues it set up with the shortcut.
    struct DriverQueue {
        var size: UInt16 = 0
        var availIndex: UInt16 = 0
        var nextDescriptor: UInt16 = 0
    }

    static func check(_ bytes: [UInt8]) throws(FuzzViolation) {
        var input = FuzzReader(bytes)
        let memory: GuestMemory
        do { memory = try GuestMemory(size: memorySize) } catch {
            throw FuzzViolation(description: "cannot map guest memory: \(error)")
        }
        let backend = FuzzNetBackend()
        let queueSize = input.pick([256, 8, 2, 1] as [UInt16])
        let device = VirtioNet(
            mac: MACAddress.local(index: 1), backend: backend, queueSize: queueSize,
            drop: DropInjection(percent: input.pick([0, 0, 0, 30] as [UInt8])))
        var triggers: UInt64 = 0
        var errors: [VirtioDeviceError] = []
        let transport = VirtioMMIOTransport(
            device: device, memory: memory, interrupt: ClosureInterruptLine { triggers += 1 },
            onError: { errors.append($0) })
        let bus = VirtioMMIOBus()
        try fuzzExpect(bus.add(transport, base: base, irq: 5), "the bus refused the device")
        let sources = [FuzzNotificationSource(), FuzzNotificationSource()]
        var driver = [DriverQueue(), DriverQueue()]
        var checkedErrors = 0

        var steps = 0
        while !input.isAtEnd && steps < 512 {
            steps += 1
            let op = Op.allCases[Int(input.u8()) % Op.allCases.count]
            switch op {
            case .writeRegister:
                let offset = Int(input.u8() & 0x7F) * 4
                transport.write(offset: offset, size: 4, value: UInt64(input.u32()))
            case .readRegister:
                let offset = Int(input.u16() % 0x200)
                _ = transport.read(offset: offset, size: input.pick([4, 1, 2, 8, 3, 0]))
            case .busWrite:
                let address = busAddress(&input)
                let length = Int(input.u8() % 9)
                let data = input.take(length)
                let claimed = bus.write(address: address, data: data)
                try fuzzExpect(!claimed || inWindow(address, data.count), "a write at \(address) claimed outside the window")
            case .busRead:
                let address = busAddress(&input)
                let length = Int(input.u8() % 10)
                if let value = bus.read(address: address, length: length) {
                    try fuzzExpect(inWindow(address, length), "a read at \(address) claimed outside the window")
                    try fuzzExpect(value.count == length, "a \(length)-byte read gave \(value.count) bytes")
                }
            case .writeMemory:
                let address = UInt64(input.u32() & 0x1F_FFFF)
                let data = input.take(Int(input.u8()))
                let count = min(UInt64(data.count), memorySize - address)
                try? memory.write(Array(data.prefix(Int(count))), at: GuestAddress(address))
            case .store16:
                let address = UInt64(input.u32() & 0x1F_FFFE)
                try? memory.store(input.u16().littleEndian, at: GuestAddress(address))
            case .setUp:
                setUp(transport, &input, &driver)
            case .publishChain:
                publishChain(transport, memory, &input, &driver)
            case .notify:
                transport.write(offset: R.queueNotify, size: 4, value: UInt64(input.u8() % 4))
            case .injectFrame:
                guard backend.pending.count < 64 else { break }
                var length = Int(input.u16() % 1600)
                if input.u8() == 0xFF { length = VirtioNet.maximumFrame + 16 }  // over any buffer
                var frame = input.take(length)
                if frame.count < length { frame += [UInt8](repeating: 0x5A, count: length - frame.count) }
                backend.pending.append(frame)
            case .poll:
                transport.poll()
            case .serviceNotifications:
                let queue = Int(input.u8() % 3)
                if queue < 2 {
                    sources[queue].count = UInt64(input.u8())
                    transport.setNotificationSource(sources[queue], queue: queue)
                }
                transport.serviceNotifications(queue: queue)
            case .busyPolling:
                transport.setBusyPolling(input.bool())
            case .configChanged:
                transport.configChanged()
            case .backendMode:
                let mode = input.u8()
                backend.refuseSends = mode & 1 != 0
                backend.failNext = mode & 2 != 0
            case .reset:
                transport.write(offset: R.status, size: 4, value: 0)
            }
            try checkInvariants(transport, device, backend, triggers: triggers, newErrors: errors[checkedErrors...])
            checkedErrors = errors.count
        }
    }

    /// A bus address: mostly in or near the device's window, sometimes anywhere.
    static func busAddress(_ input: inout FuzzReader) -> UInt64 {
        switch input.u8() % 4 {
        case 0: return input.u64()
        case 1: return base &- UInt64(input.u8())
        default: return base + UInt64(input.u16() % 0x240)
        }
    }

    static func inWindow(_ address: UInt64, _ length: Int) -> Bool {
        address >= base && address - base <= VirtioMMIOTransport.windowSize
            && VirtioMMIOTransport.windowSize - (address - base) >= UInt64(length)
    }

    /// §3.1.1 and §4.2.3.2 in one step, as a driver does it: reset, features
    /// (some of them ones the device does not offer), both queues at the fixed
    /// layout with a size from the input, DRIVER_OK.
    static func setUp(_ transport: VirtioMMIOTransport, _ input: inout FuzzReader, _ driver: inout [DriverQueue]) {
        let choice = input.u8()
        var features = Virtio.featureVersion1 | VirtioNet.featureMAC
        if choice & 1 != 0 { features |= VirtioNet.featureStatus }
        if choice & 2 != 0 { features |= Virtio.featureEventIndex }  // not offered: FEATURES_OK fails
        if choice & 4 != 0 { features &= ~Virtio.featureVersion1 }
        let size = input.pick([256, 8, 2, 1, 16, 3, 512, 0] as [UInt16])
        func write(_ offset: Int, _ value: UInt32) { transport.write(offset: offset, size: 4, value: UInt64(value)) }
        let ack = Virtio.statusAcknowledge | Virtio.statusDriver
        write(R.status, 0)
        write(R.status, Virtio.statusAcknowledge)
        write(R.status, ack)
        write(R.driverFeaturesSel, 0)
        write(R.driverFeatures, UInt32(truncatingIfNeeded: features))
        write(R.driverFeaturesSel, 1)
        write(R.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
        write(R.status, ack | Virtio.statusFeaturesOK)
        for q in 0..<2 {
            let table = descriptorTable(q)
            write(R.queueSel, UInt32(q))
            write(R.queueNum, UInt32(size))
            for (low, address) in [(R.queueDescLow, table), (R.queueDriverLow, table + 0x1000), (R.queueDeviceLow, table + 0x2000)] {
                write(low, UInt32(truncatingIfNeeded: address))
                write(low + 4, UInt32(truncatingIfNeeded: address >> 32))
            }
            write(R.queueReady, 1)
            driver[q] = DriverQueue(size: size)
        }
        if choice & 8 == 0 { write(R.status, ack | Virtio.statusFeaturesOK | Virtio.statusDriverOK) }
    }

    /// Writes a chain of 1-4 descriptors into queue q's table (at the set-up
    /// layout), places its head in the available ring, publishes it, and
    /// perhaps notifies: what a driver does to send or to post a buffer.
    static func publishChain(
        _ transport: VirtioMMIOTransport, _ memory: GuestMemory, _ input: inout FuzzReader, _ driver: inout [DriverQueue]
    ) {
        let control = input.u8()
        let q = Int(control & 1)
        let size = driver[q].size
        guard size > 0 else { return }
        let count = Int(control >> 1 & 3) + 1
        let table = descriptorTable(q)
        let head = driver[q].nextDescriptor % size
        var index = head
        for i in 0..<count {
            let kind = input.u8()
            let address = kind & 0x80 != 0 ? UInt64(input.u32()) : bufferBase + UInt64(input.u16()) * 16
            let length = kind & 0x40 != 0 ? input.u32() : UInt32(input.u16() % 2048)
            let writable = kind & 1 != 0
            let next = (index &+ 1) % size
            var flags: UInt16 = writable ? SplitVirtqueue.descriptorWrite : 0
            if i < count - 1 { flags |= SplitVirtqueue.descriptorNext }
            if kind & 0x20 != 0 { flags |= SplitVirtqueue.descriptorIndirect }
            let entry = GuestAddress(table + 16 * UInt64(index))
            try? memory.store(address.littleEndian, at: entry)
            try? memory.store(length.littleEndian, at: entry.adding(8))
            try? memory.store(flags.littleEndian, at: entry.adding(12))
            try? memory.store(next.littleEndian, at: entry.adding(14))
            index = next
        }
        driver[q].nextDescriptor = index
        let avail = table + 0x1000
        let slot = UInt64(driver[q].availIndex % size)
        try? memory.store(head.littleEndian, at: GuestAddress(avail + 4 + 2 * slot))
        driver[q].availIndex &+= 1
        try? memory.store(driver[q].availIndex.littleEndian, at: GuestAddress(avail + 2))
        if control & 0x10 != 0 { transport.write(offset: R.queueNotify, size: 4, value: UInt64(q)) }
    }

    static func checkInvariants(
        _ transport: VirtioMMIOTransport, _ device: VirtioNet, _ backend: FuzzNetBackend, triggers: UInt64,
        newErrors: ArraySlice<VirtioDeviceError>
    ) throws(FuzzViolation) {
        func register(_ offset: Int) -> UInt32 { UInt32(truncatingIfNeeded: transport.read(offset: offset, size: 4)) }
        try fuzzExpect(register(R.magicValue) == VirtioMMIOTransport.magic, "MagicValue changed")
        try fuzzExpect(register(R.version) == VirtioMMIOTransport.version, "Version changed")
        try fuzzExpect(register(R.deviceID) == VirtioNet.networkDeviceID, "DeviceID changed")
        try fuzzExpect(register(R.vendorID) == VirtioMMIOTransport.vendor, "VendorID changed")
        let status = register(R.status)
        try fuzzExpect(status == transport.deviceStatus, "the Status register is not deviceStatus")
        try fuzzExpect(
            status & Virtio.statusDriverOK == 0 || status & Virtio.statusFeaturesOK != 0, "DRIVER_OK without FEATURES_OK")
        try fuzzExpect(
            transport.needsReset == (transport.lastError != nil),
            "DEVICE_NEEDS_RESET \(transport.needsReset) but last error \(String(describing: transport.lastError))")
        try fuzzExpect(register(R.interruptStatus) & ~3 == 0, "InterruptStatus \(register(R.interruptStatus))")
        try fuzzExpect(transport.interruptCount == triggers, "\(transport.interruptCount) interrupts, \(triggers) reached the line")
        for error in newErrors {
            if case .memory = error { throw FuzzViolation(description: "a guest memory fault got past the queue checks: \(error)") }
            try fuzzExpect(!error.description.isEmpty, "an error without a message")
        }
        try fuzzExpect(backend.badFrame == nil, "a \(backend.badFrame ?? 0)-byte frame reached the backend")
        let counters = device.counters
        try fuzzExpect(counters.txFrames == UInt64(backend.accepted), "tx_frames \(counters.txFrames), the backend took \(backend.accepted)")
        try fuzzExpect(
            counters.txDrops >= UInt64(backend.sendCalls - backend.accepted), "tx_drops \(counters.txDrops) miss refused frames")
        try fuzzExpect(
            counters.rxFrames + counters.rxDrops == UInt64(backend.framesTaken),
            "rx_frames \(counters.rxFrames) + rx_drops \(counters.rxDrops), but \(backend.framesTaken) frames left the backend")
        try fuzzExpect(counters.rxBytes <= backend.bytesTaken, "rx_bytes \(counters.rxBytes) over the bytes received")
    }
}
