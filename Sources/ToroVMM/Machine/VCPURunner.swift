import CKVM
import Glibc
import Synchronization

/// Shared between the vCPU threads and the main thread: whether the VM is
/// stopping, and the first reason given.
final class StopControl: @unchecked Sendable {
    private let stopping = Atomic<Bool>(false)
    private let lock = HostLock()
    private var firstReason: StopReason?
    let mainThread: pthread_t

    init(mainThread: pthread_t) { self.mainThread = mainThread }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }
    var reason: StopReason? { lock.withLock { firstReason } }

    /// Records `reason` if it is the first and wakes the main thread.
    func stop(_ reason: StopReason) {
        let first = lock.withLock { () -> Bool in
            guard firstReason == nil else { return false }
            firstReason = reason
            return true
        }
        stopping.store(true, ordering: .releasing)
        if first { pthread_kill(mainThread, VMMSignal.stopped) }
    }
}

/// Runs one vCPU on its own host thread and handles the exits that reach the VMM.
final class VCPURunner: @unchecked Sendable {
    let vcpu: VCPU
    let memory: GuestMemory
    let console: ConsoleSink
    let control: StopControl
    let onFirstEntry: () -> Void
    /// The virtio-mmio devices; MMIO outside their windows behaves as an empty bus.
    let bus: VirtioMMIOBus?
    /// This vCPU's samples with `--profile`; nil without.
    let profile: VCPUProfile?
    /// How KVM runs the guest: it changes what a triple fault means.
    let mode: ExecutionMode
    private(set) var statistics: VCPUStatistics
    private(set) var rejectedRequests: UInt64 = 0
    private var warnedAboutConsole = false

    init(vcpu: VCPU, memory: GuestMemory, console: ConsoleSink, control: StopControl, bus: VirtioMMIOBus? = nil,
         profile: VCPUProfile? = nil, mode: ExecutionMode = .hardware, onFirstEntry: @escaping () -> Void) {
        self.bus = bus
        self.mode = mode
        self.profile = profile
        self.vcpu = vcpu
        self.memory = memory
        self.console = console
        self.control = control
        self.onFirstEntry = onFirstEntry
        self.statistics = VCPUStatistics(index: vcpu.index)
    }

    /// The thread body: enter the guest until the VM stops, then take the statistics.
    func run() {
        var unblock = signalSet([VMMSignal.kick])
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        let start = Clock.monotonicNanoseconds()
        let startCPU = Clock.read(CLOCK_THREAD_CPUTIME_ID)
        onFirstEntry()
        while !control.isStopping {
            let exit: VMExit
            do {
                exit = try vcpu.enter()
            } catch {
                control.stop(.internalError("vCPU \(vcpu.index): \(error)"))
                break
            }
            statistics.vmmExits[exit.name, default: 0] += 1
            handle(exit)
            // A profiling kick: sample, then go straight back in. A stopping VM is not
            // sampled; the loop condition ends it whatever kicked the thread.
            if case .interrupted = exit, let profile, !control.isStopping {
                profile.sampleIfRequested(vcpu)
            }
        }
        statistics.wallNanoseconds = Clock.monotonicNanoseconds() - start
        statistics.cpuNanoseconds = Clock.read(CLOCK_THREAD_CPUTIME_ID) - startCPU
        statistics.kvm = vcpu.stats.read()
    }

    // MARK: - Exits

    func handle(_ exit: VMExit) {
        switch exit {
        case let .ioOut(port, size, data):
            handleOut(port: port, size: size, data: data)
        case let .ioIn(port, _, _):
            vcpu.completeIn { buffer in
                let value: UInt8 = SerialPort.handles(port) ? SerialPort.read(port) : 0xFF
                for i in buffer.indices { buffer[i] = value }
            }
        case let .mmioRead(address, length):
            // A device's window answers; unclaimed addresses read all ones, like an empty bus.
            let bytes = bus?.read(address: address, length: length)
            vcpu.completeMMIORead { buffer in
                for i in buffer.indices { buffer[i] = bytes.map { i < $0.count ? $0[i] : 0xFF } ?? 0xFF }
            }
        case let .mmioWrite(address, data):
            bus?.write(address: address, data: data)  // writes nothing claims are ignored
        case .halt, .interrupted:
            break
        case .shutdown:
            crash("triple fault (KVM_EXIT_SHUTDOWN)" + tripleFaultExplanation())
        case let .failEntry(reason):
            crash("VM entry failed, hardware reason 0x\(String(reason, radix: 16))")
        case let .internalError(suberror):
            let what = suberror == UInt32(KVM_INTERNAL_ERROR_EMULATION) ? "KVM could not emulate an instruction" : "KVM internal error"
            crash("\(what) (suberror \(suberror))")
        case let .systemEvent(type):
            crash("system event \(type)")
        case let .unknown(reason):
            control.stop(.internalError("vCPU \(vcpu.index): unexpected KVM exit reason \(reason)"))
        }
    }

