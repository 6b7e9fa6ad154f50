import KernelSupport
import ToroKernel

/// A guest that crashes on purpose, so that the host tests can check the
/// kernel's exception reports (exit status 5, `exception N (#XX ...)`).
///
/// `crash=` on the kernel command line selects how:
/// - `divide`: an integer `div` by zero (#DE). Through a KernelSupport helper,
///   because Swift checks for zero itself and would trap with `ud2` first.
/// - `page`: a write to an address above RAM that is not mapped (#PF).
/// - `stack`: unbounded recursion on CPU 0's boot stack until it reaches the
///   guard page below it (#PF, reported as a stack overflow).
/// - `double`: points this CPU's exception stack (IST3) at unmapped memory,
///   then executes `ud2`; delivering the #UD faults, and so does delivering
///   that #PF, which makes a double fault (#DF, on its own stack IST1).
/// - `ud`: `ud2` (#UD), after printing half a line, which the report must
///   not lose.
/// - `trap`: a Swift runtime trap (arithmetic overflow), which is a `ud2` too.
/// - `fatal`: `fatalError`, whose message comes before the report.
/// - `nmi`: CPU 1 sends CPU 0 an NMI while CPU 0 prints in a loop, so the
///   report starts while its own CPU holds the console lock (needs `--cpus 2`).
/// - `remote`: an IPI makes CPU 1 run a handler that touches unmapped memory
///   (needs `--cpus 2`); CPU 0 waits to be stopped by the report.
/// - `thread`: a thread spawned on the last CPU recurses until its stack
///   reaches the guard page below it (#PF, reported as a stack overflow in
///   that thread); `main` waits for it in a join.
@main
struct CrashTest {
    /// Above any RAM a test VM has, and not in the identity map (only RAM and
    /// the MMIO hole below 4 GiB are mapped).
    static let unmappedAddress: UInt = 0x4000_0000_0000

    static func main() {
        let mode = KernelCommandLine(BootInfo.current.commandLine).value("crash") ?? "none"
        print("crash test: \(mode)")
        Console.flush()
        switch mode {
        case "divide":
            print("quotient \(kernel_divide(42, divisor))")
        case "page":
            UnsafeMutablePointer<UInt64>(bitPattern: unmappedAddress)!.pointee = 1
        case "stack":
            print("depth \(recurse(0))")
        case "double":
            // IST3 of this CPU's TSS (bytes 52-59) at the top of page 0, which is unmapped.
            kernel_tss_set_ist(kernel_cpu_tables_block(0), 3, 0x1000)
            kernel_invalid_opcode()
        case "ud":
            print("crash test: half a line, then ud2", terminator: "")  // the report flushes it first
            kernel_invalid_opcode()
        case "trap":
            print("sum \(Int.max - 1 + Int(divisor) + 2)")
        case "fatal":
            fatalError("crash test: fatalError")
        case "remote":
            Interrupts.register(vector: 0x40) { _ in
                UnsafeMutablePointer<UInt64>(bitPattern: CrashTest.unmappedAddress)!.pointee = 2
            }
            IPI.send(vector: 0x40, to: 1)
            // The report on CPU 1 ends the VM; if it does not, say so.
            let start = CPU.timestamp()
            while CPU.timestamp() - start < 5 * BootInfo.current.tscKHz * 1000 {
                CPU.pause()
            }
            print("crash test: cpu 1 did not crash")
        case "thread":
            let thread = Thread.spawn(on: BootInfo.current.cpuCount - 1) {
                print("crash test: thread \(Thread.current.id) recursing on cpu \(Kernel.currentCPU)")
                print("depth \(recurse(0))")
            }
            thread.join()
        case "nmi":
            // CPU 1 waits a little, then sends CPU 0 an NMI, which interrupts
            // even with interrupts disabled: almost surely while CPU 0 holds
            // the console lock, printing. The report must still come out.
            Interrupts.register(vector: 0x40) { _ in
                let start = CPU.timestamp()
                while CPU.timestamp() - start < 10 * BootInfo.current.tscKHz { CPU.pause() }
                // ICR: destination APIC ID 0, delivery mode NMI (100b), level assert.
                kernel_wrmsr(0x830, 0x4400)
            }
            let text = "crash test: printing while the NMI comes, " + String(repeating: "x", count: 150)
            IPI.send(vector: 0x40, to: 1)
            while true {
                Console.print(text)
            }
        default:
            print("crash test: unknown mode \(mode)")
        }
        Kernel.exit(status: 1)
    }

    /// 0, but the compiler cannot know it.
    static var divisor: UInt64 {
        var value: UInt64 = 0
        kernel_escape(&value)
        return value
    }

    /// Recurses until the stack runs out. Each frame keeps a buffer the
    /// compiler must believe is used after the call returns, so the recursion
    /// can be neither removed nor turned into a loop.
    @inline(never)
    static func recurse(_ depth: UInt64) -> UInt64 {
        var frame: (UInt64, UInt64, UInt64, UInt64) = (depth, depth, depth, depth)
        kernel_escape(&frame)
        if depth == UInt64.max { return 0 }
        let deeper = recurse(depth &+ 1)
        kernel_escape(&frame)
        return deeper &+ frame.0
    }
}
