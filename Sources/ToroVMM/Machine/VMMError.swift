/// Everything that can stop `toro-vmm run` before or while the guest runs.
/// Each case's description is the one line the user sees.
public enum VMMError: Error, CustomStringConvertible {
    /// /dev/kvm is missing, unusable or lacks a capability.
    case kvmUnavailable(String)
    /// A KVM call failed while setting the VM up.
    case kvm(KVMError)
    /// Guest memory could not be mapped or written.
    case memory(GuestMemoryError)
    /// The kernel image was rejected.
    case image(path: String, ELFError)
    /// A configuration value is out of range.
    case config(String)
    /// The host refused something the VMM needs (a thread, a signal mask).
    case host(String)
    /// The network backend of `--net` could not be opened.
    case network(NetworkBackendError)
    /// A file the run's results go to (`--stats-file`, `--profile`) cannot be written.
    case output(String)

    public var description: String {
        switch self {
        case let .kvmUnavailable(text): return text
        case let .kvm(error): return error.description
        case let .memory(error): return error.description
        case let .image(path, error): return "\(path): \(error.description)"
        case let .config(text): return text
        case let .host(text): return text
        case let .network(error): return "--net: \(error.description)"
        case let .output(text): return text
        }
    }
}

/// The exit statuses of `toro-vmm`, documented in README.
public enum ExitStatus {
    /// The VM could not be set up: KVM, the image, the configuration, or a
    /// `--stats-file` or `--profile` file that cannot be written.
    public static let setupFailed: Int32 = 2
    /// Bad command-line usage.
    public static let usage: Int32 = 64
    /// `--timeout` expired with the guest still running.
    public static let timeout: Int32 = 124
    /// The guest crashed: triple fault, an instruction KVM could not emulate, a failed
    /// VM entry, or an exit status outside 0-255.
    public static let guestCrashed: Int32 = 125
    /// toro-vmm itself failed while the guest ran, or could not write the statistics at exit.
    public static let internalError: Int32 = 126
    /// Stopped by SIGINT.
    public static let interrupted: Int32 = 130
    /// Stopped by SIGTERM.
    public static let terminated: Int32 = 143
}
