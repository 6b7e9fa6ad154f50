import KernelSupport
import Synchronization

/// This CPU's local APIC, in x2APIC mode, and its timer.
///
/// In x2APIC mode every APIC register is an MSR (0x800 + the xAPIC offset /
/// 16) instead of a page of MMIO, so each access is one `rdmsr`/`wrmsr` that
/// KVM's in-kernel APIC answers without leaving the host kernel (Intel SDM
/// vol. 3A, 10.12 "Extended XAPIC (x2APIC)", table 10-6 for the registers).
///
/// The timer is one-shot: the kernel is tickless, and whoever runs the timer
/// queue arms it for the earliest deadline only. It uses TSC-deadline mode
/// when the CPU has it (the deadline is a TSC value, written once), else
/// one-shot count mode with a rate measured against the TSC once.
///
/// Intel SDM section numbers here and in the other Arch/ files are those of
/// the editions with the APIC in chapter 10; later editions renumber the
/// chapters but keep the section titles.
public enum LocalAPIC {
    /// The vector of the local APIC timer.
    public static let timerVector: UInt8 = 0xEF
    /// The spurious-interrupt vector: raised when an interrupt goes away
    /// before the CPU takes it; its stub returns at once, without EOI.
    public static let spuriousVector: UInt8 = 0xFF

    /// How ``armTimer(deadlineTSC:)`` programs the timer.
    public enum TimerMode: UInt32, Sendable {
        /// The LVT timer in TSC-deadline mode: fires when the TSC reaches
        /// the value in IA32_TSC_DEADLINE (Intel SDM vol. 3A, 10.5.4.1).
        case tscDeadline = 1
        /// The LVT timer counting down from an initial count at a rate
        /// calibrated against the TSC (Intel SDM vol. 3A, 10.5.4).
        case oneShot = 2
    }

    // MARK: - Registers

    static let baseMSR: UInt32 = 0x1B  // IA32_APIC_BASE
    static let baseEnable: UInt64 = 1 << 11
    static let baseExtended: UInt64 = 1 << 10  // x2APIC mode
    static let endOfInterruptMSR: UInt32 = 0x80B  // also hard-coded in InterruptEntry.S
    static let spuriousMSR: UInt32 = 0x80F
    static let softwareEnable: UInt64 = 1 << 8
    static let interruptCommandMSR: UInt32 = 0x830
    static let timerLVTMSR: UInt32 = 0x832
    static let lint0LVTMSR: UInt32 = 0x835
    static let timerInitialCountMSR: UInt32 = 0x838
    static let timerCurrentCountMSR: UInt32 = 0x839
    static let timerDivideMSR: UInt32 = 0x83E
    static let tscDeadlineMSR: UInt32 = 0x6E0  // IA32_TSC_DEADLINE
    static let lvtMasked: UInt64 = 1 << 16
    static let lvtTSCDeadlineMode: UInt64 = 0b10 << 17
    static let divideBy1: UInt64 = 0b1011

    /// CPUID.01H:ECX, read once: bit 21 x2APIC, bit 24 TSC-deadline timer.
    private static let features: UInt32 = CPU.identify(leaf: 1).ecx

    /// Whether the CPU's APIC timer has TSC-deadline mode (CPUID.01H:ECX bit 24).
    public static var hasTSCDeadline: Bool { features & (1 << 24) != 0 }

    // MARK: - Bring-up

    /// On each CPU at bring-up: x2APIC mode, the APIC software-enabled with
    /// ``spuriousVector``, LINT0 masked. Interrupts stay disabled.
    static func start() {
        guard features & (1 << 21) != 0 else {
            Kernel.panic("this CPU has no x2APIC (CPUID.01H:ECX bit 21), which the kernel needs")
        }
        // Disabled to x2APIC directly is an invalid transition: through
        // xAPIC mode (enabled) first (Intel SDM vol. 3A, 10.12.5, figure 10-27).
        var base = kernel_rdmsr(baseMSR)
        if base & baseEnable == 0 {
            base |= baseEnable
            kernel_wrmsr(baseMSR, base)
        }
        if base & baseExtended == 0 {
            kernel_wrmsr(baseMSR, base | baseExtended)
        }
        // KVM resets the bootstrap processor's LINT0 to ExtINT (the 8259
        // PIC); devices come through the IOAPIC, so that path stays shut.
        kernel_wrmsr(lint0LVTMSR, lvtMasked)
        kernel_wrmsr(spuriousMSR, softwareEnable | UInt64(spuriousVector))
        CPULocal.current.pointee.timer_mode = 0
        CPULocal.current.pointee.timer_deadline = 0
        deadlineModeSelected.store(hasTSCDeadline && !oneShotForced.load(ordering: .relaxed), ordering: .relaxed)
    }

