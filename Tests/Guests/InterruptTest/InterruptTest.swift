import KernelSupport
import Synchronization
import ToroKernel

/// Exercises the kernel's interrupt machinery on every CPU and prints one
/// line per check; the host tests read them. Exits 0 when everything held,
/// 1 at the first failure (with a `FAIL:` line).
///
/// - interrupts arrive only in the kernel's windows: an IPI to this CPU is
///   taken once it halts with `enableAndHalt`, not while it spins, and
///   neither `enableAndHalt` nor `Interrupts.window()` leaves interrupts on;
/// - an IPI to every other CPU, each answering by setting its bit;
/// - `IPI.wake` to every other CPU (the host checks that they woke up);
/// - the local APIC timer on CPU 0, in TSC-deadline mode where the CPU has it,
///   then on every other CPU (armed from an IPI handler there), then disarmed
///   before it fires, then in one-shot count mode;
/// - routing, masking and unmasking an IOAPIC line.
@main
struct InterruptTest {
    static let answerVector: UInt8 = 0x40
    static let armVector: UInt8 = 0x41
    static let deviceVector: UInt8 = 0x42

    static func main() {
        let cpus = BootInfo.current.cpuCount
        Interrupts.register(vector: answerVector) { _ in
            answered.bitwiseOr(1 << UInt64(InterruptTest.currentCPU), ordering: .relaxed)
        }
        selfIPIOnlyInWindows(after: "boot")
        print("ipi: self ok")
        selfIPIOnlyInWindows(after: "enableAndHalt")
        Interrupts.window()
        selfIPIOnlyInWindows(after: "Interrupts.window()")
        print("interrupts: taken only in windows")

        let others = (UInt64(1) << UInt64(cpus)) - 2
        for cpu in 1..<max(cpus, 1) {
            IPI.send(vector: answerVector, to: cpu)
        }
        waitFor("every other CPU to answer its IPI") { answered.load(ordering: .relaxed) & others == others }
        print("ipi: \(cpus - 1) of \(cpus - 1) other cpus answered")
        for cpu in 1..<max(cpus, 1) {
            IPI.wake(cpu: cpu)
        }

        LocalAPIC.setTimerHandler { _ in
            if CPU.timestamp() < deadline.load(ordering: .relaxed) {
                early.add(1, ordering: .relaxed)
            }
            fired.bitwiseOr(1 << UInt64(InterruptTest.currentCPU), ordering: .relaxed)
        }
        timeTimer(mode: LocalAPIC.hasTSCDeadline ? "tsc-deadline" : "one-shot")

        if cpus > 1 {
            fired.store(0, ordering: .relaxed)
            Interrupts.register(vector: armVector) { _ in
                LocalAPIC.armTimer(deadlineTSC: CPU.timestamp() + InterruptTest.ticks(microseconds: 500))
            }
            deadline.store(0, ordering: .relaxed)
            for cpu in 1..<cpus {
                IPI.send(vector: armVector, to: cpu)
            }
            waitFor("every other CPU's timer to fire") { fired.load(ordering: .relaxed) & others == others }
            print("timer: fired on \(cpus - 1) of \(cpus - 1) other cpus")
        }

        fired.store(0, ordering: .relaxed)
        LocalAPIC.armTimer(deadlineTSC: CPU.timestamp() + ticks(microseconds: 200))
        LocalAPIC.disarmTimer()
        let quiet = CPU.timestamp() + ticks(microseconds: 2000)
        while CPU.timestamp() < quiet { Interrupts.window() }
        check(fired.load(ordering: .relaxed) == 0, "a disarmed timer fired")
        print("timer: disarmed timer stayed silent")

        LocalAPIC.forceOneShotTimer()
        check(LocalAPIC.timerMode == .oneShot, "one-shot mode was not selected")
        timeTimer(mode: "one-shot")
        check(early.load(ordering: .relaxed) == 0, "a timer fired before its deadline")

        checkIOAPIC(cpus: cpus)
        print("interrupt test: ok")
    }

