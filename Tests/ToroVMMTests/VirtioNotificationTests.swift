import CKVM
import Glibc
import XCTest

@testable import ToroVMM

/// §2.7.10 on the device side: the receive queue's used ring says
/// VIRTQ_USED_F_NO_NOTIFY exactly while the device holds receive buffers.
final class VirtioNotificationSuppressionTests: XCTestCase {
    let frame: [UInt8] = (0..<60).map { UInt8($0) }

    func usedFlags(_ driver: FakeVirtioDriver, _ q: Int) throws -> UInt16 {
        try driver.memory.load(UInt16.self, at: GuestAddress(driver.usedRing(q)))
    }

    func postReceiveBuffer(_ driver: FakeVirtioDriver) throws {
        let head = try driver.addChain(0, [(try driver.buffer([UInt8](repeating: 0, count: 1526)), 1526, true)])
        try driver.publish(0, head)
    }

    func testReceiveQueueSuppressesNotificationsWhileItHoldsBuffers() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        XCTAssertEqual(try usedFlags(driver, 0), 0)
        try postReceiveBuffer(driver)
        try postReceiveBuffer(driver)
        driver.notify(0)
        // Two buffers and nothing to put in them: no more notifications wanted.
        XCTAssertEqual(try usedFlags(driver, 0), SplitVirtqueue.usedNoNotify)

        driver.backend.inject(frame)
        driver.transport.poll()
        XCTAssertEqual(try driver.usedIndex(0), 1)
        XCTAssertEqual(try usedFlags(driver, 0), SplitVirtqueue.usedNoNotify, "one buffer is left")

        driver.backend.inject(frame)
        driver.backend.inject(frame)
        driver.transport.poll()
        XCTAssertEqual(try driver.usedIndex(0), 2)
        // Out of buffers with a frame waiting: the next buffer posted must be notified.
        XCTAssertEqual(try usedFlags(driver, 0), 0)
        XCTAssertEqual(driver.backend.pending.count, 1)

