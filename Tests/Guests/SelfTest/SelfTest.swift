import KernelSupport
import Synchronization
import ToroKernel

/// The kernel core's self-test: per-core state, memory across cores, IPIs,
/// timers and the clock, on every CPU. Prints `ok`/`FAIL` per check and a
/// closing `N passed, N failed`; exits 0 only if nothing failed.
@main
struct SelfTest {
    nonisolated(unsafe) static var passed = 0
    nonisolated(unsafe) static var failed = 0

    static func check(_ condition: Bool, _ name: String) {
        if condition {
            passed += 1
            print("ok: \(name)")
        } else {
            failed += 1
            print("FAIL: \(name)")
        }
    }

    static func main() {
        let cpus = BootInfo.current.cpuCount
        perCoreState(cpus)
        memoryAcrossCores(cpus)
        interProcessorInterrupts(cpus)
        timers(cpus)
        clock(cpus)
        print("\(passed) passed, \(failed) failed")
        Kernel.exit(status: failed == 0 ? 0 : 1)
    }

    // MARK: - Per-core state

    nonisolated(unsafe) static var reportedCPU = -1
    nonisolated(unsafe) static var reportedBlock: UInt = 0

    static func perCoreState(_ cpus: Int) {
        var blocks: [UInt] = []
        for cpu in 0..<cpus {
            let ran = CrossCall.run(on: cpu) { _ in
                SelfTest.reportedCPU = Kernel.currentCPU
                SelfTest.reportedBlock = Kernel.currentCPUBlockAddress
            }
            check(ran && reportedCPU == cpu, "cpu \(cpu) knows its index")
            check(reportedBlock % 64 == 0, "cpu \(cpu)'s per-core block is cache-line aligned")
            blocks.append(reportedBlock)
        }
        check(Set(blocks).count == cpus, "every cpu has its own per-core block")
    }

    // MARK: - Memory

    static let blockCount = 64
    nonisolated(unsafe) static var handedOver: [UnsafeMutableRawPointer] = []

    static func memoryAcrossCores(_ cpus: Int) {
        guard cpus > 1 else {
            let before = Heap.statistics.bytesInUse
            let block = UnsafeMutableRawPointer.allocate(byteCount: 1000, alignment: 16)
            block.deallocate()
            check(Heap.statistics.bytesInUse == before, "a freed block returns to the heap")
            return
        }
        for cpu in 1..<cpus {
            // Allocated here on cpu 0, freed there.
            handedOver = []
            handedOver.reserveCapacity(blockCount)
            let ownBefore = Heap.statistics(of: 0)
            for n in 0..<blockCount {
                let block = UnsafeMutableRawPointer.allocate(byteCount: 48 + n * 8, alignment: 16)
                block.storeBytes(of: UInt64(n), as: UInt64.self)
                handedOver.append(block)
            }
            let freed = CrossCall.run(on: cpu) { _ in
                for block in SelfTest.handedOver { block.deallocate() }
            }
            Heap.reclaimRemoteFrees()
            let ownAfter = Heap.statistics(of: 0)
            check(freed, "cpu \(cpu) freed blocks allocated on cpu 0")
            check(ownAfter.remoteFreesReceived - ownBefore.remoteFreesReceived == blockCount,
                  "cpu 0 got back all \(blockCount) blocks cpu \(cpu) freed")

            // Allocated there, freed here.
            let theirsBefore = Heap.statistics(of: cpu)
            handedOver = []
            handedOver.reserveCapacity(blockCount)
            let allocated = CrossCall.run(on: cpu) { _ in
                for n in 0..<SelfTest.blockCount {
                    SelfTest.handedOver.append(UnsafeMutableRawPointer.allocate(byteCount: 32 + n, alignment: 16))
                }
            }
            for block in handedOver { block.deallocate() }
            handedOver = []
            CrossCall.run(on: cpu) { _ in Heap.reclaimRemoteFrees() }
            let theirsAfter = Heap.statistics(of: cpu)
            check(allocated && theirsAfter.remoteFreesReceived - theirsBefore.remoteFreesReceived == blockCount,
                  "cpu \(cpu) got back all \(blockCount) blocks cpu 0 freed")
            check(theirsAfter.bytesInUse <= theirsBefore.bytesInUse + 64 * 8,
                  "cpu \(cpu)'s heap is back to its baseline")
        }
    }

    // MARK: - IPIs

    static let testVector: UInt8 = 0x50
    static let arrived = Atomic<UInt64>(0)

