import CKVM
import Glibc

/// A configured Toro VM: KVM handles, guest memory with the kernel loaded, and
/// one vCPU per configured CPU, each ready to enter the kernel in long mode.
public final class Machine {
    public let config: MachineConfig
    let system: KVMSystem
    let vm: VirtualMachine
    let memory: GuestMemory
    let vcpus: [VCPU]
    /// The `--net` device, if configured.
    let net: NetDevice?
    public let image: ELFImage
    /// The image's function symbols, read only with `--profile`.
    let symbols: ELFSymbolTable?
    /// Where `--profile FILE` goes; nil without `--profile` and for `-` (stderr).
    let profileOutput: OutputFile?
    /// When the VMM started, for the boot-time figures in the statistics.
    let startNanoseconds: UInt64
    /// How KVM runs this guest (`--mode`, resolved against the host).
    public let mode: ExecutionMode

    /// Builds the VM. Every failure is a ``VMMError`` with one line for the user.
    public init(config: MachineConfig, system given: KVMSystem? = nil, startNanoseconds: UInt64 = Clock.monotonicNanoseconds()) throws(VMMError) {
        self.config = config
        self.startNanoseconds = startNanoseconds
        try config.validate()
        // Before anything else: a profile that could not be written would be a lost run.
        if let path = config.profilePath, path != "-" {
            self.profileOutput = try OutputFile(path: path, contents: "the profile")
        } else {
            self.profileOutput = nil
        }
        // The image is checked before KVM is touched, so a bad image is reported as such on any host.
        let bytes: [UInt8]
        do {
            bytes = try ELFLoader.read(path: config.imagePath)
            _ = try ELFImage.parse(bytes)
        } catch { throw .image(path: config.imagePath, error) }
        self.symbols = config.profilePath == nil ? nil : ELFSymbolTable.read(bytes)

        let system: KVMSystem
        if let given { system = given } else { system = try KVMSystem(path: "/dev/kvm") }
        self.system = system
        let maxVCPUs = Int(system.checkExtension(UInt32(KVM_CAP_MAX_VCPUS)))
        try config.validate(maxVCPUs: maxVCPUs > 0 ? maxVCPUs : BootLayout.maxCPUs)

        do {
            self.vm = try VirtualMachine(system: system)
            try vm.createInterruptController()
        } catch { throw .kvm(error) }
        if let haltPoll = config.haltPollNanoseconds {
            guard vm.checkExtension(UInt32(KVM_CAP_HALT_POLL)) > 0 else {
                throw .kvmUnavailable("KVM lacks KVM_CAP_HALT_POLL, needed for --halt-poll-ns")
            }
            do { try vm.setHaltPoll(nanoseconds: haltPoll) } catch { throw .kvm(error) }
        }

        do { self.memory = try GuestMemory(size: config.memory) } catch { throw .memory(error) }
        if let netConfig = config.net {
            self.net = try NetDevice(config: netConfig, vm: self.vm, memory: self.memory)
        } else {
            self.net = nil
        }

        // Registering guest memory with KVM takes 4-10 ms on some hosts (a fixed
        // cost, not per byte), more than everything else here together: do it on
        // its own thread while the image is loaded and the vCPUs are created.
        let mapping = MappingResult()
        let (vm, memory) = (self.vm, self.memory)
        let mapper = try HostThread.spawn(name: "memslots") {
            do throws(KVMError) { try vm.map(memory) } catch { mapping.error = error }
        }
        let image: ELFImage
        let supportedCPUID: [kvm_cpuid_entry2]
        var vcpus: [VCPU] = []
        do {
            defer { mapper.join() }
            do { image = try ELFLoader.load(bytes, into: memory) } catch { throw .image(path: config.imagePath, error) }
            do {
                supportedCPUID = try system.supportedCPUID()
                for index in 0..<config.cpus { vcpus.append(try VCPU(vm: vm, index: index)) }
            } catch { throw .kvm(error) }
        }
        if let error = mapping.error { throw .kvm(error) }
        self.image = image
        self.vcpus = vcpus
        let mode = try Self.resolve(config.mode, on: vcpus[0])
        self.mode = mode

        do {
            try LongMode.writeDescriptorTables(into: memory)
            try PageTables.write(into: memory, cpus: config.cpus, userAccessible: mode == .native)
        } catch { throw .memory(error) }
        var bootInfo = BootInfo(
            cpuCount: config.cpus, memory: memory, kernelRanges: image.loadedRanges,
            tscKHz: vcpus[0].tscKHz() ?? 0, commandLine: config.commandLine)
        bootInfo.devices = net?.bootDevices ?? []
        try bootInfo.write(into: memory)

        do {
            for vcpu in vcpus {
                try vcpu.setCPUID(CPUID.entries(supported: supportedCPUID, cpu: vcpu.index, cpuCount: config.cpus))
                try vcpu.setSpecialRegisters(LongMode.configure(try vcpu.specialRegisters()))
                let stack = BootLayout.stack(cpu: vcpu.index)
                try vcpu.setRegisters(LongMode.registers(
                    entry: image.entry, stackTop: stack.base + stack.size, bootInfo: BootLayout.bootInfo, cpu: vcpu.index))
                try vcpu.setFPU(LongMode.fpu())
                try vcpu.setRunnable()
                // After the memory slot (kvm_pvm refuses the opt-in before one
                // exists) and before the vCPU first runs.
                if mode == .native { try PVMHost.enableNativeExecution(vcpu) }
            }
        } catch { throw .kvm(error) }
    }

