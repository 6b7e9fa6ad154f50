import Dispatch
import XCTest

@testable import ToroKernelPortable

/// A stand-in for the kernel's `Thread`: what the queues link through.
final class QueuedThing: RunQueueElement, WaiterListElement, @unchecked Sendable {
    let value: Int
    var runQueueNext: Unmanaged<QueuedThing>?
    var waiterNext: Unmanaged<QueuedThing>?

    init(_ value: Int) { self.value = value }
}

/// Unmanaged references to `count` things, kept alive by `owners`.
func things(_ count: Int, from start: Int = 0) -> (owners: [QueuedThing], refs: [Unmanaged<QueuedThing>]) {
    let owners = (start..<start + count).map { QueuedThing($0) }
    return (owners, owners.map { Unmanaged.passUnretained($0) })
}

func values(_ queue: RunQueue<QueuedThing>) -> [Int] {
    var result: [Int] = []
    queue.forEach { result.append($0.takeUnretainedValue().value) }
    return result
}

/// The run queue and the per-core choices made with it.
final class RunQueueTests: XCTestCase {
    func testFirstInFirstOut() {
        let (owners, refs) = things(5)
        var queue = RunQueue<QueuedThing>()
        XCTAssertTrue(queue.isEmpty)
        XCTAssertNil(queue.popFirst())
        for ref in refs { queue.append(ref) }
        XCTAssertEqual(queue.count, 5)
        XCTAssertEqual(values(queue), [0, 1, 2, 3, 4])
        XCTAssertEqual(queue.first?.takeUnretainedValue().value, 0)
        var popped: [Int] = []
        while let next = queue.popFirst() { popped.append(next.takeUnretainedValue().value) }
        XCTAssertEqual(popped, [0, 1, 2, 3, 4])
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.count, 0)
        // Empty again, and usable again: the tail was reset with the head.
        queue.append(refs[3])
        XCTAssertEqual(values(queue), [3])
        withExtendedLifetime(owners) {}
    }

    func testPrependAndSplice() {
        let (owners, refs) = things(6)
        var a = RunQueue<QueuedThing>()
        a.append(refs[1])
        a.prepend(refs[0])
        a.append(refs[2])
        var b = RunQueue<QueuedThing>()
        b.prepend(refs[5])
        b.prepend(refs[4])
        b.prepend(refs[3])
        a.append(contentsOf: &b)
        XCTAssertEqual(values(a), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(a.count, 6)
        XCTAssertTrue(b.isEmpty)
        // Splicing into an empty queue, and an empty queue into one.
        var c = RunQueue<QueuedThing>()
        c.append(contentsOf: &a)
        c.append(contentsOf: &b)
        XCTAssertEqual(values(c), [0, 1, 2, 3, 4, 5])
        XCTAssertEqual(c.popFirst()?.takeUnretainedValue().value, 0)
        c.append(refs[0])
        XCTAssertEqual(values(c), [1, 2, 3, 4, 5, 0])
        withExtendedLifetime(owners) {}
    }

    func testYieldRotatesAndKeepsRunningWhenAlone() {
        let (owners, refs) = things(3)
        var core = CoreRunQueues<QueuedThing>()
        // Alone: keep running.
        XCTAssertNil(core.yield(refs[0]))
        core.makeReady(refs[1])
        core.makeReady(refs[2])
        // Round robin: 0 runs, yields to 1; 1 yields to 2; 2 yields to 0.
        var running = refs[0]
        var order: [Int] = []
        for _ in 0..<6 {
            running = core.yield(running)!
            order.append(running.takeUnretainedValue().value)
        }
        XCTAssertEqual(order, [1, 2, 0, 1, 2, 0])
        withExtendedLifetime(owners) {}
    }

    func testIdlePollersWaitUntilReleasedOrSomeoneYields() {
        let (owners, refs) = things(3)
        var core = CoreRunQueues<QueuedThing>()
        // Two pollers go idle one after the other: the first hands over to the
        // second, the second finds nothing ready: the core may halt.
        core.makeReady(refs[1])
        XCTAssertEqual(core.parkIdlePoller(refs[0])?.takeUnretainedValue().value, 1)
        XCTAssertNil(core.parkIdlePoller(refs[1]))
        XCTAssertTrue(core.hasIdlePollers)
        XCTAssertNil(core.next(), "idle pollers are not ready")
        // An interrupt: both poll once more, in the order they went idle.
        core.releaseIdlePollers()
        XCTAssertFalse(core.hasIdlePollers)
        XCTAssertEqual(core.next()?.takeUnretainedValue().value, 0)
        XCTAssertEqual(core.next()?.takeUnretainedValue().value, 1)
        // With another thread running, idle pollers keep their turns when it yields.
        XCTAssertNil(core.parkIdlePoller(refs[0]))
        XCTAssertEqual(core.yield(refs[2])?.takeUnretainedValue().value, 0)
        XCTAssertEqual(core.next()?.takeUnretainedValue().value, 2)
        withExtendedLifetime(owners) {}
    }

    func testAdmittedThreadsQueueBehindReadyOnes() {
        let (owners, refs) = things(4)
        var core = CoreRunQueues<QueuedThing>()
        core.makeReady(refs[0])
        var arrived = RunQueue<QueuedThing>()
        arrived.append(refs[1])
        arrived.append(refs[2])
        core.admit(&arrived)
        XCTAssertTrue(arrived.isEmpty)
        core.makeReady(refs[3])
        XCTAssertEqual(values(core.ready), [0, 1, 2, 3])
        withExtendedLifetime(owners) {}
    }
}

