/// The queues of one core's scheduler and the choices made with them: which
/// thread runs next when the running one yields, blocks or polls in vain.
///
/// Two queues, both touched only by their core with interrupts disabled:
///
/// - ``ready``: threads that can run, first in, first out.
/// - ``idlePollers``: threads that poll and count as idle (see ``PollState``).
///   They do not run again until something happens on the core: another
///   thread yields (while anything else runs, pollers keep their turns), or
///   the core takes an interrupt or a wake-up (``releaseIdlePollers()``).
///   When only idle pollers are left, the core halts instead of running them.
///
/// Blocked threads are in neither: whatever will wake them (a timer, a
/// joiner list, a park permit) holds them until it makes them ready.
///
/// Plain Swift, so it is also built for the host and unit-tested there; the
/// kernel's `Scheduler` adds the switching, the halting and the other cores.
struct CoreRunQueues<Element: RunQueueElement> {
    private(set) var ready = RunQueue<Element>()
    private(set) var idlePollers = RunQueue<Element>()

    init() {}

    /// A thread of this core became ready (spawned here, or woken by a timer
    /// or a thread of this core).
    mutating func makeReady(_ thread: Unmanaged<Element>) {
        ready.append(thread)
    }

    /// Threads handed over by other cores (an ``IncomingQueue``'s take), in order.
    mutating func admit(_ threads: inout RunQueue<Element>) {
        ready.append(contentsOf: &threads)
    }

    /// The thread to run next, taken from the ready queue; nil if none is ready.
    mutating func next() -> Unmanaged<Element>? {
        ready.popFirst()
    }

    /// `current` yields: returns the thread to run instead, with `current`
    /// queued behind every ready thread, or nil if nothing else can run (then
    /// `current` just goes on). Idle pollers get a turn too: they only stay
    /// out while the core would otherwise halt.
    mutating func yield(_ current: Unmanaged<Element>) -> Unmanaged<Element>? {
        releaseIdlePollers()
        guard let next = ready.popFirst() else { return nil }
        ready.append(current)
        return next
    }

    /// `current` polled in vain and counts as idle: it joins the idle
    /// pollers. Returns the thread to run instead, or nil if no thread is
    /// ready, that is, every runnable thread of the core is an idle poller
    /// (then the core halts until something happens).
    mutating func parkIdlePoller(_ current: Unmanaged<Element>) -> Unmanaged<Element>? {
        idlePollers.append(current)
        return ready.popFirst()
    }

    /// Something happened on the core (an interrupt, a thread arriving, a
    /// yield): every idle poller gets one more poll, after the ready threads.
    mutating func releaseIdlePollers() {
        ready.append(contentsOf: &idlePollers)
    }

    var hasIdlePollers: Bool { !idlePollers.isEmpty }
}
