import Synchronization

/// Bringing the application processors (every CPU but 0) online.
///
/// The VMM starts all vCPUs at once, already in long mode, so there is no
/// INIT-SIPI dance: the APs only have to wait until the bootstrap processor has
/// the heap and console ready, then report in.
enum ApplicationProcessors {
    /// How long the bootstrap processor waits for the APs to check in.
    static let checkInTimeoutMilliseconds: UInt64 = 1000

    /// On CPU 0: lets the APs go, then waits (at most about a second) until
    /// each has checked in, reporting any that did not.
    static func release(bootInfo: BootInfo) {
        released.store(true, ordering: .releasing)
        // Bits 1 ..< cpuCount; cpuCount is at most TORO_MAX_CPUS (32), so this cannot overflow.
        let expected = (UInt64(1) << UInt64(bootInfo.cpuCount)) - 2
        let deadline = Deadline(milliseconds: checkInTimeoutMilliseconds)
        while checkedIn.load(ordering: .acquiring) & expected != expected && !deadline.hasPassed {
            CPU.pause()
        }
        let arrived = checkedIn.load(ordering: .acquiring)
        for index in 1..<bootInfo.cpuCount where arrived & (UInt64(1) << UInt64(index)) == 0 {
            Console.print("cpu \(index) did not check in")
        }
    }

    /// On every other CPU: waits for the release, loads the IDT and starts
    /// its local APIC, says hello, checks in and enters its scheduler's idle
    /// loop, which halts with interrupts enabled, so that IPIs reach it. A
    /// halted vCPU costs the host nothing.
    static func run(index: Int) -> Never {
        while !released.load(ordering: .acquiring) {
            CPU.pause()
        }
        Interrupts.startOnThisCPU()  // CPU 0 built the IDT before the release
        let bootInfo = BootInfo.current
        Console.withLockedState { line in
            line.write("cpu ")
            line.write(decimal: UInt64(index))
            line.write(" online (APIC id ")
            line.write(decimal: UInt64(bootInfo.apicID(ofCPU: index)))
            line.write(")\n")
            line.flushIfLineEnded()
        }
        checkedIn.bitwiseOr(UInt64(1) << UInt64(index), ordering: .releasing)
        // From now on this boot stack is the CPU's idle context: run threads
        // as they arrive, serve cross-calls, halt while there is nothing to do.
        Scheduler.runApplicationProcessor(index)
    }
}

/// Set by CPU 0 once the APs may use the heap and the console.
private let released = Atomic<Bool>(false)
/// Bit `n` is set once CPU `n` is online.
private let checkedIn = Atomic<UInt64>(0)
