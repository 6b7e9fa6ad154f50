import CKVM

/// Why `KVM_RUN` returned, decoded once from `kvm_run`.
public enum VMExit: Equatable, Sendable {
    /// An `in` from `port`; the handler must fill `size * count` bytes at the data offset.
    case ioIn(port: UInt16, size: Int, count: Int)
    /// An `out` to `port`; `data` holds `size * count` bytes.
    case ioOut(port: UInt16, size: Int, data: [UInt8])
    case mmioRead(address: UInt64, length: Int)
    case mmioWrite(address: UInt64, data: [UInt8])
    /// HLT reached userspace (only without an in-kernel interrupt controller).
    case halt
    /// Triple fault or other shutdown: the guest crashed.
    case shutdown
    /// The guest asked for a reset, a crash or a shutdown through a system event.
    case systemEvent(type: UInt32)
    /// The hardware refused to enter the guest.
    case failEntry(reason: UInt64)
    /// KVM could not handle something the guest did (often an emulation failure).
    case internalError(suberror: UInt32)
    /// A signal kicked the vCPU out of KVM_RUN.
    case interrupted
    /// Any other exit reason.
    case unknown(reason: UInt32)

    init(_ run: UnsafeMutablePointer<kvm_run>) {
        switch Int32(run.pointee.exit_reason) {
        case KVM_EXIT_IO:
            let io = ckvm_run_io(run)
            let size = Int(io.size)
            let count = Int(io.count)
            if io.direction == UInt8(KVM_EXIT_IO_OUT) {
                let start = UnsafeRawPointer(run) + Int(io.data_offset)
                let bytes = UnsafeRawBufferPointer(start: start, count: size * count)
                self = .ioOut(port: io.port, size: size, data: [UInt8](bytes))
            } else {
                self = .ioIn(port: io.port, size: size, count: count)
            }
        case KVM_EXIT_MMIO:
            let mmio = ckvm_run_mmio(run)
            let length = min(Int(mmio.len), 8)
            if mmio.is_write != 0 {
                let bytes = UnsafeRawBufferPointer(start: ckvm_run_mmio_data(run), count: length)
                self = .mmioWrite(address: mmio.phys_addr, data: [UInt8](bytes))
            } else {
                self = .mmioRead(address: mmio.phys_addr, length: length)
            }
        case KVM_EXIT_HLT: self = .halt
        case KVM_EXIT_SHUTDOWN: self = .shutdown
        case KVM_EXIT_SYSTEM_EVENT: self = .systemEvent(type: ckvm_run_system_event_type(run))
        case KVM_EXIT_FAIL_ENTRY: self = .failEntry(reason: ckvm_run_fail_entry_reason(run))
        case KVM_EXIT_INTERNAL_ERROR: self = .internalError(suberror: ckvm_run_internal_suberror(run))
        case KVM_EXIT_INTR: self = .interrupted
        default: self = .unknown(reason: run.pointee.exit_reason)
        }
    }

    /// A short stable name, used as a key in the statistics.
    public var name: String {
        switch self {
        case .ioIn: return "io_in"
        case .ioOut: return "io_out"
        case .mmioRead: return "mmio_read"
        case .mmioWrite: return "mmio_write"
        case .halt: return "hlt"
        case .shutdown: return "shutdown"
        case .systemEvent: return "system_event"
        case .failEntry: return "fail_entry"
        case .internalError: return "internal_error"
        case .interrupted: return "interrupted"
        case .unknown: return "unknown"
        }
    }
}
