/// The rate of one counter against another, in 32.32 fixed point: how many
/// ticks of a target counter (the local APIC timer) pass per tick of a source
/// counter (the TSC).
///
/// Only multiplications, never a 128-bit division (a compiler-runtime call
/// the kernel does not link). Plain Swift, so it also builds for the host and
/// is unit-tested there.
struct TickRatio: Equatable {
    /// Target ticks per source tick, times 2^32.
    let fixed: UInt64

    /// The ratio measured as `targetTicks` target ticks during `sourceTicks`
    /// source ticks; nil if it cannot be represented (no source ticks, a
    /// measurement window of 2^32 source ticks or more, or a target counter
    /// 2^32 times faster than the source).
    init?(targetTicks: UInt64, sourceTicks: UInt64) {
        guard sourceTicks > 0, sourceTicks < 1 << 32 else { return nil }
        let whole = targetTicks / sourceTicks
        let rest = targetTicks % sourceTicks  // < 2^32, so rest << 32 fits
        guard whole < 1 << 32 else { return nil }
        let fixed = whole << 32 | (rest << 32) / sourceTicks
        guard fixed > 0 else { return nil }
        self.fixed = fixed
    }

    /// A ratio from its ``fixed`` value, as stored; nil for 0 (none).
    init?(fixed: UInt64) {
        guard fixed > 0 else { return nil }
        self.fixed = fixed
    }

    /// The target ticks in `sourceTicks` source ticks, rounded down;
    /// saturates at UInt64.max.
    func targetTicks(forSourceTicks sourceTicks: UInt64) -> UInt64 {
        let product = sourceTicks.multipliedFullWidth(by: fixed)
        guard product.high < 1 << 32 else { return .max }
        return product.high << 32 | product.low >> 32
    }
}
