import KernelSupport
import Synchronization

/// One core's scheduler: its threads, its queues, its idle loop.
///
/// Every core has one, and it is the only code that touches the core's
/// queues (``CoreRunQueues``), always with interrupts disabled: the ready
/// queue and the idle pollers need no lock. Other cores reach a core only
/// through its ``IncomingQueue`` (a lock-free list) and its ``halted`` flag,
/// which tells them whether an IPI is needed:
///
/// ```
///   core A (any thread)                     core B's scheduler
///   ───────────────────                     ──────────────────
///   B.incoming.push(thread)  ─── list ───►  admitIncoming(): incoming → ready
///   if B.halted { IPI.wake(B) } ─ IPI ───►  ends B's `sti; hlt`
/// ```
///
/// A thread gives its core up in one of four ways, each ending in
/// ``switchTo(_:)`` (ContextSwitch.swift) or, when no thread is ready, in
/// ``waitForWork()`` (IdleLoop.swift) right where the thread stopped:
/// yield (to the back of the ready queue), block (sleep, park, join: held
/// by what will wake it), poll in vain (among the idle pollers), or end
/// (``exitCurrent()``).
public final class Scheduler {
    /// The core this scheduler runs.
    let core: Int
    var queues = CoreRunQueues<Thread>()
    /// Threads handed over by other cores.
    let incoming = IncomingQueue<Thread>()
    /// True while the core is halted waiting for work, or about to halt: a
    /// core that hands it work must then wake it with an IPI. Set before the
    /// core's last look at ``incoming`` (see IdleLoop.swift).
    let halted = Atomic<Bool>(false)
    /// Bumped by `Thread.workArrived(on:)`; compared with ``pollWorkSeen``
    /// before the core halts on idle pollers.
    let pollWork = Atomic<UInt>(0)
    /// ``pollWork`` when the idle pollers were last sent to poll again.
    var pollWorkSeen: UInt = 0
    /// The thread running on this core (also in the per-CPU block, for
    /// `Thread.current`). Every thread the scheduler knows is retained once,
    /// from its spawn until it has ended and its stack is freed.
    var current: Unmanaged<Thread>
    /// Where this core waits when it has no thread at all: its boot context
    /// on CPUs other than 0; on CPU 0 (whose boot context is `main`), a
    /// context made the first time a thread there ends with nothing ready.
    var idleThread: Unmanaged<Thread>?
    /// A thread that has ended and whose stack the next context frees.
    var exited: Unmanaged<Thread>?
    /// Threads alive on this core, not counting `main` and the idle context.
    var threadCount = 0
    var statistics = SchedulerStatistics()

    /// This core's cross-call mailbox, served by the idle loop.
    let mailbox: Mailbox

    init(core: Int, current: Unmanaged<Thread>) {
        self.core = core
        self.current = current
        mailbox = Mailbox.all[core]
    }

    // MARK: - Finding schedulers

    /// Calls `body` with this core's scheduler. Schedulers live as long as
    /// the machine, so it is lent without retaining it: a retain and a
    /// release are some twenty instructions on the paths that matter most.
    @inline(__always)
    static func withCurrent<Result>(_ body: (Scheduler) -> Result) -> Result {
        Unmanaged<Scheduler>.fromOpaque(kernel_cpu_local_scheduler()!)._withUnsafeGuaranteedRef(body)
    }

    /// Calls `body` with core `core`'s scheduler (lent, as by
    /// ``withCurrent(_:)``); panics if there is no such core.
    @inline(__always)
    static func with<Result>(_ core: Int, _ body: (Scheduler) -> Result) -> Result {
        guard core >= 0, core < schedulerCount, let scheduler = kernel_scheduler_of(UInt32(core)) else {
            noSuchCore(core)
        }
        return Unmanaged<Scheduler>.fromOpaque(scheduler)._withUnsafeGuaranteedRef(body)
    }

    private static func noSuchCore(_ core: Int) -> Never {
        Kernel.panic { message in
            message.write("no cpu ")
            message.write(decimal: UInt64(UInt(bitPattern: core)))
            message.write(" to schedule on")
        }
    }

    /// Whether core `core` is halted in its idle loop, waiting for work (or
    /// about to halt): set just before its `sti; hlt`, cleared once it wakes.
    /// Always false with `idle=poll`. For measurements that need a core idle.
    public static func isHalted(_ core: Int) -> Bool {
        with(core) { $0.halted.load(ordering: .sequentiallyConsistent) }
    }

