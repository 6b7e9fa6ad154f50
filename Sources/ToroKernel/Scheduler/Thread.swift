import KernelSupport
import Synchronization

/// A thread: cooperative, pinned to one core for its whole life.
///
/// Each core runs its own threads, one at a time, each until it blocks
/// (``sleep(milliseconds:)``, ``park()``, ``join()``), yields (``yield()``),
/// polls in vain (``pollFoundNothing()``) or returns from its body; nothing
/// preempts it. Threads never move between cores, and there is no global run
/// queue: a thread spawned on, or woken from, another core reaches its core
/// through that core's own incoming queue and a wake-up IPI if the core is
/// halted.
///
/// ```swift
/// let worker = Thread.spawn(on: 1) {
///     print("hello from cpu \(Kernel.currentCPU)")
///     Thread.sleep(milliseconds: 10)
/// }
/// worker.join()  // from any core
/// ```
///
/// The application's `main` is thread 1, on CPU 0, on CPU 0's boot stack;
/// when it returns the VM exits. Spawned threads get IDs from 2 up; each
/// core's idle context (where a core with no thread at all waits) is thread 0.
///
/// Rules of the road, all consequences of running with interrupts disabled
/// and without preemption:
/// - A thread that never blocks, yields or polls keeps its core to itself;
///   other threads of that core do not run and its timers do not fire.
/// - Do not block (sleep, park, join) while holding a `SpinLock` that
///   another thread of the same core may take: that thread would spin forever.
/// - Never block in an interrupt handler; ``unpark()`` and
///   ``workArrived(on:)`` may be called from one.
public final class Thread: RunQueueElement, WaiterListElement {
    /// Pages in a thread's stack unless ``spawn(on:stackPages:_:)`` says otherwise (32 KiB).
    public static let defaultStackPages = 8

    /// Unique in the machine: 0 for the cores' idle contexts, 1 for `main`,
    /// then 2, 3, ... in the order threads are spawned.
    public let id: Int
    /// The core the thread runs on, for its whole life.
    public let core: Int
    /// Where the thread is in its life. Changed only by its own core: exact
    /// when read there, a snapshot when read from another.
    public internal(set) var state: ThreadState
    /// The thread's own errno-style status: the result of the last call that
    /// sets one (the socket layer will), 0 for success. Per thread, as
    /// `errno` is per thread in C: ``Thread/status`` is the current thread's.
    public var status: Int32 = 0

    // MARK: Kernel state

    /// The stack pointer while the thread is switched out (Scheduler/ContextSwitch.S).
    var savedStackPointer: UInt64 = 0
    /// The thread's stack, `[stackBase, stackTop)`, with a guard page below
    /// `stackBase`; (0, 0) for a boot stack, which is not the scheduler's to free.
    let stackBase: UInt
    let stackTop: UInt
    /// What the thread runs; taken (and released) when it starts.
    var body: (() -> Void)?
    /// Who waits for the thread's end.
    let joiners = WaiterList<Thread>()
    /// The permit of ``park()``/``unpark()``.
    let parking = ParkPermit()
    /// How long the thread has been polling in vain (``pollFoundNothing()``).
    var polling = PollState()
    var runQueueNext: Unmanaged<Thread>?
    var waiterNext: Unmanaged<Thread>?

    /// A thread with its own guarded stack of `stackPages` pages, to run `body` on `core`.
    init(id: Int, core: Int, stackPages: Int, body: @escaping () -> Void) {
        self.id = id
        self.core = core
        self.state = .new
        let stack = Stacks.allocate(pages: stackPages)
        stackBase = stack.base
        stackTop = stack.top
        self.body = body
    }

    /// The thread of code already running on a boot stack: `main` on CPU 0,
    /// each other CPU's idle context. Its context is saved at its first switch.
    init(bootContextOf core: Int, id: Int) {
        self.id = id
        self.core = core
        self.state = .running
        stackBase = 0
        stackTop = 0
    }

    // MARK: - Creating and ending threads

    /// Starts a thread running `body` on `core` (this core if nil) and returns it.
    ///
    /// The thread gets a stack of `stackPages` pages with an unmapped guard
    /// page below it, so an overflow faults (and is reported as one) instead
    /// of corrupting memory. On this core the new thread is queued behind the
    /// ready threads and the caller goes on; on another core it goes into
    /// that core's incoming queue, which wakes the core with an IPI if it is
    /// halted. When `body` returns the thread ends and its stack is freed.
    /// Panics if `core` does not exist or memory runs out.
    @discardableResult
    public static func spawn(on core: Int? = nil, stackPages: Int = defaultStackPages, _ body: @escaping () -> Void)
        -> Thread
    {
        let target = core ?? CPULocal.index
        Scheduler.with(target) { _ in }  // panics now, before allocating, if there is no such core
        let thread = Thread(
            id: nextThreadID.wrappingAdd(1, ordering: .relaxed).oldValue, core: target,
            stackPages: stackPages, body: body)
        thread.savedStackPointer = ContextSwitch.initialStackPointer(
            top: thread.stackTop, thread: Unmanaged.passUnretained(thread).toOpaque())
        // The scheduler's own reference, dropped once the thread has ended and its stack is freed.
        let queued = Unmanaged.passRetained(thread)
        Scheduler.withCurrent { here in
            if target == here.core {
                here.threadCount &+= 1
                thread.state = .ready
                here.queues.makeReady(queued)
            } else {
                Scheduler.with(target) { $0.hand(queued, from: here) }
            }
        }
        return thread
    }

