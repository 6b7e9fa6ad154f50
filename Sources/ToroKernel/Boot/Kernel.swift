import KernelSupport
import Synchronization

/// Stopping the machine.
///
/// The VMM stops the VM when a status is written to its exit port and
/// toro-vmm exits with that status. The kernel itself uses:
///
/// | status | meaning |
/// |-------:|---------|
/// | 0 | the application's `main` returned |
/// | 3 | kernel panic (message on the console, prefixed `panic`) |
/// | 4 | unusable boot info (message on COM1, prefixed `toro: bad boot info`) |
/// | 5 | CPU exception (crash report on the console, starting `exception N (#XX ...)`) |
///
/// Anything else comes from the application through ``exit(status:)``.
/// A Swift runtime trap (`fatalError`, overflow, force-unwrap of nil) executes
/// `ud2`, so it ends as an exception report (#UD) with status 5.
public enum Kernel {
    /// The status for a kernel panic.
    public static let panicStatus = 3
    /// The status for boot info the kernel cannot use.
    public static let badBootInfoStatus = 4
    /// The status for a CPU exception (see `Exceptions` in Arch/).
    public static let exceptionStatus = 5

    /// Flushes the console and stops the machine with `status` (0-255).
    public static func exit(status: Int) -> Never {
        Console.flush()
        PortIO.write32(exitPort.load(ordering: .relaxed), UInt32(truncatingIfNeeded: status))
        CPU.haltForever()  // in case the VMM lets the CPU go on
    }

    /// Stops the machine with `status` without touching the console, whose
    /// lock the calling CPU may hold: for the crash report, which has
    /// flushed what it wrote itself.
    static func exitWithoutFlush(status: Int) -> Never {
        PortIO.write32(exitPort.load(ordering: .relaxed), UInt32(truncatingIfNeeded: status))
        CPU.haltForever()
    }

    /// Prints `panic (cpu N): message` and stops the machine with ``panicStatus``.
    public static func panic(_ message: String) -> Never {
        panic { $0.write(message) }
    }

    /// Prints `panic (cpu N): message` and stops the machine with ``panicStatus``.
    /// Does not allocate, so it works without a heap.
    public static func panic(_ message: StaticString) -> Never {
        panic { $0.write(message) }
    }

    /// Panics with a message composed by `compose` while the console is
    /// locked, without allocating (for out-of-memory and heap corruption).
    static func panic(_ compose: (inout ConsoleState) -> Void) -> Never {
        Console.flushLine()  // what this CPU printed before belongs before the panic
        Console.withLockedState { state in
            state.write("panic (cpu ")
            state.write(decimal: UInt64(CPULocal.index))
            state.write("): ")
            compose(&state)
            state.append(UInt8(ascii: "\n"))
            state.flush()
        }
        exit(status: panicStatus)
    }

    /// The exit port: TORO_PORT_EXIT until the boot info names one.
    static let exitPort = Atomic<UInt16>(UInt16(TORO_PORT_EXIT))
}
