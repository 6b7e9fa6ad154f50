/// Converts time-stamp-counter ticks to nanoseconds and back, exactly and
/// without overflow for any realistic tick count.
///
/// Splitting into whole milliseconds and a remainder keeps every product within
/// 64 bits, so no 128-bit division (a compiler-runtime call the kernel does not
/// link) is needed. Plain Swift, so it is also built for the host and unit-tested there.
public struct TSCConversion: Sendable, Equatable {
    /// Ticks per millisecond (the TSC frequency in kHz), below 2^32.
    public let ticksPerMillisecond: UInt64

    public init?(khz: UInt64) {
        guard khz > 0, khz < 1 << 32 else { return nil }
        self.ticksPerMillisecond = khz
    }

    /// `ticks` in nanoseconds, rounded down; saturates at UInt64.max.
    public func nanoseconds(ticks: UInt64) -> UInt64 {
        let milliseconds = ticks / ticksPerMillisecond
        let rest = ticks % ticksPerMillisecond  // < 2^32, so rest * 10^6 < 2^52
        let (whole, overflow) = milliseconds.multipliedReportingOverflow(by: 1_000_000)
        guard !overflow else { return .max }
        let (total, carry) = whole.addingReportingOverflow(rest * 1_000_000 / ticksPerMillisecond)
        return carry ? .max : total
    }

    /// The number of ticks in `nanoseconds`, rounded up so a deadline is never early.
    public func ticks(nanoseconds: UInt64) -> UInt64 {
        let milliseconds = nanoseconds / 1_000_000
        let rest = nanoseconds % 1_000_000  // rest * ticksPerMillisecond < 10^6 * 2^32
        let (whole, overflow) = milliseconds.multipliedReportingOverflow(by: ticksPerMillisecond)
        guard !overflow else { return .max }
        let part = (rest * ticksPerMillisecond + 999_999) / 1_000_000
        let (total, carry) = whole.addingReportingOverflow(part)
        return carry ? .max : total
    }
}
