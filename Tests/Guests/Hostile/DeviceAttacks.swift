import KernelSupport
import ToroKernel

/// The attacks on the virtio-mmio virtio-net device, one family per method.
/// Each step says what the device must do: need a reset (DEVICE_NEEDS_RESET,
/// counted in the VMM's `errors`), or go on serving; each family ends by
/// proving the device still works after a reset.
extension Run {
    // MARK: registers

    /// Every offset of the window at every width, aligned or not, read and
    /// written; the edges of the window; garbage in every register.
    func attackRegisters() {
        family = "registers"
        reset()
        let macBefore = mac

        // Reads change nothing; those that name no register (or use the wrong
        // width) read 0 and are counted as ignored.
        var reads = 0
        var ignored = 0
        for offset in 0..<Reg.window {
            for size: UInt32 in [1, 2, 4, 8] where offset + UInt(size) <= Reg.window {
                _ = read(offset, size: size)
                reads += 1
                if offset < Reg.config && !(size == 4 && offset % 4 == 0 && Reg.readable.contains(offset)) { ignored += 1 }
            }
        }
        expectedIgnored += ignored
        var narrow = true
        for (offset, size) in [(UInt(0), UInt32(1)), (0, 2), (0, 8), (1, 4), (Reg.queueNotify, 4)] where read(offset, size: size) != 0 {
            narrow = false
        }
        expectedIgnored += 5
        let config = read(Reg.config, size: 8)
        var expectedConfig: UInt64 = 1 << 48  // the link-status word, VIRTIO_NET_S_LINK_UP
        for (i, byte) in macBefore.enumerated() { expectedConfig |= UInt64(byte) << (8 * UInt64(i)) }
        expectServing(
            "read every offset at widths 1, 2, 4, 8",
            status == 0 && reg(Reg.magicValue) == VirtioMMIO.magic && narrow && config == expectedConfig,
            "\(reads) reads, \(ignored) of them ignored; magic \(hex(reg(Reg.magicValue))), config \(hex(config))")

        // Writes of the wrong width or alignment, and to the configuration space:
        // all ignored, nothing changes.
        var writes = 0
        for offset in 0..<Reg.window {
            for size: UInt32 in [1, 2, 4, 8] where offset + UInt(size) <= Reg.window {
                if size == 4 && offset % 4 == 0 && offset < Reg.config { continue }
                write(offset, size: size, 0xA5A5_A5A5_A5A5_A5A5)
                writes += 1
            }
        }
        expectedIgnored += writes
        expectServing(
            "write every offset at the wrong width or alignment, and the config space", status == 0 && mac == macBefore
                && reg(Reg.magicValue) == VirtioMMIO.magic, "\(writes) writes ignored, mac unchanged")

        // All ones into every register in turn: QueueNum before FEATURES_OK is an
        // error; after it only the reset is taken. Ignored: the 10 read-only and
        // reserved offsets before 0x38, then the 48 after it but InterruptACK.
        for offset in stride(from: UInt(0), to: Reg.config, by: 4) { setReg(offset, 0xFFFF_FFFF) }
        expectedIgnored += 58
        expectNeedsReset("all ones into every register")
        check("the driver's bits did not stick", status == Run.needsReset, "status \(hex(status))")

        // Around the window: nothing claims these; reads are all ones.
        var outside = true
        let allOnes: [(UInt, UInt32, UInt64)] = [
            (Reg.window, 4, 0xFFFF_FFFF), (Reg.window + 0xDFC, 4, 0xFFFF_FFFF), (Reg.window - 4, 8, UInt64.max),
            (Reg.window - 2, 4, 0xFFFF_FFFF), (Reg.window - 1, 2, 0xFFFF), (0 &- 4, 4, 0xFFFF_FFFF),
        ]
        for (offset, size, value) in allOnes where read(offset, size: size) != value { outside = false }
        // Across the page below: KVM splits it, so its upper half is the magic register.
        let across = read(0 &- 4, size: 8)
        write(Reg.window, size: 4, 1)
        write(Reg.window - 2, size: 4, 0)
        write(0 &- 4, size: 8, 0)
        check("accesses beyond the window's edges", outside && status == Run.needsReset,
              "all ones; a read across its start gave \(hex(across)); status \(hex(status))")
        reset()
        check("reset clears it", status == 0, "status \(hex(status))")
        worksAfterReset()
    }

    // MARK: features

