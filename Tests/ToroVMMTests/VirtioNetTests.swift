import CKVM
import Glibc
import XCTest

@testable import ToroVMM

final class VirtioMMIORegisterTests: XCTestCase {
    typealias R = VirtioMMIOTransport.Register

    func testIdentifiesAModernNetworkDevice() throws {
        let driver = try FakeVirtioDriver()
        XCTAssertEqual(driver.read(R.magicValue), 0x7472_6976)
        XCTAssertEqual(driver.read(R.version), 2)
        XCTAssertEqual(driver.read(R.deviceID), 1)
        XCTAssertEqual(driver.read(R.vendorID), VirtioMMIOTransport.vendor)
        driver.write(R.deviceFeaturesSel, 0)
        XCTAssertEqual(driver.read(R.deviceFeatures), UInt32(VirtioNet.featureMAC | VirtioNet.featureStatus))
        driver.write(R.deviceFeaturesSel, 1)
        XCTAssertEqual(driver.read(R.deviceFeatures), 1)  // VIRTIO_F_VERSION_1 is bit 32
        driver.write(R.deviceFeaturesSel, 2)
        XCTAssertEqual(driver.read(R.deviceFeatures), 0)
        driver.write(R.queueSel, 0)
        XCTAssertEqual(driver.read(R.queueNumMax), 256)
        driver.write(R.queueSel, 2)
        XCTAssertEqual(driver.read(R.queueNumMax), 0)  // no third queue
        XCTAssertEqual(driver.read(R.shmLenLow), 0xFFFF_FFFF)
        // Registers take only aligned 32-bit accesses.
        XCTAssertEqual(driver.transport.read(offset: R.magicValue, size: 2), 0)
    }

    func testConfigSpaceHoldsMACAndLinkStatus() throws {
        let driver = try FakeVirtioDriver()
        let t = driver.transport
        XCTAssertEqual(t.read(offset: R.config, size: 1), 0x52)
        XCTAssertEqual(t.read(offset: R.config + 5, size: 1), 0x56)
        XCTAssertEqual(t.read(offset: R.config, size: 4), 0x1200_5452)
        XCTAssertEqual(t.read(offset: R.config + 4, size: 2), 0x5634)
        XCTAssertEqual(t.read(offset: R.config + 6, size: 2), UInt64(VirtioNet.linkUp))
        XCTAssertEqual(t.read(offset: R.config + 64, size: 4), 0)  // past the end
        XCTAssertEqual(driver.read(R.configGeneration), 0)
        t.configChanged()
        XCTAssertEqual(driver.read(R.configGeneration), 1)
    }

    func testNegotiationAcceptsAnOfferedSubsetWithVersion1() throws {
        let driver = try FakeVirtioDriver()
        XCTAssertNotEqual(driver.negotiate() & Virtio.statusFeaturesOK, 0)
        // Without VERSION_1 (a legacy driver) FEATURES_OK does not stick.
        XCTAssertEqual(driver.negotiate(features: VirtioNet.featureMAC) & Virtio.statusFeaturesOK, 0)
        // Nor with a feature the device did not offer (VIRTIO_NET_F_CSUM).
        XCTAssertEqual(driver.negotiate(features: Virtio.featureVersion1 | 1) & Virtio.statusFeaturesOK, 0)
        // Writing 0 resets everything.
        driver.write(R.status, 0)
        XCTAssertEqual(driver.status, 0)
    }

    func testDriverOKWithoutFeaturesOKIsRefused() throws {
        let driver = try FakeVirtioDriver()
        driver.write(R.status, Virtio.statusAcknowledge | Virtio.statusDriver | Virtio.statusDriverOK)
        XCTAssertEqual(driver.status & Virtio.statusDriverOK, 0)
    }

    func testQueueRegistersAreReadBackAndFrozenWhileReady() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0, size: 64)
        driver.write(R.queueSel, 0)
        XCTAssertEqual(driver.read(R.queueReady), 1)
        driver.write(R.queueReady, 0)
        XCTAssertEqual(driver.read(R.queueReady), 0)
        XCTAssertFalse(driver.needsReset)
    }
}

