import KernelSupport

/// What an interrupt handler receives: the interrupted code's registers as
/// the entry stub saved them, the vector, and the CPU's frame (RIP, RFLAGS,
/// RSP, ...). Changes a handler makes to it take effect when it returns: the
/// entry stub restores the registers and `iretq`s from it.
public typealias InterruptFrame = kernel_interrupt_frame

/// A function run when an interrupt arrives. It must not capture anything
/// (a C function pointer) and must not block: it runs with interrupts
/// disabled, on the CPU's interrupt stack (16 KiB), and the kernel signals
/// end of interrupt to the local APIC after it returns.
public typealias InterruptHandler = @convention(c) (_ frame: UnsafeMutablePointer<InterruptFrame>) -> Void

/// External interrupts and IPIs: handler registration, and turning interrupts
/// on and off on the calling CPU.
///
/// The kernel runs with interrupts disabled except where it waits with
/// ``enableAndHalt()``, so a handler never interrupts code holding a lock; the
/// spin locks do not disable interrupts themselves. Code that wants to run
/// with interrupts enabled must wrap the locks its handlers also take in
/// ``withDisabled(_:)``.
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

    // MARK: - The interrupt flag

    /// Whether interrupts were enabled, as ``disable()`` found them.
    public struct SavedState: Sendable {
        fileprivate let flags: UInt64
    }

    /// Disables interrupts on this CPU and returns whether they were enabled,
    /// for ``restore(_:)``. Pairs nest: only the outermost restore re-enables.
    @inline(__always)
    public static func disable() -> SavedState {
        let flags = kernel_read_flags()
        kernel_cli()
        return SavedState(flags: flags)
    }

    /// Puts the interrupt flag back as ``disable()`` found it.
    @inline(__always)
    public static func restore(_ saved: SavedState) {
        if saved.flags & UInt64(KERNEL_FLAGS_IF) != 0 {
            kernel_sti()
        }
    }

    /// Runs `body` with interrupts disabled on this CPU, then restores them.
    @inline(__always)
    public static func withDisabled<Result: ~Copyable, Failure: Error>(
        _ body: () throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let saved = disable()
        defer { restore(saved) }
        return try body()
    }

    /// Whether interrupts are enabled on this CPU.
    public static var areEnabled: Bool {
        kernel_read_flags() & UInt64(KERNEL_FLAGS_IF) != 0
    }

    /// Halts this CPU until an interrupt arrives, lets its handler run, and
    /// returns with interrupts disabled again.
    ///
    /// Call it with interrupts disabled, after checking that there is nothing
    /// to do: it executes `sti; hlt` back to back, and because `sti` takes
    /// effect only after the next instruction, no interrupt can slip in
    /// between the two. An IPI sent after the check (``IPI/wake(cpu:)``)
    /// therefore ends the `hlt` instead of being handled just before it and
    /// lost. The scheduler's idle loop relies on this:
    ///
    /// ```swift
    /// while queue.isEmpty { Interrupts.enableAndHalt() }  // interrupts off around the check
    /// ```
    ///
    /// A halted vCPU costs the host nothing: KVM puts its thread to sleep.
    @inline(__always)
    public static func enableAndHalt() {
        kernel_enable_and_halt()
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