    /// Sends this CPU an IPI, spins for 1 ms and checks it was not taken
    /// (interrupts are disabled outside the windows, and `previous`, which ran
    /// just before, left them so), then takes it in `enableAndHalt`.
    static func selfIPIOnlyInWindows(after previous: StaticString) {
        answered.store(0, ordering: .relaxed)
        IPI.send(vector: answerVector, to: 0)
        let end = CPU.timestamp() + ticks(microseconds: 1000)
        while CPU.timestamp() < end { CPU.pause() }
        if answered.load(ordering: .relaxed) != 0 {
            print("FAIL: an IPI was taken outside an interrupt window, after \(previous)")
            Kernel.exit(status: 1)
        }
        Interrupts.enableAndHalt()
        check(answered.load(ordering: .relaxed) == 1, "the IPI to this CPU did not arrive")
    }

    /// Arms CPU 0's timer 1 ms ahead and halts until it fires.
    static func timeTimer(mode: StaticString) {
        fired.store(0, ordering: .relaxed)
        let start = CPU.timestamp()
        let due = start + ticks(microseconds: 1000)
        deadline.store(due, ordering: .relaxed)
        LocalAPIC.armTimer(deadlineTSC: due)
        let limit = start + ticks(microseconds: 2_000_000)
        while fired.load(ordering: .relaxed) & 1 == 0 && CPU.timestamp() < limit {
            Interrupts.enableAndHalt()
        }
        check(fired.load(ordering: .relaxed) & 1 != 0, "the timer did not fire within 2 s")
        let microseconds = (CPU.timestamp() - start) * 1000 / BootInfo.current.tscKHz
        print("timer: \(mode) fired after \(microseconds) us on cpu 0")
    }

    static func checkIOAPIC(cpus: Int) {
        let lines = IOAPIC.lineCount
        let target = cpus - 1
        Interrupts.register(vector: deviceVector) { _ in }
        IOAPIC.route(gsi: 10, vector: deviceVector, cpu: target, trigger: .level, masked: true)
        var routing = IOAPIC.routing(gsi: 10)
        check(routing.vector == deviceVector && routing.apicID == BootInfo.current.apicID(ofCPU: target)
                && routing.level && routing.masked, "the IOAPIC did not keep the routing")
        IOAPIC.unmask(gsi: 10)
        routing = IOAPIC.routing(gsi: 10)
        check(!routing.masked && routing.vector == deviceVector, "unmask did not unmask")
        IOAPIC.mask(gsi: 10)
        check(IOAPIC.routing(gsi: 10).masked, "mask did not mask")
        print("ioapic: \(lines) lines, gsi 10 -> vector \(deviceVector) on APIC id \(routing.apicID), level, mask/unmask ok")
    }

    static var currentCPU: UInt32 { kernel_cpu_local_current().pointee.index }

    static func ticks(microseconds: UInt64) -> UInt64 {
        microseconds * BootInfo.current.tscKHz / 1000
    }

    static func waitFor(_ what: StaticString, _ condition: () -> Bool) {
        let limit = CPU.timestamp() + ticks(microseconds: 2_000_000)
        while !condition() && CPU.timestamp() < limit {
            CPU.pause()
        }
        check(condition(), what)
    }

    static func check(_ condition: Bool, _ failure: StaticString) {
        if !condition {
            print("FAIL: \(failure)")
            Kernel.exit(status: 1)
        }
    }
}

/// Bit n: CPU n took the answer IPI.
let answered = Atomic<UInt64>(0)
/// Bit n: CPU n's timer fired.
let fired = Atomic<UInt64>(0)
/// The deadline CPU 0's timer was armed for (0: not checked).
let deadline = Atomic<UInt64>(0)
/// Timer interrupts that came before their deadline.
let early = Atomic<UInt64>(0)