final class VirtioNetDataPathTests: XCTestCase {
    let frame: [UInt8] = (0..<60).map { UInt8($0) }

    func testTransmitStripsHeaderAndSignals() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        let header = [UInt8](repeating: 0, count: 12)
        let head = try driver.addChain(1, [(try driver.buffer(header + frame), UInt32(12 + frame.count), false)])
        try driver.publish(1, head)
        driver.notify(1)

        XCTAssertEqual(driver.backend.sent, [frame])
        XCTAssertEqual(try driver.usedIndex(1), 1)
        let (id, length) = try driver.usedElement(1, 0)
        XCTAssertEqual(id, UInt32(head))
        XCTAssertEqual(length, 0)  // nothing written into a transmit buffer
        XCTAssertEqual(driver.interrupts, 1)
        XCTAssertEqual(driver.read(VirtioMMIOTransport.Register.interruptStatus), 1)
        driver.write(VirtioMMIOTransport.Register.interruptACK, 1)
        XCTAssertEqual(driver.read(VirtioMMIOTransport.Register.interruptStatus), 0)
        XCTAssertEqual(driver.device.counters.txFrames, 1)
        XCTAssertEqual(driver.device.counters.txBytes, UInt64(frame.count))
        XCTAssertEqual(driver.device.counters.notifications, 1)
        XCTAssertEqual(driver.device.counters.interrupts, 1)
        XCTAssertFalse(driver.needsReset)
    }

    func testTransmitGathersHeaderAndFrameFromSeparateDescriptors() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        let header = try driver.buffer([UInt8](repeating: 0, count: 12))
        let first = try driver.buffer(Array(frame[0..<20]))
        let rest = try driver.buffer(Array(frame[20...]))
        let head = try driver.addChain(1, [(header, 12, false), (first, 20, false), (rest, UInt32(frame.count - 20), false)])
        try driver.publish(1, head)
        let small = [UInt8](repeating: 9, count: 14)
        let second = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + small), 26, false)])
        try driver.publish(1, second)
        driver.notify(1)
        XCTAssertEqual(driver.backend.sent, [frame, small])
        XCTAssertEqual(try driver.usedIndex(1), 2)
        XCTAssertEqual(driver.interrupts, 1)  // one interrupt for the batch
    }

    func testNoInterruptFlagSuppressesTheInterrupt() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        try driver.setAvailFlags(1, SplitVirtqueue.availNoInterrupt)
        let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
        try driver.publish(1, head)
        driver.notify(1)
        XCTAssertEqual(try driver.usedIndex(1), 1)
        XCTAssertEqual(driver.interrupts, 0)
    }

    func testReceivePrependsHeaderIntoPostedBuffer() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        driver.backend.inject(frame)
        let address = try driver.buffer([UInt8](repeating: 0xEE, count: 1526))
        let head = try driver.addChain(0, [(address, 1526, true)])
        try driver.publish(0, head)
        driver.notify(0)

        XCTAssertEqual(try driver.usedIndex(0), 1)
        let (id, length) = try driver.usedElement(0, 0)
        XCTAssertEqual(id, UInt32(head))
        XCTAssertEqual(length, UInt32(12 + frame.count))
        let written = try driver.memory.read(at: GuestAddress(address), count: UInt64(12 + frame.count + 1))
        XCTAssertEqual(Array(written[0..<12]), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])  // num_buffers = 1
        XCTAssertEqual(Array(written[12..<12 + frame.count]), frame)
        XCTAssertEqual(written.last, 0xEE)  // nothing past the frame
        XCTAssertEqual(driver.interrupts, 1)
        XCTAssertEqual(driver.device.counters.rxFrames, 1)
        XCTAssertEqual(driver.device.counters.rxBytes, UInt64(frame.count))
    }

    func testReceiveWaitsForBuffersAndScattersAcrossDescriptors() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        driver.backend.inject(frame)
        driver.transport.poll()  // no buffer yet: the frame waits in the backend
        XCTAssertEqual(try driver.usedIndex(0), 0)
        XCTAssertEqual(driver.backend.pending.count, 1)

        let a = try driver.buffer([UInt8](repeating: 0, count: 16))
        let b = try driver.buffer([UInt8](repeating: 0, count: 2048))
        let head = try driver.addChain(0, [(a, 16, true), (b, 2048, true)])
        try driver.publish(0, head)
        driver.transport.poll()
        XCTAssertEqual(try driver.usedElement(0, 0).1, UInt32(12 + frame.count))
        let bytes =
            try driver.memory.read(at: GuestAddress(a), count: 16)
            + driver.memory.read(at: GuestAddress(b), count: UInt64(frame.count - 4))
        XCTAssertEqual(Array(bytes[12...]), frame)
        XCTAssertEqual(driver.interrupts, 1)
    }

    func testFrameLargerThanBufferIsDroppedAndBufferKept() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        driver.backend.inject([UInt8](repeating: 1, count: 100))
        driver.backend.inject(frame)
        let head = try driver.addChain(0, [(try driver.buffer([UInt8](repeating: 0, count: 80)), 80, true)])
        try driver.publish(0, head)
        driver.notify(0)
        XCTAssertEqual(driver.device.counters.rxDrops, 1)
        XCTAssertEqual(try driver.usedIndex(0), 1)
        XCTAssertEqual(try driver.usedElement(0, 0).1, UInt32(12 + frame.count))
        XCTAssertFalse(driver.needsReset)
    }

    func testLoopbackRoundTrip() throws {
        let driver = try FakeVirtioDriver()
        driver.backend.loopback = true
        driver.start()
        let rx = try driver.addChain(0, [(try driver.buffer([UInt8](repeating: 0, count: 1526)), 1526, true)])
        try driver.publish(0, rx)
        driver.notify(0)
        let tx = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
        try driver.publish(1, tx)
        driver.notify(1)
        driver.transport.poll()
        XCTAssertEqual(try driver.usedElement(0, 0).1, 72)
        XCTAssertEqual(driver.device.counters.txFrames, 1)
        XCTAssertEqual(driver.device.counters.rxFrames, 1)
    }

    func testDropInjectionIsDeterministic() throws {
        var a = DropInjection(percent: 30, seed: 7)
        var b = DropInjection(percent: 30, seed: 7)
        let first = (0..<1000).map { _ in a.shouldDrop() }
        XCTAssertEqual(first, (0..<1000).map { _ in b.shouldDrop() })
        let dropped = first.filter { $0 }.count
        XCTAssertTrue((200...400).contains(dropped), "\(dropped) of 1000 dropped at 30%")
        var none = DropInjection(percent: 0)
        var all = DropInjection(percent: 100)
        XCTAssertFalse((0..<100).contains { _ in none.shouldDrop() })
        XCTAssertTrue((0..<100).allSatisfy { _ in all.shouldDrop() })
    }

    func testDropAllCountsReceiveDropsAndKeepsBuffers() throws {
        let driver = try FakeVirtioDriver(drop: DropInjection(percent: 100))
        driver.start()
        driver.backend.inject(frame)
        driver.backend.inject(frame)
        let head = try driver.addChain(0, [(try driver.buffer([UInt8](repeating: 0, count: 1526)), 1526, true)])
        try driver.publish(0, head)
        driver.notify(0)
        XCTAssertEqual(driver.device.counters.rxDrops, 2)
        XCTAssertEqual(driver.device.counters.rxFrames, 0)
        XCTAssertEqual(try driver.usedIndex(0), 0)  // the buffer stays posted for the next frame
        XCTAssertEqual(driver.interrupts, 0)
    }

    func testDropAllCountsTransmitDrops() throws {
        let driver = try FakeVirtioDriver(drop: DropInjection(percent: 100))
        driver.start()
        for _ in 0..<3 {
            let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
            try driver.publish(1, head)
        }
        driver.notify(1)
        XCTAssertEqual(driver.backend.sent.count, 0)
        XCTAssertEqual(driver.device.counters.txDrops, 3)
        XCTAssertEqual(try driver.usedIndex(1), 3)  // buffers still returned
    }
}

