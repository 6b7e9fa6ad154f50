import KernelSupport

/// The kernel console: text from every CPU, batched into few VM exits.
///
/// Output collects in one buffer and goes to the device when a newline is
/// written, when the buffer fills, or on ``flush()`` (the kernel flushes before
/// it exits). Each send is a VM exit costing microseconds, so whole lines, not
/// bytes, are the unit. A spin lock serialises CPUs; a call that writes a line
/// holds it for the whole line, so lines never interleave.
public enum Console {
    /// Writes `text` and a newline as one unit.
    public static func print(_ text: String) {
        console.withLock { state in
            state.write(text)
            state.append(UInt8(ascii: "\n"))
            state.flushIfLineEnded()
        }
    }

    /// Writes `text` as is; it is sent once a newline follows or on ``flush()``.
    public static func write(_ text: String) {
        console.withLock { state in
            state.write(text)
            state.flushIfLineEnded()
        }
    }

    /// Sends everything written so far, this CPU's unfinished `print` line included.
    public static func flush() {
        flushLine()
        console.withLock { $0.flush() }
    }

    /// Picks the device the boot info offers: the paravirtual port when the
    /// VMM has one, else the serial port.
    static func start(bootInfo: BootInfo) {
        let device: ConsoleDevice =
            bootInfo.hasConsolePort
            ? .paravirtual(port: bootInfo.consolePort)
            : .serial(port: bootInfo.serialPort)
        console.withLock { state in
            state.flush()
            state.device = device
        }
    }

    /// Runs `body` with the console locked, for messages that must be written
    /// without allocating (panics, out of memory).
    static func withLockedState<Result>(_ body: (inout ConsoleState) -> Result) -> Result {
        console.withLock(body)
    }

    /// Runs `body` with the console state for a crash report: with the lock
    /// if it comes free within about 50 ms, without it otherwise (the crashed
    /// CPU may hold it). Only for reports after which the machine stops.
    static func withStateForCrashReport(_ body: (inout ConsoleState) -> Void) {
        // The TSC rate is not asked for: the boot info may not be valid yet.
        console.withLockOrForce(until: Deadline(milliseconds: 50), body)
    }
}

/// The console's buffer and device, only ever touched under ``console``'s lock.
struct ConsoleState: TextSink {
    /// COM1 until ``Console/start(bootInfo:)`` knows better.
    var device = ConsoleDevice.serial(port: UInt16(TORO_PORT_COM1))
    private let buffer = kernel_console_buffer_pointer()
    private let capacity = Int(KERNEL_CONSOLE_BUFFER_SIZE)
    private var count = 0
    private var lineEnded = false

    mutating func append(_ byte: UInt8) {
        if count == capacity {
            flush()
        }
        buffer[count] = byte
        count += 1
        if byte == UInt8(ascii: "\n") {
            lineEnded = true
        }
    }

    /// Sends the buffer if a newline went in since the last send: one VM exit
    /// for everything written in one locked call, however many lines.
    mutating func flushIfLineEnded() {
        if lineEnded {
            flush()
        }
    }

    /// Makes what follows start on a line of its own: a newline if the
    /// buffer ends in the middle of one (a crash cut it short).
    mutating func startLine() {
        if count > 0 && buffer[count - 1] != UInt8(ascii: "\n") {
            append(UInt8(ascii: "\n"))
        }
    }

    mutating func flush() {
        if count > 0 {
            device.send(buffer, count: count)
        }
        count = 0
        lineEnded = false
    }
}

/// The one console. Its buffer is static storage (KernelStorage.c), so it works
/// before the heap does.
let console = SpinLock(ConsoleState())
