import CKVM
import Glibc
import XCTest

@testable import ToroVMM

/// What Tests/Guests/Hostile does to the device, on the host: each case that
/// broke the rules before the hostile guest found it is a test here.
final class HostileDriverTests: XCTestCase {
    typealias R = VirtioMMIOTransport.Register
    let allStatus = Virtio.statusAcknowledge | Virtio.statusDriver | Virtio.statusFeaturesOK | Virtio.statusDriverOK

    // MARK: Rings that overlap

    func testRingPartsOfOneQueueMustNotOverlap() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        // The available ring starts inside the descriptor table (256 entries: 4 KiB).
        driver.setUpQueue(0, avail: driver.descriptorTable(0) + 16)
        XCTAssertTrue(driver.needsReset)
        XCTAssertEqual(
            driver.transport.lastError,
            .queue(index: 0, .ringsOverlap(
                part: "driver area", address: driver.descriptorTable(0) + 16, other: "descriptor table",
                otherAddress: driver.descriptorTable(0))))
        driver.write(R.queueSel, 0)
        XCTAssertEqual(driver.read(R.queueReady), 0)

        driver.negotiate()
        driver.setUpQueue(0, used: driver.descriptorTable(0))
        XCTAssertEqual(
            driver.transport.lastError,
            .queue(index: 0, .ringsOverlap(
                part: "device area", address: driver.descriptorTable(0), other: "descriptor table",
                otherAddress: driver.descriptorTable(0))))