/// The lock-free list through which cores hand each other threads.
final class IncomingQueueTests: XCTestCase {
    func testTakeAllReturnsPushOrder() {
        let (owners, refs) = things(4)
        let queue = IncomingQueue<QueuedThing>()
        XCTAssertTrue(queue.isEmpty)
        XCTAssertTrue(queue.takeAll().isEmpty)
        for ref in refs { queue.push(ref) }
        XCTAssertFalse(queue.isEmpty)
        let taken = queue.takeAll()
        XCTAssertEqual(values(taken), [0, 1, 2, 3])
        XCTAssertEqual(taken.count, 4)
        XCTAssertTrue(queue.isEmpty)
        withExtendedLifetime(owners) {}
    }

    /// Four "cores" push concurrently while the owner keeps taking: every
    /// element arrives exactly once, and each pusher's elements in its order.
    func testConcurrentPushersLoseNothing() {
        let pushers = 4
        let perPusher = 5000
        let (owners, refs) = things(pushers * perPusher)
        let queue = Box(IncomingQueue<QueuedThing>())
        let finished = DispatchGroup()
        for pusher in 0..<pushers {
            DispatchQueue.global().async(group: finished) {
                for index in 0..<perPusher {
                    queue.value.push(refs[pusher * perPusher + index])
                }
            }
        }
        var received: [Int] = []
        received.reserveCapacity(refs.count)
        while received.count < refs.count {
            queue.value.takeAll().forEach { received.append($0.takeUnretainedValue().value) }
        }
        finished.wait()
        XCTAssertTrue(queue.value.isEmpty)
        XCTAssertEqual(Set(received).count, refs.count, "every element exactly once")
        var last = [Int](repeating: -1, count: pushers)
        for value in received {
            let pusher = value / perPusher
            XCTAssertGreaterThan(value, last[pusher], "one pusher's elements arrive in push order")
            last[pusher] = value
        }
        withExtendedLifetime(owners) {}
    }
}

/// Holds a non-copyable value for closures running on other host threads.
final class Box<Value: ~Copyable>: @unchecked Sendable {
    let value: Value
    init(_ value: consuming Value) { self.value = value }
}
