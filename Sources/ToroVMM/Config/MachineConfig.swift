import CKVM

/// What `toro-vmm run` was asked to boot, after the command line was checked.
public struct MachineConfig: Equatable, Sendable {
    public var imagePath: String
    public var cpus: Int = 1
    public var memory: UInt64 = 128 << 20
    public var commandLine: String = ""
    /// Seconds after which a still-running guest is stopped; nil for never.
    public var timeout: Double?
    /// Seconds between live statistics samples; nil for none.
    public var statsInterval: Double?
    /// KVM's halt polling for this VM (KVM_CAP_HALT_POLL); nil leaves the host's default.
    public var haltPollNanoseconds: UInt64?
    /// `--mode`: how KVM should run the guest.
    public var mode: ModeRequest = .auto
    /// The virtio-net device of `--net`; nil for none.
    public var net: NetConfig?
    /// Where `--profile` writes the guest profile (`-` for standard error); nil for no profiling.
    public var profilePath: String?
    /// Microseconds between profile samples (`--profile-interval`).
    public var profileIntervalMicroseconds: Int = MachineConfig.defaultProfileInterval

    public static let defaultProfileInterval = 1000
    /// `--profile-interval` bounds: 10 kHz at most (each sample is a VM exit), 1 Hz at least.
    public static let profileIntervalRange = 100...1_000_000

    public init(imagePath: String) { self.imagePath = imagePath }

    /// The smallest guest: 2 MiB of boot structures, 2 MiB of kernel and some heap.
    public static let minimumMemory: UInt64 = 8 << 20
    /// The largest: what the identity map covers, less the 1 GiB MMIO hole below 4 GiB.
    public static let maximumMemory: UInt64 = BootLayout.maxMemory - (1 << 30)
    /// The longest kernel command line: the boot information's buffer less its NUL.
    public static let maxCommandLineBytes = Int(TORO_CMDLINE_MAX) - 1
    /// `--stats-interval` bounds, in seconds: below 10 ms the samples would be
    /// mostly the sampler's own cost.
    public static let statsIntervalRange = 0.01...1_000_000.0
    /// The longest `--timeout`, in seconds: far beyond any run, and its deadline
    /// in nanoseconds still fits in 64 bits.
    public static let maxTimeout = 1_000_000_000.0
    /// The longest `--halt-poll-ns`: one second of polling after a HLT.
    public static let maxHaltPollNanoseconds: UInt64 = 1_000_000_000

    /// Checks ranges that the command-line parser cannot know. The parser checks
    /// the same ranges first, so that its messages can quote what the user typed.
    public func validate(maxVCPUs: Int = BootLayout.maxCPUs) throws(VMMError) {
        let limit = min(maxVCPUs, BootLayout.maxCPUs)
        guard cpus >= 1, cpus <= limit else { throw .config("--cpus must be between 1 and \(limit), got \(cpus)") }
        guard memory >= MachineConfig.minimumMemory else {
            throw .config("--memory must be at least \(MemorySize.format(MachineConfig.minimumMemory)), got \(MemorySize.format(memory))")
        }
        guard memory <= MachineConfig.maximumMemory else {
            throw .config("--memory must be at most \(MemorySize.format(MachineConfig.maximumMemory)), got \(MemorySize.format(memory))")
        }
        guard commandLine.utf8.count <= MachineConfig.maxCommandLineBytes else {
            throw .config("--cmdline is \(commandLine.utf8.count) bytes long; at most \(MachineConfig.maxCommandLineBytes) fit")
        }
        if let timeout, !(timeout > 0 && timeout <= MachineConfig.maxTimeout) {
            throw .config("--timeout must be a positive number of seconds up to \(Int(MachineConfig.maxTimeout)), got \(timeout)")
        }
        if let statsInterval, !MachineConfig.statsIntervalRange.contains(statsInterval) {
            throw .config("--stats-interval must be at least 0.01 and at most \(Int(MachineConfig.statsIntervalRange.upperBound)) seconds, got \(statsInterval)")
        }
        if let haltPollNanoseconds, haltPollNanoseconds > MachineConfig.maxHaltPollNanoseconds {
            throw .config("--halt-poll-ns must be at most \(MachineConfig.maxHaltPollNanoseconds) (1 s), got \(haltPollNanoseconds)")
        }
        guard MachineConfig.profileIntervalRange.contains(profileIntervalMicroseconds) else {
            throw .config("--profile-interval must be between 100 and 1000000 microseconds, got \(profileIntervalMicroseconds)")
        }
    }
}

/// A virtio-net device backed by a host TAP interface (`--net tap=NAME[,mac=MAC][,drop=PERCENT]`).
public struct NetConfig: Equatable, Sendable {
    /// The TAP interface, created if it does not exist (at most 15 bytes).
    public var tapName: String
    /// The guest's MAC address; nil for ``MACAddress/local(index:)`` with index 1.
    public var mac: MACAddress?
    /// Percent of frames dropped on purpose in each direction (0-100), for loss tests.
    public var dropPercent: UInt8
    /// Microseconds the device's I/O thread keeps polling after it last found
    /// work (0-1000; 0, the default, turns busy polling off).
    public var pollMicroseconds: UInt32

    /// The most `poll=` takes: beyond a millisecond the thread would mostly spin for nothing.
    public static let maximumPollMicroseconds: UInt32 = 1000

