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
/// would look busy until it wakes. The sampler therefore also counts the part
/// of a halt still under way, from the first sample that saw the vCPU
/// `blocking`, and takes that part back out when KVM finally accounts the halt.
/// The result is exact to within one sampling interval.
public struct LiveSampler: Sendable {
    struct VCPUState: Sendable {
        var last: VCPUReading
        /// When the current halt was first seen, and the halt-exit count then.
        var haltSeen: (time: UInt64, haltExits: UInt64)?
        /// Nanoseconds of the current halt already reported as halted.
        var credited: UInt64 = 0
    }

    private var states: [VCPUState]
    private var lastTime: UInt64
    private var lastProcessCPU: UInt64

    public init(time: UInt64, processCPU: UInt64, readings: [VCPUReading]) {
        self.lastTime = time
        self.lastProcessCPU = processCPU
        self.states = readings.map { reading in
            VCPUState(last: reading, haltSeen: reading.blocking ? (time, reading.haltExits) : nil)
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
            // Halts that ended in this interval, minus what was already reported of them.
            let completed = reading.haltWaitNanoseconds &- previous.haltWaitNanoseconds
            var halted = Int64(truncatingIfNeeded: completed) - Int64(state.credited)
            state.credited = 0
            if reading.blocking {
                if let seen = state.haltSeen, seen.haltExits == reading.haltExits {
                    // Still the same halt: count what it has lasted since it was first seen.
                    let ongoing = time &- seen.time
                    halted += Int64(ongoing)
                    state.credited = ongoing
                    state.haltSeen = (seen.time, seen.haltExits)
                } else {
                    state.haltSeen = (time, reading.haltExits)
                }
            } else {
                state.haltSeen = nil
            }
            halted = min(max(halted, 0), Int64(interval))
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