    /// On CPU 0 at bring-up: routes ``timerVector`` to the timer's own
    /// handler (see ``setTimerHandler(_:)``).
    static func installTimerInterrupt() {
        kernel_set_interrupt_handler(timerVector, timerInterrupt)
    }

    // MARK: - The timer

    /// The mode ``armTimer(deadlineTSC:)`` uses: TSC-deadline where the CPU
    /// has it, unless ``forceOneShotTimer()`` was called.
    public static var timerMode: TimerMode {
        // One plain load: this is on the path of every timer armed (CPUID
        // itself is a VM exit, and even the cached value is a `swift_once`).
        deadlineModeSelected.load(ordering: .relaxed) ? .tscDeadline : .oneShot
    }

    /// Makes every CPU use one-shot count mode from its next
    /// ``armTimer(deadlineTSC:)`` on, even where TSC-deadline mode exists:
    /// for tests, and for hosts whose TSC-deadline timer cannot be trusted.
    /// Measures the count rate now, on this CPU (about 2 ms), rather than at
    /// the first arming.
    public static func forceOneShotTimer() {
        oneShotForced.store(true, ordering: .relaxed)
        deadlineModeSelected.store(false, ordering: .relaxed)
        _ = oneShotRate
        // Measuring used this CPU's timer: re-arm what was armed, in the new mode.
        let deadline = CPULocal.current.pointee.timer_deadline
        if deadline != 0 {
            armTimer(deadlineTSC: deadline)
        }
    }

    /// Sets the function called when this CPU's armed timer expires (the same
    /// function for every CPU; nil for none). It runs on the CPU that armed
    /// the timer, like any ``InterruptHandler``, once per arming, at or after
    /// the deadline, and never after ``disarmTimer()``.
    public static func setTimerHandler(_ handler: InterruptHandler?) {
        timerHandler = handler
    }

    /// Arms this CPU's timer to interrupt on ``timerVector`` once the TSC
    /// reaches `deadlineTSC`; replaces any earlier deadline on this CPU. A
    /// deadline already past fires at once. Call with interrupts disabled
    /// (the timer queue is per CPU and touched only with interrupts off).
    public static func armTimer(deadlineTSC: UInt64) {
        let cpu = CPULocal.current
        let mode = timerMode
        if cpu.pointee.timer_mode != mode.rawValue {
            program(mode, on: cpu)
        }
        let deadline = max(deadlineTSC, 1)  // 0 means "disarmed"
        cpu.pointee.timer_deadline = deadline
        switch mode {
        case .tscDeadline:
            kernel_wrmsr(tscDeadlineMSR, deadline)
        case .oneShot:
            startCountdown(until: deadline)
        }
    }

    /// Stops this CPU's timer. An expiry already pending is dropped too: the
    /// handler does not run for a disarmed timer.
    public static func disarmTimer() {
        let cpu = CPULocal.current
        cpu.pointee.timer_deadline = 0
        switch cpu.pointee.timer_mode {
        case TimerMode.tscDeadline.rawValue:
            kernel_wrmsr(tscDeadlineMSR, 0)
        case TimerMode.oneShot.rawValue:
            kernel_wrmsr(timerInitialCountMSR, 0)
        default:
            break  // never armed on this CPU
        }
    }

    /// The one-shot timer's rate against the TSC, measured on first use.
    static var oneShotRate: TickRatio {
        if let rate = TickRatio(fixed: calibratedRate.load(ordering: .relaxed)) {
            return rate
        }
        let rate = calibrate()
        calibratedRate.store(rate.fixed, ordering: .relaxed)
        return rate
    }