/// Malformed driver input: each gives its error, DEVICE_NEEDS_RESET, one report, and
/// no access outside guest RAM (every access goes through GuestMemory, which would
/// have thrown; a trap would end the test process).
final class VirtioMalformedInputTests: XCTestCase {
    typealias R = VirtioMMIOTransport.Register
    let ramEnd = FakeVirtioDriver.memorySize

    private func assertFailed(
        _ driver: FakeVirtioDriver, _ expected: VirtioDeviceError, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertTrue(driver.needsReset, "DEVICE_NEEDS_RESET not set", file: file, line: line)
        XCTAssertEqual(driver.errors, [expected], file: file, line: line)
        XCTAssertEqual(driver.transport.lastError, expected, file: file, line: line)
        XCTAssertFalse(expected.description.isEmpty)
    }

    private func transmitChain(_ driver: FakeVirtioDriver, _ setUp: (FakeVirtioDriver) throws -> UInt16) throws {
        driver.start()
        try driver.publish(1, try setUp(driver))
        driver.notify(1)
    }

    func testDescriptorAddressOutsideRAM() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in try d.addChain(1, [(self.ramEnd - 4, 100, false)]) }
        assertFailed(driver, .queue(index: 1, .bufferOutsideMemory(descriptor: 0, address: ramEnd - 4, length: 100)))
        XCTAssertEqual(try driver.usedIndex(1), 0)
        XCTAssertTrue(driver.backend.sent.isEmpty)
        // After DRIVER_OK the driver hears about it through a configuration change interrupt.
        XCTAssertEqual(driver.read(R.interruptStatus), VirtioMMIOTransport.interruptConfigChange)
        XCTAssertEqual(driver.interrupts, 1)
    }

    func testDescriptorLengthOverflowingTheAddressSpace() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in try d.addChain(1, [(UInt64.max - 15, 0x1000, false)]) }
        assertFailed(driver, .queue(index: 1, .bufferOutsideMemory(descriptor: 0, address: UInt64.max - 15, length: 0x1000)))
    }

    func testDescriptorLengthRunningPastRAM() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in try d.addChain(1, [(0x40_0000, 0xFFFF_FFFF, false)]) }
        assertFailed(driver, .queue(index: 1, .bufferOutsideMemory(descriptor: 0, address: 0x40_0000, length: 0xFFFF_FFFF)))
    }

    func testHeadIndexOutOfRange() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { _ in 300 }
        assertFailed(driver, .queue(index: 1, .descriptorIndexOutOfRange(index: 300, size: 256)))
    }

    func testNextIndexOutOfRange() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in
            try d.setDescriptor(1, 0, address: 0x40_0000, length: 12, flags: SplitVirtqueue.descriptorNext, next: 999)
            return 0
        }
        assertFailed(driver, .queue(index: 1, .descriptorIndexOutOfRange(index: 999, size: 256)))
    }

    func testDescriptorLoop() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in
            try d.setDescriptor(1, 0, address: 0x40_0000, length: 12, flags: SplitVirtqueue.descriptorNext, next: 1)
            try d.setDescriptor(1, 1, address: 0x40_0000, length: 12, flags: SplitVirtqueue.descriptorNext, next: 0)
            return 0
        }
        assertFailed(driver, .queue(index: 1, .descriptorLoop(head: 0, index: 0)))
    }

    /// A chain through every descriptor of a 4-entry queue and on: the fifth link
    /// can only revisit one, so it is reported as a loop.
    func testChainLongerThanTheQueue() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0, size: 4)
        driver.setUpQueue(1, size: 4)
        driver.write(R.status, Virtio.statusAcknowledge | Virtio.statusDriver | Virtio.statusFeaturesOK | Virtio.statusDriverOK)
        for i: UInt16 in 0..<4 {
            try driver.setDescriptor(
                1, i, address: 0x40_0000, length: 12, flags: SplitVirtqueue.descriptorNext, next: (i + 1) % 4)
        }
        try driver.publish(1, 0)
        driver.notify(1)
        assertFailed(driver, .queue(index: 1, .descriptorLoop(head: 0, index: 0)))
    }

    func testWritableBeforeReadableOnTransmit() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in try d.addChain(1, [(0x40_0000, 12, true), (0x40_1000, 60, false)]) }
        assertFailed(driver, .queue(index: 1, .readableAfterWritable(head: 0, index: 1)))
    }

    func testIndirectDescriptorNotNegotiated() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in
            try d.setDescriptor(1, 0, address: 0x40_0000, length: 16, flags: SplitVirtqueue.descriptorIndirect)
            return 0
        }
        assertFailed(driver, .queue(index: 1, .indirectNotNegotiated(index: 0)))
    }

    func testTransmitShorterThanEthernetHeaderIsDropped() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 20)), 20, false)])
        try driver.publish(1, head)
        driver.notify(1)
        XCTAssertFalse(driver.needsReset)
        XCTAssertEqual(driver.device.counters.txDrops, 1)
        XCTAssertEqual(try driver.usedIndex(1), 1)
    }

    func testReceiveChainShorterThanHeader() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        let head = try driver.addChain(0, [(0x40_0000, 10, true)])
        try driver.publish(0, head)
        driver.notify(0)
        assertFailed(driver, .network(.receiveShort(head: 0, length: 10)))
    }

    func testTransmitShorterThanHeader() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in try d.addChain(1, [(0x40_0000, 8, false)]) }
        assertFailed(driver, .network(.transmitShort(head: 0, length: 8)))
    }

    func testWritableBufferOfferedForTransmit() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in try d.addChain(1, [(0x40_0000, 72, true)]) }
        assertFailed(driver, .network(.transmitWritable(head: 0)))
        XCTAssertEqual(driver.errors.first?.description, "transmit chain 0 has device-writable buffers")
    }

    func testTransmitLongerThanAFrame() throws {
        let driver = try FakeVirtioDriver()
        try transmitChain(driver) { d in try d.addChain(1, [(0x40_0000, 12, false), (0x50_0000, 70000, false)]) }
        assertFailed(driver, .network(.transmitLong(head: 0, length: 70012)))
        XCTAssertTrue(driver.backend.sent.isEmpty)
    }

    func testReadOnlyBufferOfferedForReceive() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        driver.backend.inject([1, 2, 3])
        let head = try driver.addChain(0, [(0x40_0000, 1526, false)])
        try driver.publish(0, head)
        driver.notify(0)
        assertFailed(driver, .network(.receiveReadable(head: 0)))
        XCTAssertEqual(try driver.memory.read(at: GuestAddress(0x40_0000), count: 4), [0, 0, 0, 0])
    }

    func testAvailIndexJump() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        try driver.setAvailIndex(1, 300)
        driver.notify(1)
        assertFailed(driver, .queue(index: 1, .availableIndexJump(from: 0, to: 300, size: 256)))
    }

    func testRingNotInRAM() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0, desc: 32 << 20)
        assertFailed(driver, .queue(index: 0, .ringOutsideMemory(part: "descriptor table", address: 32 << 20, length: 4096)))
        driver.write(R.queueSel, 0)
        XCTAssertEqual(driver.read(R.queueReady), 0)
    }

    func testUsedRingRunningPastRAM() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0, used: ramEnd - 1024)
        assertFailed(
            driver, .queue(index: 0, .ringOutsideMemory(part: "device area", address: ramEnd - 1024, length: 6 + 8 * 256)))
    }

    func testRingMisaligned() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0, desc: 0x10_0008)
        assertFailed(driver, .queue(index: 0, .ringMisaligned(part: "descriptor table", address: 0x10_0008, alignment: 16)))
    }

    func testQueueSizeNotAPowerOfTwo() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0, size: 100)
        assertFailed(driver, .queue(index: 0, .badQueueSize(size: 100, maximum: 256)))
    }

    func testQueueSizeAboveMaximum() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0, size: 512)
        assertFailed(driver, .queue(index: 0, .badQueueSize(size: 512, maximum: 256)))
    }

    func testQueueSetupBeforeFeaturesOK() throws {
        let driver = try FakeVirtioDriver()
        driver.write(R.status, Virtio.statusAcknowledge | Virtio.statusDriver)
        driver.write(R.queueSel, 0)
        driver.write(R.queueNum, 256)
        assertFailed(driver, .queueBeforeFeaturesOK(register: "QueueNum"))
        XCTAssertEqual(driver.interrupts, 0)  // no DRIVER_OK yet: nothing to notify
    }

    func testNotifyBeforeDriverOK() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(1)
        driver.notify(1)
        assertFailed(driver, .notifyNotReady(queue: 1))
    }

    func testReportedOnceUntilResetThenAgain() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        try driver.setAvailIndex(1, 300)
        driver.notify(1)
        driver.notify(1)  // ignored: the device waits for a reset
        XCTAssertEqual(driver.errors.count, 1)
        XCTAssertEqual(driver.interrupts, 1)

        // Reset (status 0) clears DEVICE_NEEDS_RESET; the device then works again.
        driver.write(R.status, 0)
        XCTAssertFalse(driver.needsReset)
        XCTAssertNil(driver.transport.lastError)
        try driver.setAvailIndex(1, 0)
        driver.availIndex = [0, 0]
        driver.nextDescriptor = [0, 0]
        driver.start()
        let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 26)), 26, false)])
        try driver.publish(1, head)
        driver.notify(1)
        XCTAssertFalse(driver.needsReset)
        XCTAssertEqual(driver.backend.sent, [[UInt8](repeating: 0, count: 14)])

        driver.notify(7)
        XCTAssertEqual(driver.errors.count, 2)
        // A notify ignored while the device waits for its reset is not another error.
        XCTAssertEqual(driver.transport.errorCount, 2)
    }
}

