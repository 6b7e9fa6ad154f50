import CKVM
import Glibc

/// The `--net` device of a VM: a ``VirtioNet`` on a ``TapBackend``, behind a
/// ``VirtioMMIOTransport`` in the MMIO hole, and the I/O thread that serves it.
///
/// The data path does not exit to the VMM where KVM allows it (KVM_CAP_IOEVENTFD,
/// KVM_CAP_IRQFD):
/// - each queue's QueueNotify write (4 bytes, value = the queue index) is matched by
///   an ioeventfd, so the vCPU goes on and the ``DeviceIOThread`` serves the queue;
/// - the interrupt is an irqfd on GSI 5: one eventfd write, which KVM turns into an
///   edge on the in-kernel IOAPIC (1 then 0; no resample fd, so no level to end).
///   The guest programs the pin edge-triggered.
///
/// Every other register (InterruptStatus and InterruptACK among them) stays an MMIO
/// exit on the vCPU thread. Without either capability that part falls back to the
/// old path, said once on stderr: QueueNotify as an MMIO exit, and the interrupt as
/// KVM_IRQ_LINE driven to 1 and straight back to 0 (the same edge).
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
    private let vm: VirtualMachine
    /// The irqfd, when KVM took it.
    private let interruptEvent: EventFD?
    /// The ioeventfds by queue, when KVM took them.
    private let notifyEvents: [(queue: Int, event: EventFD)]
    private let io: DeviceIOThread

    /// Opens TAP interface `config.tapName` and builds the device over `memory`,
    /// raising its interrupt on `vm`'s IOAPIC.
    init(config: NetConfig, vm: VirtualMachine, memory: GuestMemory) throws(VMMError) {
        do { backend = try TapBackend(name: config.tapName) } catch { throw .network(error) }
        device = VirtioNet(
            mac: config.mac ?? MACAddress.local(index: 1), backend: backend,
            drop: DropInjection(percent: config.dropPercent))
        self.vm = vm
        let gsi = NetDevice.gsi
        var fallbacks: [String] = []

        interruptEvent = NetDevice.makeIrqfd(vm: vm, gsi: gsi, fallbacks: &fallbacks)
        let line: any VirtioInterruptLine
        if let interruptEvent {
            line = EventFDInterruptLine(interruptEvent)
        } else {
            line = ClosureInterruptLine {
                // An edge: a failure here cannot be reported to the guest; the
                // interrupt count in the statistics still shows the attempt.
                try? vm.setInterruptLine(gsi: gsi, level: true)
                try? vm.setInterruptLine(gsi: gsi, level: false)
            }
        }
        // The first driver error of the run, on one line (the transport reports one per
        // reset at most, under its lock); later ones are only counted (`errors`).
        let warning = DeviceWarning()
        transport = VirtioMMIOTransport(device: device, memory: memory, interrupt: line) { error in
            guard !warning.given else { return }
            warning.given = true
            writeError("toro-vmm: --net: the guest's virtio-net driver broke the device's rules, which now needs a reset: "
                + "\(error) (further errors are only counted)")
        }
        bus = VirtioMMIOBus()
        bus.add(transport, base: NetDevice.windowBase, irq: gsi)
        notifyEvents = NetDevice.makeIoeventfds(vm: vm, queues: device.queueCount, fallbacks: &fallbacks)
        if !fallbacks.isEmpty {
            let line = Array("toro-vmm: --net: \(fallbacks.joined(separator: "; "))\n".utf8)
            _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
        io = try DeviceIOThread(
            transport: transport, readinessFD: backend.readinessFD, queueEvents: notifyEvents,
            busyPollMicroseconds: config.pollMicroseconds)
    }

    deinit {
        io.stop()
        let notify = NetDevice.windowBase + UInt64(VirtioMMIOTransport.Register.queueNotify)
        for (queue, event) in notifyEvents {
            try? vm.deassignIoeventfd(event.fd, address: notify, length: 4, datamatch: UInt64(queue))
        }
        if let interruptEvent { try? vm.deassignIrqfd(interruptEvent.fd, gsi: NetDevice.gsi) }
    }

    /// An eventfd KVM injects `gsi` for, or nil (and why in `fallbacks`).
    private static func makeIrqfd(vm: VirtualMachine, gsi: UInt32, fallbacks: inout [String]) -> EventFD? {
        guard vm.supportsIrqfd else {
            fallbacks.append("KVM lacks KVM_CAP_IRQFD: interrupts are KVM_IRQ_LINE calls")
            return nil
        }
        do {
            let event = try EventFD()
            try vm.assignIrqfd(event.fd, gsi: gsi)
            return event
        } catch {
            fallbacks.append("\(error): interrupts are KVM_IRQ_LINE calls")
            return nil
        }
    }

    /// One ioeventfd per queue on QueueNotify, matching the queue's index; none (and
    /// why in `fallbacks`) unless KVM takes them all.
    private static func makeIoeventfds(vm: VirtualMachine, queues: Int, fallbacks: inout [String]) -> [(queue: Int, event: EventFD)] {
        guard vm.supportsIoeventfd else {
            fallbacks.append("KVM lacks KVM_CAP_IOEVENTFD: queue notifications exit to the VMM")
            return []
        }
        let notify = NetDevice.windowBase + UInt64(VirtioMMIOTransport.Register.queueNotify)
        var events: [(queue: Int, event: EventFD)] = []
        do throws(KVMError) {
            for queue in 0..<queues {
                let event = try EventFD()
                try vm.assignIoeventfd(event.fd, address: notify, length: 4, datamatch: UInt64(queue))
                events.append((queue, event))
            }
            return events
        } catch {
            for (queue, event) in events {
                try? vm.deassignIoeventfd(event.fd, address: notify, length: 4, datamatch: UInt64(queue))
            }
            fallbacks.append("\(error): queue notifications exit to the VMM")
            return []
        }
    }

    /// The boot-information entries for the devices on ``bus``.
    var bootDevices: [BootInfo.Device] {
        bus.bootDevices.map { BootInfo.Device(type: $0.type, irq: $0.irq, base: $0.base, size: $0.size, flags: $0.flags) }
    }

    /// Starts the I/O thread.
    func start() throws(VMMError) {
        try io.start(name: "net-io")
    }

    /// Stops the I/O thread and waits for it.
    func stop() {
        io.stop()
    }

    /// The device's counters now.
    var statistics: DeviceStatistics {
        let counters = transport.withDevice { ($0 as? VirtioNet)?.counters ?? VirtioNetCounters() }
        return DeviceStatistics(
            kind: "virtio-net", base: NetDevice.windowBase, irq: NetDevice.gsi, backend: "tap:\(backend.name)",
            mac: device.mac.description, counters: counters,
            interruptsRaised: transport.interruptCount, errors: transport.errorCount,
            ignoredAccesses: transport.ignoredAccesses)
    }
}

/// Whether the device's one warning was given; touched only under the transport's lock.
private final class DeviceWarning: @unchecked Sendable {
    var given = false
}
