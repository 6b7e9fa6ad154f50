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
///
/// Anything else comes from the application through ``exit(status:)``.
/// A Swift runtime trap (`fatalError`, overflow, force-unwrap of nil) is not a
/// panic yet: with no IDT it triple-faults and the VMM sees a shutdown.
public enum Kernel {
    /// The status for a kernel panic.
    public static let panicStatus = 3
    /// The status for boot info the kernel cannot use.
    public static let badBootInfoStatus = 4

    /// Flushes the console and stops the machine with `status` (0-255).
    public static func exit(status: Int) -> Never {
        Console.flush()
        PortIO.write32(exitPort.load(ordering: .relaxed), UInt32(truncatingIfNeeded: status))
        CPU.haltForever()  // in case the VMM lets the CPU go on
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
