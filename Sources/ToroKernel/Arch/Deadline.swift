/// A point in time measured by the time-stamp counter.
///
/// KVM gives guests an invariant TSC and tells the VMM its rate, which the VMM
/// passes on in the boot info; that is the kernel's only clock so far.
struct Deadline {
    private let tsc: UInt64

    /// The rate assumed when the VMM could not tell (``BootInfo/tscKHz`` is 0):
    /// 3 GHz, the right order of magnitude for any machine running KVM.
    static let fallbackKHz: UInt64 = 3_000_000

    /// A deadline `milliseconds` from now on a TSC ticking at `tscKHz`.
    init(milliseconds: UInt64, tscKHz: UInt64) {
        let khz = tscKHz == 0 ? Self.fallbackKHz : tscKHz
        tsc = CPU.timestamp() &+ milliseconds &* khz
    }

    /// Whether the deadline is behind us.
    var hasPassed: Bool {
        CPU.timestamp() >= tsc
    }
}
