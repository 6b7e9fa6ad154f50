import Glibc

/// Where guest console output goes: the VMM's standard output, unbuffered and
/// serialised, so that lines from several vCPUs never interleave mid-write.
public final class ConsoleSink: @unchecked Sendable {
    private let fd: Int32
    private let lock = HostLock()
    private var firstOutput: UInt64 = 0
    private var total: UInt64 = 0

    public init(fd: Int32 = STDOUT_FILENO) { self.fd = fd }

    /// Writes `bytes` to the sink.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        lock.withLock {
            if firstOutput == 0 { firstOutput = Clock.monotonicNanoseconds() }
            total += UInt64(bytes.count)
            var offset = 0
            while offset < bytes.count {
                let written = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // stdout is gone (closed pipe): drop output, keep the guest running
                }
                offset += written
            }
        }
    }

    /// Monotonic time of the first byte written, 0 if none yet.
    public var firstOutputNanoseconds: UInt64 { lock.withLock { firstOutput } }
    /// Bytes written so far.
    public var bytesWritten: UInt64 { lock.withLock { total } }
}

/// COM1 as far as a kernel printing to it needs: the transmit register writes to
/// the console, the line-status register always reports "ready to send".
public struct SerialPort {
    public static let base = UInt16(0x3F8)
    public static let portCount = UInt16(8)
    static let lineStatusOffset = UInt16(5)
    /// Transmitter holding register empty, transmitter idle.
    static let lineStatusReady: UInt8 = 0x60

    public static func handles(_ port: UInt16) -> Bool { port >= base && port < base + portCount }

    /// The value of an `in` from `port`.
    public static func read(_ port: UInt16) -> UInt8 {
        port - base == lineStatusOffset ? lineStatusReady : 0
    }
}