final class SplitVirtqueueTests: XCTestCase {
    func testChainLimitBelowQueueSize() throws {
        let memory = try GuestMemory(size: 2 << 20)
        var queue = try SplitVirtqueue(
            size: 8, descriptorTable: GuestAddress(0x1000), availRing: GuestAddress(0x2000), usedRing: GuestAddress(0x3000),
            memory: memory)
        queue.maxChainLength = 2
        for i: UInt64 in 0..<3 {
            let entry = GuestAddress(0x1000 + 16 * i)
            try memory.store(UInt64(0x8000), at: entry)
            try memory.store(UInt32(4), at: entry.adding(8))
            try memory.store(i < 2 ? SplitVirtqueue.descriptorNext : 0, at: entry.adding(12))
            try memory.store(UInt16(i + 1), at: entry.adding(14))
        }
        try memory.store(UInt16(0), at: GuestAddress(0x2004))
        try memory.store(UInt16(1), at: GuestAddress(0x2002))
        XCTAssertThrowsError(try queue.popAvailable(memory)) { error in
            XCTAssertEqual(error as? VirtqueueError, .chainTooLong(head: 0, limit: 2))
        }
        queue.maxChainLength = 8
        let chain = try XCTUnwrap(try queue.popAvailable(memory))
        XCTAssertEqual(chain.readable.count, 3)
        XCTAssertNil(try queue.popAvailable(memory))
    }