    func handleOut(port: UInt16, size: Int, data: [UInt8]) {
        switch UInt32(port) {
        case TORO_PORT_EXIT:
            let value = littleEndian(data.prefix(size))
            if value <= 255 {
                control.stop(.guestExit(status: Int32(value)))
            } else {
                crash("guest wrote exit status \(value), outside 0-255")
            }
        case TORO_PORT_CONSOLE:
            // One fast console write per 32-bit element (`rep outsl` carries several).
            guard let descriptors = ConsolePort.descriptors(size: size, data: data) else {
                return reject("console port takes a 32-bit descriptor address, not a \(size)-byte write")
            }
            for descriptor in descriptors {
                if let refusal = ConsolePort.write(descriptor: descriptor, memory: memory, console: console) { reject(refusal) }
            }
        case TORO_PORT_COM1:
            SerialPort.transmitted(size: size, data: data).withUnsafeBytes { console.write($0) }
        default:
            break  // other COM1 registers and absent hardware: writes are ignored
        }
    }

    /// Counts a malformed guest request and says so once per vCPU; the guest keeps running.
    func reject(_ message: String) {
        rejectedRequests += 1
        if !warnedAboutConsole {
            warnedAboutConsole = true
            writeError("toro-vmm: vCPU \(vcpu.index): \(message) (further rejections are only counted)")
        }
    }

    /// What a triple fault most likely was, where the VMM can tell more than
    /// the guest could. In kvm_pvm's native mode exceptions are delivered on
    /// the stack that faulted (no IST), so a stack overflow, whose delivery
    /// faults again, ends here instead of in the kernel's own report.
    func tripleFaultExplanation() -> String {
        guard mode == .native, let regs = try? vcpu.registers(), let sregs = try? vcpu.specialRegisters() else { return "" }
        let page: UInt64 = 4096
        let cr2Page = sregs.cr2 & ~(page - 1)
        let rspPage = regs.rsp & ~(page - 1)
        // The fault was on an unmapped page at or just below the stack pointer.
        if PageTables.maps(sregs.cr2, cr3: sregs.cr3, in: memory) == false,
            rspPage == cr2Page || rspPage == cr2Page &+ page
        {
            return ": stack overflow (rsp 0x\(String(regs.rsp, radix: 16)) reached the unmapped page at "
                + "0x\(String(cr2Page, radix: 16)); in native mode an exception is delivered on the stack "
                + "that faulted, so the kernel could not report it)"
        }
        return ": in native mode an exception whose delivery faults (a bad stack, a bad IDT) ends so, "
            + "without the kernel's report"
    }

    func crash(_ summary: String) {
        var report = "guest crashed on vCPU \(vcpu.index): \(summary)"
        if let regs = try? vcpu.registers() {
            report += "\n" + CrashReport.registers(regs)
        }
        if let sregs = try? vcpu.specialRegisters() {
            report += "\n" + CrashReport.specialRegisters(sregs)
        }
        control.stop(.guestCrashed(summary: "vCPU \(vcpu.index): \(summary)", report: report))
    }
}

/// Formats guest registers for a crash report.
enum CrashReport {
    static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    static func registers(_ r: kvm_regs) -> String {
        let named: [(String, UInt64)] = [
            ("rip", r.rip), ("rsp", r.rsp), ("rbp", r.rbp), ("rflags", r.rflags),
            ("rax", r.rax), ("rbx", r.rbx), ("rcx", r.rcx), ("rdx", r.rdx),
            ("rsi", r.rsi), ("rdi", r.rdi), ("r8", r.r8), ("r9", r.r9),
            ("r10", r.r10), ("r11", r.r11), ("r12", r.r12), ("r13", r.r13),
            ("r14", r.r14), ("r15", r.r15),
        ]
        return lines(named)
    }

    static func specialRegisters(_ s: kvm_sregs) -> String {
        lines([("cr0", s.cr0), ("cr2", s.cr2), ("cr3", s.cr3), ("cr4", s.cr4), ("efer", s.efer), ("cs", UInt64(s.cs.selector))])
    }

    static func lines(_ named: [(String, UInt64)]) -> String {
        stride(from: 0, to: named.count, by: 4).map { start in
            "  " + named[start..<min(start + 4, named.count)].map { name, value in
                String(repeating: " ", count: max(0, 6 - name.count)) + name + " " + hex(value)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

func littleEndian<C: Collection>(_ bytes: C) -> UInt64 where C.Element == UInt8 {
    var value: UInt64 = 0
    for (i, byte) in bytes.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(i)) }
    return value
}

/// Writes one line to standard error.
public func writeError(_ line: String) {
    var text = line
    if !text.hasSuffix("\n") { text += "\n" }
    text.withUTF8 { bytes in _ = write(STDERR_FILENO, bytes.baseAddress, bytes.count) }
}
