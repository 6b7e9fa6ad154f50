import Synchronization

/// The permit behind `Thread.park()` and `Thread.unpark()`.
///
/// A thread parks to wait for "something changed" and rechecks what it waits
/// for when it returns; any thread, on any core, or an interrupt handler
/// unparks it. The permit makes the pair race-free across cores: an unpark
/// that comes before the park is kept, and the park then returns at once.
/// Permits do not add up: several unparks before a park leave one.
///
/// Three states in one atomic word:
///
/// | state | meaning |
/// | --- | --- |
/// | empty | no permit, the thread is not parked |
/// | notified | an unpark left a permit |
/// | parked | the thread is blocked (or about to block) waiting for one |
///
/// The parking thread goes empty → parked (``prepareToPark()``) and then
/// blocks; an unpark swaps in notified and, if it found parked, and only then,
/// makes the thread ready, so a parked thread is made ready exactly once.
/// Back from blocking, the thread consumes the permit (``finishPark()``).
///
/// Plain Swift, so it is also built for the host and unit-tested there.
struct ParkPermit: ~Copyable {
    private static var empty: Int { 0 }
    private static var notified: Int { 1 }
    private static var parked: Int { 2 }

    private let state = Atomic<Int>(0)

    init() {}

    /// Takes a waiting permit: true if there was one (the caller need not block).
    func consumeIfNotified() -> Bool {
        state.compareExchange(expected: Self.notified, desired: Self.empty, ordering: .acquiring).exchanged
    }

    /// Announces that the caller is about to block: true if it must now block
    /// until ``unpark()`` returns true for it; false if a permit arrived
    /// meanwhile, which this consumed (the caller must not block).
    func prepareToPark() -> Bool {
        let (exchanged, _) = state.compareExchange(
            expected: Self.empty, desired: Self.parked, ordering: .acquiringAndReleasing)
        if exchanged { return true }
        // Only an unpark can have changed `empty`: it left a permit.
        state.store(Self.empty, ordering: .relaxed)
        return false
    }

    /// After the blocked thread runs again: consumes the permit that woke it.
    func finishPark() {
        state.store(Self.empty, ordering: .relaxed)
    }

    /// Leaves a permit; true if the thread was parked, in which case the
    /// caller, and only it, must make the thread ready.
    func unpark() -> Bool {
        state.exchange(Self.notified, ordering: .acquiringAndReleasing) == Self.parked
    }
}
