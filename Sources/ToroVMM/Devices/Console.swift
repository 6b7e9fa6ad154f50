import CKVM
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

    /// The bytes an `out` of `size`-byte elements to the transmit register puts on
    /// the line: the low byte of each, as the 8-bit register of a real UART keeps
    /// (`outw`/`outl` write one wider element, `rep outsb` several).
    public static func transmitted(size: Int, data: [UInt8]) -> [UInt8] {
        guard size > 1 else { return data }
        return stride(from: 0, to: data.count, by: size).map { data[$0] }
    }
}

/// Port TORO_PORT_CONSOLE (boot/toro_boot.h): each 32-bit `out` is the guest-physical
/// address of a `toro_console_write` descriptor.
public enum ConsolePort {
    /// The descriptor addresses an `out` of `size`-byte elements carries: one per
    /// 32-bit element (`rep outsl` writes several, each a write of its own); nil for
    /// any other width, which the contract does not allow.
    public static func descriptors(size: Int, data: [UInt8]) -> [UInt64]? {
        guard size == 4, data.count % 4 == 0 else { return nil }
        return stride(from: 0, to: data.count, by: 4).map { littleEndian(data[$0..<$0 + 4]) }
    }

    /// Validates the descriptor at `descriptor` and the buffer it names (both wholly in
    /// guest RAM, at most TORO_CONSOLE_WRITE_MAX bytes), then copies the bytes to
    /// `console`. Returns nil, or why the write was refused (nothing is written then).
    public static func write(descriptor: UInt64, memory: GuestMemory, console: ConsoleSink) -> String? {
        do throws(GuestMemoryError) {
            let request = try memory.load(toro_console_write.self, at: GuestAddress(descriptor))
            guard request.length <= TORO_CONSOLE_WRITE_MAX else {
                return "console write of \(request.length) bytes is over the \(TORO_CONSOLE_WRITE_MAX)-byte limit"
            }
            let bytes = try memory.hostPointer(GuestAddress(request.address), length: UInt64(request.length))
            console.write(UnsafeRawBufferPointer(start: bytes, count: Int(request.length)))
            return nil
        } catch {
            return "console write refused: \(error)"
        }
    }
}
