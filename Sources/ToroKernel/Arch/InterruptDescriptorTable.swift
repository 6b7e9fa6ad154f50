import KernelSupport

/// The IDT: one table of 256 interrupt gates, shared by every CPU.
///
/// Sharing is possible because a gate names an IST *slot*, and each CPU's own
/// TSS supplies the stack for that slot (see ``CPUTables``). Each gate points
/// at an entry stub in Arch/InterruptEntry.S. In kvm_pvm's native mode the
/// gates use the DPL-3 code selector, have DPL 3 and no IST slot
/// (``NativeMode``).
///
/// Only the gates in use are present: the 32 exceptions and the kernel's own
/// vectors at boot, the rest as handlers are registered. Filling all 256 at
/// boot would cost a few thousand instructions, each emulated by the host on
/// this project's KVM. An interrupt on a vector nobody registered meets an
/// absent gate and raises #NP, whose report names the vector.
enum InterruptDescriptorTable {
    /// On CPU 0, before any CPU loads the table: the exception gates and the
    /// kernel's own interrupt vectors.
    static func build() {
        // All 32 on the exception stack first, then the two with stacks of
        // their own: cheaper than choosing per vector in the loop.
        for vector in UInt8(0)..<32 {
            set(vector: vector, stack: .exception)
        }
        enable(vector: 2)  // NMI
        enable(vector: 8)  // double fault
        enable(vector: LocalAPIC.timerVector)
        enable(vector: IPI.wakeVector)
        enable(vector: LocalAPIC.spuriousVector)
    }

    /// Makes this CPU use the table (`lidt`).
    static func load() {
        kernel_load_idt(kernel_idt_base(), UInt16(256 * 16 - 1))
    }

    /// Makes `vector`'s gate present, pointing at its entry stub, on the IST
    /// slot its kind of vector uses. Visible to every CPU at once.
    static func enable(vector: UInt8) {
        set(vector: vector, stack: InterruptStack.forVector(vector))
    }

    /// Writes `vector`'s gate, on IST slot `stack` (none in native mode).
    private static func set(vector: UInt8, stack: InterruptStack) {
        let native = NativeMode.isActive
        let gate = Descriptors.interruptGate(
            handler: kernel_interrupt_stub(vector), selector: kernel_running_code_selector(),
            ist: native ? 0 : stack.rawValue, dpl: native ? 3 : 0)
        kernel_idt_set_gate(vector, gate.low, gate.high)
    }

    /// Makes `vector`'s gate absent again.
    static func disable(vector: UInt8) {
        kernel_idt_set_gate(vector, 0, 0)
    }
}