    /// Writes the LVT timer register for `mode` on this CPU.
    private static func program(_ mode: TimerMode, on cpu: UnsafeMutablePointer<kernel_cpu_local>) {
        switch mode {
        case .tscDeadline:
            kernel_wrmsr(timerInitialCountMSR, 0)
            kernel_wrmsr(timerLVTMSR, lvtTSCDeadlineMode | UInt64(timerVector))
            // A deadline written before the mode switch takes effect would be
            // ignored; the SDM asks for MFENCE in between (10.5.4.1).
            kernel_memory_fence()
        case .oneShot:
            _ = oneShotRate  // calibrating reprograms the LVT, so first
            kernel_wrmsr(timerLVTMSR, UInt64(timerVector))  // mode 00: one-shot
            kernel_wrmsr(timerDivideMSR, divideBy1)
        }
        cpu.pointee.timer_mode = mode.rawValue
    }

    /// Starts the one-shot countdown so that it ends at `deadline` (a TSC
    /// value). The count register has 32 bits; a deadline beyond it ends the
    /// countdown early and ``timerInterrupt`` starts the rest.
    private static func startCountdown(until deadline: UInt64) {
        let now = CPU.timestamp()
        let ticks = oneShotRate.targetTicks(forSourceTicks: deadline > now ? deadline - now : 0)
        // 0 would stop the timer instead of firing it: a past deadline counts 1.
        kernel_wrmsr(timerInitialCountMSR, min(max(ticks, 1), UInt64(UInt32.max)))
    }

    /// Measures the APIC timer's rate against the TSC over about 2 ms (KVM's
    /// APIC timer runs at 1 GHz whatever the host's crystal, so CPUID leaf
    /// 0x15 would be wrong here). Leaves this CPU's LVT to be reprogrammed.
    private static func calibrate() -> TickRatio {
        let khz = Clock.conversion.ticksPerMillisecond  // never 0: the clock falls back to 3 GHz
        kernel_wrmsr(timerLVTMSR, lvtMasked | UInt64(timerVector))
        kernel_wrmsr(timerDivideMSR, divideBy1)
        kernel_wrmsr(timerInitialCountMSR, UInt64(UInt32.max))
        // TSC then count at both ends, so both intervals have the same skew.
        let startTSC = CPU.timestamp()
        let startCount = kernel_rdmsr(timerCurrentCountMSR)
        while CPU.timestamp() &- startTSC < 2 &* khz {
            CPU.pause()
        }
        let endTSC = CPU.timestamp()
        let endCount = kernel_rdmsr(timerCurrentCountMSR)
        kernel_wrmsr(timerInitialCountMSR, 0)
        CPULocal.current.pointee.timer_mode = 0
        guard let rate = TickRatio(targetTicks: startCount &- endCount, sourceTicks: endTSC &- startTSC) else {
            Kernel.panic("the local APIC timer does not count; no timer without TSC-deadline mode")
        }
        return rate
    }

    /// The timer's own handler: drops expiries of a disarmed timer, restarts
    /// a one-shot countdown that ended before its deadline, and only then
    /// calls the registered handler.
    private static let timerInterrupt: InterruptHandler = { frame in
        let cpu = CPULocal.current
        let deadline = cpu.pointee.timer_deadline
        guard deadline != 0 else { return }  // disarmed after it expired
        if CPU.timestamp() < deadline {
            // A countdown cut short by the 32-bit count (TSC-deadline mode is
            // never early; a stale expiry from before a re-arm lands here too,
            // and the timer is already armed for the new deadline).
            if cpu.pointee.timer_mode == TimerMode.oneShot.rawValue {
                startCountdown(until: deadline)
            }
            return
        }
        cpu.pointee.timer_deadline = 0
        timerHandler?(frame)
    }

    /// Set once at boot by whoever runs the timers; read in interrupt context.
    nonisolated(unsafe) private static var timerHandler: InterruptHandler?
}

/// Set by ``LocalAPIC/forceOneShotTimer()``.
private let oneShotForced = Atomic<Bool>(false)
/// Whether ``LocalAPIC/timerMode`` is TSC-deadline: the CPU has it and
/// one-shot mode was not forced. Set at each CPU's bring-up (all CPUs agree).
private let deadlineModeSelected = Atomic<Bool>(false)
/// ``TickRatio/fixed`` of the one-shot timer's measured rate; 0 until measured.
private let calibratedRate = Atomic<UInt64>(0)
