import KernelSupport

/// What a timer does when its deadline passes. Runs in the timer interrupt (or,
/// on a core that loops instead of halting, from ``Timers/expireIfDue()``), on
/// the core that armed it, with interrupts disabled: keep it short.
public enum TimerAction {
    /// Nothing: the interrupt itself is the point (it ends a core's `hlt`).
    case wake
    /// Calls `function(argument)`.
    case call(@convention(c) (UInt) -> Void, UInt)
}

/// Per-core one-shot timers, tickless.
///
/// Each core keeps its own ``TimerQueue``, touched only by that core, and
/// only where the timer interrupt cannot arrive (interrupts are taken in
/// interrupt windows only, see ``Interrupts``), so it needs no lock. The
/// core's local APIC timer is armed for the earliest deadline only (or an
/// earlier one left from a cancelled timer, which then fires once, finds
/// nothing due and stops): a core with nothing to wait for takes no timer
/// interrupts at all, which is what lets an idle VM cost the host nothing.
public enum Timers {
    /// Adds a timer on this core; returns an ID for ``cancel(_:)``. `deadline` is a TSC value
    /// (see ``Clock/deadline(afterNanoseconds:)``).
    @discardableResult
    public static func add(deadline: UInt64, _ action: TimerAction) -> TimerQueue<TimerAction>.ID {
        CoreTimers.withCurrent { queue in
            let id = queue.timers.insert(deadline: deadline, action)
            rearm(queue)
            return id
        }
    }

    /// Cancels a timer of this core that has not fired; returns whether it was pending.
    @discardableResult
    public static func cancel(_ id: TimerQueue<TimerAction>.ID) -> Bool {
        CoreTimers.withCurrent { queue in
            guard queue.timers.cancel(id) != nil else { return false }
            rearm(queue)
            return true
        }
    }

    /// Timers pending on this core.
    public static var pendingCount: Int {
        CoreTimers.withCurrent { $0.timers.count }
    }

    /// Timer interrupts this core has taken.
    public static var interruptCount: Int {
        CoreTimers.withCurrent { $0.interrupts }
    }

    /// Halts this core for `nanoseconds` without spinning: arms a timer and waits
    /// in `sti; hlt` until the deadline has passed. Other interrupts may wake
    /// the core earlier; it simply halts again. The whole core waits: its
    /// other threads do not run meanwhile (a thread sleeps with `Thread.sleep`).
    public static func sleep(nanoseconds: UInt64) {
        sleep(untilDeadline: Clock.deadline(afterNanoseconds: nanoseconds))
    }

    /// Halts this core until the TSC reaches `deadline`.
    public static func sleep(untilDeadline deadline: UInt64) {
        let id = add(deadline: deadline, .wake)
        while CPU.timestamp() < deadline {
            Interrupts.enableAndHalt()
        }
        cancel(id)  // normally already fired; not if another interrupt came at the deadline
    }

    /// On every core, before it takes interrupts: the timer interrupt's handler.
    static func start() {
        _ = CoreTimers.all  // built once, on CPU 0, before the APs run
        LocalAPIC.setTimerHandler { _ in Timers.expire() }
    }

    /// The timer interrupt: runs every due action, then arms for the next deadline or disarms.
    static func expire() {
        CoreTimers.withCurrent { queue in
            queue.interrupts += 1
            runExpired(queue)
        }
    }

    /// Runs this core's due timers now if its armed deadline has passed, as
    /// the timer interrupt would, and re-arms: for code that loops with
    /// interrupts disabled instead of halting (the scheduler's `idle=poll`
    /// loop, `Thread.yield()`). On the project's hosts KVM emulates every
    /// guest instruction and seldom delivers an interrupt inside a short
    /// `sti; nop; cli` window, so a core that never halts would otherwise run
    /// its timers milliseconds late. One GS-relative load and a `rdtsc` when
    /// nothing is due. An expiry the hardware also raised is then dropped by
    /// the local APIC's handler (the deadline it was for is gone).
    @inline(__always)
    public static func expireIfDue() {
        let deadline = kernel_cpu_local_timer_deadline()
        if deadline != 0 && CPU.timestamp() >= deadline {
            CoreTimers.withCurrent { runExpired($0) }
        }
    }

    /// Runs every due action of `queue`, then arms for the next deadline or disarms.
    private static func runExpired(_ queue: CoreTimers) {
        while let action = queue.timers.popFirstExpired(now: CPU.timestamp()) {
            if case let .call(function, argument) = action {
                function(argument)
            }
        }
        rearm(queue)
    }

    /// Arms for the queue's earliest deadline where the hardware would
    /// otherwise fire late or not at all: nothing armed, the armed deadline
    /// passed, or an earlier one now due. An armed deadline earlier than
    /// needed (its timer was cancelled, the usual fate of a
    /// `park(untilDeadline:)` woken early) is left alone, and so is one left
    /// when the queue empties: programming the timer is an MSR write, a trap
    /// to the host, and an early expiry costs one interrupt that finds
    /// nothing due and re-arms, which is rarer than the writes it saves.
    /// The per-CPU deadline is the armed one, or 0 once it fired or was
    /// disarmed (the local APIC's handler clears it before running ours).
    private static func rearm(_ queue: CoreTimers) {
        guard let next = queue.timers.earliestDeadline else { return }
        let armed = kernel_cpu_local_timer_deadline()
        if armed == 0 || next < armed || armed <= CPU.timestamp() {
            LocalAPIC.armTimer(deadlineTSC: next)
        }
    }
}

/// One core's timers.
final class CoreTimers {
    var timers = TimerQueue<TimerAction>()
    var interrupts = 0

    /// One per CPU, created together the first time any is used (on CPU 0, at boot).
    nonisolated(unsafe) static let all: [CoreTimers] = (0..<BootInfo.current.cpuCount).map { _ in CoreTimers() }

    /// Calls `body` with this core's timers, lent without retaining them
    /// (they live as long as the machine), found through the per-CPU block:
    /// every timer operation and interrupt starts here.
    @inline(__always)
    static func withCurrent<Result>(_ body: (CoreTimers) -> Result) -> Result {
        let timers = kernel_cpu_local_timers() ?? install()
        return Unmanaged<CoreTimers>.fromOpaque(timers)._withUnsafeGuaranteedRef(body)
    }

    /// Points this CPU's per-CPU block at its timers (on its first timer operation).
    @inline(never)
    private static func install() -> UnsafeMutableRawPointer {
        let timers = Unmanaged.passUnretained(all[CPULocal.index]).toOpaque()
        CPULocal.current.pointee.timers = timers
        return timers
    }
}
