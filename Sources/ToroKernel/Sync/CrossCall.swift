import KernelSupport
import Synchronization

/// Runs a function on another CPU, from that CPU's idle loop.
///
/// Each CPU has a one-slot mailbox. The caller posts a function and wakes the
/// target with an IPI; the target runs it the next time its idle loop looks,
/// outside any interrupt handler (so the function may sleep or take
/// interrupts), and marks it done. The idle loop checks the mailbox with
/// interrupts disabled and then halts with `sti; hlt`, so a wake-up IPI sent
/// between the check and the halt is taken at the `sti` and never lost.
///
/// One caller per target at a time; the scheduler will replace this with its
/// per-core queues.
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
            CPU.pause()
        }
        return true
    }

    /// Runs what was posted to this CPU, if anything. Call with interrupts disabled.
    static func serviceThisCPU() {
        let mailbox = Mailbox.all[CPULocal.index]
        let ticket = mailbox.posted.load(ordering: .acquiring)
        guard ticket != mailbox.done.load(ordering: .relaxed) else { return }
        let work = unsafeBitCast(mailbox.work.load(ordering: .relaxed), to: Work.self)
        work(mailbox.argument.load(ordering: .relaxed))
        mailbox.done.store(ticket, ordering: .releasing)
    }

    /// The idle loop of a CPU with nothing else to do: serve cross-calls, halt until an interrupt.
    static func idleForever() -> Never {
        _ = Interrupts.disable()
        while true {
            serviceThisCPU()
            Interrupts.enableAndHalt()
        }
    }
}

/// One CPU's mailbox.
final class Mailbox: Sendable {
    let work = Atomic<UInt>(0)
    let argument = Atomic<UInt>(0)
    let posted = Atomic<UInt>(0)
    let done = Atomic<UInt>(0)

    /// Created together, on CPU 0, before the APs are released.
    static let all: [Mailbox] = (0..<Int(TORO_MAX_CPUS)).map { _ in Mailbox() }
}
