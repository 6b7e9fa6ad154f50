/// What one vCPU did during one sampling interval.
public struct VCPUSample: Sendable, Equatable {
    public var index: Int
    /// Host CPU use of the vCPU thread during the interval, percent of one CPU.
    public var cpuPercent: Double
    /// KVM exits per second (all exits, handled in the host kernel or not).
    public var exitsPerSecond: Double
    /// HLT exits per second.
    public var haltExitsPerSecond: Double
    /// Share of the interval the vCPU was halted, percent.
    public var haltedPercent: Double
}

/// One line of the live statistics.
public struct Sample: Sendable, Equatable {
    /// Nanoseconds since the VMM started, at the end of the interval.
    public var timeNanoseconds: UInt64
    public var intervalNanoseconds: UInt64
    /// Host CPU use of the whole VMM process during the interval, percent of one CPU.
    public var processCPUPercent: Double
    public var vcpus: [VCPUSample]
}

/// The counters read from one vCPU at one moment.
public struct VCPUReading: Sendable, Equatable {
    public var cpuNanoseconds: UInt64
    public var exits: UInt64
    public var haltExits: UInt64
    public var haltWaitNanoseconds: UInt64
    /// KVM's `blocking`: whether the vCPU is halted right now.
    public var blocking: Bool

    public init(cpuNanoseconds: UInt64, exits: UInt64, haltExits: UInt64, haltWaitNanoseconds: UInt64, blocking: Bool) {
        self.cpuNanoseconds = cpuNanoseconds
        self.exits = exits
        self.haltExits = haltExits
        self.haltWaitNanoseconds = haltWaitNanoseconds
        self.blocking = blocking
    }

    /// Reads KVM's counters (absent ones count as 0: KVM without them shows no halting).
    init(cpuNanoseconds: UInt64, kvm: [String: UInt64]) {
        self.init(
            cpuNanoseconds: cpuNanoseconds, exits: kvm["exits"] ?? 0, haltExits: kvm["halt_exits"] ?? 0,
            haltWaitNanoseconds: kvm["halt_wait_ns"] ?? 0, blocking: (kvm["blocking"] ?? 0) != 0)
    }
}

/// Turns successive readings into per-interval samples.
///
/// KVM adds a halt's duration to `halt_wait_ns` only when the halt ends, so a
/// vCPU that halts through several intervals (a tickless idle kernel does)
/// would look busy until it wakes, and then the whole halt would land in the
/// interval where it ended. The sampler therefore also counts the part of a
/// halt still under way (KVM's `blocking`), and takes what it already counted
/// back out when KVM finally accounts the halt.
///
/// When a sample first sees a halt under way, KVM does not say when it began.
/// The sampler takes it to have begun when the vCPU stopped doing anything
/// else in the interval: the interval less the vCPU thread's CPU time and the
/// halts that ended in it. That is exact when the vCPU thread never waited for
/// a host CPU; on a loaded host, such a wait just before the halt is counted as
/// halted in that interval and taken back when the halt ends. (Counting only
/// from the sample that first saw the halt, as before, showed an idle vCPU
/// 0% halted in its first interval, and then pushed the uncounted start into
/// the interval where the halt ended, so that CPU% plus halted% went over
/// 100%.) A vCPU thread cannot be halted while it runs, so a sample's halted
/// share never exceeds 100% less its CPU share.
public struct LiveSampler: Sendable {
    struct VCPUState: Sendable {
        var last: VCPUReading
        /// The halt under way at the last sample, known by KVM's halt-exit count then.
        var haltExits: UInt64?
        /// Nanoseconds of that halt already reported as halted.
        var credited: UInt64 = 0
    }

    private var states: [VCPUState]
    private var lastTime: UInt64
    private var lastProcessCPU: UInt64

    /// A halt already under way here began before the first interval; only its
    /// part from `time` on is counted (and the part before is cut off by the
    /// 100%-less-CPU bound when KVM accounts it).
    public init(time: UInt64, processCPU: UInt64, readings: [VCPUReading]) {
        self.lastTime = time
        self.lastProcessCPU = processCPU
        self.states = readings.map { reading in
            VCPUState(last: reading, haltExits: reading.blocking ? reading.haltExits : nil)
        }
    }

    /// The sample for the interval ending at `time`.
    public mutating func sample(time: UInt64, processCPU: UInt64, readings: [VCPUReading]) -> Sample {
        let interval = max(time &- lastTime, 1)
        let seconds = Double(interval) / 1e9
        var vcpus: [VCPUSample] = []
        for (index, reading) in readings.enumerated() where index < states.count {
            var state = states[index]
            let previous = state.last
            let cpu = min(reading.cpuNanoseconds &- previous.cpuNanoseconds, interval)
            // Halts that ended in this interval, whole, as KVM accounted them.
            let completed = Int64(truncatingIfNeeded: reading.haltWaitNanoseconds &- previous.haltWaitNanoseconds)
            var halted: Int64
            if reading.blocking, let ongoing = state.haltExits, ongoing == reading.haltExits {
                // The same halt as at the last sample: halted all the interval.
                halted = completed + Int64(interval)
                state.credited += interval
            } else {
                // The halt under way at the last sample (if any) ended: only its
                // part after what was already reported is new.
                halted = completed - Int64(state.credited)
                state.credited = 0
                state.haltExits = nil
                if reading.blocking {
                    // A halt that began in this interval, after the vCPU's CPU time
                    // and the halts that ended.
                    let begun = max(Int64(interval) - Int64(cpu) - max(halted, 0), 0)
                    halted += begun
                    state.credited = UInt64(begun)
                    state.haltExits = reading.haltExits
                }
            }
            halted = min(max(halted, 0), Int64(interval - cpu))
            vcpus.append(VCPUSample(
                index: index,
                cpuPercent: percent(reading.cpuNanoseconds &- previous.cpuNanoseconds, of: interval),
                exitsPerSecond: Double(reading.exits &- previous.exits) / seconds,
                haltExitsPerSecond: Double(reading.haltExits &- previous.haltExits) / seconds,
                haltedPercent: percent(UInt64(halted), of: interval)))
            state.last = reading
            states[index] = state
        }
        let sample = Sample(
            timeNanoseconds: time, intervalNanoseconds: interval,
            processCPUPercent: percent(processCPU &- lastProcessCPU, of: interval), vcpus: vcpus)
        lastTime = time
        lastProcessCPU = processCPU
        return sample
    }
}
