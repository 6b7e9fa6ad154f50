import KernelSupport
import ToroKernel

/// What the attacks share: the virtio-mmio window, the memory they build rings
/// and buffers in, a driver of their own reduced to raw register writes and
/// ring stores (so that any value can be written), and the tally of steps.
///
/// Queue `q`'s descriptor table is at `arena + q * 0x4000`, its available ring
/// 0x1000 and its used ring 0x2000 further; buffers are pages from
/// `arena + 0x8000` on. Every store the device reads is volatile and fenced
/// before the index that publishes it, as a real driver's would be.
final class Run {
    /// virtio-mmio registers (virtio 1.2 §4.2.2): the kernel driver's offsets.
    typealias Reg = VirtioMMIO.Register

    // Device status bits (§2.1).
    static let acknowledge: UInt32 = 1
    static let driver: UInt32 = 2
    static let driverOK: UInt32 = 4
    static let featuresOK: UInt32 = 8
    static let needsReset: UInt32 = 64
    static let failed: UInt32 = 128
    static let negotiated = acknowledge | driver | featuresOK
    static let running = negotiated | driverOK

    static let version1: UInt64 = 1 << 32
    static let featureMAC: UInt64 = 1 << 5

    // Descriptor flags (§2.7.5).
    static let next: UInt16 = 1
    static let write: UInt16 = 2
    static let indirect: UInt16 = 4

    static let queueSize = 16
    static let headerSize = 12
    /// The addresses the health checks use: the guest's, and the namespace's end of the TAP.
    static let guestIP: [UInt8] = [10, 77, 0, 2]
    static let hostIP: [UInt8] = [10, 77, 0, 1]

    /// The device's window, 0 when the VMM lists no device.
    let base: UInt
    /// The end of guest RAM (below the 3 GiB hole: the tests boot 128 MiB).
    let ramEnd: UInt64
    let arena: UInt
    static let arenaPages = 64

    var family = ""
    var steps = 0
    var unexpected = 0
    /// What the VMM's statistics must show at least (errors, ignored accesses)
    /// and exactly (rejected console requests) after these steps.
    var expectedErrors = 0
    var expectedIgnored = 0
    var expectedRejected = 0
    /// The driver side's available index per queue.
    var availIndex: [UInt16] = [0, 0]

    init(base: UInt, ramEnd: UInt64, arena: UInt) {
        self.base = base
        self.ramEnd = ramEnd
        self.arena = arena
    }

    // MARK: Reporting

    /// One step's verdict, on one line the host test reads.
    func check(_ step: String, _ ok: Bool, _ detail: String) {
        steps += 1
        if !ok { unexpected += 1 }
        print("hostile: \(family) \(step): \(ok ? "ok" : "UNEXPECTED"): \(detail)")
    }

    /// The step must have left the device needing a reset. Notifications reach the
    /// device through the VMM's I/O thread, so the flag may come a little later.
    func expectNeedsReset(_ step: String) {
        let seen = wait(milliseconds: 2000) { self.status & Run.needsReset != 0 }
        expectedErrors += 1
        check(step, seen, "status \(hex(status))" + (seen ? ", DEVICE_NEEDS_RESET" : ", no DEVICE_NEEDS_RESET after 2 s"))
    }

    /// The step must have left the device serving (`condition` too, if given).
    func expectServing(_ step: String, _ condition: Bool = true, _ detail: String = "") {
        let now = status
        check(step, now & Run.needsReset == 0 && condition, "status \(hex(now))" + (detail.isEmpty ? "" : ", " + detail))
    }

    /// Polls `condition` about every millisecond for at most `milliseconds`.
    func wait(milliseconds: UInt64, _ condition: () -> Bool) -> Bool {
        let deadline = Clock.deadline(afterNanoseconds: milliseconds * 1_000_000)
        while true {
            if condition() { return true }
            if CPU.timestamp() >= deadline { return false }
            Thread.sleep(milliseconds: 1)
        }
    }

    // MARK: Registers

    func reg(_ offset: UInt) -> UInt32 { kernel_mmio_read32(base + offset) }
    func setReg(_ offset: UInt, _ value: UInt32) { kernel_mmio_write32(base + offset, value) }
    var status: UInt32 { reg(Reg.status) }
    func notify(_ queue: UInt32) { setReg(Reg.queueNotify, queue) }

    /// Any width at any offset of the window (or outside it), as one access.
    func read(_ offset: UInt, size: UInt32) -> UInt64 { kernel_mmio_read_sized(base &+ offset, size) }
    func write(_ offset: UInt, size: UInt32, _ value: UInt64) { kernel_mmio_write_sized(base &+ offset, value, size) }

