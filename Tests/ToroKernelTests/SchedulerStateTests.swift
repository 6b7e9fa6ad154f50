import Dispatch
import Synchronization
import XCTest

@testable import ToroKernelPortable

/// The state logic of threads: join's waiter list, park's permit, the poll
/// grace period.
final class WaiterListTests: XCTestCase {
    func testCloseWakesEveryWaiterOnceAndRefusesLateOnes() {
        let (owners, refs) = things(3)
        let list = WaiterList<QueuedThing>()
        XCTAssertFalse(list.isClosed)
        XCTAssertTrue(list.add(refs[0]))
        XCTAssertTrue(list.add(refs[1]))
        var woken: [Int] = []
        list.close { woken.append($0.takeUnretainedValue().value) }
        XCTAssertEqual(woken.sorted(), [0, 1])
        XCTAssertTrue(list.isClosed)
        XCTAssertFalse(list.add(refs[2]), "the event has happened: do not wait")
        withExtendedLifetime(owners) {}
    }

    func testCloseWithNobodyWaiting() {
        let list = WaiterList<QueuedThing>()
        var count = 0
        list.close { _ in count += 1 }
        XCTAssertEqual(count, 0)
        XCTAssertTrue(list.isClosed)
    }

    /// Joiners racing the end: each is either woken once or refused, never both or neither.
    func testRacingAddsAndCloseAreEachDecidedOnce() {
        for _ in 0..<200 {
            let (owners, refs) = things(8)
            let list = Box(WaiterList<QueuedThing>())
            let accepted = Box(Flags(count: refs.count))
            let group = DispatchGroup()
            for (index, ref) in refs.enumerated() {
                DispatchQueue.global().async(group: group) {
                    if list.value.add(ref) { accepted.value.set(index) }
                }
            }
            var woken = Set<Int>()
            list.value.close { woken.insert($0.takeUnretainedValue().value) }
            group.wait()
            // Late ones were refused; every accepted one was woken.
            XCTAssertEqual(woken, accepted.value.indices, "woken exactly the accepted waiters")
            withExtendedLifetime(owners) {}
        }
    }
}

/// Which indices were set, from several host threads.
final class Flags: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = Set<Int>()
    init(count: Int) {}
    func set(_ index: Int) { lock.lock(); stored.insert(index); lock.unlock() }
    var indices: Set<Int> { lock.lock(); defer { lock.unlock() }; return stored }
}

final class ParkPermitTests: XCTestCase {
    func testUnparkBeforeParkLeavesOnePermit() {
        let permit = ParkPermit()
        XCTAssertFalse(permit.consumeIfNotified())
        XCTAssertFalse(permit.unpark(), "not parked: nobody to make ready")
        XCTAssertFalse(permit.unpark(), "permits do not add up")
        XCTAssertTrue(permit.consumeIfNotified())
        XCTAssertFalse(permit.consumeIfNotified(), "one permit, consumed")
    }

    func testParkThenUnparkMakesReadyOnce() {
        let permit = ParkPermit()
        XCTAssertTrue(permit.prepareToPark(), "no permit: block")
        XCTAssertTrue(permit.unpark(), "parked: the unparker makes the thread ready")
        XCTAssertFalse(permit.unpark(), "already notified: nobody makes it ready twice")
        permit.finishPark()
        XCTAssertFalse(permit.consumeIfNotified(), "the wake-up consumed the permit")
    }

    func testUnparkBetweenCheckAndParkIsNotLost() {
        let permit = ParkPermit()
        XCTAssertFalse(permit.consumeIfNotified())
        XCTAssertFalse(permit.unpark())  // arrives after the check, before the park
        XCTAssertFalse(permit.prepareToPark(), "a permit arrived meanwhile: do not block")
        XCTAssertFalse(permit.consumeIfNotified(), "and it was consumed")
        XCTAssertTrue(permit.prepareToPark())
    }

    /// A parker and an unparker on two host threads, the unparker publishing
    /// a round number before each unpark: the parker, parking until it sees
    /// every round, is never left blocked, and is made ready only for parks
    /// that blocked.
    func testRacingParkAndUnparkLosesNoWakeUp() {
        let rounds = 20000
        let permit = Box(ParkPermit())
        let published = Box(Atomic<Int>(0))
        let wakeups = DispatchSemaphore(value: 0)
        let unparker = DispatchGroup()
        DispatchQueue.global().async(group: unparker) {
            for round in 1...rounds {
                published.value.store(round, ordering: .releasing)
                if permit.value.unpark() { wakeups.signal() }
            }
        }
        var blocked = 0
        while published.value.load(ordering: .acquiring) < rounds {
            if permit.value.consumeIfNotified() { continue }
            if published.value.load(ordering: .acquiring) == rounds { break }
            guard permit.value.prepareToPark() else { continue }
            blocked += 1
            guard wakeups.wait(timeout: .now() + 10) == .success else {
                return XCTFail("a wake-up was lost after \(published.value.load(ordering: .relaxed)) rounds")
            }
            permit.value.finishPark()
        }
        unparker.wait()
        XCTAssertEqual(wakeups.wait(timeout: .now()), .timedOut, "no wake-up without a blocked park")
        print("park/unpark race: \(blocked) of \(rounds) rounds blocked")
    }
}

final class PollStateTests: XCTestCase {
    func testIdleAfterTheGracePeriodAndUntilWork() {
        var state = PollState()
        XCTAssertFalse(state.isFindingNothing)
        XCTAssertFalse(state.foundNothing(now: 1000, grace: 500), "the first empty poll starts the clock")
        XCTAssertTrue(state.isFindingNothing)
        XCTAssertFalse(state.foundNothing(now: 1499, grace: 500))
        XCTAssertTrue(state.foundNothing(now: 1500, grace: 500), "idle after the grace period")
        XCTAssertTrue(state.foundNothing(now: 1_000_000, grace: 500), "and stays idle")
        state.foundWork()
        XCTAssertFalse(state.isFindingNothing)
        XCTAssertFalse(state.foundNothing(now: 2_000_000, grace: 500), "work restarts the grace period")
        XCTAssertTrue(state.foundNothing(now: 2_000_500, grace: 500))
    }

    func testZeroGraceIsIdleAtTheFirstEmptyPoll() {
        var state = PollState()
        XCTAssertTrue(state.foundNothing(now: 5, grace: 0))
        // A TSC of 0 still starts the clock.
        var atZero = PollState()
        XCTAssertFalse(atZero.foundNothing(now: 0, grace: 10))
        XCTAssertTrue(atZero.isFindingNothing)
    }

    func testThreadStates() {
        XCTAssertTrue(ThreadState.sleeping.isBlocked)
        XCTAssertTrue(ThreadState.parked.isBlocked)
        XCTAssertTrue(ThreadState.joining.isBlocked)
        for state in [ThreadState.new, .ready, .running, .idlePolling, .exited] {
            XCTAssertFalse(state.isBlocked, "\(state)")
        }
    }
}
