import KernelSupport
import Synchronization
import ToroKernel

/// A guest that exercises the memory subsystem, for the host tests.
///
/// `mode=` on the kernel command line selects what:
/// - `check` (the default; needs `--cpus 2`): CPU 0 and CPU 1 allocate blocks
///   and hand them to each other to free, concurrently, many times; then each
///   CPU's heap must be back at its baseline with every block returned through
///   its remote-free list. Then guarded stacks (one allocated on each CPU) are
///   written end to end, their guards recognised, and freed; the page
///   allocator must end where it started. Prints `memory check: ok`, exits 0.
/// - `high` (with `--memory` over 4 GiB): takes all RAM below 4 GiB, then a
///   stack must come from above 4 GiB (its 2 MiB page split there) and work.
/// - `churn` (`count=N`, default 1000): N allocate-free pairs on CPU 0, for
///   measuring the heap's fast path in emulated instructions.
/// - `oom`: one allocation of 1 TiB; the kernel must panic saying so.
/// - `oom-gradual`: 1 MiB allocations, kept, until the heap cannot grow.
/// - `double-free`, `remote-double-free`: a block freed twice, on CPU 0, or
///   on CPU 1 after CPU 1 freed it once already (needs `--cpus 2`).
/// - `stack-double-free`: a stack freed twice.
/// - `stack-overflow`: a write just below an allocated stack (its guard page).
/// - `remote-stack-overflow`: the same on CPU 1, for a stack CPU 0 allocated
///   and CPU 1 adopted (needs `--cpus 2`).
@main
struct MemoryCheck {
    static let rounds = 600
    static let workVector: UInt8 = 0x41

