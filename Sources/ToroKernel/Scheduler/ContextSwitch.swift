import KernelSupport

/// The Swift side of switching threads (the instructions are in ContextSwitch.S).
enum ContextSwitch {
    /// Words in a suspended thread's switch frame: R15, R14, R13, R12, RBX, RBP, return address.
    static let frameWords = 7
    /// The frame's R12 slot, which a new thread's trampoline passes on as the thread.
    static let r12Slot = 3

    /// Builds, at the top of a new thread's stack, the frame that
    /// `kernel_context_switch` pops for a thread it switches to: zeroed
    /// callee-saved registers, the thread in R12, and the trampoline as the
    /// return address. Returns the stack pointer to save for the thread.
    ///
    /// `top` is page-aligned, so after the switch's `ret` RSP is 16-byte
    /// aligned at the trampoline, which then calls into Swift as the ABI wants.
    static func initialStackPointer(top: UInt, thread: UnsafeMutableRawPointer) -> UInt64 {
        let frame = UnsafeMutablePointer<UInt64>(bitPattern: top - UInt(frameWords * 8))!
        frame.initialize(repeating: 0, count: frameWords - 1)
        frame[r12Slot] = UInt64(UInt(bitPattern: thread))
        frame[frameWords - 1] = kernel_thread_trampoline_address()
        return UInt64(UInt(bitPattern: frame))
    }
}

extension Scheduler {
    /// Runs `next` (a ready thread of this core, already out of the ready
    /// queue) in place of the current thread, which must already be wherever
    /// it waits: the ready queue, a timer, a joiner list, the idle pollers,
    /// or nowhere if it has ended. Returns when some thread of this core
    /// switches back to it.
    func switchTo(_ next: Unmanaged<Thread>) {
        let previous = current
        current = next
        kernel_cpu_local_set_current_thread(UnsafeMutableRawPointer(next.toOpaque()))
        statistics.contextSwitches &+= 1
        let nextStackPointer = next._withUnsafeGuaranteedRef { thread in
            thread.state = .running
            return thread.savedStackPointer
        }
        previous._withUnsafeGuaranteedRef { kernel_context_switch(&$0.savedStackPointer, nextStackPointer) }
        // Back on `previous`'s stack: another thread of this core switched here.
        reapExited()
    }
}

/// Where every spawned thread starts (called by `kernel_thread_trampoline`
/// with the thread): frees the stack of a thread that ended just before, runs
/// the body, and ends the thread.
@_cdecl("toro_thread_main")
func threadMain(_ thread: UnsafeMutableRawPointer) -> Never {
    Scheduler.withCurrent { $0.reapExited() }
    runBody(of: Unmanaged<Thread>.fromOpaque(thread))
    Scheduler.withCurrent { $0.exitCurrent() }
}

/// Runs the thread's body and lets go of it (and of what it captured)
/// before the thread ends.
@inline(never)
private func runBody(of thread: Unmanaged<Thread>) {
    let body = thread._withUnsafeGuaranteedRef { thread in
        let body = thread.body
        thread.body = nil
        return body
    }
    body?()
}
