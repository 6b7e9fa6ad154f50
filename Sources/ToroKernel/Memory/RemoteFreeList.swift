import Synchronization

/// Blocks freed by other cores, waiting for their owner to take them back.
///
/// Each core's heap is used by that core alone, without a lock. A core that
/// frees a block it does not own must not touch the owner's free list, so it
/// pushes the block here instead, and the owner takes the whole list at its
/// next allocation and frees the blocks itself.
///
/// A lock-free stack (a Treiber stack) with many pushers and one taker:
///
/// - ``push(_:)`` links the block to the current head through the first word
///   of its payload (every payload has at least 16 bytes; the block is dead to
///   everyone else, so the word is free to use) and swings the head to it with
///   a compare-exchange, retrying if another core pushed in between.
/// - ``takeAll()`` swaps the head for 0 in one exchange. The taker never pops
///   single blocks, so the stack has no ABA problem: a head that compares equal
///   always still heads the same list, because nothing is ever removed from
///   under a pusher, only the whole list at once.
///
/// Release on push and acquire on take make everything the freeing core wrote
/// into the block (its last use, and the link) visible to the owner before it
/// reuses the memory.
struct RemoteFreeList: ~Copyable {
    /// Payload address of the most recently pushed block, 0 when empty.
    private let head = Atomic<UInt>(0)

    init() {}

    /// Pushes the block whose payload is at `payload`. Safe from any core, concurrently.
    func push(_ payload: UInt) {
        let link = UnsafeMutablePointer<UInt>(bitPattern: payload)!
        var expected = head.load(ordering: .relaxed)
        while true {
            link.pointee = expected
            let (exchanged, original) = head.compareExchange(
                expected: expected, desired: payload, successOrdering: .releasing, failureOrdering: .relaxed)
            if exchanged { return }
            expected = original
        }
    }

    /// Whether anything is waiting; one plain load, cheap enough to ask on every allocation.
    var isEmpty: Bool {
        head.load(ordering: .relaxed) == 0
    }

    /// Takes every block pushed so far, as the payload of the first (0 if
    /// none); follow the list with ``next(after:)``. Only the owner calls this.
    func takeAll() -> UInt {
        head.exchange(0, ordering: .acquiring)
    }

    /// The block after `payload` in a list returned by ``takeAll()``, 0 at the end.
    static func next(after payload: UInt) -> UInt {
        UnsafeMutablePointer<UInt>(bitPattern: payload)!.pointee
    }
}