    public init(tapName: String, mac: MACAddress? = nil, dropPercent: UInt8 = 0, pollMicroseconds: UInt32 = 0) {
        self.tapName = tapName
        self.mac = mac
        self.dropPercent = dropPercent
        self.pollMicroseconds = pollMicroseconds
    }

    /// Parses `tap=NAME[,mac=aa:bb:cc:dd:ee:ff][,drop=PERCENT][,poll=MICROSECONDS]`; errors are one line without the option name.
    public static func parse(_ text: String) throws(CommandLineOptions.UsageError) -> NetConfig {
        var tap: String?
        var mac: MACAddress?
        var drop: UInt8 = 0
        var poll: UInt32 = 0
        var seen: Set<String> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let equals = part.firstIndex(of: "=") else {
                throw .init("--net: '\(part)' is not KEY=VALUE: use tap=NAME[,mac=MAC][,drop=PERCENT][,poll=MICROSECONDS]")
            }
            let key = String(part[..<equals]), value = String(part[part.index(after: equals)...])
            guard seen.insert(key).inserted else { throw .init("--net: \(key)= given twice") }
            switch key {
            case "tap":
                guard !value.isEmpty else { throw .init("--net: tap= needs an interface name") }
                guard value.utf8.count <= 15 else {
                    throw .init("--net: TAP device name \(value) is longer than 15 bytes")
                }
                guard !value.contains("/"), value != ".", value != "..", !value.contains(where: { $0.isWhitespace }) else {
                    throw .init("--net: '\(value)' is not a valid interface name")
                }
                tap = value
            case "mac":
                guard let address = MACAddress(value) else {
                    throw .init("--net: mac must be six hexadecimal bytes like 52:54:00:12:34:56, got '\(value)'")
                }
                guard address.bytes[0] & 1 == 0 else { throw .init("--net: mac \(value) is a multicast address") }
                mac = address
            case "drop":
                guard let percent = UInt8(value), percent <= 100 else {
                    throw .init("--net: drop must be a whole percentage 0-100, got '\(value)'")
                }
                drop = percent
            case "poll":
                guard let microseconds = UInt32(value), microseconds <= maximumPollMicroseconds else {
                    throw .init("--net: poll must be a whole number of microseconds 0-\(maximumPollMicroseconds), got '\(value)'")
                }
                poll = microseconds
            default:
                throw .init("--net: unknown key '\(key)': use tap=NAME[,mac=MAC][,drop=PERCENT][,poll=MICROSECONDS]")
            }
        }
        guard let tap else { throw .init("--net: missing tap=NAME") }
        return NetConfig(tapName: tap, mac: mac, dropPercent: drop, pollMicroseconds: poll)
    }
}

/// Parsing and printing of sizes such as `128M`, `1G` or `134217728`.
public enum MemorySize {
    /// Why a size did not parse.
    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case notANumber(String)
        case unknownSuffix(String)
        case tooLarge(String)
        case zero

        public var description: String {
            switch self {
            case .empty: return "size is empty"
            case let .notANumber(text): return "'\(text)' is not a size: use bytes or a number with K, M, G or T (e.g. 128M)"
            case let .unknownSuffix(text): return "'\(text)' has an unknown unit: use K, M, G or T (powers of 1024)"
            case let .tooLarge(text): return "'\(text)' is too large"
            case .zero: return "size must be greater than zero"
            }
        }
    }

    /// Parses a size; units are powers of 1024 and may be written `M`, `MB`, `MiB` (any case).
    /// The result is rounded up to a whole 2 MiB, the granularity of the guest's memory.
    public static func parse(_ text: String) throws(ParseError) -> UInt64 {
        let bytes = try parseBytes(text)
        let granule: UInt64 = 2 << 20
        guard bytes <= UInt64.max - granule else { throw .tooLarge(text) }
        return (bytes + granule - 1) / granule * granule
    }

    /// The size as written, in bytes, before rounding: what an error message
    /// should quote back to the user.
    public static func parseBytes(_ text: String) throws(ParseError) -> UInt64 {
        let trimmed = text.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .empty }
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let number = UInt64(digits) else { throw .notANumber(text) }
        let unit = trimmed.dropFirst(digits.count).lowercased()
        let shift: UInt64
        switch unit {
        case "", "b": shift = 0
        case "k", "kb", "kib": shift = 10
        case "m", "mb", "mib": shift = 20
        case "g", "gb", "gib": shift = 30
        case "t", "tb", "tib": shift = 40
        default:
            if unit.first.map({ $0.isNumber || $0 == "." || $0 == "-" }) == true { throw .notANumber(text) }
            throw .unknownSuffix(text)
        }
        guard number > 0 else { throw .zero }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw .tooLarge(text) }
        return bytes
    }

    /// `128 MiB`, `1 GiB`, `1536 KiB`, or bytes.
    public static func format(_ bytes: UInt64) -> String {
        for (shift, unit) in [(UInt64(40), "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
            return "\(bytes >> shift) \(unit)"
        }
        return "\(bytes) bytes"
    }
}

extension String {
    func trimmingWhitespace() -> Substring {
        let scalars = self[...]
        let start = scalars.firstIndex { !$0.isWhitespace } ?? scalars.endIndex
        let end = scalars.lastIndex { !$0.isWhitespace }.map { scalars.index(after: $0) } ?? start
        return scalars[start..<end]
    }
}