    /// Feature negotiation a device must refuse, and the status register misused.
    func attackFeatures() {
        family = "features"
        var got = negotiate(UInt64.max)
        expectServing("every feature bit", got == Run.acknowledge | Run.driver, "FEATURES_OK refused")

        got = negotiate(Run.featureMAC)
        expectServing("no VIRTIO_F_VERSION_1 (a legacy driver)", got == Run.acknowledge | Run.driver, "FEATURES_OK refused")

        got = negotiate(Run.version1 | (1 << 28) | (1 << 29))
        expectServing("indirect descriptors and event index, never offered", got == Run.acknowledge | Run.driver,
                      "FEATURES_OK refused")

        reset()
        setReg(Reg.status, Run.acknowledge | Run.driver)
        setReg(Reg.deviceFeaturesSel, 0xFFFF_FFFF)
        let beyond = reg(Reg.deviceFeatures)
        setReg(Reg.driverFeaturesSel, 7)
        setReg(Reg.driverFeatures, 0xFFFF_FFFF)
        expectedIgnored += 1
        setReg(Reg.status, Run.negotiated)
        expectServing("feature words beyond bit 63", beyond == 0 && status & Run.featuresOK == 0,
                      "device word 0xffffffff reads \(hex(beyond)), FEATURES_OK refused")

        negotiate()
        setReg(Reg.driverFeaturesSel, 0)
        setReg(Reg.driverFeatures, 0xFFFF_FFFF)
        expectedIgnored += 1
        setQueue(0)
        setQueue(1)
        setReg(Reg.status, Run.running)
        expectServing("features rewritten after FEATURES_OK", status == Run.running, "ignored")

        reset()
        setReg(Reg.status, Run.acknowledge | Run.driver | Run.driverOK)
        let refused = status & Run.driverOK == 0
        notify(1)
        check("DRIVER_OK without FEATURES_OK", refused, "DRIVER_OK refused")
        expectNeedsReset("a notification then")

        reset()
        setReg(Reg.status, Run.acknowledge | Run.driver | Run.needsReset | 0x30 | 0xFFFF_0000)
        expectedIgnored += 1
        expectServing("DEVICE_NEEDS_RESET and undefined bits from the driver", status == Run.acknowledge | Run.driver,
                      "not taken")

        negotiate()
        setReg(Reg.status, Run.acknowledge)
        expectNeedsReset("status bits cleared without a reset")

        start()
        setReg(Reg.status, Run.acknowledge | Run.driver | Run.featuresOK)
        expectNeedsReset("DRIVER_OK taken back")

        negotiate()
        setReg(Reg.status, Run.failed)
        expectServing("FAILED alone: the driver gives up", status == Run.failed, "taken")

        reset()
        setReg(Reg.status, Run.acknowledge | Run.driver)
        setReg(Reg.queueSel, 0)
        setReg(Reg.queueNum, 8)
        expectNeedsReset("a queue register before FEATURES_OK")
        worksAfterReset()
    }

    // MARK: queues

