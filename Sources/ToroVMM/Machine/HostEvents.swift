import CKVM
import Glibc

/// An eventfd(2): a 64-bit counter in the host kernel. Writes add to it, a read
/// takes it and leaves 0, and it polls readable while it is not 0. KVM adds to one
/// for each guest write it matches (KVM_IOEVENTFD) and injects an interrupt for
/// each write to another (KVM_IRQFD). Nonblocking; closed in deinit.
public final class EventFD: @unchecked Sendable {
    public let fd: Int32

    public init() throws(KVMError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw KVMError("eventfd", errno: errno) }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Adds `count` to the counter. Returns false if it could not (the counter is full,
    /// which takes 2^64 - 2 signals nobody took).
    @discardableResult
    public func signal(_ count: UInt64 = 1) -> Bool {
        var value = count
        while true {
            if write(fd, &value, 8) == 8 { return true }
            if errno != EINTR { return false }
        }
    }

    /// The counter's value, which is set back to 0; 0 when nothing was added.
    public func take() -> UInt64 {
        var value: UInt64 = 0
        while true {
            if read(fd, &value, 8) == 8 { return value }
            if errno != EINTR { return 0 }  // EAGAIN: nothing was added
        }
    }
}

/// An epoll(7) instance whose registrations carry a 64-bit token; closed in deinit.
final class Epoll: @unchecked Sendable {
    let fd: Int32

    static let readable = UInt32(EPOLLIN.rawValue)
    static let edgeTriggered = UInt32(EPOLLET.rawValue)

    init() throws(KVMError) {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw KVMError("epoll_create1", errno: errno) }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Watches `watched` for `events`; ``wait(_:timeoutMilliseconds:)`` reports it with `token`.
    func add(_ watched: Int32, events: UInt32, token: UInt64) throws(KVMError) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = token
        guard epoll_ctl(fd, EPOLL_CTL_ADD, watched, &event) == 0 else { throw KVMError("epoll_ctl", errno: errno) }
    }

    /// Waits for events: the tokens and event bits of those that happened (none after
    /// the timeout or a signal), or nil if epoll_wait failed otherwise.
    func wait(capacity: Int = 8, timeoutMilliseconds: Int32) -> [(token: UInt64, events: UInt32)]? {
        var events = [epoll_event](repeating: epoll_event(), count: capacity)
        let count = epoll_wait(fd, &events, Int32(capacity), timeoutMilliseconds)
        if count < 0 { return errno == EINTR ? [] : nil }
        return events.prefix(Int(count)).map { ($0.data.u64, $0.events) }
    }
}