        try postReceiveBuffer(driver)
        driver.notify(0)
        XCTAssertEqual(try driver.usedIndex(0), 3)
        XCTAssertEqual(driver.backend.pending.count, 0)
        XCTAssertEqual(try usedFlags(driver, 0), 0, "the buffer went at once: none left")
        XCTAssertEqual(driver.device.counters.rxFrames, 3)
        XCTAssertFalse(driver.needsReset)
    }

    func testBuffersPublishedWithoutANotificationAreUsed() throws {
        // While the flag says NO_NOTIFY the driver publishes buffers without notifying:
        // the device finds them when frames arrive.
        let driver = try FakeVirtioDriver()
        driver.start()
        try postReceiveBuffer(driver)
        driver.notify(0)
        XCTAssertEqual(try usedFlags(driver, 0), SplitVirtqueue.usedNoNotify)
        driver.backend.inject(frame)
        driver.backend.inject(frame)
        try postReceiveBuffer(driver)  // published, not notified: the flag said NO_NOTIFY
        driver.transport.poll()
        XCTAssertEqual(try driver.usedIndex(0), 2)
        XCTAssertEqual(driver.device.counters.notifications, 1)
    }

    /// Busy polling: the transmit queue asks for no notifications, poll()
    /// sends what the driver published without one, and turning it off asks
    /// for notifications again and sends what was published in between.
    func testBusyPollingTakesTransmitFramesWithoutNotifications() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        func publishFrame() throws {
            let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
            try driver.publish(1, head)
        }
        driver.transport.setBusyPolling(true)
        XCTAssertEqual(try usedFlags(driver, 1), SplitVirtqueue.usedNoNotify)
        try publishFrame()
        XCTAssertTrue(driver.transport.poll(), "the poll found the frame")
        XCTAssertEqual(driver.backend.sent.count, 1)
        XCTAssertFalse(driver.transport.poll(), "nothing more to do")

        try publishFrame()  // published, not notified: the flag said NO_NOTIFY
        driver.transport.setBusyPolling(false)
        XCTAssertEqual(try usedFlags(driver, 1), 0)
        XCTAssertEqual(driver.backend.sent.count, 2, "the frame published before polling ended was sent")
        XCTAssertEqual(driver.device.counters.notifications, 0)
        XCTAssertEqual(try driver.usedIndex(1), 2)
        XCTAssertFalse(driver.needsReset)
    }

    func testTransmitQueueKeepsNotificationsOn() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        for _ in 0..<3 {
            let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
            try driver.publish(1, head)
            driver.notify(1)
            XCTAssertEqual(try usedFlags(driver, 1), 0)
        }
        XCTAssertEqual(driver.backend.sent.count, 3)
    }

    func testResetForgetsTheSuppression() throws {
        let driver = try FakeVirtioDriver()
        driver.start()
        try postReceiveBuffer(driver)
        driver.notify(0)
        XCTAssertEqual(try usedFlags(driver, 0), SplitVirtqueue.usedNoNotify)
        // A new driver zeroes its rings; the device must set the flag again once it has buffers.
        try driver.memory.store(UInt16(0), at: GuestAddress(driver.usedRing(0)))
        try driver.memory.store(UInt16(0), at: GuestAddress(driver.usedRing(0) + 2))
        try driver.setAvailIndex(0, 0)
        driver.availIndex = [0, 0]
        driver.nextDescriptor = [0, 0]
        driver.start()
        try postReceiveBuffer(driver)
        driver.notify(0)
        XCTAssertEqual(try usedFlags(driver, 0), SplitVirtqueue.usedNoNotify)
    }

    func testEventIndexLeavesTheFlagAlone() throws {
        let memory = try GuestMemory(size: 2 << 20)
        var queue = try SplitVirtqueue(
            size: 4, descriptorTable: GuestAddress(0x1000), availRing: GuestAddress(0x2000), usedRing: GuestAddress(0x3000),
            memory: memory)
        queue.eventIndex = true
        try memory.store(UInt16(7), at: GuestAddress(0x3000 + 4 + 8 * 4))
        queue.suppressNotifications(true, memory: memory)
        XCTAssertEqual(try memory.load(UInt16.self, at: GuestAddress(0x3000)), 0)
        XCTAssertEqual(try memory.load(UInt16.self, at: GuestAddress(0x3000 + 4 + 8 * 4)), 7)
        queue.suppressNotifications(false, memory: memory)
        XCTAssertEqual(try memory.load(UInt16.self, at: GuestAddress(0x3000 + 4 + 8 * 4)), 0)  // avail_event = nextAvail
    }
}

/// Queue notifications through an eventfd (what KVM_IOEVENTFD signals) and
/// interrupts through one (what KVM_IRQFD reads), without a VM.
final class VirtioEventFDTests: XCTestCase {
    let frame: [UInt8] = (0..<60).map { UInt8($0) }

    func testEventFDCountsAddUpAndTakeEmptiesIt() throws {
        let event = try EventFD()
        XCTAssertEqual(event.take(), 0)  // nonblocking
        event.signal()
        event.signal()
        event.signal(3)
        XCTAssertEqual(event.take(), 5)
        XCTAssertEqual(event.take(), 0)
    }

    func testIrqfdLineSignalsOncePerInterrupt() throws {
        let event = try EventFD()
        let line = EventFDInterruptLine(event)
        line.trigger()
        line.trigger()
        XCTAssertEqual(event.take(), 2)
    }

    func testNotificationsFromAnEventFDAreCountedAndServed() throws {
        let driver = try FakeVirtioDriver()
        let transmit = try EventFD()
        driver.transport.setNotificationSource(transmit, queue: 1)
        driver.start()
        let head = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
        try driver.publish(1, head)
        // Three QueueNotify writes the I/O thread has not looked at yet: one pass, three notifications.
        transmit.signal()
        transmit.signal()
        transmit.signal()
        driver.transport.serviceNotifications(queue: 1)
        XCTAssertEqual(driver.backend.sent, [frame])
        XCTAssertEqual(driver.device.counters.notifications, 3)
        XCTAssertEqual(driver.interrupts, 1)
        XCTAssertEqual(driver.transport.interruptCount, 1)
        // Nothing waiting: nothing happens.
        driver.transport.serviceNotifications(queue: 1)
        XCTAssertEqual(driver.device.counters.notifications, 3)
        XCTAssertEqual(driver.interrupts, 1)
        // QueueNotify writes that reach the transport still work next to the eventfd.
        driver.notify(1)
        XCTAssertEqual(driver.device.counters.notifications, 4)
        XCTAssertFalse(driver.needsReset)
    }