    /// Queue set-ups the device must refuse at QueueReady, or after DRIVER_OK.
    func attackQueues() {
        family = "queues"
        let ram = ramEnd
        let q0 = UInt64(descriptors(0))
        var bad: [(String, UInt32, UInt64?, UInt64?, UInt64?)] = []
        bad.append(("size 0", 0, nil, nil, nil))
        bad.append(("size 3", 3, nil, nil, nil))
        bad.append(("size 512, above QueueNumMax", 512, nil, nil, nil))
        bad.append(("size 65535", 0xFFFF, nil, nil, nil))
        bad.append(("size 65536 (0 in 16 bits)", 0x1_0000, nil, nil, nil))
        bad.append(("descriptor table outside RAM", 16, ram + 0x10_0000, nil, nil))
        bad.append(("descriptor table in the device's own window", 16, UInt64(base), nil, nil))
        bad.append(("descriptor table at the top of the address space", 16, 0xFFFF_FFFF_FFFF_F000, nil, nil))
        bad.append(("used ring running past the end of RAM", 16, nil, nil, ram - 16))
        bad.append(("available ring just below the 3 GiB hole", 16, nil, 0xBFFF_FFF0, nil))
        bad.append(("descriptor table misaligned", 16, q0 + 8, nil, nil))
        bad.append(("available ring misaligned", 16, nil, UInt64(availRing(0)) + 1, nil))
        bad.append(("used ring misaligned", 16, nil, nil, UInt64(usedRing(0)) + 2))
        bad.append(("available ring inside the descriptor table", 16, nil, q0 + 16, nil))
        bad.append(("used ring on the available ring", 16, nil, nil, UInt64(availRing(0))))
        bad.append(("used ring on the descriptor table", 16, nil, nil, q0))
        for (name, size, desc, avail, used) in bad {
            negotiate()
            setQueue(0, size: size, desc: desc, avail: avail, used: used)
            expectNeedsReset(name)
        }

        negotiate()
        setQueue(0)
        setQueue(1, desc: UInt64(usedRing(0)))
        expectNeedsReset("queue 1's descriptor table on queue 0's used ring")

        negotiate()
        setReg(Reg.queueSel, 2)
        let max2 = reg(Reg.queueNumMax)
        setReg(Reg.queueNum, 16)
        setReg(Reg.queueReady, 1)
        setReg(Reg.queueSel, 0xFFFF_FFFF)
        setReg(Reg.queueReady, 1)
        expectedIgnored += 3
        let ready = reg(Reg.queueReady)
        expectServing("a queue that does not exist", max2 == 0 && ready == 0, "QueueNumMax \(max2), QueueReady \(ready)")

        negotiate()
        setQueue(0)
        setReg(Reg.queueDescLow, 0xFFFF_FFF0)  // ignored while the queue is ready
        setReg(Reg.queueNum, 3)
        expectedIgnored += 2
        setQueue(1)
        setReg(Reg.status, Run.running)
        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        publish(1, 0)
        notify(1)
        let sent = wait(milliseconds: 2000) { self.usedIndex(1) == 1 }
        expectServing("queue registers rewritten while ready", sent, "ignored; a frame went out")

        start()
        setReg(Reg.queueSel, 0)
        setReg(Reg.queueReady, 0)
        expectNeedsReset("a queue disabled after DRIVER_OK")

        start()
        setReg(Reg.queueSel, 1)
        setReg(Reg.queueDescLow, UInt32(truncatingIfNeeded: UInt64(buffer(40))))
        expectNeedsReset("a ring moved after DRIVER_OK")

        negotiate()
        setReg(Reg.status, Run.running)
        notify(1)
        expectNeedsReset("DRIVER_OK with no queue, then a notification")
        worksAfterReset()
    }

    // MARK: descriptors

    /// Chains the device must refuse, and a few odd ones it must serve.
    func attackDescriptors() {
        family = "descriptors"
        let ram = ramEnd
        let data = UInt64(buffer(0))
        let desc1 = UInt64(descriptors(1))
        // (name, queue, descriptors as (address, length, flags, next), head)
        var bad: [(String, Int, [(UInt64, UInt32, UInt16, UInt16)], UInt16)] = []
        bad.append(("a chain that loops", 1, [(data, 12, Run.next, 1), (data, 60, Run.next, 0)], 0))
        bad.append(("a descriptor that points at itself", 1, [(data, 72, Run.next, 0)], 0))
        bad.append(("a head beyond the queue", 1, [(data, 72, 0, 0)], 200))
        bad.append(("a next beyond the queue", 1, [(data, 12, Run.next, 16)], 0))
        bad.append(("a next of 65535", 1, [(data, 12, Run.next, 0xFFFF)], 0))
        bad.append(("a buffer outside RAM", 1, [(ram + 0x1000, 72, 0, 0)], 0))
        bad.append(("a buffer in the MMIO hole", 1, [(0xD000_0000, 72, 0, 0)], 0))
        bad.append(("a buffer running past the end of RAM", 1, [(ram - 8, 72, 0, 0)], 0))
        bad.append(("a 4 GiB length", 1, [(data, 0xFFFF_FFFF, 0, 0)], 0))
        bad.append(("an address and length that wrap", 1, [(0xFFFF_FFFF_FFFF_FF00, 0x1000, 0, 0)], 0))
        bad.append(("a frame over 64 KiB, in RAM", 1, [(data, 12, Run.next, 1), (data, 40000, Run.next, 2), (data, 40000, 0, 0)], 0))
        bad.append(("a frame shorter than the virtio header", 1, [(data, 8, 0, 0)], 0))
        bad.append(("a device-writable transmit buffer", 1, [(data, 72, Run.write, 0)], 0))
        bad.append(("a readable buffer after a writable one", 1, [(data, 12, Run.write | Run.next, 1), (data, 60, 0, 0)], 0))
        bad.append(("an indirect descriptor, never negotiated", 1, [(data, 64, Run.indirect, 0)], 0))
        bad.append(("an indirect descriptor with NEXT", 1, [(data, 16, Run.indirect | Run.next, 1), (data, 72, 0, 0)], 0))
        bad.append(("every descriptor in one ring", 1, (0..<16).map { i -> (UInt64, UInt32, UInt16, UInt16) in (data, 12, Run.next, UInt16((i + 1) % 16)) }, 0))
        bad.append(("a device-readable receive buffer", 0, [(data, 1538, 0, 0)], 0))
        bad.append(("a receive buffer smaller than the virtio header", 0, [(data, 10, Run.write, 0)], 0))
        bad.append(("a receive buffer over its own used ring", 0, [(UInt64(usedRing(0)), 1538, Run.write, 0)], 0))
        bad.append(("a receive buffer over the transmit descriptors", 0, [(desc1, 1538, Run.write, 0)], 0))
        bad.append(("a receive buffer over its own available ring", 0, [(UInt64(availRing(0)) - 64, 1538, Run.write, 0)], 0))
        for (name, q, chain, head) in bad {
            start()
            for (i, (address, length, flags, next)) in chain.enumerated() {
                setDescriptor(q, i, address: address, length: length, flags: flags, next: next)
            }
            publish(q, head)
            notify(UInt32(q))
            expectNeedsReset(name)
        }

        // Served: odd but within the rules, so the device sends every frame.
        let frame = placeFrame(page: 1)
        var served: [(String, [(UInt64, UInt32, UInt16, UInt16)])] = []
        served.append(("header and frame in one buffer, twice over", [(frame, 12, Run.next, 1), (frame + 12, 60, Run.next, 2), (frame, 12, 0, 0)]))
        served.append(("zero-length descriptors in the chain", [(frame, 12, Run.next, 1), (frame, 0, Run.next, 2), (frame + 12, 60, Run.next, 3), (0, 0, 0, 0)]))
        served.append(("a transmit buffer that is the rings themselves", [(UInt64(descriptors(1)), 72, 0, 0)]))
        served.append(("two chains on one buffer", [(frame, 72, 0, 0)]))
        for (name, chain) in served {
            start()
            for (i, (address, length, flags, next)) in chain.enumerated() {
                setDescriptor(1, i, address: address, length: length, flags: flags, next: next)
            }
            publish(1, 0)
            publish(1, 0)
            notify(1)
            let sent = wait(milliseconds: 2000) { self.usedIndex(1) == 2 }
            expectServing(name, sent, "\(usedIndex(1)) of 2 chains returned")
        }
        worksAfterReset()
    }

