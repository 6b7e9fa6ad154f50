@testable import ToroKernelPortable
import XCTest

final class TimerQueueTests: XCTestCase {
    func testFiresInDeadlineOrderThenInsertionOrder() {
        var queue = TimerQueue<String>()
        queue.insert(deadline: 30, "c")
        queue.insert(deadline: 10, "a")
        queue.insert(deadline: 20, "b1")
        queue.insert(deadline: 20, "b2")
        XCTAssertEqual(queue.earliestDeadline, 10)
        XCTAssertEqual(queue.popExpired(now: 5), [])
        XCTAssertEqual(queue.popExpired(now: 20), ["a", "b1", "b2"])
        XCTAssertEqual(queue.earliestDeadline, 30)
        XCTAssertEqual(queue.popExpired(now: 100), ["c"])
        XCTAssertNil(queue.earliestDeadline, "empty queue: the hardware timer stays off")
    }

    func testPopFirstExpiredOneAtATime() {
        var queue = TimerQueue<Int>()
        queue.insert(deadline: 3, 3)
        queue.insert(deadline: 1, 1)
        queue.insert(deadline: 9, 9)
        XCTAssertEqual(queue.popFirstExpired(now: 5), 1)
        XCTAssertEqual(queue.popFirstExpired(now: 5), 3)
        XCTAssertNil(queue.popFirstExpired(now: 5))
        XCTAssertEqual(queue.count, 1)
    }

    func testCancel() {
        var queue = TimerQueue<Int>()
        let a = queue.insert(deadline: 10, 1)
        let b = queue.insert(deadline: 5, 2)
        queue.insert(deadline: 7, 3)
        XCTAssertEqual(queue.cancel(b), 2)
        XCTAssertNil(queue.cancel(b), "cancelled twice")
        XCTAssertEqual(queue.earliestDeadline, 7)
        XCTAssertEqual(queue.cancel(a), 1)
        XCTAssertEqual(queue.popExpired(now: 100), [3])
        XCTAssertNil(queue.cancel(a))
    }

    func testRandomisedAgainstSorting() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var queue = TimerQueue<Int>()
            var reference: [(UInt64, Int)] = []
            var ids: [TimerQueue<Int>.ID] = []
            for n in 0..<200 {
                let deadline = UInt64.random(in: 0..<1000, using: &generator)
                ids.append(queue.insert(deadline: deadline, n))
                reference.append((deadline, n))
            }
            for _ in 0..<50 {
                let victim = Int.random(in: 0..<ids.count, using: &generator)
                if queue.cancel(ids[victim]) != nil { reference.removeAll { $0.1 == victim } }
            }
            let fired = queue.popExpired(now: 500) + queue.popExpired(now: 1000)
            let expected = reference.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map(\.1)
            XCTAssertEqual(fired, expected)
        }
    }
}
