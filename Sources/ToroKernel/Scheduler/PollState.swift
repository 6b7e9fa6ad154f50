/// When a polling thread counts as idle (case 4 of the scheduler's idle
/// cases): after it has found nothing, poll after poll, for a grace period.
///
/// A thread that polls (a device ring, a flag another core sets) tells the
/// scheduler each time a poll finds nothing (`Thread.pollFoundNothing()`) and
/// each time one finds work (`Thread.pollFoundWork()`). The first empty poll
/// after work starts the clock; once the thread has found nothing for
/// `grace` ticks it is idle, and it stays idle, whatever further empty polls
/// say, until it finds work again. An idle thread is not run again until
/// something happens on its core; when every runnable thread of a core is
/// idle, the core halts.
///
/// Plain Swift, so it is also built for the host and unit-tested there.
struct PollState: Sendable {
    /// The TSC at the first empty poll since work was last found; 0 if none.
    private(set) var emptySince: UInt64 = 0

    init() {}

    /// Records an empty poll at TSC `now`; returns whether the thread now
    /// counts as idle (it has found nothing for at least `grace` ticks).
    mutating func foundNothing(now: UInt64, grace: UInt64) -> Bool {
        if emptySince == 0 {
            emptySince = max(now, 1)  // 0 means "found work"
            return grace == 0
        }
        return now &- emptySince >= grace
    }

    /// Records that a poll found work: the thread is busy again.
    mutating func foundWork() {
        emptySince = 0
    }

    /// Whether the thread has found nothing since it last found work.
    var isFindingNothing: Bool { emptySince != 0 }
}
