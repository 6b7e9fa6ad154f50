/// A core's pending timers, ordered by deadline: a binary min-heap.
///
/// Each core has one; only its own core touches it (with interrupts disabled),
/// so it needs no lock. The core's hardware timer is armed for ``earliestDeadline``
/// only, and not at all when the queue is empty: that is what makes the kernel
/// tickless. Deadlines are in TSC ticks.
///
/// Plain Swift, so it is also built for the host and unit-tested there.
public struct TimerQueue<Payload> {
    /// Identifies a timer for ``cancel(_:)``.
    public struct ID: Hashable, Sendable {
        let value: UInt64
    }

    struct Entry {
        var deadline: UInt64
        var id: UInt64
        var payload: Payload
    }

    private var heap: [Entry] = []
    private var nextID: UInt64 = 1

    public init() {}

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }

    /// The deadline the hardware timer should be armed for, or nil to leave it off.
    public var earliestDeadline: UInt64? { heap.first?.deadline }

    /// Adds a timer. Timers with equal deadlines fire in the order they were added.
    @discardableResult
    public mutating func insert(deadline: UInt64, _ payload: Payload) -> ID {
        let id = nextID
        nextID += 1
        heap.append(Entry(deadline: deadline, id: id, payload: payload))
        siftUp(heap.count - 1)
        return ID(value: id)
    }

    /// Removes a pending timer; returns its payload, or nil if it already fired or was cancelled.
    @discardableResult
    public mutating func cancel(_ id: ID) -> Payload? {
        guard let index = heap.firstIndex(where: { $0.id == id.value }) else { return nil }
        return remove(at: index).payload
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    /// Allocates nothing, so an interrupt handler can drain the queue with it.
    public mutating func popFirstExpired(now: UInt64) -> Payload? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        return remove(at: 0).payload
    }

    /// Removes and returns, in deadline order, every timer whose deadline is at or before `now`.
    public mutating func popExpired(now: UInt64) -> [Payload] {
        var expired: [Payload] = []
        while let first = heap.first, first.deadline <= now {
            expired.append(remove(at: 0).payload)
        }
        return expired
    }

    private mutating func remove(at index: Int) -> Entry {
        let removed = heap[index]
        let last = heap.removeLast()
        if index < heap.count {
            heap[index] = last
            siftDown(index)
            siftUp(index)
        }
        return removed
    }

    private func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id < b.id
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(heap[child], heap[parent]) else { return }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var first = parent
            if left < heap.count && precedes(heap[left], heap[first]) { first = left }
            if right < heap.count && precedes(heap[right], heap[first]) { first = right }
            guard first != parent else { return }
            heap.swapAt(parent, first)
            parent = first
        }
    }
}