    static func main() {
        let mode = KernelCommandLine(BootInfo.current.commandLine).value("mode") ?? "check"
        print("memory check: \(mode)")
        Interrupts.register(vector: workVector) { _ in MemoryCheck.work() }
        switch mode {
        case "check":
            check()
            return
        case "high":
            highMemory()
            return
        case "churn":
            // For measuring: `count=N` allocate-free pairs of 64 bytes on CPU 0.
            let count = Int(KernelCommandLine(BootInfo.current.commandLine).value("count") ?? "1000") ?? 1000
            for _ in 0..<count {
                let block = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 16)
                kernel_escape(block)
                block.deallocate()
            }
            return
        case "oom":
            let huge = UnsafeMutableRawPointer.allocate(byteCount: 1 << 40, alignment: 16)
            print("memory check: allocated 1 TiB at \(UInt(bitPattern: huge))?")
        case "oom-gradual":
            var kept = 0
            while true {
                let block = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
                kernel_escape(block)
                kept += 1
                if kept % 16 == 0 { print("memory check: \(kept) MiB") }
            }
        case "double-free":
            let block = UnsafeMutableRawPointer.allocate(byteCount: 100, alignment: 16)
            block.deallocate()
            block.deallocate()
        case "remote-double-free":
            shared.store(UInt(bitPattern: UnsafeMutableRawPointer.allocate(byteCount: 100, alignment: 16)), ordering: .releasing)
            runOnCPU1(.freeSharedTwice)
        case "stack-double-free":
            let stack = Stacks.allocate(pages: 2)
            Stacks.free(base: stack.base, top: stack.top)
            Stacks.free(base: stack.base, top: stack.top)
        case "stack-overflow":
            let stack = Stacks.allocate(pages: 2)
            UnsafeMutablePointer<UInt64>(bitPattern: stack.base - 8)!.pointee = 1
        case "remote-stack-overflow":
            let stack = Stacks.allocate(pages: 2)
            shared.store(stack.base, ordering: .releasing)
            runOnCPU1(.overflowSharedStack)
        default:
            print("memory check: unknown mode \(mode)")
        }
        print("memory check: still running, which is a failure")
        Kernel.exit(status: 1)
    }

    // MARK: - Cross-CPU frees

    static func check() {
        guard BootInfo.current.cpuCount >= 2 else { fail("needs --cpus 2") }
        // The rings the CPUs pass blocks through, allocated before the baselines.
        toCPU1.start()
        toCPU0.start()
        Heap.reclaimRemoteFrees()
        let baseline0 = Heap.statistics(of: 0)
        let baseline1 = Heap.statistics(of: 1)  // CPU 1 is idle: exact
        let pagesAtStart = PageAllocator.freePages
        let tablePagesAtStart = Stacks.pageTablePages
        print("memory check: \(pagesAtStart) of \(PageAllocator.totalPages) pages free")

        runOnCPU1(.exchange, wait: false)
        exchange(cpu: 0, sending: toCPU1, receiving: toCPU0)
        waitForCPU1()
        runOnCPU1(.reclaim)
        Heap.reclaimRemoteFrees()

        let after0 = Heap.statistics(of: 0)
        let after1 = Heap.statistics(of: 1)
        report("cpu 0", after0)
        report("cpu 1", after1)
        expect(
            after0.bytesInUse == baseline0.bytesInUse && after0.allocations == baseline0.allocations,
            "cpu 0's heap is back at its baseline")
        expect(
            after1.bytesInUse == baseline1.bytesInUse && after1.allocations == baseline1.allocations,
            "cpu 1's heap is back at its baseline")
        expect(after0.remoteFreesReceived - baseline0.remoteFreesReceived == rounds, "cpu 0 got every block back from cpu 1")
        expect(after1.remoteFreesReceived - baseline1.remoteFreesReceived == rounds, "cpu 1 got every block back from cpu 0")
        expect(after1.capacity > 0, "cpu 1 grew its own heap")

        checkStacks()
        let heapGrowth = (after1.capacity - baseline1.capacity + after0.capacity - baseline0.capacity) / PageAllocator.pageSize
        let tableGrowth = Stacks.pageTablePages - tablePagesAtStart
        expect(PageAllocator.freePages == pagesAtStart - heapGrowth - tableGrowth, "the page allocator lost no pages")
        print("memory check: ok")
    }

    /// Allocates `rounds` blocks of varied sizes and alignments, stamps each
    /// and sends it to the other CPU, freeing whatever that CPU sends meanwhile.
    static func exchange(cpu: Int, sending outgoing: Ring, receiving incoming: Ring) {
        var received = 0
        for round in 0..<rounds {
            let size = (round &* 2_654_435_761) % 3000 + 1
            let alignment = round % 7 == 0 ? 4096 : round % 3 == 0 ? 64 : 16
            let block = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: alignment)
            block.storeBytes(of: UInt64(cpu << 32 | round), as: UInt64.self)
            while !outgoing.push(UInt(bitPattern: block)) {
                received += drain(incoming, from: 1 - cpu)
            }
            received += drain(incoming, from: 1 - cpu)
        }
        while received < rounds {
            received += drain(incoming, from: 1 - cpu)
        }
    }

    /// Frees every block waiting in `ring`, checking its stamp; returns how many.
    static func drain(_ ring: Ring, from sender: Int) -> Int {
        var count = 0
        while let address = ring.pop() {
            let block = UnsafeMutableRawPointer(bitPattern: address)!
            let stamp = block.load(as: UInt64.self)
            if stamp >> 32 != UInt64(sender) { fail("a block from cpu \(sender) carries stamp \(stamp)") }
            block.deallocate()
            count += 1
        }
        return count
    }

    // MARK: - Stacks

    static func checkStacks() {
        let pagesBefore = PageAllocator.freePages + Stacks.pageTablePages
        let stack = Stacks.allocate(pages: 4)
        expect(stack.top - stack.base == 4 * 4096 && stack.base % 4096 == 0, "a stack is 4 pages")
        fill(stack)
        expect(Stacks.guardOwner(of: stack.base - 1) == 0, "the page below the stack is its guard, owned by cpu 0")
        expect(
            Stacks.guardOwner(of: stack.base) == nil && Stacks.guardOwner(of: stack.top - 1) == nil,
            "the stack itself is no guard")
        expect(Stacks.guardedStack(at: stack.base - 4096)?.top == stack.top, "the guard records the stack's size")

        // A stack CPU 1 allocates, used on CPU 0.
        runOnCPU1(.allocateStack)
        let remoteBase = shared.load(ordering: .acquiring)
        expect(Stacks.guardOwner(of: remoteBase - 8) == 1, "cpu 1's stack's guard names cpu 1")
        Stacks.adopt(base: remoteBase)
        fill((remoteBase, remoteBase + 8 * 4096))
        Stacks.free(base: remoteBase, top: remoteBase + 8 * 4096)
        Stacks.free(base: stack.base, top: stack.top)
        expect(Stacks.guardOwner(of: stack.base - 1) == nil, "a freed stack's guard is mapped again")
        UnsafeMutablePointer<UInt64>(bitPattern: stack.base - 8)!.pointee = 7  // and does not fault
        expect(PageAllocator.freePages + Stacks.pageTablePages == pagesBefore, "freed stacks return their pages")
    }

    /// Writes and reads back one word per 64 bytes of `stack`.
    static func fill(_ stack: (base: UInt, top: UInt)) {
        var address = stack.base
        while address < stack.top {
            UnsafeMutablePointer<UInt>(bitPattern: address)!.pointee = address ^ 0x5A5A
            address += 64
        }
        address = stack.base
        while address < stack.top {
            if UnsafeMutablePointer<UInt>(bitPattern: address)!.pointee != address ^ 0x5A5A { fail("stack memory at \(address)") }
            address += 64
        }
    }

    // MARK: - Memory above 4 GiB

    static func highMemory() {
        let fourGiB: UInt = 1 << 32
        var held: [(UInt, Int)] = []
        held.reserveCapacity(64)
        let pagesAtStart = PageAllocator.freePages + Stacks.pageTablePages
        // Take every free run, then give back those above 4 GiB.
        while true {
            let pages = PageAllocator.largestFreeRun
            guard pages > 0, let run = PageAllocator.allocate(pages: pages) else { break }
            held.append((run, pages))
        }
        var below = 0
        for (run, pages) in held {
            if run >= fourGiB { PageAllocator.free(run, pages: pages) } else { below += 1 }
        }
        let stack = Stacks.allocate(pages: 4)
        print("memory check: stack at \(stack.base), \(below) runs held below 4 GiB")
        expect(stack.base > fourGiB, "the stack comes from above 4 GiB")
        fill(stack)
        expect(Stacks.guardOwner(of: stack.base - 1) == 0, "its guard is recognised")
        Stacks.free(base: stack.base, top: stack.top)
        for (run, pages) in held where run < fourGiB { PageAllocator.free(run, pages: pages) }
        expect(PageAllocator.freePages + Stacks.pageTablePages == pagesAtStart, "every page came back")
        print("memory check: ok")
    }

    // MARK: - Work on CPU 1

    enum Command: Int {
        case idle, exchange, reclaim, allocateStack, freeSharedTwice, overflowSharedStack
    }

    /// CPU 1's interrupt handler: does what `command` says, then reports done.
    static func work() {
        switch Command(rawValue: command.load(ordering: .acquiring)) ?? .idle {
        case .idle: break
        case .exchange: exchange(cpu: 1, sending: toCPU0, receiving: toCPU1)
        case .reclaim: Heap.reclaimRemoteFrees()
        case .allocateStack:
            let stack = Stacks.allocate(pages: 8)
            shared.store(stack.base, ordering: .releasing)
        case .freeSharedTwice:
            let block = UnsafeMutableRawPointer(bitPattern: shared.load(ordering: .acquiring))!
            block.deallocate()
            block.deallocate()
        case .overflowSharedStack:
            let base = shared.load(ordering: .acquiring)
            Stacks.adopt(base: base)
            UnsafeMutablePointer<UInt64>(bitPattern: base - 8)!.pointee = 1
        }
        finished.store(true, ordering: .releasing)
    }

    static func runOnCPU1(_ work: Command, wait: Bool = true) {
        finished.store(false, ordering: .relaxed)
        command.store(work.rawValue, ordering: .releasing)
        IPI.send(vector: workVector, to: 1)
        if wait { waitForCPU1() }
    }

    /// Waits (at most 20 s) for CPU 1 to finish its command.
    static func waitForCPU1() {
        let start = CPU.timestamp()
        let limit = 20 * 1000 * max(BootInfo.current.tscKHz, 1_000_000)
        while !finished.load(ordering: .acquiring) {
            if CPU.timestamp() &- start > limit { fail("cpu 1 did not finish") }
            CPU.pause()
        }
    }

    // MARK: - Reporting

    static func report(_ name: String, _ statistics: HeapStatistics) {
        let blocks = "\(statistics.bytesInUse) bytes in \(statistics.allocations) blocks"
        let received = "\(statistics.remoteFreesReceived) remote frees received"
        print("memory check: \(name): \(blocks), capacity \(statistics.capacity), \(received)")
    }

    static func expect(_ condition: Bool, _ what: StaticString) {
        if !condition { fail("expected: \(what)") }
    }

    static func fail(_ message: String) -> Never {
        print("memory check: FAILED: \(message)")
        Kernel.exit(status: 1)
    }
}

/// A single-producer, single-consumer ring of addresses. `slots` is set once,
/// before either CPU uses the ring; the indices are atomics.
final class Ring: @unchecked Sendable {
    let capacity = 32
    private let head = Atomic<Int>(0)  // next to pop, written by the consumer
    private let tail = Atomic<Int>(0)  // next to push, written by the producer
    private var slots: UnsafeMutablePointer<UInt>?

    func start() {
        slots = .allocate(capacity: capacity)
    }

    func push(_ value: UInt) -> Bool {
        let tail = self.tail.load(ordering: .relaxed)
        guard tail - head.load(ordering: .acquiring) < capacity else { return false }
        slots![tail % capacity] = value
        self.tail.store(tail + 1, ordering: .releasing)
        return true
    }

    func pop() -> UInt? {
        let head = self.head.load(ordering: .relaxed)
        guard head < tail.load(ordering: .acquiring) else { return nil }
        let value = slots![head % capacity]
        self.head.store(head + 1, ordering: .releasing)
        return value
    }
}

let toCPU1 = Ring()
let toCPU0 = Ring()
let command = Atomic<Int>(0)
let finished = Atomic<Bool>(false)
let shared = Atomic<UInt>(0)
