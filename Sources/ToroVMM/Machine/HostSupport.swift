import Glibc

/// A pthread mutex with one owner; the VMM's threads share little, and that little goes through these.
final class HostLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init() { pthread_mutex_init(mutex, nil) }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// Host clocks in nanoseconds.
public enum Clock {
    public static func monotonicNanoseconds() -> UInt64 { read(CLOCK_MONOTONIC) }
    /// CPU time consumed by the whole process.
    public static func processCPUNanoseconds() -> UInt64 { read(CLOCK_PROCESS_CPUTIME_ID) }
    /// CPU time consumed by `thread`, readable from any thread.
    public static func threadCPUNanoseconds(_ thread: pthread_t) -> UInt64? {
        var clock = clockid_t()
        guard pthread_getcpuclockid(thread, &clock) == 0 else { return nil }
        return read(clock)
    }

    static func read(_ clock: clockid_t) -> UInt64 {
        var now = timespec()
        clock_gettime(clock, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
