import Synchronization
import ToroKernel

/// A tour of the scheduler: threads on every core, threads created on and
/// joined from other cores, sleeps, and a producer/consumer pair across cores.
///
/// Every line it prints is checked by Tests/IntegrationTests/SchedulerTests.swift;
/// it ends with `threads: ok` (exit 0), or a `FAIL:` line (exit 1).
/// `items=N` on the kernel command line sets how many items the producer sends (default 1000).
@main
struct Threads {
    static func main() {
        let cpus = BootInfo.current.cpuCount
        print("threads: \(cpus) cpus, main is thread \(Thread.current.id) on cpu \(Kernel.currentCPU)")
        everyCore(cpus)
        crossCore(cpus)
        sleeps()
        producerConsumer(cpus)
        statusIsPerThread(cpus)
        stacksAreGivenBack(cpus)
        for core in 0..<cpus {
            let statistics = Scheduler.statistics(of: core)
            print(
                "cpu \(core): \(statistics.contextSwitches) switches, \(statistics.halts) halts, \(statistics.threads) threads left"
            )
        }
        print("threads: ok")
    }

    // MARK: - A thread on every core, joined from main

    static let greeted = Atomic<UInt64>(0)

    static func everyCore(_ cpus: Int) {
        let threads = (0..<cpus).map { core in
            Thread.spawn(on: core) {
                let me = Thread.current
                check(me.core == core && Kernel.currentCPU == core, "a thread runs on the core it was spawned on")
                print("thread \(me.id) on cpu \(Kernel.currentCPU): hello")
                Threads.greeted.bitwiseOr(1 << UInt64(core), ordering: .relaxed)
            }
        }
        for thread in threads { thread.join() }
        check(threads.allSatisfy { $0.hasEnded }, "every joined thread has ended")
        check(greeted.load(ordering: .relaxed) == (1 << UInt64(cpus)) - 1, "every core ran its thread")
        print("every core: \(cpus) threads ran and were joined from cpu 0")
    }

    // MARK: - Created and joined across cores

    nonisolated(unsafe) static var grandchildCore = -1

    static func crossCore(_ cpus: Int) {
        let last = cpus - 1
        // A thread on the last core spawns one on core 0 and joins it from there.
        let parent = Thread.spawn(on: last) {
            let child = Thread.spawn(on: 0) {
                Thread.sleep(milliseconds: 5)
                Threads.grandchildCore = Kernel.currentCPU
            }
            child.join()
            print(
                "cross-core: thread \(Thread.current.id) on cpu \(Kernel.currentCPU) spawned thread \(child.id) on cpu 0 and joined it"
            )
        }
        parent.join()
        check(grandchildCore == 0, "the thread spawned from another core ran on cpu 0")
        // Several joiners of one thread, on every core.
        let sleeper = Thread.spawn(on: last) { Thread.sleep(milliseconds: 20) }
        let joiners = (0..<cpus).map { core in Thread.spawn(on: core) { sleeper.join() } }
        sleeper.join()
        for joiner in joiners { joiner.join() }
        print("cross-core: \(cpus + 1) threads on \(cpus) cpus joined one thread on cpu \(last)")
    }

    // MARK: - Sleeps

    nonisolated(unsafe) static var wakeOrder: [Int] = []

    static func sleeps() {
        wakeOrder = []
        wakeOrder.reserveCapacity(3)
        let start = Clock.now
        // Spawned in the opposite order of their deadlines, all on this core.
        // The deadlines are fixed here, before any of them runs: a thread
        // that computed its own could start late enough (a host that
        // deschedules this vCPU for more than 10 ms) to sleep past the next.
        let threads = [30, 20, 10].map { milliseconds in
            let deadline = Clock.deadline(afterNanoseconds: UInt64(milliseconds) * 1_000_000)
            return Thread.spawn {
                Thread.sleep(untilDeadline: deadline)
                Threads.wakeOrder.append(milliseconds)
            }
        }
        for thread in threads { thread.join() }
        let elapsed = (Clock.now - start) / 1_000_000
        check(wakeOrder == [10, 20, 30], "sleeping threads wake in deadline order")
        check(elapsed >= 30, "the longest sleep lasted at least 30 ms")
        print("sleep: 3 threads slept 10, 20 and 30 ms and woke in that order (\(elapsed) ms in all)")
    }