    static func interProcessorInterrupts(_ cpus: Int) {
        Interrupts.register(vector: testVector) { _ in
            SelfTest.arrived.bitwiseOr(1 << UInt64(Kernel.currentCPU), ordering: .relaxed)
        }
        IPI.send(vector: testVector, to: 0)
        Interrupts.enableAndHalt()
        check(arrived.load(ordering: .relaxed) & 1 == 1, "an IPI to cpu 0 itself arrives")
        for cpu in 1..<max(cpus, 1) {
            IPI.send(vector: testVector, to: cpu)
            let deadline = Clock.deadline(afterNanoseconds: 1_000_000_000)
            while arrived.load(ordering: .relaxed) & (1 << UInt64(cpu)) == 0 && CPU.timestamp() < deadline {
                CPU.pause()
            }
            check(arrived.load(ordering: .relaxed) & (1 << UInt64(cpu)) != 0, "an IPI from cpu 0 reaches cpu \(cpu)")
        }
        Interrupts.unregister(vector: testVector)
    }

    // MARK: - Timers

    nonisolated(unsafe) static var slept: UInt64 = 0
    nonisolated(unsafe) static var timerInterrupts = 0
    nonisolated(unsafe) static var order: [UInt] = []
    static let sleepNanoseconds: UInt64 = 20_000_000

    static func timers(_ cpus: Int) {
        for cpu in 0..<cpus {
            let ran = CrossCall.run(on: cpu) { _ in
                let interruptsBefore = Timers.interruptCount
                let start = Clock.now
                Timers.sleep(nanoseconds: SelfTest.sleepNanoseconds)
                SelfTest.slept = Clock.now - start
                SelfTest.timerInterrupts = Timers.interruptCount - interruptsBefore
            }
            check(ran && slept >= sleepNanoseconds, "cpu \(cpu) sleeps at least 20 ms (slept \(slept / 1000) us)")
            check(slept < 20 * sleepNanoseconds, "cpu \(cpu) wakes within 400 ms of its deadline")
            check(timerInterrupts == 1, "cpu \(cpu) took one timer interrupt for one sleep (took \(timerInterrupts))")
        }
        // Deadline order, whatever the order of arming; a cancelled timer never fires.
        order = []
        order.reserveCapacity(4)
        // One base for every deadline: arming takes time of its own (much of it
        // when every instruction is emulated), so the base is well ahead.
        let base = CPU.timestamp() + Clock.ticks(nanoseconds: 50_000_000)
        let millisecond = Clock.ticks(nanoseconds: 1_000_000)
        let record: @convention(c) (UInt) -> Void = { tag in SelfTest.order.append(tag) }
        Timers.add(deadline: base + 3 * millisecond, .call(record, 3))
        Timers.add(deadline: base + millisecond, .call(record, 1))
        let cancelled = Timers.add(deadline: base + 2 * millisecond, .call(record, 99))
        Timers.add(deadline: base + 2 * millisecond, .call(record, 2))
        check(Timers.cancel(cancelled), "a pending timer can be cancelled")
        Timers.sleep(untilDeadline: base + 4 * millisecond)
        let giveUp = Clock.now + 1_000_000_000
        while order.count < 3 && Clock.now < giveUp {
            Timers.sleep(nanoseconds: 1_000_000)
        }
        check(order == [1, 2, 3], "timers fire in deadline order (fired: \(order.map { String($0) }.joined(separator: " ")))")
        check(Timers.pendingCount == 0, "no timer is left pending, so the core's timer is off")
    }

    // MARK: - Clock

    nonisolated(unsafe) static var remoteNow: UInt64 = 0
    nonisolated(unsafe) static var monotonic = true

    static func clock(_ cpus: Int) {
        for cpu in 0..<cpus {
            let before = Clock.now
            let ran = CrossCall.run(on: cpu) { _ in
                var last = Clock.now
                SelfTest.monotonic = true
                for _ in 0..<200 {
                    let now = Clock.now
                    if now < last { SelfTest.monotonic = false }
                    last = now
                }
                SelfTest.remoteNow = Clock.now
            }
            let after = Clock.now
            check(ran && monotonic, "the clock never goes back on cpu \(cpu)")
            check(before <= remoteNow && remoteNow <= after, "cpu \(cpu)'s clock agrees with cpu 0's")
        }
        check(Clock.tscKHz > 0, "the clock has a TSC rate (\(Clock.tscKHz) kHz)")
    }
}