    func testEventIndexInterruptRule() throws {
        let memory = try GuestMemory(size: 2 << 20)
        var queue = try SplitVirtqueue(
            size: 4, descriptorTable: GuestAddress(0x1000), availRing: GuestAddress(0x2000), usedRing: GuestAddress(0x3000),
            memory: memory)
        queue.eventIndex = true
        try memory.store(UInt16(1), at: GuestAddress(0x2000 + 4 + 2 * 4))  // used_event = 1
        try queue.pushUsed(head: 0, length: 0, memory: memory)  // used idx 0 -> 1: not past used_event
        XCTAssertFalse(queue.needsInterrupt(since: 0, memory: memory))
        try queue.pushUsed(head: 1, length: 0, memory: memory)  // 1 -> 2: passes used_event 1
        XCTAssertTrue(queue.needsInterrupt(since: 1, memory: memory))
    }

    func testNotificationSuppressionFlag() throws {
        let memory = try GuestMemory(size: 2 << 20)
        let queue = try SplitVirtqueue(
            size: 4, descriptorTable: GuestAddress(0x1000), availRing: GuestAddress(0x2000), usedRing: GuestAddress(0x3000),
            memory: memory)
        queue.suppressNotifications(true, memory: memory)
        XCTAssertEqual(try memory.load(UInt16.self, at: GuestAddress(0x3000)), SplitVirtqueue.usedNoNotify)
        queue.suppressNotifications(false, memory: memory)
        XCTAssertEqual(try memory.load(UInt16.self, at: GuestAddress(0x3000)), 0)
    }