    /// The statistics of core `core`'s scheduler. Read without stopping that
    /// core: exact for this core, a snapshot for another.
    public static func statistics(of core: Int) -> SchedulerStatistics {
        with(core) { scheduler in
            var result = scheduler.statistics
            result.threads = scheduler.threadCount
            return result
        }
    }

    // MARK: - Bring-up

    /// On CPU 0, before the other CPUs are released: one scheduler per CPU,
    /// the boot context of CPU 0 as thread 1 (it goes on to run `main`), and
    /// each other CPU's boot context as its idle thread, all allocated here so
    /// that a CPU that never runs a thread never allocates.
    static func start(cpuCount: Int) {
        let count = max(1, min(cpuCount, Int(TORO_MAX_CPUS)))
        for core in 0..<count {
            let thread = Unmanaged.passRetained(Thread(bootContextOf: core, id: core == 0 ? 1 : 0))
            let scheduler = Scheduler(core: core, current: thread)
            if core != 0 {
                scheduler.idleThread = thread
            }
            kernel_set_scheduler_of(UInt32(core), Unmanaged.passRetained(scheduler).toOpaque())
        }
        schedulerCount = count
        install(Unmanaged.fromOpaque(kernel_scheduler_of(0)!))
        Exceptions.setThreadIdentifier { thread in
            UInt64(UInt(bitPattern: Unmanaged<Thread>.fromOpaque(thread)._withUnsafeGuaranteedRef { $0.id }))
        }
    }

    /// On every CPU but 0, once online: runs the scheduler's idle loop on the
    /// boot stack, for good.
    static func runApplicationProcessor(_ core: Int) -> Never {
        guard core < schedulerCount, let scheduler = kernel_scheduler_of(UInt32(core)) else { noSuchCore(core) }
        install(Unmanaged.fromOpaque(scheduler))
        Unmanaged<Scheduler>.fromOpaque(scheduler)._withUnsafeGuaranteedRef { $0.idleLoop() }
    }

    /// Points this CPU's per-CPU block at `scheduler` and its current thread.
    private static func install(_ scheduler: Unmanaged<Scheduler>) {
        let block = CPULocal.current
        block.pointee.scheduler = UnsafeMutableRawPointer(scheduler.toOpaque())
        block.pointee.current_thread = UnsafeMutableRawPointer(scheduler._withUnsafeGuaranteedRef { $0.current.toOpaque() })
    }

    // MARK: - Making threads ready

    /// Makes `thread` (blocked, or new) ready on its own core, from any core
    /// or an interrupt handler: directly into this core's ready queue, or
    /// through its core's incoming queue.
    static func makeReady(_ thread: Unmanaged<Thread>) {
        withCurrent { here in
            let core = thread._withUnsafeGuaranteedRef { $0.core }
            if core == here.core {
                thread._withUnsafeGuaranteedRef { $0.state = .ready }
                here.queues.makeReady(thread)
            } else {
                with(core) { $0.hand(thread, from: here) }
            }
        }
    }

    /// Another core (`sender`) hands this core `thread`: into the incoming
    /// queue, then an IPI if this core is halted. The push is a sequentially
    /// consistent read-modify-write and ``halted`` is read after it, while
    /// this core sets ``halted`` before it last reads the queue: whichever
    /// comes second sees the other, so the wake-up is never lost (Toro's
    /// SysSetCoreIdle checked and halted with interrupts enabled, and could
    /// lose it).
    func hand(_ thread: Unmanaged<Thread>, from sender: Scheduler) {
        incoming.push(thread)
        if halted.load(ordering: .sequentiallyConsistent) {
            sender.statistics.wakeIPIsSent &+= 1
            IPI.wake(cpu: core)
        }
    }

    /// The timer action of `Thread.sleep`: runs in the timer interrupt, on the
    /// sleeping thread's core; `argument` is the thread.
    static let timerWake: @convention(c) (UInt) -> Void = { argument in
        let thread = Unmanaged<Thread>.fromOpaque(UnsafeRawPointer(bitPattern: argument)!)
        thread._withUnsafeGuaranteedRef { $0.state = .ready }
        Scheduler.withCurrent { $0.queues.makeReady(thread) }
    }

    /// Moves what other cores handed over into the ready queue, oldest
    /// first. A new thread's stack was allocated (and its guard made) on
    /// another core; this core drops any stale translation of the guard
    /// before it first runs on the stack (see `Stacks.adopt(base:)`).
    @inline(__always)
    func admitIncoming() {
        guard !incoming.isEmpty else { return }
        var arrived = incoming.takeAll()
        arrived.forEach { thread in
            thread._withUnsafeGuaranteedRef { thread in
                if thread.state == .new {
                    Stacks.adopt(base: thread.stackBase)
                    threadCount &+= 1
                }
                thread.state = .ready
            }
        }
        queues.admit(&arrived)
    }