    func testResetDropsNotificationsOfTheOldDriver() throws {
        let driver = try FakeVirtioDriver()
        let receive = try EventFD()
        driver.transport.setNotificationSource(receive, queue: 0)
        driver.start()
        receive.signal()  // notified, then reset before the I/O thread looked
        driver.write(VirtioMMIOTransport.Register.status, 0)
        driver.transport.serviceNotifications(queue: 0)
        XCTAssertFalse(driver.needsReset, "\(driver.errors)")
        XCTAssertTrue(driver.errors.isEmpty)
    }

    func testEventFDNotificationBeforeDriverOKIsStillAnError() throws {
        let driver = try FakeVirtioDriver()
        let receive = try EventFD()
        driver.transport.setNotificationSource(receive, queue: 0)
        driver.negotiate()
        receive.signal()
        driver.transport.serviceNotifications(queue: 0)
        XCTAssertEqual(driver.transport.lastError, .notifyNotReady(queue: 0))
    }

    /// The I/O thread over a loopback backend's readiness pipe and two queue eventfds:
    /// a frame injected reaches a receive buffer, a signalled transmit queue sends.
    func testIOThreadServesBackendAndQueueEventFDs() throws {
        let driver = try FakeVirtioDriver()
        let events = [(queue: 0, event: try EventFD()), (queue: 1, event: try EventFD())]
        let io = try DeviceIOThread(transport: driver.transport, readinessFD: driver.backend.readinessFD, queueEvents: events)
        try io.start(name: "test-io")
        defer { io.stop() }

        func eventually(_ what: String, _ condition: () throws -> Bool) throws {
            let deadline = Clock.monotonicNanoseconds() + 5_000_000_000
            while try !condition() {
                guard Clock.monotonicNanoseconds() < deadline else { return XCTFail("timed out waiting for \(what)") }
                usleep(1000)
            }
        }
        // The guest's side of the rings is plain memory; the device's state is read under the transport's lock.
        func counters() -> VirtioNetCounters { driver.transport.withDevice { ($0 as! VirtioNet).counters } }

        driver.start()
        let rx = try driver.addChain(0, [(try driver.buffer([UInt8](repeating: 0, count: 1526)), 1526, true)])
        try driver.publish(0, rx)
        events[0].event.signal()  // what KVM does for a QueueNotify write of 0
        try eventually("the receive notification") { counters().notifications == 1 }
        XCTAssertEqual(try driver.memory.load(UInt16.self, at: GuestAddress(driver.usedRing(0))), SplitVirtqueue.usedNoNotify)

        driver.transport.withDevice { _ in driver.backend.inject(frame) }
        try eventually("the received frame") { try driver.usedIndex(0) == 1 }
        XCTAssertEqual(counters().rxFrames, 1)

        let tx = try driver.addChain(1, [(try driver.buffer([UInt8](repeating: 0, count: 12) + frame), 72, false)])
        try driver.publish(1, tx)
        events[1].event.signal()
        events[1].event.signal()
        try eventually("the sent frame") { try driver.usedIndex(1) == 1 }
        try eventually("both transmit notifications") { counters().notifications == 3 }
        XCTAssertEqual(driver.transport.withDevice { _ in driver.backend.sent }, [frame])
        XCTAssertEqual(counters().txFrames, 1)
        XCTAssertFalse(driver.needsReset)

        io.stop()
        // Stopped: a signal is left alone.
        events[1].event.signal()
        usleep(20_000)
        XCTAssertEqual(counters().notifications, 3)
    }
}
