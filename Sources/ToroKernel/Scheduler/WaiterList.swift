import Synchronization

/// Something that can wait in a ``WaiterList``: in the kernel a `Thread`.
protocol WaiterListElement: AnyObject {
    /// The next waiter of the list holding this one. Only the list touches it;
    /// it is separate from the run-queue link because a woken waiter goes into
    /// a run queue while the list is still being walked.
    var waiterNext: Unmanaged<Self>? { get set }
}

/// The threads waiting for one event that happens once, such as a thread's
/// end (`join`), from any core.
///
/// A lock-free stack that can be closed: ``add(_:)`` pushes a waiter unless
/// the event has happened; ``close(_:)`` marks it happened and hands over
/// every waiter exactly once. A waiter that ``add(_:)`` accepted is therefore
/// woken exactly once, by ``close(_:)``; one it refused must not wait.
///
/// Plain Swift, so it is also built for the host and unit-tested there.
struct WaiterList<Element: WaiterListElement>: ~Copyable {
    /// 0: open, nobody waiting; ``closedMark``: the event happened; else the
    /// address of the most recent waiter.
    private let head = Atomic<UInt>(0)
    private static var closedMark: UInt { 1 }

    init() {}

    /// Whether the event has happened.
    var isClosed: Bool {
        head.load(ordering: .acquiring) == Self.closedMark
    }

    /// Adds `waiter` if the event has not happened yet; returns false (and
    /// adds nothing) if it has.
    func add(_ waiter: Unmanaged<Element>) -> Bool {
        let address = UInt(bitPattern: waiter.toOpaque())
        var expected = head.load(ordering: .relaxed)
        while expected != Self.closedMark {
            waiter._withUnsafeGuaranteedRef { $0.waiterNext = Self.element(at: expected) }
            let (exchanged, original) = head.compareExchange(
                expected: expected, desired: address,
                successOrdering: .acquiringAndReleasing, failureOrdering: .acquiring)
            if exchanged { return true }
            expected = original
        }
        return false
    }

    /// Marks the event happened and calls `wake` with every waiter added
    /// before, each once (the most recent first). Call once.
    func close(_ wake: (Unmanaged<Element>) -> Void) {
        var waiter = Self.element(at: head.exchange(Self.closedMark, ordering: .acquiringAndReleasing))
        while let current = waiter {
            // Read the link before waking: the waiter may be reused at once.
            waiter = current._withUnsafeGuaranteedRef { $0.waiterNext }
            wake(current)
        }
    }

    private static func element(at address: UInt) -> Unmanaged<Element>? {
        address == closedMark ? nil : UnsafeRawPointer(bitPattern: address).map { Unmanaged<Element>.fromOpaque($0) }
    }
}