    /// The next ready thread, after taking in what other cores sent; nil if none.
    @inline(__always)
    func takeNext() -> Unmanaged<Thread>? {
        admitIncoming()
        return queues.next()
    }

    // MARK: - Giving the core up

    /// The current thread has put itself where whatever will wake it finds
    /// it (a timer, a joiner list, a park permit): runs the next ready
    /// thread, or waits right here, on this thread's stack, until one is ready
    /// (which may be this thread itself, then nothing is switched).
    func reschedule() {
        if let next = takeNext() {
            if next.toOpaque() != current.toOpaque() {
                switchTo(next)
            }
            current._withUnsafeGuaranteedRef { $0.state = .running }
        } else {
            waitHere()
        }
    }

    /// Nothing is ready: waits on this thread's stack (idle case 2, or 4 if
    /// idle pollers are parked) and switches to whatever becomes ready.
    @inline(__always)
    func waitHere() {
        let next = waitForWork()
        if next.toOpaque() != current.toOpaque() {
            switchTo(next)
        }
        current._withUnsafeGuaranteedRef { $0.state = .running }
    }

    /// Ends the current thread, whose body has returned: leaves it to the
    /// next context, which frees its stack and then wakes its joiners (see
    /// ``reapExited()``), and switches away for good.
    func exitCurrent() -> Never {
        let me = current
        me._withUnsafeGuaranteedRef { $0.state = .exited }
        threadCount &-= 1
        exited = me
        switchTo(takeNext() ?? idleContext())
        Kernel.panic("a thread ran again after it ended")
    }

    /// Frees the stack of a thread that ended, then wakes its joiners, then
    /// drops the scheduler's reference to it. Called by whatever runs after a
    /// switch: the ended thread's stack was in use until the switch left it.
    ///
    /// The joiners are woken only here, after the stack is back with the page
    /// allocator, so that `join()` returning means the thread's resources are
    /// released. Waking them before the switch (as `exitCurrent` once did) let
    /// a joiner on another core run between the wake and this free and see
    /// the stack still allocated.
    @inline(__always)
    func reapExited() {
        guard let thread = exited else { return }
        exited = nil
        thread._withUnsafeGuaranteedRef { thread in
            Stacks.free(base: thread.stackBase, top: thread.stackTop)
            thread.joiners.close { Scheduler.makeReady($0) }
        }
        thread.release()
    }

    /// This core's idle context, made on first use on CPU 0 (the other CPUs
    /// idle on their boot stacks).
    private func idleContext() -> Unmanaged<Thread> {
        if let idleThread { return idleThread }
        let thread = Thread(id: 0, core: core, stackPages: 4) {
            Scheduler.withCurrent { scheduler -> Never in scheduler.idleLoop() }
        }
        thread.savedStackPointer = ContextSwitch.initialStackPointer(
            top: thread.stackTop, thread: Unmanaged.passUnretained(thread).toOpaque())
        let idle = Unmanaged.passRetained(thread)
        idleThread = idle
        return idle
    }

    /// The idle context's loop: wait for a ready thread, run it, and again
    /// once the core has no ready thread left and its last thread has ended
    /// (idle case 3).
    func idleLoop() -> Never {
        while true {
            reapExited()
            switchTo(waitForWork())
        }
    }
}

/// Counters of one core's scheduler, from its boot on. Halts are counted
/// when they begin: a core halted for a long time counts once, then.
public struct SchedulerStatistics: Sendable {
    /// Switches from one thread to another.
    public var contextSwitches = 0
    /// Halts begun with threads alive but none ready (idle case 2).
    public var haltsWithNoReadyThread = 0
    /// Halts begun with no thread at all (idle case 3).
    public var haltsWithNoThread = 0
    /// Halts begun with only idle pollers runnable (idle case 4).
    public var haltsWithOnlyPollers = 0
    /// Wake-up IPIs this core sent to halted cores.
    public var wakeIPIsSent = 0
    /// Threads alive on the core (not counting `main` and the idle context).
    public var threads = 0

    /// All halts in the idle loop.
    public var halts: Int { haltsWithNoReadyThread + haltsWithNoThread + haltsWithOnlyPollers }
}

/// How many schedulers `kernel_schedulers` holds; set once by
/// ``Scheduler/start(cpuCount:)`` before the other CPUs are released.
nonisolated(unsafe) private var schedulerCount = 0
