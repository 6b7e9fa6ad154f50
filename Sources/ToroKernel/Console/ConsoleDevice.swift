import KernelSupport

/// Where the console's bytes end up.
enum ConsoleDevice {
    /// The VMM's paravirtual console port: one `outl` (one VM exit) per buffer.
    case paravirtual(port: UInt16)
    /// A 16550 UART's transmit register: one `outb` (one VM exit) per byte.
    /// Slow, but any VMM has one; used when the paravirtual port is absent.
    case serial(port: UInt16)

    /// Sends `count` bytes starting at `bytes`.
    ///
    /// For the paravirtual port the bytes must stay put until the `outl`
    /// returns: the VMM copies them out during that VM exit.
    func send(_ bytes: UnsafePointer<UInt8>, count: Int) {
        switch self {
        case .paravirtual(let port):
            var offset = 0
            while offset < count {
                let chunk = min(count - offset, Int(TORO_CONSOLE_WRITE_MAX))
                let descriptor = kernel_console_descriptor_pointer()
                descriptor.pointee.address = UInt64(UInt(bitPattern: bytes + offset))
                descriptor.pointee.length = UInt32(chunk)
                descriptor.pointee.reserved = 0
                // The image is linked at 2 MiB, so the descriptor's address fits in 32 bits.
                PortIO.write32(port, UInt32(truncatingIfNeeded: UInt(bitPattern: descriptor)))
                offset += chunk
            }
        case .serial(let port):
            for index in 0..<count {
                PortIO.write8(port, bytes[index])
            }
        }
    }
}
