import KernelSupport
import Synchronization

/// The four situations in which a Toro core used to burn its host CPU in a
/// loop, as Toro's author listed them (2017), and what this kernel does in
/// each. Each is named here, and each can be switched back to the busy loop
/// for comparison from the kernel command line.
public enum IdleCase: Int, Sendable {
    /// 1. A thread waits for a `SpinLock` another core holds. Every spin
    ///    executes `pause` (``SpinWait/hint()``); `spin=nopause` turns it off.
    case spinLock = 1
    /// 2. The core has threads, but none is ready (they sleep, park or join):
    ///    the core halts with `sti; hlt` until an interrupt (a wake-up IPI, a
    ///    device, its own timer). `idle=poll` makes it loop instead.
    case noReadyThread = 2
    /// 3. The core has no thread at all: the same halt, in the core's idle
    ///    context. `idle=poll` makes it loop instead.
    case noThread = 3
    /// 4. Every runnable thread of the core polls and counts as idle (see
    ///    `Thread.pollFoundNothing()`): the same halt; any interrupt or
    ///    `Thread.workArrived(on:)` makes the pollers poll again. `idle=poll`
    ///    makes pollers spin instead.
    case pollingThreads = 4
}

/// What the idle cases do, from the kernel command line (read once at boot).
public enum IdlePolicy {
    /// Whether a core halts in `idleCase` (2-4); false with `idle=poll`. Case
    /// 1 never halts (a spinning thread waits for another core, not for an
    /// interrupt): its switch is ``SpinWait``'s. One plain load.
    @inline(__always)
    public static func halts(_ idleCase: IdleCase) -> Bool {
        haltingCases.load(ordering: .relaxed) & (1 << UInt8(idleCase.rawValue)) != 0
    }

    /// `idle=halt` (true, the default) or `idle=poll` (false).
    public static var isHalting: Bool { halts(.noReadyThread) }

    /// How long a poller may find nothing before it counts as idle, in TSC ticks.
    static var pollGraceTicks: UInt64 { pollGrace.load(ordering: .relaxed) }

    /// The poll grace period in microseconds (`pollgrace=`).
    public static var pollGraceMicroseconds: UInt64 { pollGraceMicros.load(ordering: .relaxed) }

    /// The default poll grace period: 1 ms, the order of KVM's own halt
    /// polling (200 µs) and far below Toro's 200 ms.
    public static let defaultPollGraceMicroseconds: UInt64 = 1000

    /// On CPU 0 at boot, before the other CPUs run: `idle=halt|poll` and `pollgrace=MICROSECONDS`.
    static func configure(halting: Bool, pollGraceMicroseconds: UInt64) {
        haltingCases.store(halting ? allHaltingCases : 0, ordering: .relaxed)
        pollGraceMicros.store(pollGraceMicroseconds, ordering: .relaxed)
        pollGrace.store(Clock.ticks(nanoseconds: pollGraceMicroseconds &* 1000), ordering: .relaxed)
    }
}

/// Bit n set: the core halts in idle case n. `idle=` sets cases 2-4 together.
private let allHaltingCases: UInt8 = 1 << 2 | 1 << 3 | 1 << 4
private let haltingCases = Atomic<UInt8>(allHaltingCases)
private let pollGraceMicros = Atomic<UInt64>(IdlePolicy.defaultPollGraceMicroseconds)
private let pollGrace = Atomic<UInt64>(0)

extension Scheduler {
    /// Waits, on the current stack, until a thread is ready, and returns it
    /// (taken out of the ready queue; it may be the current thread itself).
    /// Interrupts are disabled on entry and on return.
    ///
    /// With `idle=halt` (cases 2, 3 and 4): the core announces it is halting
    /// (``halted``), looks a last time at its incoming queue, its cross-call
    /// mailbox and `Thread.workArrived(on:)`'s counter, and executes
    /// `sti; hlt`. STI takes effect only after HLT has begun, so a wake-up
    /// IPI sent after that last look ends the HLT instead of being taken
    /// before it and lost; a core that handed work before the announcement is
    /// seen by the last look. The timer interrupt of a sleeping thread, a
    /// device interrupt, a wake-up IPI: each ends the halt, and then every
    /// idle poller polls once more.
    ///
    /// With `idle=poll`: the same checks in a busy loop, opening a
    /// one-instruction interrupt window every millisecond
    /// (`Interrupts.windowIfDue()`) so that device interrupts and IPIs are
    /// still taken, and running this core's timers in software once their
    /// deadline has passed (`Timers.expireIfDue()`): on
    /// hosts that emulate the guest, a pending interrupt is seldom taken in so
    /// short a window, and sleeping threads would wake milliseconds late.
    /// ``halted`` stays false, so nobody sends IPIs: the loop finds work
    /// handed over in the incoming queue by itself.
    func waitForWork() -> Unmanaged<Thread> {
        while true {
            CrossCall.service(mailbox)
            if let next = takeNext() { return next }
            if queues.hasIdlePollers && pollWork.load(ordering: .acquiring) != pollWorkSeen {
                releaseIdlePollers()
                continue
            }
            let idleCase: IdleCase =
                queues.hasIdlePollers
                ? .pollingThreads
                : current.toOpaque() == idleThread?.toOpaque() ? .noThread : .noReadyThread
            if IdlePolicy.halts(idleCase) {
                halted.store(true, ordering: .sequentiallyConsistent)
                if incoming.isEmpty && !mailbox.hasWork
                    && pollWork.load(ordering: .sequentiallyConsistent) == pollWorkSeen
                {
                    count(idleCase)
                    Interrupts.enableAndHalt()
                }
                halted.store(false, ordering: .relaxed)
            } else {
                Interrupts.windowIfDue()
                Timers.expireIfDue()
            }
            releaseIdlePollers()
        }
    }

    /// Every idle poller polls once more (after the ready threads).
    @inline(__always)
    func releaseIdlePollers() {
        guard queues.hasIdlePollers else { return }
        pollWorkSeen = pollWork.load(ordering: .acquiring)
        queues.idlePollers.forEach { thread in thread._withUnsafeGuaranteedRef { $0.state = .ready } }
        queues.releaseIdlePollers()
    }

    private func count(_ idleCase: IdleCase) {
        switch idleCase {
        case .noReadyThread: statistics.haltsWithNoReadyThread &+= 1
        case .noThread: statistics.haltsWithNoThread &+= 1
        case .pollingThreads: statistics.haltsWithOnlyPollers &+= 1
        case .spinLock: break
        }
    }
}
