import Synchronization

/// The threads other cores hand to one core: new threads spawned there from
/// elsewhere, and its threads woken from elsewhere.
///
/// Each core's ready queue belongs to that core alone. Another core never
/// touches it; it pushes the thread here instead, and the owner moves
/// everything here to its ready queue whenever it looks for the next thread
/// to run. There is one such queue per core and no global run queue or lock:
/// cores that hand each other nothing never share a cache line.
///
/// A lock-free stack (a Treiber stack, as the heap's remote-free list) with
/// many pushers and one taker:
///
/// - ``push(_:)`` links the thread to the current head through the thread's
///   own ``RunQueueElement/runQueueNext`` (it is in no other queue while it
///   travels) and swings the head to it with a compare-exchange, retrying if
///   another core pushed in between.
/// - ``takeAll()`` swaps the head for nil in one exchange and reverses the
///   list, so threads become ready in the order they were pushed. The taker
///   never pops single elements, so there is no ABA problem.
///
/// The push is sequentially consistent because a pusher then reads whether
/// the owner is halted, and the owner announces it halts before it reads
/// whether this queue is empty (see `Scheduler`): of the two, at least one
/// sees the other's write, so a thread is never left here while its core
/// sleeps. Acquire on take makes everything the pusher wrote to the thread
/// visible to the owner.
///
/// Plain Swift, so it is also built for the host and unit-tested there.
struct IncomingQueue<Element: RunQueueElement>: ~Copyable {
    /// The most recently pushed element's address, 0 when empty.
    private let head = Atomic<UInt>(0)

    init() {}

    /// Pushes `element`. Safe from any core, concurrently with other pushes and a take.
    func push(_ element: Unmanaged<Element>) {
        let address = UInt(bitPattern: element.toOpaque())
        var expected = head.load(ordering: .relaxed)
        while true {
            element._withUnsafeGuaranteedRef { $0.runQueueNext = Self.element(at: expected) }
            let (exchanged, original) = head.compareExchange(
                expected: expected, desired: address,
                successOrdering: .sequentiallyConsistent, failureOrdering: .relaxed)
            if exchanged { return }
            expected = original
        }
    }

    /// Whether nothing is waiting. Sequentially consistent: see the type's documentation.
    var isEmpty: Bool {
        head.load(ordering: .sequentiallyConsistent) == 0
    }

    /// Takes everything pushed so far, oldest first. Only the owning core calls this.
    func takeAll() -> RunQueue<Element> {
        var queue = RunQueue<Element>()
        guard head.load(ordering: .relaxed) != 0 else { return queue }
        // The stack holds the newest first; putting each in front of the
        // previous ones turns it into oldest first, in one pass.
        var newestFirst = Self.element(at: head.exchange(0, ordering: .acquiring))
        while let element = newestFirst {
            newestFirst = element._withUnsafeGuaranteedRef { $0.runQueueNext }
            queue.prepend(element)
        }
        return queue
    }

    private static func element(at address: UInt) -> Unmanaged<Element>? {
        UnsafeRawPointer(bitPattern: address).map { Unmanaged<Element>.fromOpaque($0) }
    }
}