    // MARK: avail

    /// The available index moved where no driver may move it.
    func attackAvailable() {
        family = "avail"
        start()
        setAvailIndex(1, 100)
        notify(1)
        expectNeedsReset("the transmit index 100 ahead in a queue of 16")

        start()
        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        publish(1, 0)
        notify(1)
        _ = wait(milliseconds: 2000) { self.usedIndex(1) == 1 }
        setAvailIndex(1, 0)
        notify(1)
        expectNeedsReset("the transmit index moved back")

        start()
        setAvailIndex(0, 0x8000)
        notify(0)
        expectNeedsReset("the receive index half the index space ahead")

        start()
        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        for _ in 0..<Run.queueSize { publish(1, 0) }
        notify(1)
        let all = wait(milliseconds: 2000) { self.usedIndex(1) == UInt16(Run.queueSize) }
        expectServing("a whole queue's worth at once, one descriptor 16 times", all, "\(usedIndex(1)) returned")

        start()
        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        for round in 0..<300 {
            publish(1, 0)
            notify(1)
            if !wait(milliseconds: 2000, { self.usedIndex(1) == self.availIndex[1] }) {
                print("hostile: avail: round \(round) was not returned")
                break
            }
        }
        expectServing("300 frames one by one, the ring wrapping 18 times", usedIndex(1) == availIndex[1],
                      "avail \(availIndex[1]), used \(usedIndex(1))")
        worksAfterReset()
    }

    // MARK: storm

    /// Thousands of notifications: before the device is ready, to nothing, to a
    /// queue that does not exist, and around real frames.
    func attackStorm() {
        family = "storm"
        negotiate()
        setQueue(0)
        setQueue(1)
        for _ in 0..<5000 { notify(1) }
        expectNeedsReset("5000 notifications before DRIVER_OK")

        start()
        for _ in 0..<5000 { notify(1) }
        for _ in 0..<5000 { notify(0) }
        // Then a frame and a receive buffer, each with one more notification: once
        // the device has taken both, it has served every notification before them
        // (a queue's notifications add up in one counter, read whole).
        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        publish(1, 0)
        notify(1)
        setDescriptor(0, 0, address: UInt64(buffer(1)), length: 1538, flags: Run.write)
        publish(0, 0)
        notify(0)
        let served = wait(milliseconds: 2000) {
            self.usedIndex(1) == 1 && (kernel_mmio_read16(self.usedRing(0)) & 1 != 0 || self.usedIndex(0) != 0)
        }
        expectServing("10000 notifications of empty queues", served, "all served, then a frame and a buffer")

        start()
        for _ in 0..<2000 { notify(7) }
        expectedIgnored += 1999
        expectNeedsReset("2000 notifications of queue 7")

        start()
        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        var returned = true
        for _ in 0..<200 {
            publish(1, 0)
            for _ in 0..<10 { notify(1) }
            returned = returned && wait(milliseconds: 2000) { self.usedIndex(1) == self.availIndex[1] }
        }
        expectServing("200 frames, 10 notifications each", returned, "\(usedIndex(1)) returned")

        start()
        for _ in 0..<2000 {
            setReg(Reg.interruptACK, 0xFFFF_FFFF ^ reg(Reg.interruptStatus))
        }
        expectServing("2000 interrupt acknowledgements of nothing", status == Run.running, "")
        worksAfterReset()
    }

