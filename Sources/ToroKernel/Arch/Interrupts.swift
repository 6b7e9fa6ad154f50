import KernelSupport
import Synchronization

/// What an interrupt handler receives: the interrupted code's registers as
/// the entry stub saved them, the vector, and the CPU's frame (RIP, RFLAGS,
/// RSP, ...). Changes a handler makes to it take effect when it returns: the
/// entry stub restores the registers and `iretq`s from it.
public typealias InterruptFrame = kernel_interrupt_frame

/// A function run when an interrupt arrives. It must not capture anything
/// (a C function pointer) and must not block: it runs with interrupts
/// disabled, on the CPU's interrupt stack (16 KiB; in native mode on the
/// stack of the thread that waited), and the kernel signals end of interrupt
/// to the local APIC after it returns.
public typealias InterruptHandler = @convention(c) (_ frame: UnsafeMutablePointer<InterruptFrame>) -> Void

/// External interrupts and IPIs: handler registration, and the only places
/// where a CPU takes them.
///
/// **Interrupts are disabled wherever kernel or application code runs.** A
/// CPU takes them only inside two functions written in assembly
/// (Arch/InterruptEntry.S) and entered by a call: ``enableAndHalt()``, where
/// an idle CPU waits, and the one-instruction window of `Thread.yield()` and
/// the `idle=poll` loop. So a handler never interrupts code holding a lock or
/// a half-updated queue, and nothing needs to disable interrupts around
/// either: there is no `disable()`/`restore()` to get wrong and no `cli`/`sti`
/// on any other path (each is a trap to the host in kvm_pvm's native mode).
///
/// It is also what makes interrupts safe where they are delivered on the
/// interrupted stack (kvm_pvm's native mode, whose gates cannot switch to
/// an IST stack): Swift code keeps live data in the 128-byte red zone below
/// its stack pointer, and Swift has no switch to stop it, but no function
/// keeps anything there across a call, since the call writes its return
/// address there. An interrupt arriving inside a called window function
/// therefore finds no red zone to overwrite.
///
/// Every interrupt returns with IF clear in the frame it returns through
/// (in native mode the host leaves IF clear after delivery and `iretq` cannot
/// set it), so a window ends with interrupts disabled either way.
public enum Interrupts {
    /// The vectors an application or driver may register: above the 32
    /// exceptions, below the spurious vector, minus the kernel's own
    /// (``LocalAPIC/timerVector``, ``IPI/wakeVector``).
    public static let registrableVectors: ClosedRange<UInt8> = 32...254

    /// Makes `handler` run, on whichever CPU receives it, whenever interrupt
    /// `vector` arrives; replaces an earlier handler for it. Panics for a
    /// vector outside ``registrableVectors`` or one the kernel owns.
    public static func register(vector: UInt8, handler: InterruptHandler) {
        checkRegistrable(vector)
        kernel_set_interrupt_handler(vector, handler)
        InterruptDescriptorTable.enable(vector: vector)
    }

    /// Removes the handler for `vector`; the vector then raises #NP if it arrives.
    public static func unregister(vector: UInt8) {
        checkRegistrable(vector)
        InterruptDescriptorTable.disable(vector: vector)
        kernel_set_interrupt_handler(vector, nil)
    }

    private static func checkRegistrable(_ vector: UInt8) {
        guard registrableVectors.contains(vector), vector != LocalAPIC.timerVector, vector != IPI.wakeVector else {
            Kernel.panic { message in
                message.write("interrupt vector ")
                message.write(decimal: UInt64(vector))
                message.write(" cannot be registered (32-254, not the timer or wake-up vector)")
            }
        }
    }

    // MARK: - Waiting

    /// Halts this CPU until an interrupt arrives, lets its handler run, and
    /// returns with interrupts disabled again.
    ///
    /// Call it after checking that there is nothing to do: it executes
    /// `sti; hlt` back to back, and because `sti` takes
    /// effect only after the next instruction, no interrupt can slip in
    /// between the two. An IPI sent after the check (``IPI/wake(cpu:)``)
    /// therefore ends the `hlt` instead of being handled just before it and
    /// lost. The scheduler's idle loop relies on this:
    ///
    /// ```swift
    /// while queue.isEmpty { Interrupts.enableAndHalt() }
    /// ```
    ///
    /// A halted vCPU costs the host nothing: KVM puts its thread to sleep.
    @inline(__always)
    public static func enableAndHalt() {
        kernel_enable_and_halt()
    }

    /// Takes the interrupts pending on this CPU, if any, and returns: a window
    /// of one instruction with interrupts enabled, for code that polls
    /// instead of halting. Two traps to the host in native mode, so hot loops
    /// use ``windowIfDue()``.
    @inline(__always)
    public static func window() {
        kernel_interrupt_window()
    }

    /// ``window()``, but only if this CPU has not opened one in the last
    /// ``windowInterval`` (1 ms): what `Thread.yield()` and the `idle=poll`
    /// loop call every turn. Nothing a busy core waits for needs the window
    /// sooner: its timers run in software once due (`Timers.expireIfDue()`),
    /// threads other cores hand it arrive through its incoming queue, and
    /// the network thread polls its device. What the window still brings in
    /// (a device interrupt for another driver, an IPI a handler must see)
    /// waits 1 ms at most. In native mode each window is two traps, about
    /// 30 µs: opened every turn it was the most expensive thing a busy core did.
    @inline(__always)
    public static func windowIfDue() {
        let now = CPU.timestamp()
        let block = CPULocal.current
        guard now &- block.pointee.last_window >= windowTicks.load(ordering: .relaxed) else { return }
        block.pointee.last_window = now
        kernel_interrupt_window()
    }

    /// The least time between two windows of ``windowIfDue()``.
    public static let windowInterval: UInt64 = 1_000_000  // nanoseconds

    /// On CPU 0 once the clock runs: ``windowInterval`` in TSC ticks.
    static func startWindows() {
        windowTicks.store(Clock.ticks(nanoseconds: windowInterval), ordering: .relaxed)
    }

    // MARK: - Bring-up

    /// On CPU 0, right after its CPU tables and per-CPU block: builds the IDT
    /// (before any other CPU loads it) and starts this CPU's interrupts, so
    /// every later fault of the boot is reported.
    static func startOnBootstrapProcessor() {
        InterruptDescriptorTable.build()
        LocalAPIC.installTimerInterrupt()
        startOnThisCPU()
    }

    /// On every CPU once CPU 0 has built the IDT: loads the IDT and switches
    /// the local APIC on. Interrupts stay disabled.
    static func startOnThisCPU() {
        InterruptDescriptorTable.load()
        LocalAPIC.start()
    }
}

/// ``Interrupts/windowInterval`` in TSC ticks; 0 (every turn) until the clock runs.
private let windowTicks = Atomic<UInt64>(0)