    /// Garbage in every ring and descriptor, many times over: the device either serves
    /// it or asks for a reset; it never traps and never reaches outside RAM.
    func testRandomRingContentsNeverTrap() throws {
        var state: UInt64 = 12345
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var failures = 0
        for round in 0..<200 {
            let driver = try FakeVirtioDriver(queueSize: 8)
            driver.start(queueSize: 8)
            driver.backend.inject([UInt8](repeating: UInt8(round & 0xFF), count: 60))
            for q in 0..<2 {
                for i: UInt16 in 0..<8 {
                    // Addresses mostly near RAM, sometimes anywhere; small flags and indices.
                    let address = next() % 4 == 0 ? next() : next() % (FakeVirtioDriver.memorySize + 0x1000)
                    try driver.setDescriptor(
                        q, i, address: address, length: UInt32(truncatingIfNeeded: next() % 3 == 0 ? next() : next() % 2000),
                        flags: UInt16(next() % 8), next: UInt16(next() % 12))
                }
                for slot: UInt64 in 0..<8 {
                    try driver.memory.store(UInt16(next() % 10), at: GuestAddress(driver.availRing(q) + 4 + 2 * slot))
                }
                try driver.setAvailIndex(q, UInt16(next() % 12))
            }
            driver.notify(0)
            driver.notify(1)
            driver.transport.poll()
            if driver.needsReset { failures += 1 }
            XCTAssertLessThanOrEqual(driver.errors.count, 1)
        }
        XCTAssertGreaterThan(failures, 0)
    }

