import Glibc
import Synchronization

/// The I/O thread of one virtio device. It sleeps in a single `epoll_wait` over
///
/// - the backend's readiness descriptor (the TAP fd), edge-triggered: frames arrived,
///   so the transport moves them into the guest's receive buffers (``VirtioMMIOTransport/poll()``);
/// - one eventfd per queue that KVM signals for the guest's QueueNotify writes
///   (KVM_IOEVENTFD), so those writes never exit to a vCPU thread: the transport
///   serves them (``VirtioMMIOTransport/serviceNotifications(queue:)``);
/// - a pipe that ``stop()`` writes to.
///
/// The backend is watched edge-triggered because frames the device cannot take (the
/// guest has posted no receive buffer) keep it readable: level-triggered, the thread
/// would spin. Those frames wait until the driver posts buffers; the device stopped
/// suppressing receive-queue notifications when it ran out (§2.7.10), so the driver
/// notifies, and serving that notification delivers them.
///
/// The transport does everything under its lock, so this thread and the vCPU threads
/// (which still take every other register access as an MMIO exit) never race.
final class DeviceIOThread: @unchecked Sendable {
    private let transport: VirtioMMIOTransport
    private let epoll: Epoll
    /// Queue index of each eventfd, by token - ``firstQueueToken``.
    private let queues: [Int]
    private let stopping = Atomic<Bool>(false)
    /// How long the thread keeps polling after the last work it found (0: it
    /// only sleeps in epoll). See ``run()``.
    private let busyPollNanoseconds: UInt64
    /// A pipe whose write end wakes the thread when the VM stops.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private var thread: HostThread?

    private static let stopToken: UInt64 = 0
    private static let backendToken: UInt64 = 1
    private static let firstQueueToken: UInt64 = 2

    /// Watches `readinessFD` (none if -1) and `queueEvents`, whose notifications the
    /// transport is told to take from those eventfds.
    init(transport: VirtioMMIOTransport, readinessFD: Int32, queueEvents: [(queue: Int, event: EventFD)],
         busyPollMicroseconds: UInt32 = 0) throws(VMMError) {
        self.transport = transport
        self.busyPollNanoseconds = UInt64(busyPollMicroseconds) * 1000
        do { epoll = try Epoll() } catch { throw .kvm(error) }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            throw .host("cannot create the device I/O thread's pipe: \(String(cString: strerror(errno)))")
        }
        wakeRead = ends[0]
        wakeWrite = ends[1]
        queues = queueEvents.map(\.queue)
        do throws(KVMError) {
            try epoll.add(wakeRead, events: Epoll.readable, token: Self.stopToken)
            if readinessFD >= 0 {
                try epoll.add(readinessFD, events: Epoll.readable | Epoll.edgeTriggered, token: Self.backendToken)
            }
            for (i, entry) in queueEvents.enumerated() {
                try epoll.add(entry.event.fd, events: Epoll.readable, token: Self.firstQueueToken + UInt64(i))
            }
        } catch {
            close(wakeRead)
            close(wakeWrite)
            throw .kvm(error)
        }
        for entry in queueEvents { transport.setNotificationSource(entry.event, queue: entry.queue) }
    }

    deinit {
        stop()
        close(wakeRead)
        close(wakeWrite)
    }

    /// Starts the thread.
    func start(name: String) throws(VMMError) {
        thread = try HostThread.spawn(name: name) { [self] in self.run() }
    }

    /// Stops the thread and waits for it.
    func stop() {
        guard let running = thread else { return }
        stopping.store(true, ordering: .releasing)
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
        running.join()
        thread = nil
    }

    /// Sleeps in epoll until something happens, serves it, and then, with
    /// busy polling, keeps serving the device without sleeping until it has
    /// found nothing for ``busyPollNanoseconds``: the device takes the guest's
    /// frames from the transmit queue by polling instead of being notified
    /// (each notification is a trap the guest pays, 15-40 µs in kvm_pvm's
    /// native mode), and frames from the backend as they come. It costs this
    /// thread's CPU while traffic flows and nothing once it stops.
    private func run() {
        var busyUntil: UInt64 = 0
        var busy = false
        while !stopping.load(ordering: .acquiring) {
            guard let events = epoll.wait(timeoutMilliseconds: busy ? 0 : 1000) else { return }
            var worked = !events.isEmpty
            for (token, _) in events {
                guard !stopping.load(ordering: .acquiring) else { return }
                switch token {
                case Self.stopToken: return
                // Any event (readable, error, hang-up): the device reads until the backend is empty.
                case Self.backendToken: transport.poll()
                default:
                    let index = Int(token - Self.firstQueueToken)
                    if index < queues.count { transport.serviceNotifications(queue: queues[index]) }
                }
            }
            guard busyPollNanoseconds > 0 else { continue }
            if busy { worked = transport.poll() || worked }
            let now = Clock.monotonicNanoseconds()
            if worked {
                busyUntil = now + busyPollNanoseconds
                if !busy {
                    busy = true
                    transport.setBusyPolling(true)
                }
            } else if busy && now >= busyUntil {
                busy = false
                transport.setBusyPolling(false)
            }
        }
    }
}

/// An ioeventfd's counter is the count of the guest's notifications since the last look.
extension EventFD: VirtioNotificationSource {}

/// The device's interrupt as an irqfd: one eventfd write, which KVM turns into an
/// edge on the in-kernel IOAPIC input (KVM_IRQFD without a resample fd), with no
/// ioctl from the VMM.
final class EventFDInterruptLine: VirtioInterruptLine {
    let event: EventFD
    init(_ event: EventFD) { self.event = event }
    func trigger() { event.signal() }
}
