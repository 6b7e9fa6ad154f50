import Synchronization
import ToroKernel

/// The four idle cases of Toro's notes, one after the other, `phase=SECONDS`
/// each (default 3), so that one run under `toro-vmm --stats-interval 1`
/// shows all four in the live statistics. Needs at least 2 CPUs.
///
/// CPU 0 runs `main`, which conducts: it is asleep (or blocked in a join)
/// for every phase, so CPU 0 is in case 2 throughout, and the cases show on
/// the other CPUs:
///
/// | phase | CPU 0 | every other CPU |
/// | --- | --- | --- |
/// | 1 `spinlock` | main holds a `SpinLock` and sleeps | a thread spins on the lock (case 1: `pause` each turn, or not with `spin=nopause`) |
/// | 2 `no ready thread` | main sleeps | a thread sleeps for the phase (case 2) |
/// | 3 `no thread` | main sleeps | no thread at all (case 3) |
/// | 4 `polling threads` | main sleeps | two threads poll a flag that stays clear, calling `Thread.pollFoundNothing()` (case 4) |
///
/// With `idle=halt` (the default) a CPU in cases 2-4 halts, and only the
/// spinning CPUs of phase 1 burn their host CPU; with `idle=poll` every CPU
/// loops through every phase. Each phase starts with its marker line
/// (`phase 1: spinlock`, ...) and ends with a line of the halts each CPU
/// made in it, by case; the run ends with `phases done` and exit status 0.
@main
struct IdleCases {
    static let lock = SpinLock(0)
    static let stop = Atomic<Bool>(false)
    static let pollsFoundNothing = Atomic<Int>(0)

    static func main() {
        let cpus = BootInfo.current.cpuCount
        let seconds = UInt64(min(max(Kernel.commandLine.integer("phase") ?? 3, 1), 86_400))  // bounded: it becomes nanoseconds
        let milliseconds = seconds * 1000
        guard cpus >= 2 else {
            print("idle cases: needs at least 2 cpus (--cpus 2)")
            Kernel.exit(status: 2)
        }
        let others = Array(1..<cpus)
        print(
            "idle cases: \(cpus) cpus, \(seconds) s per phase, idle=\(IdlePolicy.isHalting ? "halt" : "poll"), spin=\(SpinWait.pauses ? "pause" : "nopause")"
        )

        phase(1, "spinlock", cpus) {
            lock.withLock { holds in
                let spinners = others.map { core in
                    Thread.spawn(on: core) { IdleCases.lock.withLock { $0 += 1 } }
                }
                holds += 1
                Thread.sleep(milliseconds: milliseconds)
                return spinners
            }.forEach { $0.join() }
        }

        phase(2, "no ready thread", cpus) {
            let sleepers = others.map { core in
                Thread.spawn(on: core) { Thread.sleep(milliseconds: milliseconds) }
            }
            let haltsWithNoThread = others.map { Scheduler.statistics(of: $0).haltsWithNoThread }
            Thread.sleep(milliseconds: milliseconds)
            for sleeper in sleepers { sleeper.join() }
            // A joined thread's core goes on to halt with no thread at all
            // (case 3) a moment after the join returns: the phase ends once
            // it has, so that halt is counted here and not in phase 3.
            guard IdlePolicy.isHalting else { return }
            for (core, before) in zip(others, haltsWithNoThread) {
                var turns = 0
                while Scheduler.statistics(of: core).haltsWithNoThread == before && turns < 1000 {
                    Thread.sleep(milliseconds: 1)
                    turns += 1
                }
            }
        }

        phase(3, "no thread", cpus) {
            Thread.sleep(milliseconds: milliseconds)
        }

        phase(4, "polling threads", cpus) {
            stop.store(false, ordering: .relaxed)
            let pollers = others.flatMap { core in
                (0..<2).map { _ in
                    Thread.spawn(on: core) {
                        while !IdleCases.stop.load(ordering: .acquiring) {
                            IdleCases.pollsFoundNothing.wrappingAdd(1, ordering: .relaxed)
                            Thread.pollFoundNothing()
                        }
                        Thread.pollFoundWork()
                    }
                }
            }
            Thread.sleep(milliseconds: milliseconds)
            stop.store(true, ordering: .releasing)
            for core in others { Thread.workArrived(on: core) }
            for poller in pollers { poller.join() }
        }
        print("phases done")
    }

    /// Prints the marker, runs `body`, then the halts each CPU made meanwhile, by case.
    static func phase(_ number: Int, _ name: StaticString, _ cpus: Int, _ body: () -> Void) {
        print("phase \(number): \(name)")
        let before = (0..<cpus).map { Scheduler.statistics(of: $0) }
        let polls = pollsFoundNothing.load(ordering: .relaxed)
        let start = Clock.now
        body()
        let end = Clock.now
        var line =
            "phase \(number) took \(end / 1_000_000 - start / 1_000_000) ms (from \(start / 1_000_000) ms); halts by case 2/3/4:"
        for core in 0..<cpus {
            let after = Scheduler.statistics(of: core)
            line += " cpu \(core) \(after.haltsWithNoReadyThread - before[core].haltsWithNoReadyThread)"
            line += "/\(after.haltsWithNoThread - before[core].haltsWithNoThread)"
            line += "/\(after.haltsWithOnlyPollers - before[core].haltsWithOnlyPollers)"
        }
        if number == 4 {
            line += "; \(pollsFoundNothing.load(ordering: .relaxed) - polls) empty polls"
        }
        print(line)
    }
}