    func testZeroSizeQueueIsRefused() throws {
        let memory = try GuestMemory(size: 2 << 20)
        XCTAssertThrowsError(
            try SplitVirtqueue(
                size: 0, descriptorTable: GuestAddress(0), availRing: GuestAddress(0), usedRing: GuestAddress(0), memory: memory))
    }
}

final class MACAddressTests: XCTestCase {
    func testParsesAndPrints() {
        XCTAssertEqual(MACAddress("52:54:00:0a:BC:ff")?.bytes, [0x52, 0x54, 0x00, 0x0A, 0xBC, 0xFF])
        XCTAssertEqual(MACAddress("52:54:00:0a:bc:ff")?.description, "52:54:00:0a:bc:ff")
        XCTAssertNil(MACAddress("52:54:00:0a:bc"))
        XCTAssertNil(MACAddress("52:54:00:0a:bc:fff"))
        XCTAssertNil(MACAddress("52:54:00:0a:bc:zz"))
        XCTAssertNil(MACAddress(bytes: [1, 2, 3]))
        XCTAssertEqual(MACAddress.local(index: 7).description, "52:54:00:12:34:07")
    }
}

final class VirtioMMIOBusTests: XCTestCase {
    func testRoutesAccessesByWindowAndAnnouncesDevices() throws {
        let driver = try FakeVirtioDriver()
        let bus = VirtioMMIOBus()
        XCTAssertTrue(bus.add(driver.transport, base: 0xD000_0000, irq: 5))
        XCTAssertFalse(bus.add(driver.transport, base: 0xD000_0000, irq: 6))  // overlaps
        XCTAssertFalse(bus.add(driver.transport, base: 0xD000_0100, irq: 6))  // not page aligned
        XCTAssertEqual(bus.read(address: 0xD000_0000, length: 4), [0x76, 0x69, 0x72, 0x74])  // "virt"
        XCTAssertEqual(bus.read(address: 0xD000_0100, length: 2), [0x52, 0x54])  // MAC, from the config space
        XCTAssertNil(bus.read(address: 0xD000_0200, length: 4))  // past the window
        XCTAssertNil(bus.read(address: 0xD000_01FE, length: 4))  // straddles its end
        XCTAssertTrue(bus.write(address: 0xD000_0070, data: [1, 0, 0, 0]))
        XCTAssertEqual(driver.status, Virtio.statusAcknowledge)
        XCTAssertFalse(bus.write(address: 0xC000_0000, data: [1, 0, 0, 0]))
        let devices = bus.bootDevices
        XCTAssertEqual(devices.count, 1)
        XCTAssertEqual(devices[0].type, TORO_DEVICE_VIRTIO_MMIO)
        XCTAssertEqual(devices[0].irq, 5)
        XCTAssertEqual(devices[0].base, 0xD000_0000)
        XCTAssertEqual(devices[0].size, 0x200)
    }

