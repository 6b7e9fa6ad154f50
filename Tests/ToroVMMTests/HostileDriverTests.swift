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
}
