import KernelSupport

/// x86 I/O port access (`in`/`out`).
///
/// Every access is a VM exit, which is why the console batches its output and
/// hands the VMM whole buffers instead of bytes.
enum PortIO {
    @inline(__always)
    static func write8(_ port: UInt16, _ value: UInt8) {
        kernel_outb(port, value)
    }

    @inline(__always)
    static func write32(_ port: UInt16, _ value: UInt32) {
        kernel_outl(port, value)
    }

    @inline(__always)
    static func read8(_ port: UInt16) -> UInt8 {
        kernel_inb(port)
    }
}
