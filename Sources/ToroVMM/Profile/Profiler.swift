import Glibc
import Synchronization

// The sampling profiler of `--profile`.
//
// A profiler thread kicks every vCPU thread with ``VMMSignal/kick`` each
// interval, after raising that vCPU's `requested` flag. The kick makes KVM_RUN
// return EINTR (`.interrupted`); the vCPU thread, seeing the flag, reads its own
// registers (KVM_GET_REGS, allowed on the vCPU's thread) and records RIP, or
// records "halted" when KVM_GET_MP_STATE says the vCPU is in HLT, then enters
// the guest again. Profiling kicks never set `immediate_exit` and never touch
// the stop flag, so they cannot turn into a stop; the stop path (StopControl,
// then immediate_exit and a kick) is unchanged, and the profiler thread is
// joined before the stop kicks are sent.

/// One vCPU's samples. The histogram is written only by the vCPU's thread and
/// `kicks` only by the profiler thread; both are read after the threads are joined.
final class VCPUProfile: @unchecked Sendable {
    let index: Int
    /// Raised by the profiler before each kick; the vCPU thread takes a sample only when it clears it.
    let requested = Atomic<Bool>(false)
    var rips: [UInt64: Int] = [:]
    var halted = 0
    /// Samples whose registers could not be read.
    var failed = 0
    var kicks = 0

    init(index: Int) { self.index = index }

    /// Called by the vCPU thread after an `.interrupted` exit: a sample if one was asked for.
    func sampleIfRequested(_ vcpu: VCPU) {
        guard requested.exchange(false, ordering: .acquiringAndReleasing) else { return }
        // A halted vCPU's RIP is the instruction after its HLT: recording it would make
        // the idle loop look busy. KVM keeps the vCPU in KVM_MP_STATE_HALTED while it
        // waits (and polls) in-kernel, and the kick does not change that.
        if (try? vcpu.isHalted()) == true {
            halted += 1
        } else if let regs = try? vcpu.registers() {
            rips[regs.rip, default: 0] += 1
        } else {
            failed += 1
        }
    }

    var samples: VCPUSamples {
        VCPUSamples(index: index, rips: rips, halted: halted, kicks: kicks)
    }
}

/// Kicks the vCPU threads every interval while the guest runs.
final class Profiler: @unchecked Sendable {
    let intervalMicroseconds: Int
    let profiles: [VCPUProfile]
    private let finished = Atomic<Bool>(false)
    private var thread: HostThread?

    init(intervalMicroseconds: Int, cpus: Int) {
        self.intervalMicroseconds = intervalMicroseconds
        self.profiles = (0..<cpus).map(VCPUProfile.init)
    }

    /// Starts the profiler thread, which kicks `threads[i]` for `profiles[i]`.
    func start(threads: [HostThread]) throws(VMMError) {
        let targets = Array(zip(profiles, threads.map(\.handle)))
        let interval = UInt64(intervalMicroseconds) * 1000
        thread = try HostThread.spawn(name: "profiler") { [self] in
            var next = Clock.monotonicNanoseconds() + interval
            while !finished.load(ordering: .acquiring) {
                // Sleep in slices of at most 10 ms so that stop() does not wait a whole long interval.
                let now = Clock.monotonicNanoseconds()
                if now < next {
                    let slice = min(next - now, 10_000_000)
                    var request = timespec(tv_sec: Int(slice / 1_000_000_000), tv_nsec: Int(slice % 1_000_000_000))
                    nanosleep(&request, nil)
                    continue
                }
                for (profile, handle) in targets {
                    profile.requested.store(true, ordering: .releasing)
                    profile.kicks += 1
                    pthread_kill(handle, VMMSignal.kick)
                }
                next += interval
                // After a long stall (a suspended process), do not burst to catch up.
                if next < now { next = now + interval }
            }
        }
    }

    /// Stops and joins the profiler thread; call before the vCPU threads are joined.
    func stop() {
        finished.store(true, ordering: .releasing)
        thread?.join()
        thread = nil
    }

    func result(image: String) -> GuestProfile {
        GuestProfile(image: image, intervalMicroseconds: intervalMicroseconds, vcpus: profiles.map(\.samples))
    }
}
