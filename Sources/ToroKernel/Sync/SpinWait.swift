import KernelSupport
import Synchronization

/// What a spin-wait loop does on each turn: idle case 1 (see `IdleCase`).
///
/// Every spin-wait in the kernel (``SpinLock``, `CrossCall.wait`) calls
/// ``hint()`` on each turn, which executes `pause`: it saves power on a real
/// core, avoids the memory-order mis-speculation penalty when the loop ends,
/// and lets a hypervisor with pause-loop exiting notice a vCPU that spins
/// (and run another in its place). `spin=nopause` on the kernel command line
/// turns it off, for comparison; the flag is read with one plain load.
public enum SpinWait {
    /// One turn of a spin-wait: `pause`, unless `spin=nopause`.
    @inline(__always)
    public static func hint() {
        if usesPause.load(ordering: .relaxed) {
            kernel_pause()
        }
    }

    /// Whether ``hint()`` executes `pause` (`spin=pause`, the default).
    public static var pauses: Bool { usesPause.load(ordering: .relaxed) }

    /// On CPU 0 at boot, from `spin=`.
    static func configure(pause: Bool) {
        usesPause.store(pause, ordering: .relaxed)
    }
}

private let usesPause = Atomic<Bool>(true)
