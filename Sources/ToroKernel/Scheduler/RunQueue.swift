/// Something that waits in a ``RunQueue``: in the kernel a `Thread`, in the
/// host tests a stand-in.
///
/// The queue is intrusive: the link lives in the element, so queueing and
/// dequeueing allocate nothing and touch no reference count, which matters on
/// a path every context switch takes. An element is in at most one queue at a
/// time (a ready queue, a core's idle pollers, or an ``IncomingQueue``, which
/// uses the same link).
protocol RunQueueElement: AnyObject {
    /// The next element of the queue holding this one. Only the queues touch it.
    var runQueueNext: Unmanaged<Self>? { get set }
}

/// A first-in, first-out queue of threads, linked through the threads themselves.
///
/// One core's ready queue: only that core touches it, with interrupts
/// disabled, so it needs no lock and no atomic operation. Elements are held
/// unretained; whoever queues one keeps it alive until it is taken out.
///
/// Plain Swift, so it is also built for the host and unit-tested there.
struct RunQueue<Element: RunQueueElement> {
    private var head: Unmanaged<Element>?
    private var tail: Unmanaged<Element>?
    /// Elements in the queue.
    private(set) var count = 0

    init() {}

    var isEmpty: Bool { head == nil }

    /// The element ``popFirst()`` would return, left in place.
    var first: Unmanaged<Element>? { head }

    /// Adds `element` at the back.
    mutating func append(_ element: Unmanaged<Element>) {
        element._withUnsafeGuaranteedRef { $0.runQueueNext = nil }
        if let tail {
            tail._withUnsafeGuaranteedRef { $0.runQueueNext = element }
        } else {
            head = element
        }
        tail = element
        count &+= 1
    }

    /// Adds `element` at the front.
    mutating func prepend(_ element: Unmanaged<Element>) {
        element._withUnsafeGuaranteedRef { $0.runQueueNext = head }
        if head == nil {
            tail = element
        }
        head = element
        count &+= 1
    }

    /// Removes and returns the element at the front, or nil if the queue is empty.
    mutating func popFirst() -> Unmanaged<Element>? {
        guard let first = head else { return nil }
        head = first._withUnsafeGuaranteedRef { $0.runQueueNext }
        if head == nil {
            tail = nil
        }
        count &-= 1
        return first
    }

    /// Moves every element of `other`, in order, to the back of this queue; `other` ends empty.
    mutating func append(contentsOf other: inout RunQueue<Element>) {
        guard let otherHead = other.head else { return }
        if let tail {
            tail._withUnsafeGuaranteedRef { $0.runQueueNext = otherHead }
        } else {
            head = otherHead
        }
        tail = other.tail
        count &+= other.count
        other = RunQueue()
    }

    /// Calls `body` with each element, front to back. The queue must not change meanwhile.
    func forEach(_ body: (Unmanaged<Element>) -> Void) {
        var element = head
        while let current = element {
            body(current)
            element = current._withUnsafeGuaranteedRef { $0.runQueueNext }
        }
    }
}