        // Back to back is no overlap: the legacy layout.
        driver.negotiate()
        driver.setUpQueue(0, size: 16, desc: 0x20_0000, avail: 0x20_0100, used: 0x20_0128)
        XCTAssertFalse(driver.needsReset, "\(driver.errors)")
    }

    func testRingsOfTwoQueuesMustNotOverlap() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0)
        driver.setUpQueue(1, desc: driver.usedRing(0))
        XCTAssertEqual(
            driver.transport.lastError,
            .queue(index: 1, .ringsOverlap(
                part: "descriptor table", address: driver.usedRing(0), other: "queue 0 device area",
                otherAddress: driver.usedRing(0))))
        XCTAssertFalse(driver.transport.lastError!.description.isEmpty)
    }

    func testReceiveBufferOverARingIsRefused() throws {
        for (name, address) in [("queue 0 device area", FakeVirtioDriver.queueBase + 0x2000),
                                ("queue 1 descriptor table", FakeVirtioDriver.queueBase + FakeVirtioDriver.queueStride + 64)] {
            let driver = try FakeVirtioDriver()
            driver.start()
            driver.backend.inject([UInt8](repeating: 0xEE, count: 60))
            let head = try driver.addChain(0, [(address, 1526, true)])
            try driver.publish(0, head)
            driver.notify(0)
            XCTAssertEqual(
                driver.transport.lastError,
                .queue(index: 0, .bufferOverlapsRing(descriptor: 0, address: address, length: 1526, part: name)))
            // Nothing was written over the rings.
            XCTAssertFalse(try driver.memory.read(at: GuestAddress(address), count: 72).contains(0xEE))
        }
    }

    func testTransmitBufferOverARingIsServed() throws {
        // The device only reads a transmit buffer: reading the rings harms nobody.
        let driver = try FakeVirtioDriver()
        driver.start()
        let head = try driver.addChain(1, [(driver.availRing(1), 72, false)])
        try driver.publish(1, head)
        driver.notify(1)
        XCTAssertFalse(driver.needsReset, "\(driver.errors)")
        XCTAssertEqual(driver.backend.sent.count, 1)
    }

    // MARK: Status

    func testClearingStatusBitsWithoutAResetIsAnError() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        driver.write(R.status, Virtio.statusAcknowledge)
        XCTAssertTrue(driver.needsReset)
        XCTAssertEqual(driver.transport.lastError, .statusCleared(from: allStatus, to: Virtio.statusAcknowledge))
        // Reported to the running driver as a configuration change.
        XCTAssertEqual(driver.read(R.interruptStatus), VirtioMMIOTransport.interruptConfigChange)
        // The status keeps its bits and gains DEVICE_NEEDS_RESET.
        XCTAssertEqual(driver.status, allStatus | Virtio.statusDeviceNeedsReset)
    }

    func testADriverThatGivesUpMayWriteFailedAlone() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.write(R.status, Virtio.statusFailed)
        XCTAssertFalse(driver.needsReset, "\(driver.errors)")
        XCTAssertEqual(driver.status, Virtio.statusFailed)
    }

    /// Found by the Virtio fuzz target: FAILED may clear bits, and FAILED | DRIVER_OK
    /// left DRIVER_OK standing without FEATURES_OK, the device still serving its queues.
    func testFailedNeverLeavesDriverOKWithoutFeaturesOK() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        driver.write(R.status, Virtio.statusFailed | Virtio.statusDriverOK)
        XCTAssertFalse(driver.needsReset, "\(driver.errors)")
        XCTAssertEqual(driver.status, Virtio.statusFailed)
        let frame = [UInt8](repeating: 0xAB, count: 60)
        let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
        try driver.publish(1, head)
        driver.notify(1)
        XCTAssertEqual(driver.backend.sent, [], "the device stopped")
    }

    func testTheDriverCannotSetNeedsResetOrUndefinedBits() throws {
        let driver = try FakeVirtioDriver()
        driver.write(R.status, Virtio.statusAcknowledge | Virtio.statusDeviceNeedsReset | 0x30 | 0xFFFF_0000)
        XCTAssertEqual(driver.status, Virtio.statusAcknowledge)
        XCTAssertFalse(driver.needsReset)
        XCTAssertEqual(driver.transport.ignoredAccesses, 1)
    }

    func testQueueRegistersAfterDriverOKAreAnError() throws {
        for register in [R.queueReady, R.queueNum, R.queueDescLow, R.queueDeviceHigh] {
            let driver = try FakeVirtioDriver()
            driver.start()
            driver.write(R.queueSel, 0)
            driver.write(register, 0)
            XCTAssertTrue(driver.needsReset)
            guard case .queueAfterDriverOK = driver.transport.lastError else {
                return XCTFail("\(String(describing: driver.transport.lastError))")
            }
        }
    }

    /// A receive queue the driver disables after DRIVER_OK gets no more frames
    /// (before, the device kept writing into it).
    func testAReceiveQueueDisabledAfterDriverOKIsNotWritten() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        let buffer = try driver.buffer([UInt8](repeating: 0, count: 1526))
        try driver.publish(0, try driver.addChain(0, [(buffer, 1526, true)]))
        driver.write(R.queueSel, 0)
        driver.write(R.queueReady, 0)
        driver.backend.inject([UInt8](repeating: 0xEE, count: 60))
        driver.transport.poll()
        XCTAssertTrue(driver.needsReset)
        XCTAssertEqual(try driver.usedIndex(0), 0)
        XCTAssertFalse(try driver.memory.read(at: GuestAddress(buffer), count: 72).contains(0xEE))
    }

    /// Once it needs a reset the device takes nothing but the reset: a DRIVER_OK
    /// written meanwhile would start it again on queues the driver gave up.
    func testWritesWhileTheDeviceNeedsAResetAreIgnored() throws {
        let driver = try FakeVirtioDriver()
        driver.negotiate()
        driver.setUpQueue(0)
        driver.write(R.queueNum, 3)  // ignored while ready
        driver.write(R.queueReady, 0)
        driver.write(R.queueNum, 3)
        driver.write(R.queueReady, 1)  // bad size: needs a reset
        XCTAssertTrue(driver.needsReset)
        let ignoredBefore = driver.transport.ignoredAccesses

        driver.write(R.queueNum, 256)
        driver.write(R.queueReady, 1)
        driver.write(R.status, allStatus)
        driver.write(R.driverFeatures, 0xFFFF_FFFF)
        for _ in 0..<100 { driver.notify(1) }
        XCTAssertEqual(driver.status, Virtio.statusAcknowledge | Virtio.statusDriver | Virtio.statusFeaturesOK
            | Virtio.statusDeviceNeedsReset)
        XCTAssertEqual(driver.transport.ignoredAccesses - ignoredBefore, 104)
        XCTAssertEqual(driver.transport.errorCount, 1)
        XCTAssertEqual(driver.device.counters.notifications, 0)

        // The reset still works, and so does the device after it.
        driver.write(R.status, 0)
        XCTAssertEqual(driver.status, 0)
        driver.start()
        let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 72)), 72, false)])
        try driver.publish(1, head)
        driver.notify(1)
        XCTAssertFalse(driver.needsReset)
        XCTAssertEqual(driver.backend.sent.count, 1)
    }

    // MARK: Accesses that name no register

    func testIgnoredAccessesAreCountedAndChangeNothing() throws {
        let driver = try FakeVirtioDriver()
        let t = driver.transport
        XCTAssertEqual(t.read(offset: R.magicValue, size: 1), 0)  // wrong width
        XCTAssertEqual(t.read(offset: R.magicValue, size: 8), 0)
        XCTAssertEqual(t.read(offset: R.magicValue + 1, size: 4), 0)  // unaligned
        XCTAssertEqual(t.read(offset: 0x0C0, size: 4), 0)  // reserved
        XCTAssertEqual(t.read(offset: R.queueNotify, size: 4), 0)  // write-only
        XCTAssertEqual(t.read(offset: R.config, size: 3), 0)  // no 3-byte access
        XCTAssertEqual(t.ignoredAccesses, 6)
        t.write(offset: R.status, size: 1, value: 1)
        t.write(offset: R.status, size: 8, value: 1)
        t.write(offset: R.status + 2, size: 4, value: 1)
        t.write(offset: R.magicValue, size: 4, value: 0)  // read-only
        t.write(offset: R.config, size: 1, value: 0xFF)  // the MAC is not writable
        t.write(offset: R.config, size: 4, value: 0xFFFF_FFFF)
        XCTAssertEqual(t.ignoredAccesses, 12)
        XCTAssertEqual(driver.status, 0)
        XCTAssertEqual(driver.read(R.magicValue), VirtioMMIOTransport.magic)
        XCTAssertEqual(t.read(offset: R.config, size: 1), UInt64(FakeVirtioDriver.mac[0]))
        XCTAssertEqual(t.errorCount, 0)
        // A normal start ignores nothing.
        let normal = try FakeVirtioDriver()
        normal.start()
        XCTAssertEqual(normal.transport.ignoredAccesses, 0)
    }

    func testBusNeverWrapsAtTheTopOfTheAddressSpace() throws {
        let driver = try FakeVirtioDriver()
        let bus = VirtioMMIOBus()
        XCTAssertTrue(bus.add(driver.transport, base: 0xD100_0000, irq: 5))
        XCTAssertNil(bus.read(address: UInt64.max - 3, length: 8))
        XCTAssertNil(bus.read(address: UInt64.max, length: 1))
        XCTAssertFalse(bus.write(address: UInt64.max - 1, data: [1, 2, 3, 4]))
        XCTAssertNil(bus.read(address: 0xD100_01FC, length: 8))
        XCTAssertEqual(bus.read(address: 0xD100_01F8, length: 8), [0, 0, 0, 0, 0, 0, 0, 0])
        XCTAssertNil(bus.read(address: 0xD0FF_FFFF, length: 2))
    }
}
