import KernelSupport

/// CPU exceptions, vectors 0-31: each prints a crash report on the console
/// and ends the VM with ``Kernel/exceptionStatus``.
///
/// Nothing in the kernel recovers from an exception yet: each is a kernel bug,
/// a bad pointer, a stack overflow, or a Swift runtime trap (overflow, `nil`
/// unwrap, bounds check, `fatalError`), which Swift compiles to `ud2` and so
/// arrives here as #UD. The report is written without allocating, on the
/// faulting CPU's exception stack; the other CPUs run on until the VM stops.
///
/// ```
/// exception 14 (#PF page fault) on cpu 0, error code 0x0000000000000002
///   rip 0x... rsp 0x... rflags 0x... cr2 0x...
///   rax 0x... rbx 0x... rcx 0x... rdx 0x...
///   rsi 0x... rdi 0x... rbp 0x... r8 0x...
///   r9 0x... r10 0x... r11 0x... r12 0x...
///   r13 0x... r14 0x... r15 0x...
///   page fault: write, page not present
///   stack overflow: cr2 is in the guard page below cpu 0's stack
///   in thread 1
/// ```
enum Exceptions {
    /// `#PF page fault` for 14: the mnemonic and name from Intel SDM vol. 3A,
    /// table 6-1 (vectors 28-30 from AMD's APM vol. 2, 8.2).
    static func name(of vector: UInt64) -> StaticString {
        switch vector {
        case 0: "#DE divide error"
        case 1: "#DB debug"
        case 2: "NMI non-maskable interrupt"
        case 3: "#BP breakpoint"
        case 4: "#OF overflow"
        case 5: "#BR bound range exceeded"
        case 6: "#UD invalid opcode"
        case 7: "#NM device not available"
        case 8: "#DF double fault"
        case 9: "coprocessor segment overrun"
        case 10: "#TS invalid TSS"
        case 11: "#NP segment not present"
        case 12: "#SS stack-segment fault"
        case 13: "#GP general protection"
        case 14: "#PF page fault"
        case 16: "#MF x87 floating-point error"
        case 17: "#AC alignment check"
        case 18: "#MC machine check"
        case 19: "#XM SIMD floating-point exception"
        case 20: "#VE virtualization exception"
        case 21: "#CP control protection"
        case 28: "#HV hypervisor injection"
        case 29: "#VC VMM communication"
        case 30: "#SX security exception"
        default: "reserved"
        }
    }

    static let pageFault: UInt64 = 14
    static let doubleFault: UInt64 = 8
    static let invalidOpcode: UInt64 = 6

    /// Reports the exception described by `frame` and ends the VM.
    static func report(_ frame: UnsafeMutablePointer<kernel_interrupt_frame>) -> Never {
        let cr2 = kernel_read_cr2()  // first, before anything else can fault
        // In kvm_pvm's native mode the kernel runs at hardware CPL 3, so every
        // page fault has the error code's user bit (2) set; it says nothing
        // about the access there, and the report reads as in the other modes.
        if frame.pointee.vector == pageFault && NativeMode.isActive {
            frame.pointee.error_code &= ~0x4
        }
        let cpu = CPULocal.current
        // Never decremented: no report returns. A handler that one day
        // resolves a fault and returns must count back down.
        cpu.pointee.exception_depth &+= 1
        if cpu.pointee.exception_depth > 1 {
            reportNested(vector: frame.pointee.vector, cpu: cpu.pointee.index)
        }
        Console.withStateForCrashReport { out in
            // A line this CPU was writing into the console when it faulted ends here.
            out.startLine()
            // This CPU's unfinished `print` line happened first.
            let pending = Int(cpu.pointee.line_length)
            if pending > 0 && pending <= Int(KERNEL_LINE_MAX) {
                let line = kernel_cpu_local_line(cpu)
                for index in 0..<pending { out.append(line[index]) }
                out.append(UInt8(ascii: "\n"))
                cpu.pointee.line_length = 0
            }
            write(frame.pointee, cr2: cr2, cpu: cpu.pointee.index, to: &out)
            if let thread = cpu.pointee.current_thread, let identify = threadIdentifier {
                out.write("  in thread ")
                out.write(decimal: identify(thread))
                out.write("\n")
            }
            out.flush()
        }
        Kernel.exitWithoutFlush(status: Kernel.exceptionStatus)
    }