    /// Waits until the thread has ended and its stack is back with the page
    /// allocator (at once if so). From any thread on any core but the thread
    /// itself; several threads may join one.
    public func join() {
        let me = Thread.running
        guard me.toOpaque() != Unmanaged.passUnretained(self).toOpaque() else {
            Kernel.panic("a thread cannot join itself")
        }
        me._withUnsafeGuaranteedRef { $0.state = .joining }
        // Accepted: the end of this thread wakes `me`, exactly once.
        if joiners.add(me) {
            Scheduler.withCurrent { $0.reschedule() }
        } else {
            me._withUnsafeGuaranteedRef { $0.state = .running }
        }
    }

    /// Whether the thread has ended: its body returned and its stack was freed.
    public var hasEnded: Bool { joiners.isClosed }

    // MARK: - The current thread

    /// The thread running this code.
    public static var current: Thread {
        running.takeUnretainedValue()
    }

    /// The thread running this code, unretained: one GS-relative load.
    @inline(__always)
    static var running: Unmanaged<Thread> {
        Unmanaged<Thread>.fromOpaque(kernel_cpu_local_current_thread()!)
    }

    /// The current thread's ``status`` (errno-style).
    public static var status: Int32 {
        get { running._withUnsafeGuaranteedRef { $0.status } }
        set { running._withUnsafeGuaranteedRef { $0.status = newValue } }
    }

    /// Lets the other ready threads of this core run first, if there are
    /// any; returns at once otherwise. Also takes in pending interrupts (at
    /// most every millisecond, see `Interrupts.windowIfDue()`), runs due
    /// timers (so that sleeping threads wake on a core whose other threads
    /// only yield), takes in threads other cores sent, and gives idle
    /// pollers a turn.
    public static func yield() {
        Interrupts.windowIfDue()
        Timers.expireIfDue()
        Scheduler.withCurrent { scheduler in
            scheduler.admitIncoming()
            scheduler.releaseIdlePollers()
            let me = scheduler.current
            guard let next = scheduler.queues.yield(me) else { return }
            me._withUnsafeGuaranteedRef { $0.state = .ready }
            scheduler.switchTo(next)
        }
    }

    /// Blocks the current thread for at least `milliseconds`; its core runs
    /// other threads meanwhile or halts. One timer interrupt ends the sleep.
    public static func sleep(milliseconds: UInt64) {
        sleep(nanoseconds: milliseconds &* 1_000_000)
    }

    /// Blocks the current thread for at least `nanoseconds` (a yield for 0).
    public static func sleep(nanoseconds: UInt64) {
        sleep(untilDeadline: Clock.deadline(afterNanoseconds: nanoseconds))
    }

    /// Blocks the current thread until the TSC reaches `deadline` (see
    /// ``Clock/deadline(afterNanoseconds:)``); yields if it has already.
    ///
    /// A timer on this core makes the thread ready from the timer interrupt;
    /// nothing spins meanwhile, and with `idle=halt` (the default) a core
    /// whose threads all sleep is halted until the earliest deadline.
    public static func sleep(untilDeadline deadline: UInt64) {
        guard CPU.timestamp() < deadline else { return yield() }
        let me = running
        me._withUnsafeGuaranteedRef { $0.state = .sleeping }
        Timers.add(deadline: deadline, .call(Scheduler.timerWake, UInt(bitPattern: me.toOpaque())))
        Scheduler.withCurrent { $0.reschedule() }
    }

    // MARK: - Parking

    /// Blocks the current thread until another thread (of any core) or an
    /// interrupt handler calls ``unpark()`` on it, or returns at once if one
    /// has since the last park. Returns without a reason now and then too, so
    /// call it in a loop that rechecks what it waits for:
    ///
    /// ```swift
    /// while queue.isEmpty { Thread.park() }   // the producer: push, then consumer.unpark()
    /// ```
    public static func park() {
        running._withUnsafeGuaranteedRef { thread in
            if thread.parking.consumeIfNotified() { return }
            thread.state = .parked
            guard thread.parking.prepareToPark() else {
                thread.state = .running
                return
            }
            Scheduler.withCurrent { $0.reschedule() }
            thread.parking.finishPark()
        }
    }

