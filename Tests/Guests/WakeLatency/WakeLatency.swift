import Synchronization
import ToroKernel

/// Measures how long a sleeping thread takes to run again once woken: the
/// cost of halting that Toro's notes asked about and never measured.
///
/// Two measurements of `count=N` rounds each (default 1000), on 2 CPUs:
///
/// - `ipi`: a thread on CPU 1 parks; once CPU 1 is idle (the thread is parked
///   and, with `idle=halt`, the core halted) and `gap=MICROSECONDS` more have
///   passed (default 1000), `main` on CPU 0 reads the TSC and unparks it,
///   which queues it on CPU 1 and sends the wake-up IPI. The thread reads the
///   TSC as soon as `park()` returns. With `idle=poll`, CPU 1 loops instead of
///   halting and no IPI is sent: the wake-up is found by the loop.
/// - `timer`: a thread on CPU 1 sleeps until a TSC deadline `gap` ahead
///   (`Thread.sleep(untilDeadline:)`) and reads the TSC when it runs again;
///   the latency is that reading minus the deadline. CPU 1 has nothing else
///   to do meanwhile.
///
/// `measure=ipi` or `measure=timer` runs only one of them (default both).
/// Both read the TSC, which KVM keeps the same on every vCPU. Each prints one
/// line, `latency ipi n=N p50_ns=… p99_ns=… max_ns=…` and the same for
/// `timer`, then the VM exits 0. The time KVM's halt polling
/// (`toro-vmm --halt-poll-ns`) saves shows when `gap` is shorter than the
/// host's polling window: the vCPU is then still polling when the wake-up comes.
@main
struct WakeLatency {
    /// Set by CPU 1's thread after each arrival: the round it arrived for.
    static let arrivedRound = Atomic<Int>(0)

    static func main() {
        let line = Kernel.commandLine
        let count = min(max(line.integer("count") ?? 1000, 1), 100_000)  // one sample kept per round
        let gapMicroseconds = UInt64(min(line.integer("gap") ?? 1000, 60_000_000))  // bounded: it becomes nanoseconds
        guard BootInfo.current.cpuCount >= 2 else {
            print("wake latency: needs at least 2 cpus (--cpus 2)")
            Kernel.exit(status: 2)
        }
        print(
            "wake latency: \(count) rounds, gap \(gapMicroseconds) us, idle=\(IdlePolicy.isHalting ? "halt" : "poll"), TSC \(Clock.tscKHz) kHz"
        )
        let measure = line.value("measure") ?? "both"
        let gap = Clock.ticks(nanoseconds: gapMicroseconds * 1000)
        if measure != "timer" { report("ipi", ipi(rounds: count, gap: gap)) }
        if measure != "ipi" { report("timer", timer(rounds: count, gap: gap)) }
    }

    // MARK: - Cross-core wake-up

    static func ipi(rounds: Int, gap: UInt64) -> [UInt64] {
        let sent = UnsafeMutablePointer<UInt64>.allocate(capacity: rounds)
        let arrived = UnsafeMutablePointer<UInt64>.allocate(capacity: rounds)
        defer {
            sent.deallocate()
            arrived.deallocate()
        }
        arrivedRound.store(0, ordering: .relaxed)
        let sleeper = Thread.spawn(on: 1) {
            for round in 0..<rounds {
                Thread.park()
                arrived[round] = CPU.timestamp()
                WakeLatency.arrivedRound.store(round + 1, ordering: .releasing)
            }
        }
        for round in 0..<rounds {
            waitUntilIdle(sleeper, gap: gap)
            sent[round] = CPU.timestamp()
            sleeper.unpark()
            while arrivedRound.load(ordering: .acquiring) <= round {
                SpinWait.hint()
            }
        }
        sleeper.join()
        return (0..<rounds).map { arrived[$0] &- sent[$0] }
    }

    /// Waits until `thread` (on CPU 1) is parked, CPU 1 halted (with
    /// `idle=halt`), and `gap` ticks have passed since this was seen.
    static func waitUntilIdle(_ thread: Thread, gap: UInt64) {
        while thread.state != .parked || (IdlePolicy.isHalting && !Scheduler.isHalted(1)) {
            SpinWait.hint()
        }
        let until = CPU.timestamp() &+ gap
        while CPU.timestamp() < until {
            SpinWait.hint()
        }
    }

    // MARK: - Timer deadline

    static func timer(rounds: Int, gap: UInt64) -> [UInt64] {
        let late = UnsafeMutablePointer<UInt64>.allocate(capacity: rounds)
        defer { late.deallocate() }
        let sleeper = Thread.spawn(on: 1) {
            for round in 0..<rounds {
                let deadline = CPU.timestamp() &+ gap
                Thread.sleep(untilDeadline: deadline)
                late[round] = CPU.timestamp() &- deadline
            }
        }
        sleeper.join()
        return (0..<rounds).map { late[$0] }
    }

    // MARK: - Report

    /// `latency NAME n=N p50_ns=… p99_ns=… max_ns=…`, from latencies in TSC ticks.
    static func report(_ name: StaticString, _ ticks: [UInt64]) {
        let sorted = ticks.sorted()
        let n = sorted.count
        let p50 = Clock.nanoseconds(ticks: sorted[n / 2])
        let p99 = Clock.nanoseconds(ticks: sorted[min(n - 1, n * 99 / 100)])
        let max = Clock.nanoseconds(ticks: sorted[n - 1])
        print("latency \(name) n=\(n) p50_ns=\(p50) p99_ns=\(p99) max_ns=\(max)")
    }
}
