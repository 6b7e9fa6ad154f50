import KernelSupport
import Synchronization

/// Runs a function on another CPU, from that CPU's idle loop.
///
/// Each CPU has a one-slot mailbox. The caller posts a function and wakes the
/// target with an IPI; the target runs it the next time its scheduler waits
/// for work (`Scheduler.waitForWork()`: at once on an idle core, when its
/// threads next block on a busy one), outside any interrupt handler (so the
/// function may halt with `Timers.sleep` or take interrupts), on the stack of
/// whatever context is waiting there, and marks it done. The function must
/// not block in the scheduler's sense (`Thread.sleep`, `park`, `join`): it is
/// not a thread. The idle loop checks the mailbox with interrupts disabled
/// and then halts with `sti; hlt`, so a wake-up IPI sent between the check
/// and the halt is taken at the `sti` and never lost.
///
/// One caller per target at a time. For anything longer-lived, spawn a
/// thread there (`Thread.spawn(on:)`); this remains for the kernel's own
/// tests and for work that must run on a core without a thread of its own.
public enum CrossCall {
    public typealias Work = @convention(c) (UInt) -> Void

    /// Runs `work(argument)` on `cpu` and waits for it; false if it did not finish within `timeoutNanoseconds`.
    @discardableResult
    public static func run(on cpu: Int, timeoutNanoseconds: UInt64 = 2_000_000_000, _ work: Work, argument: UInt = 0) -> Bool {
        guard cpu != CPULocal.index else {
            work(argument)
            return true
        }
        guard let ticket = post(on: cpu, work, argument: argument) else { return false }
        return wait(on: cpu, ticket: ticket, timeoutNanoseconds: timeoutNanoseconds)
    }

    /// Posts `work(argument)` to another CPU and returns at once with a ticket for
    /// ``wait(on:ticket:timeoutNanoseconds:)``; nil for this CPU or one that does not exist.
    public static func post(on cpu: Int, _ work: Work, argument: UInt = 0) -> UInt? {
        guard cpu != CPULocal.index, cpu >= 0, cpu < BootInfo.current.cpuCount else { return nil }
        let mailbox = Mailbox.all[cpu]
        let ticket = mailbox.posted.load(ordering: .relaxed) &+ 1
        mailbox.argument.store(argument, ordering: .relaxed)
        mailbox.work.store(unsafeBitCast(work, to: UInt.self), ordering: .relaxed)
        mailbox.posted.store(ticket, ordering: .releasing)
        IPI.wake(cpu: cpu)
        return ticket
    }

    /// Waits until the work posted with `ticket` has run on `cpu`; false after `timeoutNanoseconds`.
    public static func wait(on cpu: Int, ticket: UInt, timeoutNanoseconds: UInt64 = 2_000_000_000) -> Bool {
        let mailbox = Mailbox.all[cpu]
        let deadline = Clock.deadline(afterNanoseconds: timeoutNanoseconds)
        while mailbox.done.load(ordering: .acquiring) != ticket {
            if CPU.timestamp() >= deadline { return false }
            SpinWait.hint()
        }
        return true
    }

    /// Runs what was posted to this CPU (whose mailbox is `mailbox`), if
    /// anything. Call with interrupts disabled.
    @inline(__always)
    static func service(_ mailbox: Mailbox) {
        let ticket = mailbox.posted.load(ordering: .acquiring)
        guard ticket != mailbox.done.load(ordering: .relaxed) else { return }
        let work = unsafeBitCast(mailbox.work.load(ordering: .relaxed), to: Work.self)
        work(mailbox.argument.load(ordering: .relaxed))
        mailbox.done.store(ticket, ordering: .releasing)
    }

}

/// One CPU's mailbox.
final class Mailbox: Sendable {
    let work = Atomic<UInt>(0)
    let argument = Atomic<UInt>(0)
    let posted = Atomic<UInt>(0)
    let done = Atomic<UInt>(0)

    /// Whether something posted here has not run yet: the idle loop's last
    /// look before it halts.
    var hasWork: Bool {
        posted.load(ordering: .sequentiallyConsistent) != done.load(ordering: .relaxed)
    }

    /// Created together, on CPU 0, before the APs are released.
    static let all: [Mailbox] = (0..<BootInfo.current.cpuCount).map { _ in Mailbox() }
}