    // MARK: reset

    /// Resets while the device is busy, in the middle of set-up, and by the thousand.
    func attackReset() {
        family = "reset"
        start()
        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        for _ in 0..<Run.queueSize { publish(1, 0) }
        notify(1)
        setReg(Reg.status, 0)
        expectServing("reset with 16 frames in flight", status == 0, "")

        // Receive buffers marked, the host asked for an ARP reply, then reset at
        // once: whatever arrives after the reset must not reach the old buffers.
        start()
        for i in 0..<8 {
            store([UInt8](repeating: 0xCC, count: 64), at: buffer(i))
            setDescriptor(0, i, address: UInt64(buffer(i)), length: 1538, flags: Run.write)
            publish(0, UInt16(i))
        }
        notify(0)
        setDescriptor(1, 0, address: placeARPRequest(page: 9), length: 72, flags: 0)
        publish(1, 0)
        notify(1)
        setReg(Reg.status, 0)
        let usedAtReset = usedIndex(0)
        var marks: [[UInt8]] = []
        for i in 0..<8 { marks.append(load(64, at: buffer(i))) }
        _ = wait(milliseconds: 300) { false }
        var untouched = usedIndex(0) == usedAtReset
        for i in 0..<8 where load(64, at: buffer(i)) != marks[i] { untouched = false }
        expectServing("reset while a reply is on its way", status == 0 && untouched,
                      "the old rings were not written after the reset (used index \(usedAtReset))")

        start()
        for _ in 0..<1000 { notify(1) }
        setReg(Reg.status, 0)
        _ = wait(milliseconds: 50) { false }
        expectServing("reset right after 1000 notifications", status == 0,
                      "notifications the old driver sent are not served to the next")

        for _ in 0..<1000 {
            setReg(Reg.status, 0)
            setReg(Reg.status, Run.acknowledge)
            setReg(Reg.status, Run.acknowledge | Run.driver)
        }
        expectServing("1000 resets", status == Run.acknowledge | Run.driver, "")

        negotiate()
        setQueue(0)
        setReg(Reg.status, 0)
        setReg(Reg.queueSel, 0)
        expectServing("reset in the middle of set-up", status == 0 && reg(Reg.queueReady) == 0, "queue 0 no longer ready")
        worksAfterReset()
    }

    // MARK: needsreset

    /// Everything a driver could write to a device that waits for its reset.
    func attackAfterNeedsReset() {
        family = "needsreset"
        start()
        setAvailIndex(1, 1000)
        notify(1)
        expectNeedsReset("the device gives up")
        let failedStatus = status

        setDescriptor(1, 0, address: placeFrame(page: 0), length: 72, flags: 0)
        setAvailIndex(1, 0)
        availIndex[1] = 0
        publish(1, 0)
        setReg(Reg.status, Run.running)
        setReg(Reg.status, Run.acknowledge)
        setReg(Reg.queueSel, 1)
        setReg(Reg.queueReady, 0)
        setReg(Reg.queueNum, 4)
        setReg(Reg.queueDescLow, 0x1000)
        setReg(Reg.driverFeatures, 0)
        for _ in 0..<100 { notify(1) }
        setReg(Reg.interruptACK, 0xFFFF_FFFF)
        expectedIgnored += 106
        _ = wait(milliseconds: 100) { false }
        check("writes while it waits for the reset", status == failedStatus && usedIndex(1) == 0
                && reg(Reg.queueReady) == 1,
              "status \(hex(status)) unchanged, the frame not sent, queue 1 still as it was")
        setReg(Reg.status, 0)
        check("the reset", status == 0, "status \(hex(status))")
        worksAfterReset()
    }
}