    /// The report's lines for `frame`, as in the type's documentation.
    static func write(_ frame: kernel_interrupt_frame, cr2: UInt64, cpu: UInt32, to out: inout some TextSink) {
        out.write("exception ")
        out.write(decimal: frame.vector)
        out.write(" (")
        out.write(name(of: frame.vector))
        out.write(") on cpu ")
        out.write(decimal: UInt64(cpu))
        out.write(", error code ")
        out.write(hex: frame.error_code)
        out.write("\n")
        out.write(" ")
        register("rip", frame.rip, to: &out)
        register("rsp", frame.rsp, to: &out)
        register("rflags", frame.rflags, to: &out)
        register("cr2", cr2, to: &out)
        out.write("\n ")
        register("rax", frame.rax, to: &out)
        register("rbx", frame.rbx, to: &out)
        register("rcx", frame.rcx, to: &out)
        register("rdx", frame.rdx, to: &out)
        out.write("\n ")
        register("rsi", frame.rsi, to: &out)
        register("rdi", frame.rdi, to: &out)
        register("rbp", frame.rbp, to: &out)
        register("r8", frame.r8, to: &out)
        out.write("\n ")
        register("r9", frame.r9, to: &out)
        register("r10", frame.r10, to: &out)
        register("r11", frame.r11, to: &out)
        register("r12", frame.r12, to: &out)
        out.write("\n ")
        register("r13", frame.r13, to: &out)
        register("r14", frame.r14, to: &out)
        register("r15", frame.r15, to: &out)
        out.write("\n")
        explain(frame, cr2: cr2, to: &out)
    }

    /// ` name 0x...`. One register per call: a variadic list would allocate.
    private static func register(_ name: StaticString, _ value: UInt64, to out: inout some TextSink) {
        out.write(" ")
        out.write(name)
        out.write(" ")
        out.write(hex: value)
    }

    /// The lines that say what the numbers mean, where the kernel can tell.
    private static func explain(_ frame: kernel_interrupt_frame, cr2: UInt64, to out: inout some TextSink) {
        let error = frame.error_code
        switch frame.vector {
        case pageFault:
            // Error code bits: 0 present, 1 write, 4 instruction fetch (Intel SDM vol. 3A, 4.7).
            out.write("  page fault: ")
            out.write(error & 0x10 != 0 ? "instruction fetch" : error & 0x2 != 0 ? "write" : "read")
            out.write(error & 0x1 != 0 ? ", protection violation\n" : ", page not present\n")
        case 10...13 where error & 0x2 != 0:
            // A selector error code with IDT set names a gate (Intel SDM vol. 3A, 6.13).
            out.write("  the error code names interrupt vector ")
            out.write(decimal: (error >> 3) & 0xFF)
            out.write(frame.vector == 11 ? ", which has no handler\n" : "\n")
        case invalidOpcode where isUD2(at: frame.rip):
            out.write("  ud2: a Swift runtime trap (overflow, nil unwrap, bounds check, fatalError) or a deliberate one\n")
        default:
            break
        }
        if frame.vector == pageFault || frame.vector == doubleFault, let owner = StackGuards.owner(ofGuardPageHolding: cr2) {
            out.write("  stack overflow: cr2 is in the guard page below ")
            switch owner {
            case .bootStack(let cpu):
                out.write("cpu ")
                out.write(decimal: UInt64(cpu))
                out.write("'s stack\n")
            case .stack(let base):
                out.write("the stack at ")
                out.write(hex: base)
                out.write("\n")
            }
        }
    }

    /// Whether the instruction at `rip` is `ud2` (0F 0B). Safe to read: a #UD
    /// means the CPU fetched and decoded those bytes.
    private static func isUD2(at rip: UInt64) -> Bool {
        guard let bytes = UnsafePointer<UInt8>(bitPattern: UInt(rip)) else { return false }
        return bytes[0] == 0x0F && bytes[1] == 0x0B
    }

    /// Given the per-CPU block's current thread, its ID, for the report's
    /// `in thread N` line. Called with interrupts disabled, possibly with a
    /// lock held by the faulting CPU: it must not allocate, block or take locks.
    public typealias ThreadIdentifier = @convention(c) (_ thread: UnsafeMutableRawPointer) -> UInt64

    /// Makes the report name the thread that was running (set by the scheduler at boot).
    static func setThreadIdentifier(_ identify: ThreadIdentifier?) {
        threadIdentifier = identify
    }

    /// Set once at boot by the scheduler; read by the report.
    nonisolated(unsafe) private static var threadIdentifier: ThreadIdentifier?

    /// An exception while reporting one: the console state may be what broke,
    /// so one line straight to COM1 (which the VMM also forwards) and out.
    private static func reportNested(vector: UInt64, cpu: UInt32) -> Never {
        var serial = SerialWriter(port: UInt16(TORO_PORT_COM1))
        serial.write("\nexception ")
        serial.write(decimal: vector)
        serial.write(" (")
        serial.write(name(of: vector))
        serial.write(") on cpu ")
        serial.write(decimal: UInt64(cpu))
        serial.write(" while reporting an exception\n")
        Kernel.exitWithoutFlush(status: Kernel.exceptionStatus)
    }
}

/// Called by `exception_common` (Arch/InterruptEntry.S) with the frame the
/// entry stub built on the exception's IST stack.
@_cdecl("kernel_exception_entry")
public func kernelExceptionEntry(_ frame: UnsafeMutablePointer<kernel_interrupt_frame>) {
    Exceptions.report(frame)
}
