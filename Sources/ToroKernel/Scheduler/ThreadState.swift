/// Where a thread is in its life.
///
/// ```
///            spawn                 pick                   return from its body
///   new ────────────► ready ◄────────────► running ─────────────────────────► exited
///  (on its way to       ▲     yield            │
///   another core)       │                      │ sleep / park / join / poll in vain
///                       └── timer, unpark, ────┘
///                           the joined thread's end,
///                           anything happening on the core (idle pollers)
/// ```
///
/// Only the thread's own core changes it, so it needs no atomic access; other
/// cores hand a thread over through its core's ``IncomingQueue``.
///
/// Plain Swift, so it is also built for the host and unit-tested there.
public enum ThreadState: UInt8, Sendable {
    /// Spawned from another core and not yet taken in by its own.
    case new
    /// Waiting in its core's ready queue.
    case ready
    /// On its core now.
    case running
    /// Blocked until its timer fires (`Thread.sleep`).
    case sleeping
    /// Blocked until unparked (`Thread.park()`).
    case parked
    /// Blocked until the thread it joins has ended.
    case joining
    /// Polled in vain long enough to count as idle; runs again when something
    /// happens on its core (`Thread.pollFoundNothing()`).
    case idlePolling
    /// Its body returned; its stack is freed or about to be.
    case exited

    /// Whether the thread waits for an event (a timer, an unpark, a join) rather than for the CPU.
    public var isBlocked: Bool {
        self == .sleeping || self == .parked || self == .joining
    }
}