    /// ``park()``, but returns by the TSC `deadline` at the latest (a timer of
    /// this core unparks the thread). As with `park()`, recheck what you wait
    /// for, and the clock, when it returns.
    public static func park(untilDeadline deadline: UInt64) {
        guard CPU.timestamp() < deadline else { return }
        let me = running
        // A permit already left (an unpark that raced the caller's check):
        // return at once, without adding a timer only to cancel it.
        if me._withUnsafeGuaranteedRef({ $0.parking.consumeIfNotified() }) { return }
        let timer = Timers.add(deadline: deadline, .call(parkTimeout, UInt(bitPattern: me.toOpaque())))
        park()
        Timers.cancel(timer)
    }

    /// The timer of ``park(untilDeadline:)``: it runs on the parked thread's
    /// own core, which is the core that armed it.
    private static let parkTimeout: @convention(c) (UInt) -> Void = { argument in
        Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: argument)!)._withUnsafeGuaranteedRef { $0.unpark() }
    }

    /// Makes the thread's next (or current) ``park()`` return. From any
    /// thread on any core, or from an interrupt handler; cheap when the
    /// thread is not parked (one atomic exchange), and one IPI at most when
    /// it is parked on a halted core.
    public func unpark() {
        if parking.unpark() {
            Scheduler.makeReady(Unmanaged.passUnretained(self))
        }
    }

    // MARK: - Polling (idle case 4)

    /// Tells the scheduler that the current thread polled (a device, a
    /// variable) and found nothing; the other ready threads of this core run
    /// before it polls again.
    ///
    /// The contract, which is Toro's `SysThreadSwitch(Idle)`:
    ///
    /// - A thread that has found nothing, poll after poll, for the poll grace
    ///   period (`pollgrace=MICROSECONDS` on the kernel command line, default
    ///   1000, that is 1 ms, measured from its first empty poll since it last
    ///   called ``pollFoundWork()``) counts as idle. Before that, this is a
    ///   ``yield()``.
    /// - An idle poller runs again whenever something happens on its core:
    ///   another thread of the core yields (while anything else runs, pollers
    ///   keep their turns), the core takes an interrupt (a device interrupt
    ///   routed to it, an IPI, its own timer), a thread arrives from another
    ///   core, or ``workArrived(on:)`` is called for the core. It then polls
    ///   once more and, finding nothing, is idle again at once.
    /// - When every runnable thread of the core is an idle poller, the core
    ///   halts (`sti; hlt`) until one of those things happens.
    /// - So a poller must either watch something that comes with an interrupt
    ///   to its core, or have its producer call ``workArrived(on:)``;
    ///   otherwise the work waits until something else wakes the core.
    /// - With `idle=poll` on the kernel command line nobody counts as idle:
    ///   this is a plain ``yield()``, and pollers spin (Toro's "before").
    ///
    /// `beforeIdling` runs when this call is the one that makes the thread
    /// idle, before its core may halt: a poller whose device interrupts only
    /// on request turns those interrupts on there, then looks once more, and
    /// returns true if work arrived meanwhile (the call then returns at once,
    /// and the thread polls again). What arrived before the interrupts were
    /// on is found by that look, what arrives after interrupts. A poller that
    /// keeps finding work needs no interrupts at all.
    public static func pollFoundNothing(beforeIdling: () -> Bool = { false }) {
        let me = running
        let idle = me._withUnsafeGuaranteedRef { thread in
            IdlePolicy.halts(.pollingThreads)
                && thread.polling.foundNothing(now: CPU.timestamp(), grace: IdlePolicy.pollGraceTicks)
        }
        guard idle else { return yield() }
        if beforeIdling() { return }
        me._withUnsafeGuaranteedRef { $0.state = .idlePolling }
        Scheduler.withCurrent { scheduler in
            scheduler.admitIncoming()
            if let next = scheduler.queues.parkIdlePoller(me) {
                scheduler.switchTo(next)
            } else {
                scheduler.waitHere()
            }
        }
    }

    /// Tells the scheduler that the current thread's poll found work: it is
    /// busy again, and its next empty poll starts a new grace period. Toro's
    /// `SysThreadActive`. Cheap: one store.
    public static func pollFoundWork() {
        running._withUnsafeGuaranteedRef { $0.polling.foundWork() }
    }

    /// Tells core `core` that work its pollers wait for has arrived (call it
    /// after publishing the work): its idle pollers poll again, and if the
    /// core is halted because they were all idle, an IPI wakes it. From any
    /// core, or an interrupt handler; a load and an atomic add when the core
    /// is not halted.
    public static func workArrived(on core: Int) {
        Scheduler.with(core) { target in
            target.pollWork.wrappingAdd(1, ordering: .sequentiallyConsistent)
            if core != CPULocal.index && target.halted.load(ordering: .sequentiallyConsistent) {
                IPI.wake(cpu: core)
            }
        }
    }
}

/// The next ID ``Thread/spawn(on:stackPages:_:)`` gives (0 is the idle contexts', 1 `main`'s).
private let nextThreadID = Atomic<Int>(2)