    /// The mode `request` gives on this host, or the one-line reason it cannot be had.
    static func resolve(_ request: ModeRequest, on vcpu: VCPU) throws(VMMError) -> ExecutionMode {
        let pvm = PVMHost.isPresent(vcpu)
        if let mode = request.resolve(pvm: pvm) { return mode }
        throw .kvmUnavailable(
            "--mode \(request.rawValue): this KVM is not the kvm_pvm back end (no PVM signature in MSR 0x4b564d11), "
                + "so it has neither its native opt-in nor its emulated mode; use --mode auto")
    }

    /// Runs the guest until it exits, crashes, times out or the process is signalled,
    /// then returns the statistics. Console output goes to `console`.
    ///
    /// SIGINT and SIGTERM are blocked on the calling thread and taken with
    /// sigtimedwait, so a Ctrl-C stops the VM cleanly instead of killing the process.
    /// With `--stats-interval`, `onSample` receives each interval's sample as it is taken.
    public func run(console: ConsoleSink = ConsoleSink(), onSample: (Sample) -> Void = { _ in }) throws(VMMError) -> RunStatistics {
        var waited = signalSet([SIGINT, SIGTERM, VMMSignal.stopped, VMMSignal.kick])
        var previousMask = sigset_t()
        pthread_sigmask(SIG_BLOCK, &waited, &previousMask)
        defer { pthread_sigmask(SIG_SETMASK, &previousMask, nil) }
        // No-op handlers: the kick must interrupt KVM_RUN, and a wake-up signal still
        // pending when the mask is restored must not terminate the process.
        guard ckvm_install_kick_handler(VMMSignal.kick) == 0, ckvm_install_kick_handler(VMMSignal.stopped) == 0 else {
            throw .host("cannot install the VMM's signal handlers")
        }
        waited = signalSet([SIGINT, SIGTERM, VMMSignal.stopped])

        let control = StopControl(mainThread: pthread_self())
        let guestStart = GuestStartClock()
        let profiler = config.profilePath.map { _ in
            Profiler(intervalMicroseconds: config.profileIntervalMicroseconds, cpus: vcpus.count)
        }
        let runners = vcpus.map { vcpu in
            VCPURunner(vcpu: vcpu, memory: memory, console: console, control: control, bus: net?.bus,
                       profile: profiler?.profiles[vcpu.index], mode: mode) { guestStart.mark() }
        }
        if let net {
            do { try net.start() } catch { control.stop(.internalError(error.description)) }
        }
        var threads: [HostThread] = []
        for runner in runners {
            do {
                threads.append(try HostThread.spawn(name: "vcpu\(runner.vcpu.index)") { runner.run() })
            } catch {
                control.stop(.internalError(error.description))
                break
            }
        }

        if let profiler, threads.count == vcpus.count {
            do { try profiler.start(threads: threads) } catch { control.stop(.internalError(error.description)) }
        }

        let deadline = config.timeout.map { startNanoseconds + UInt64($0 * 1_000_000_000) }
        var samples: [Sample] = []
        if let interval = config.statsInterval, threads.count == vcpus.count {
            var sampler = LiveSampler(
                time: Clock.monotonicNanoseconds() - startNanoseconds, processCPU: Clock.processCPUNanoseconds(),
                readings: readings(threads))
            var next = Clock.monotonicNanoseconds() + UInt64(interval * 1e9)
            while !control.isStopping {
                waitForStop(control: control, signals: &waited, until: min(next, deadline ?? .max), deadline: deadline)
                guard !control.isStopping else { break }
                let sample = sampler.sample(
                    time: Clock.monotonicNanoseconds() - startNanoseconds, processCPU: Clock.processCPUNanoseconds(),
                    readings: readings(threads))
                samples.append(sample)
                onSample(sample)
                next += UInt64(interval * 1e9)
            }
        } else {
            waitForStop(control: control, signals: &waited, until: deadline ?? .max, deadline: deadline)
        }

        // No profiling kick may follow the stop kicks (or reach a joined thread).
        profiler?.stop()
        for (vcpu, thread) in zip(vcpus, threads) {
            vcpu.requestImmediateExit()
            pthread_kill(thread.handle, VMMSignal.kick)
        }
        for thread in threads { thread.join() }
        net?.stop()

        let end = Clock.monotonicNanoseconds()
        let first = console.firstOutputNanoseconds
        // After the end time: symbolizing and demangling are not the guest's cost.
        let profile = profiler.map { profiler in
            let report = ProfileReport(profiler.result(image: config.imagePath), symbols: symbols ?? .empty) {
                Demangler.demangle($0)
            }
            writeProfile(report.text)
            return report.summary
        }
        return RunStatistics(
            image: config.imagePath, cpus: config.cpus, memoryBytes: config.memory, mode: mode,
            stopReason: control.reason ?? .internalError("stopped without a reason"),
            wallNanoseconds: end - startNanoseconds,
            firstOutputNanoseconds: first == 0 ? nil : first - startNanoseconds,
            guestStartNanoseconds: guestStart.value.map { $0 - startNanoseconds } ?? 0,
            processCPUNanoseconds: Clock.processCPUNanoseconds(),
            consoleBytes: console.bytesWritten,
            rejectedRequests: runners.reduce(0) { $0 + $1.rejectedRequests },
            vcpus: runners.map(\.statistics),
            samples: samples,
            devices: net.map { [$0.statistics] } ?? [],
            profile: profile)
    }