    var mac: [UInt8] {
        var bytes: [UInt8] = []
        for i in 0..<UInt(6) { bytes.append(kernel_mmio_read8(base + Reg.config + i)) }
        return bytes
    }

    /// Status 0, then rings zeroed (the next activation starts from index 0).
    func reset() {
        setReg(Reg.status, 0)
        UnsafeMutableRawPointer(bitPattern: arena)!.initializeMemory(as: UInt8.self, repeating: 0, count: 0x8000)
        kernel_memory_fence()
        availIndex = [0, 0]
    }

    /// Reset, ACKNOWLEDGE, DRIVER, `features`, FEATURES_OK (§3.1.1); the status read back.
    @discardableResult
    func negotiate(_ features: UInt64 = Run.version1 | Run.featureMAC) -> UInt32 {
        reset()
        setReg(Reg.status, Run.acknowledge)
        setReg(Reg.status, Run.acknowledge | Run.driver)
        setFeatures(features)
        setReg(Reg.status, Run.negotiated)
        return status
    }

    func setFeatures(_ features: UInt64) {
        setReg(Reg.driverFeaturesSel, 0)
        setReg(Reg.driverFeatures, UInt32(truncatingIfNeeded: features))
        setReg(Reg.driverFeaturesSel, 1)
        setReg(Reg.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
    }

    func descriptors(_ q: Int) -> UInt { arena + UInt(q) * 0x4000 }
    func availRing(_ q: Int) -> UInt { descriptors(q) + 0x1000 }
    func usedRing(_ q: Int) -> UInt { descriptors(q) + 0x2000 }
    /// Page `i` (0-55) of the buffer area.
    func buffer(_ i: Int) -> UInt { arena + 0x8000 + UInt(i) * 0x1000 }

    /// §4.2.3.2 for queue `q`: select, size, the three addresses (its usual ones
    /// unless given), ready.
    func setQueue(_ q: Int, size: UInt32 = UInt32(Run.queueSize), desc: UInt64? = nil, avail: UInt64? = nil,
                  used: UInt64? = nil, ready: Bool = true) {
        setReg(Reg.queueSel, UInt32(q))
        setReg(Reg.queueNum, size)
        for (register, address) in [
            (Reg.queueDescLow, desc ?? UInt64(descriptors(q))), (Reg.queueDriverLow, avail ?? UInt64(availRing(q))),
            (Reg.queueDeviceLow, used ?? UInt64(usedRing(q))),
        ] {
            setReg(register, UInt32(truncatingIfNeeded: address))
            setReg(register + 4, UInt32(truncatingIfNeeded: address >> 32))
        }
        if ready { setReg(Reg.queueReady, 1) }
    }

    /// A device that serves: negotiated, both queues of ``queueSize``, DRIVER_OK.
    func start() {
        negotiate()
        setQueue(0)
        setQueue(1)
        setReg(Reg.status, Run.running)
    }

    // MARK: Rings

    func setDescriptor(_ q: Int, _ index: Int, address: UInt64, length: UInt32, flags: UInt16, next: UInt16 = 0) {
        let entry = descriptors(q) + UInt(16 * index)
        kernel_mmio_write32(entry, UInt32(truncatingIfNeeded: address))
        kernel_mmio_write32(entry + 4, UInt32(truncatingIfNeeded: address >> 32))
        kernel_mmio_write32(entry + 8, length)
        kernel_mmio_write16(entry + 12, flags)
        kernel_mmio_write16(entry + 14, next)
    }

    /// Puts `head` in the next available entry and publishes it (§2.7.13).
    func publish(_ q: Int, _ head: UInt16) {
        let slot = UInt(availIndex[q]) % UInt(Run.queueSize)
        kernel_mmio_write16(availRing(q) + 4 + 2 * slot, head)
        availIndex[q] &+= 1
        setAvailIndex(q, availIndex[q])
    }

    /// Writes the available ring's idx as it is, fenced on both sides.
    func setAvailIndex(_ q: Int, _ value: UInt16) {
        kernel_memory_fence()
        kernel_mmio_write16(availRing(q) + 2, value)
        kernel_memory_fence()
    }

    func usedIndex(_ q: Int) -> UInt16 {
        let index = kernel_mmio_read16(usedRing(q) + 2)
        kernel_memory_fence()
        return index
    }

    func usedEntry(_ q: Int, _ i: UInt16) -> (id: UInt32, length: UInt32) {
        let entry = usedRing(q) + 4 + 8 * (UInt(i) % UInt(Run.queueSize))
        return (kernel_mmio_read32(entry), kernel_mmio_read32(entry + 4))
    }

    /// Writes `bytes` at guest-physical (identity-mapped) `address`.
    func store(_ bytes: [UInt8], at address: UInt) {
        let target = UnsafeMutablePointer<UInt8>(bitPattern: address)!
        for (i, byte) in bytes.enumerated() { target[i] = byte }
        kernel_memory_fence()
    }

    func load(_ count: Int, at address: UInt) -> [UInt8] {
        kernel_memory_fence()
        let source = UnsafePointer<UInt8>(bitPattern: address)!
        var bytes: [UInt8] = []
        for i in 0..<count { bytes.append(source[i]) }
        return bytes
    }

    /// A transmit buffer in page `page`: a zero virtio_net_hdr and a 60-byte frame
    /// to nobody (a locally administered unicast address, an experimental EtherType):
    /// the namespace's interface drops it. The chain is one descriptor of 72 bytes.
    func placeFrame(page: Int) -> UInt64 {
        var bytes = [UInt8](repeating: 0, count: Run.headerSize)
        bytes += [0x02, 0, 0, 0, 0, 0x01] + mac + [0x88, 0xB5]
        while bytes.count < Run.headerSize + 60 { bytes.append(0x5A) }
        store(bytes, at: buffer(page))
        return UInt64(buffer(page))
    }

    /// An ARP request from ``guestIP`` for ``hostIP`` after a zero virtio_net_hdr, in page `page`.
    func placeARPRequest(page: Int) -> UInt64 {
        let mac = self.mac
        var bytes = [UInt8](repeating: 0, count: Run.headerSize)
        bytes += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + mac + [0x08, 0x06]
        bytes += [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01] + mac + Run.guestIP + [0, 0, 0, 0, 0, 0] + Run.hostIP
        while bytes.count < Run.headerSize + 60 { bytes.append(0) }
        store(bytes, at: buffer(page))
        return UInt64(buffer(page))
    }

    /// Whether the `length` bytes received in page `page` (virtio_net_hdr first)
    /// are an ARP reply from ``hostIP``.
    func isARPReply(page: Int, length: UInt32) -> Bool {
        guard length >= UInt32(Run.headerSize + 42), length <= 0x1000 else { return false }
        let frame = load(42, at: buffer(page) + UInt(Run.headerSize))
        return frame[12] == 0x08 && frame[13] == 0x06 && frame[20] == 0 && frame[21] == 2
            && Array(frame[28..<32]) == Run.hostIP
    }

    // MARK: The device after an attack

    /// Resets the device, sets it up as a driver should and exchanges frames
    /// with the host: an ARP request out, the host's reply in (up to 6 tries,
    /// 500 ms each). Then resets it again.
    func worksAfterReset() {
        start()
        for i in 0..<8 {
            setDescriptor(0, i, address: UInt64(buffer(i)), length: 1538, flags: Run.write)
            publish(0, UInt16(i))
        }
        notify(0)
        var seen: UInt16 = 0
        var replied = false
        var sent: UInt16 = 0
        let began = CPU.timestamp()
        for attempt in 0..<6 where !replied {
            let slot = attempt % 8
            setDescriptor(1, slot, address: placeARPRequest(page: 8 + slot), length: UInt32(Run.headerSize + 60), flags: 0)
            publish(1, UInt16(slot))
            notify(1)
            sent &+= 1
            replied = wait(milliseconds: 500) {
                while seen != self.usedIndex(0) {
                    let (id, length) = self.usedEntry(0, seen)
                    seen &+= 1
                    let page = Int(id & 7)
                    if id < 8 && self.isARPReply(page: page, length: length) { return true }
                    self.publish(0, UInt16(page))  // the buffer goes back for the next frame
                    self.notify(0)
                }
                return false
            }
        }
        let milliseconds = Clock.nanoseconds(ticks: CPU.timestamp() &- began) / 1_000_000
        let transmitted = wait(milliseconds: 1000) { self.usedIndex(1) == sent }
        let now = status
        check("works after reset", replied && transmitted && now & Run.needsReset == 0,
              "status \(hex(now)), \(sent) arp request(s) sent, \(usedIndex(1)) returned, "
              + (replied ? "reply from 10.77.0.1 after \(milliseconds) ms" : "no reply from 10.77.0.1"))
        reset()
    }
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16) }

extension VirtioMMIO.Register {
    /// The window's size: every offset the attacks try lies below it, or just beyond.
    static let window: UInt = 0x200
    /// The offsets a 32-bit read returns a register from (the rest are
    /// write-only or reserved: the device ignores such reads and counts them).
    static let readable: [UInt] = [0x000, 0x004, 0x008, 0x00C, 0x010, 0x034, 0x044, 0x060, 0x070, 0x0B0, 0x0B4, 0x0B8, 0x0BC, 0x0FC]
}