    // MARK: - Producer and consumer on two cores

    static func producerConsumer(_ cpus: Int) {
        let items = max(Kernel.commandLine.integer("items") ?? 1000, 1)
        let ring = Ring(capacity: 16)
        let consumerCore = cpus > 1 ? 1 : 0
        nonisolated(unsafe) var received = 0
        nonisolated(unsafe) var sum = 0
        nonisolated(unsafe) var inOrder = true
        let consumer = Thread.spawn(on: consumerCore) {
            while received < items {
                guard let item = ring.pop() else {
                    Thread.park()
                    continue
                }
                if item != received { inOrder = false }
                received += 1
                sum += item
                ring.producer?.unpark()  // room again
            }
        }
        ring.consumer = consumer
        let producer = Thread.spawn(on: 0) {
            for item in 0..<items {
                while !ring.push(item) { Thread.park() }  // full: wait for the consumer
                consumer.unpark()
            }
        }
        // Before the producer runs: it is queued on this core, which runs it
        // only once main blocks (in the join below).
        ring.producer = producer
        producer.join()
        consumer.join()
        check(received == items && inOrder, "the consumer received every item, in order")
        check(sum == items * (items - 1) / 2, "the items add up")
        print("producer/consumer: \(items) items from cpu 0 to cpu \(consumerCore) in order, sum \(sum)")
    }

    // MARK: - Thread-local status

    static func statusIsPerThread(_ cpus: Int) {
        Thread.status = 7
        let other = Thread.spawn(on: cpus - 1) {
            check(Thread.status == 0, "a new thread starts with status 0")
            Thread.status = 42
            Thread.yield()
            check(Thread.status == 42, "a thread keeps its status across a yield")
        }
        Thread.yield()
        other.join()
        check(Thread.status == 7 && other.status == 42, "each thread has its own status")
        print("status: per thread (main 7, thread \(other.id) \(other.status))")
    }

    // MARK: - Stacks given back

    /// Two identical rounds of short-lived threads on every core: once the
    /// first has grown what it needed (heaps, page tables, CPU 0's idle
    /// context), the second must leave exactly as many free pages as it found.
    static func stacksAreGivenBack(_ cpus: Int) {
        func round() -> Int {
            let threads = (0..<4 * cpus).map { index in
                Thread.spawn(on: index % cpus) { Thread.sleep(milliseconds: UInt64(1 + index % 3)) }
            }
            for thread in threads { thread.join() }
            return PageAllocator.freePages
        }
        let first = round()
        let heapsBetween = Heap.capacity
        let second = round()
        let grown = (Heap.capacity - heapsBetween) / PageAllocator.pageSize
        check(second + grown == first, "the threads' stacks went back to the page allocator")
        print("stacks: 2 rounds of \(4 * cpus) threads, every stack given back (\(second) pages free after each)")
    }

    static func check(_ condition: Bool, _ what: StaticString) {
        if !condition {
            print("FAIL: \(what)")
            Kernel.exit(status: 1)
        }
    }
}

/// A bounded single-producer, single-consumer ring of integers between two
/// threads, possibly on different cores. The indices are atomics; the slots
/// are written before the index that publishes them.
final class Ring: @unchecked Sendable {
    private let slots: UnsafeMutablePointer<Int>
    private let capacity: Int
    private let head = Atomic<Int>(0)  // next to pop, written by the consumer
    private let tail = Atomic<Int>(0)  // next to push, written by the producer
    nonisolated(unsafe) var producer: Thread?
    nonisolated(unsafe) var consumer: Thread?

    init(capacity: Int) {
        self.capacity = capacity
        slots = .allocate(capacity: capacity)
    }

    deinit {
        slots.deallocate()
    }

    func push(_ value: Int) -> Bool {
        let tail = self.tail.load(ordering: .relaxed)
        guard tail - head.load(ordering: .acquiring) < capacity else { return false }
        slots[tail % capacity] = value
        self.tail.store(tail + 1, ordering: .releasing)
        return true
    }

    func pop() -> Int? {
        let head = self.head.load(ordering: .relaxed)
        guard head < tail.load(ordering: .acquiring) else { return nil }
        let value = slots[head % capacity]
        self.head.store(head + 1, ordering: .releasing)
        return value
    }
}