    /// Writes the `--profile` report to its file or, for `-`, to standard error; a
    /// failure is one line on stderr and does not change the run's outcome.
    func writeProfile(_ text: String) {
        guard let profileOutput else { return writeError(text) }
        if let failure = profileOutput.write(text) { writeError("toro-vmm: \(failure)") }
    }

    /// Each vCPU's counters now, read from the main thread: the thread's CPU clock and KVM's stats fd.
    func readings(_ threads: [HostThread]) -> [VCPUReading] {
        zip(vcpus, threads).map { vcpu, thread in
            VCPUReading(cpuNanoseconds: Clock.threadCPUNanoseconds(thread.handle) ?? 0, kvm: vcpu.stats.read())
        }
    }

    /// Blocks until a vCPU stops the VM, a signal arrives, the timeout `deadline`
    /// passes (which stops the VM) or the time `until` comes (which does not).
    func waitForStop(control: StopControl, signals: inout sigset_t, until: UInt64, deadline: UInt64?) {
        while !control.isStopping {
            let now = Clock.monotonicNanoseconds()
            if let deadline, now >= deadline {
                control.stop(.timeout(seconds: config.timeout ?? 0))
                return
            }
            guard now < until else { return }
            let left = min(until - now, 3600 * 1_000_000_000)
            var timeout = timespec(tv_sec: Int(left / 1_000_000_000), tv_nsec: Int(left % 1_000_000_000))
            let signal = sigtimedwait(&signals, nil, &timeout)
            if signal == SIGINT || signal == SIGTERM { control.stop(.signal(signal)) }
        }
    }
}

/// What the memory-registration thread reports; read only after it was joined.
final class MappingResult: @unchecked Sendable {
    var error: KVMError?
}

/// The moment the first vCPU thread was about to enter the guest.
final class GuestStartClock: @unchecked Sendable {
    private let lock = HostLock()
    private var first: UInt64?
    func mark() {
        let now = Clock.monotonicNanoseconds()
        lock.withLock { if first == nil { first = now } }
    }
    var value: UInt64? { lock.withLock { first } }
}
