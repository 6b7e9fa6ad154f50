import KernelSupport

/// Per-CPU line assembly for Swift's `print`.
///
/// `print` reaches the kernel one byte at a time through `putchar`. Taking the
/// console lock per byte would let two CPUs' lines interleave character by
/// character, so each CPU first collects a line in its own block (no lock
/// needed: only this CPU touches it) and hands the console whole lines.
extension Console {
    /// Adds `byte` to this CPU's line; a newline or a full line goes to the console.
    static func put(_ byte: UInt8) {
        let cpu = CPULocal.current
        let line = kernel_cpu_local_line(cpu)
        var length = Int(cpu.pointee.line_length)
        line[length] = byte
        length += 1
        cpu.pointee.line_length = UInt32(length)
        if byte == UInt8(ascii: "\n") || length == Int(KERNEL_LINE_MAX) {
            flushLine()
        }
    }

    /// Moves this CPU's unfinished line, if any, to the console.
    static func flushLine() {
        let cpu = CPULocal.current
        let length = Int(cpu.pointee.line_length)
        guard length > 0 else { return }
        let line = kernel_cpu_local_line(cpu)
        cpu.pointee.line_length = 0
        console.withLock { state in
            for index in 0..<length {
                state.append(line[index])
            }
            state.flushIfLineEnded()
        }
    }
}
