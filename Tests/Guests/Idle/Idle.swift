import ToroKernel

/// Every CPU idles for `seconds=N` (default 2), then the VM exits 0.
///
/// `idle=halt` (default): CPU 0 sleeps on its timer and the other CPUs sit in
/// their idle loop, all halted, with one timer interrupt in all. `idle=poll`:
/// every CPU watches the clock in a loop instead, the way an idle kernel burns
/// a host CPU. The host tests compare the two runs' costs.
@main
struct Idle {
    nonisolated(unsafe) static var until: UInt64 = 0

    static func main() {
        let line = Kernel.commandLine
        let seconds = UInt64(min(line.integer("seconds") ?? 2, 1_000_000))  // bounded: it becomes nanoseconds
        let poll = line.value("idle") == "poll"
        let cpus = BootInfo.current.cpuCount
        until = Clock.now + seconds * 1_000_000_000
        print("idle: \(cpus) cpus for \(seconds) s, \(poll ? "polling" : "halted")")
        if poll {
            let spin: CrossCall.Work = { _ in
                while Clock.now < Idle.until { CPU.pause() }
            }
            let tickets = (1..<max(cpus, 1)).map { CrossCall.post(on: $0, spin) }
            spin(0)
            for (cpu, ticket) in zip(1..<max(cpus, 1), tickets) {
                if let ticket { _ = CrossCall.wait(on: cpu, ticket: ticket) }
            }
        } else {
            Timers.sleep(nanoseconds: seconds * 1_000_000_000)
        }
        print("idle: done after \(Clock.now / 1_000_000) ms")
    }
}
