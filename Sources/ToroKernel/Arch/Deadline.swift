/// A point in time measured by the time-stamp counter, for bounded waits.
struct Deadline {
    private let tsc: UInt64

    /// `milliseconds` from now at the clock's TSC rate (``Clock`` assumes 3 GHz
    /// until it has started, so a crash report can use this before then).
    init(milliseconds: UInt64) {
        tsc = Clock.deadline(afterNanoseconds: milliseconds &* 1_000_000)
    }

    /// Whether the deadline is behind us.
    var hasPassed: Bool {
        CPU.timestamp() >= tsc
    }
}
