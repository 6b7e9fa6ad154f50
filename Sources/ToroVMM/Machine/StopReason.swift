/// Why a VM stopped; the first reason recorded wins.
public enum StopReason: Sendable, Equatable {
    /// The guest wrote `status` to the exit port.
    case guestExit(status: Int32)
    /// The guest crashed; `report` is the multi-line crash report.
    case guestCrashed(summary: String, report: String)
    /// `--timeout` expired.
    case timeout(seconds: Double)
    /// SIGINT or SIGTERM.
    case signal(Int32)
    /// toro-vmm failed while running the guest.
    case internalError(String)

    /// The process exit status for this reason (see ``ExitStatus``).
    public var exitStatus: Int32 {
        switch self {
        case let .guestExit(status): return status
        case .guestCrashed: return ExitStatus.guestCrashed
        case .timeout: return ExitStatus.timeout
        case let .signal(number): return 128 + number
        case .internalError: return ExitStatus.internalError
        }
    }

    /// A stable name for the statistics.
    public var name: String {
        switch self {
        case .guestExit: return "guest_exit"
        case .guestCrashed: return "guest_crashed"
        case .timeout: return "timeout"
        case .signal: return "signal"
        case .internalError: return "internal_error"
        }
    }
}
