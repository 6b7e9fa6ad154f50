import CKVM
import Glibc
import Synchronization

/// The `--net` device of a VM: a ``VirtioNet`` on a ``TapBackend``, behind a
/// ``VirtioMMIOTransport`` in the MMIO hole, and the I/O thread that feeds it
/// received frames.
///
/// Interrupts go to the in-kernel IOAPIC with KVM_IRQ_LINE as an edge: the line is
/// driven to 1 and straight back to 0 for each interrupt. An edge-triggered IOAPIC
/// pin sees one rising edge per interrupt; the guest must program the pin as edge
/// triggered (a level-triggered pin would see the line already low when it looks).
/// The driver learns why from InterruptStatus and acknowledges with InterruptACK as usual.
final class NetDevice: @unchecked Sendable {
    /// Guest-physical base of the device's virtio-mmio window: in the MMIO hole,
    /// clear of 0xD0000000 (which stays unclaimed) and of the IOAPIC and local APIC.
    static let windowBase: UInt64 = 0xD100_0000
    /// The IOAPIC input the device's interrupt drives.
    static let gsi: UInt32 = 5

    let backend: TapBackend
    let device: VirtioNet
    let transport: VirtioMMIOTransport
    let bus: VirtioMMIOBus
    private let stopping = Atomic<Bool>(false)
    /// A pipe whose write end wakes the I/O thread when the VM stops.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var thread: HostThread?

    /// Opens TAP interface `config.tapName` and builds the device over `memory`,
    /// raising its interrupt on `vm`'s IOAPIC.
    init(config: NetConfig, vm: VirtualMachine, memory: GuestMemory) throws(VMMError) {
        do { backend = try TapBackend(name: config.tapName) } catch { throw .network(error) }
        device = VirtioNet(
            mac: config.mac ?? MACAddress.local(index: 1), backend: backend,
            drop: DropInjection(percent: config.dropPercent))
        let gsi = NetDevice.gsi
        transport = VirtioMMIOTransport(
            device: device, memory: memory,
            interrupt: ClosureInterruptLine {
                // An edge: a failure here cannot be reported to the guest; the
                // interrupt count in the statistics still shows the attempt.
                try? vm.setInterruptLine(gsi: gsi, level: true)
                try? vm.setInterruptLine(gsi: gsi, level: false)
            })
        bus = VirtioMMIOBus()
        bus.add(transport, base: NetDevice.windowBase, irq: gsi)
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw .host("cannot create the network I/O thread's pipe: \(String(cString: strerror(errno)))") }
        wakeRead = ends[0]
        wakeWrite = ends[1]
    }

    deinit {
        close(wakeRead)
        close(wakeWrite)
    }

    /// The boot-information entries for the devices on ``bus``.
    var bootDevices: [BootInfo.Device] {
        bus.bootDevices.map { BootInfo.Device(type: $0.type, irq: $0.irq, base: $0.base, size: $0.size) }
    }

    /// Starts the I/O thread.
    func start() throws(VMMError) {
        thread = try HostThread.spawn(name: "net-io") { [self] in self.run() }
    }

    /// Stops the I/O thread and waits for it.
    func stop() {
        stopping.store(true, ordering: .releasing)
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        thread?.join()
        thread = nil
    }

    /// Waits for the TAP device to become readable (or for ``stop()``), then lets the
    /// transport move the waiting frames into the guest's receive buffers.
    private func run() {
        let readiness = backend.readinessFD
        let errorEvents = Int16(POLLERR | POLLHUP | POLLNVAL)
        while !stopping.load(ordering: .acquiring) {
            var fds = [
                pollfd(fd: readiness, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&fds, 2, 1000)
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            guard !stopping.load(ordering: .acquiring) else { return }
            if fds[0].revents & Int16(POLLIN) != 0 {
                transport.poll()
                // Frames the device could not take (no receive buffers yet, or the driver
                // is not ready) keep the descriptor readable: back off instead of spinning.
                var again = pollfd(fd: readiness, events: Int16(POLLIN), revents: 0)
                if poll(&again, 1, 0) > 0 { usleep(1000) }
            } else if fds[0].revents & errorEvents != 0 {
                usleep(10_000)
            }
        }
    }

    /// The device's counters now.
    var statistics: DeviceStatistics {
        let counters = transport.withDevice { ($0 as? VirtioNet)?.counters ?? VirtioNetCounters() }
        return DeviceStatistics(
            kind: "virtio-net", base: NetDevice.windowBase, irq: NetDevice.gsi, backend: "tap:\(backend.name)",
            mac: device.mac.description, counters: counters,
            interruptsRaised: transport.interruptCount, errors: transport.errorCount)
    }
}