    /// Found by the Virtio fuzz target: an access at an address near 2^64 whose end
    /// wraps past zero was claimed by the window and trapped (the offset, converted to Int).
    func testAccessWhoseEndWrapsIsNotClaimed() throws {
        let driver = try FakeVirtioDriver()
        let bus = VirtioMMIOBus()
        XCTAssertTrue(bus.add(driver.transport, base: 0xD000_0000, irq: 5))
        XCTAssertFalse(bus.write(address: UInt64.max, data: [1, 0, 0, 0]))
        XCTAssertFalse(bus.write(address: UInt64.max - 2, data: [1, 0, 0, 0]))
        XCTAssertNil(bus.read(address: UInt64.max - 3, length: 8))
        XCTAssertNil(bus.read(address: UInt64.max, length: 1))
        XCTAssertEqual(driver.status, 0, "nothing reached the device")
        XCTAssertEqual(bus.read(address: 0xD000_01FC, length: 4)?.count, 4, "the window's last word still answers")
        XCTAssertNil(bus.read(address: 0xD000_01FD, length: 4))
    }

    func testLoopbackReadinessFDFollowsPendingFrames() throws {
        let backend = try LoopbackBackend()
        func readable() -> Bool {
            var entry = pollfd(fd: backend.readinessFD, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, 0) == 1
        }
        XCTAssertFalse(readable())
        backend.inject([1, 2, 3])
        XCTAssertTrue(readable())
        var buffer = [UInt8](repeating: 0, count: 2)
        XCTAssertEqual(try buffer.withUnsafeMutableBytes { try backend.receive(into: $0) }, 2)  // truncated to the buffer
        XCTAssertEqual(buffer, [1, 2])
        XCTAssertFalse(readable())
        XCTAssertNil(try buffer.withUnsafeMutableBytes { try backend.receive(into: $0) })
    }

    func testCountersReadableUnderTheTransportLock() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        driver.notify(1)
        let notifications = driver.transport.withDevice { ($0 as? VirtioNet)?.counters.notifications }
        XCTAssertEqual(notifications, 1)
    }
}
