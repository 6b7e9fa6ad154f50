/// What one vCPU did over a run, from KVM's counters and the VMM's own.
public struct VCPUStatistics: Sendable, Equatable {
    public var index: Int
    /// Nanoseconds from the vCPU thread's start to its end.
    public var wallNanoseconds: UInt64 = 0
    /// Host CPU time of the vCPU thread.
    public var cpuNanoseconds: UInt64 = 0
    /// KVM's binary statistics for this vCPU, by KVM's names; absent counters are absent.
    public var kvm: [String: UInt64] = [:]
    /// Exits that reached the VMM, by ``VMExit/name``.
    public var vmmExits: [String: UInt64] = [:]

    public init(index: Int) { self.index = index }

    /// Host CPU use of the vCPU thread, in percent of one host CPU.
    public var cpuPercent: Double { percent(cpuNanoseconds, of: wallNanoseconds) }
    /// All exits KVM counted, handled in the host kernel or not.
    public var exits: UInt64? { kvm["exits"] }
    public var haltExits: UInt64? { kvm["halt_exits"] }
    public var haltWaitNanoseconds: UInt64? { kvm["halt_wait_ns"] }
    public var haltPollSuccesses: UInt64? { kvm["halt_successful_poll"] }
    /// Polls that ended without a wake-up (attempted minus successful).
    public var haltPollFailures: UInt64? {
        guard let attempted = kvm["halt_attempted_poll"], let successful = kvm["halt_successful_poll"] else { return nil }
        return attempted >= successful ? attempted - successful : 0
    }
    /// KVM's `insn_emulation`: instructions KVM emulated for the guest. In
    /// native mode, the privileged operations that trapped to the host; in
    /// emulated mode, every guest instruction; on hardware KVM, the few it
    /// had to emulate (device accesses).
    public var traps: UInt64? { kvm["insn_emulation"] }
    public var ioExits: UInt64? { kvm["io_exits"] }
    public var mmioExits: UInt64? { kvm["mmio_exits"] }
    /// Exits that reached the VMM (KVM_RUN returned), signals included.
    public var vmmExitTotal: UInt64 { vmmExits.values.reduce(0, +) }
    /// Share of the wall time spent halted, in percent.
    public var haltedPercent: Double? { haltWaitNanoseconds.map { percent($0, of: wallNanoseconds) } }
}

/// A whole run: why it stopped, the process's cost and every vCPU.
public struct RunStatistics: Sendable, Equatable {
    public var image: String
    public var cpus: Int
    public var memoryBytes: UInt64
    /// How KVM ran the guest.
    public var mode: ExecutionMode
    public var stopReason: StopReason
    /// Nanoseconds from the VMM's start to the end of the run.
    public var wallNanoseconds: UInt64
    /// Nanoseconds from the VMM's start to the guest's first console byte; nil if it printed nothing.
    public var firstOutputNanoseconds: UInt64?
    /// Nanoseconds from the VMM's start to the first vCPU entering the guest.
    public var guestStartNanoseconds: UInt64
    /// CPU time of the whole VMM process: vCPU threads, set-up and I/O.
    public var processCPUNanoseconds: UInt64
    public var consoleBytes: UInt64
    /// Guest requests the VMM refused (bad console descriptors, bad exit statuses).
    public var rejectedRequests: UInt64
    public var vcpus: [VCPUStatistics]
    /// The live samples taken with `--stats-interval`, oldest first.
    public var samples: [Sample] = []
    /// The VM's devices (`--net`), in boot-information order.
    public var devices: [DeviceStatistics] = []
    /// With `--profile`: the sample counts and the hottest functions.
    public var profile: ProfileSummary?

    public var processCPUPercent: Double { percent(processCPUNanoseconds, of: wallNanoseconds) }

    /// The per-vCPU counters added up; a KVM counter present on any vCPU is summed over those that have it.
    public var totals: VCPUStatistics {
        var total = VCPUStatistics(index: -1)
        for vcpu in vcpus {
            total.wallNanoseconds = max(total.wallNanoseconds, vcpu.wallNanoseconds)
            total.cpuNanoseconds += vcpu.cpuNanoseconds
            total.kvm.merge(vcpu.kvm, uniquingKeysWith: +)
            total.vmmExits.merge(vcpu.vmmExits, uniquingKeysWith: +)
        }
        return total
    }
}

/// What one virtio device did over a run.
public struct DeviceStatistics: Sendable, Equatable {
    /// `virtio-net`.
    public var kind: String
    /// Guest-physical base of its virtio-mmio window, and its GSI.
    public var base: UInt64
    public var irq: UInt32
    /// The host side: `tap:NAME`.
    public var backend: String
    /// The guest's MAC address.
    public var mac: String
    /// Frames, bytes, drops, driver notifications and interrupts requests, from the device.
    public var counters: VirtioNetCounters
    /// Interrupts the transport raised on the GSI.
    public var interruptsRaised: UInt64
    /// Errors that made the device need a reset.
    public var errors: UInt64
    /// Register accesses the device ignored (wrong width or alignment, no register
    /// there, read-only or write-only, while it waited for a reset).
    public var ignoredAccesses: UInt64

    public init(kind: String, base: UInt64, irq: UInt32, backend: String, mac: String,
                counters: VirtioNetCounters, interruptsRaised: UInt64, errors: UInt64, ignoredAccesses: UInt64 = 0) {
        self.kind = kind
        self.base = base
        self.irq = irq
        self.backend = backend
        self.mac = mac
        self.counters = counters
        self.interruptsRaised = interruptsRaised
        self.errors = errors
        self.ignoredAccesses = ignoredAccesses
    }
}

func percent(_ part: UInt64, of whole: UInt64) -> Double {
    whole == 0 ? 0 : Double(part) * 100 / Double(whole)
}
