/// `toro-vmm`'s command line, parsed without any dependency.
///
/// The parser is hand-written because start-up time is part of what toro-vmm
/// measures: a general-purpose argument library and the Foundation it pulls in
/// cost about 5 ms per run on this project's test host, more than the whole
/// VMM's own set-up.
public struct CommandLineOptions: Equatable, Sendable {
    /// What the user asked for.
    public enum Action: Equatable, Sendable {
        case run(MachineConfig)
        case help
        case version
    }

    public enum StatsFormat: String, Equatable, Sendable, CaseIterable {
        case text, json, none
    }

    public var action: Action
    public var stats: StatsFormat = .text
    public var statsFile: String?

    /// A usage error; the description is the one line shown to the user.
    public struct UsageError: Error, Equatable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    public static let version = "0.1.0"

    /// Every option of `run` that takes a value, without its leading `--`.
    static let valueOptions = [
        "cpus", "memory", "cmdline", "stats", "stats-file", "stats-interval", "timeout", "halt-poll-ns", "mode", "net",
        "profile", "profile-interval",
    ]

    /// The help text. Every limit README's option table states is stated here
    /// too, from the same constants the parser checks against.
    public static let usage = """
        USAGE: toro-vmm run IMAGE [--cpus N] [--memory SIZE] [--cmdline STRING]
                               [--stats text|json|none] [--stats-file PATH] [--stats-interval SECONDS]
                               [--timeout SECONDS] [--halt-poll-ns N] [--mode auto|native|emulated]
                               [--net tap=NAME[,mac=MAC][,drop=PERCENT][,poll=MICROSECONDS]]
                               [--profile FILE] [--profile-interval MICROSECONDS]
               toro-vmm --help | --version

        Boot IMAGE, an ELF64 x86-64 Toro kernel, on KVM and report what each vCPU cost.
        Options go after IMAGE or before it; '--' ends them (for an IMAGE whose name starts with '-').

        OPTIONS:
          --cpus N            number of vCPUs, 1-\(BootLayout.maxCPUs) (default 1)
          --memory SIZE       guest RAM: bytes or a number with K, M, G or T (powers of 1024), rounded
                              up to 2 MiB; \(MemorySize.format(MachineConfig.minimumMemory)) to \(MemorySize.format(MachineConfig.maximumMemory)) (default 128M)
          --cmdline STRING    the kernel command line, up to \(MachineConfig.maxCommandLineBytes) bytes (default empty)
          --stats FORMAT      statistics at exit: text (a table on stderr), json, or none (default text)
          --stats-file PATH   write the statistics to PATH instead of stderr; PATH is opened before the
                              guest starts (not with --stats none)
          --stats-interval S  also print one line of live statistics every S seconds (stderr), at least
                              0.01 and at most \(Int(MachineConfig.statsIntervalRange.upperBound)), and keep them as the time series "samples"
                              in the JSON statistics
          --timeout SECONDS   stop the VM after SECONDS, more than 0 and at most \(Int(MachineConfig.maxTimeout))
                              (exit status 124)
          --halt-poll-ns N    how long KVM polls after a guest HLT before it sleeps the vCPU thread, at
                              most \(MachineConfig.maxHaltPollNanoseconds) (1 s; KVM_CAP_HALT_POLL; 0 turns polling off;
                              default: the host's setting)
          --mode MODE         how KVM runs the guest: auto (default: native where the host is kvm_pvm
                              and offers its native opt-in, otherwise what KVM does), native (that
                              opt-in; an error elsewhere) or emulated (kvm_pvm's instruction emulator,
                              which counts every guest instruction; an error elsewhere)
          --net tap=NAME[,mac=MAC][,drop=PERCENT][,poll=MICROSECONDS]
                              a virtio-net device (virtio-mmio at 0xd1000000, GSI 5) whose frames go to
                              host TAP interface NAME (at most 15 bytes), created if missing (needs
                              CAP_NET_ADMIN); MAC defaults to 52:54:00:12:34:01; drop= loses PERCENT
                              (0-100) of the frames each way on purpose; poll= keeps the device's I/O
                              thread polling for up to \(NetConfig.maximumPollMicroseconds) microseconds after it last found work,
                              so that the guest need not notify it (default 0: off)
          --profile FILE      sample each vCPU's RIP and write the hottest guest functions and addresses
                              to FILE at exit ('-' for stderr); halted samples are counted apart
          --profile-interval US
                              microseconds between samples, \(MachineConfig.profileIntervalRange.lowerBound)-\(MachineConfig.profileIntervalRange.upperBound) (default \(MachineConfig.defaultProfileInterval)); each
                              sample is a VM exit (15-40 us on kvm_pvm), so 1 kHz costs the guest 1.5-4%
          -h, --help          show this help
          --version           show the version

        EXIT STATUS:
          0-255  the guest's own status, written to its exit port
          2      the VM could not be set up (KVM, image, memory, TAP device, --stats-file or
                 --profile file not writable)
          64     bad command-line usage
          124    --timeout expired
          125    the guest crashed (triple fault, emulation failure, bad exit status)
          126    toro-vmm failed while the guest ran, or could not write the statistics at exit
          130    stopped by SIGINT
          143    stopped by SIGTERM

        """

    /// Parses the arguments after the program name.
    public static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineOptions {
        var rest = arguments[...]
        guard let first = rest.popFirst() else { throw UsageError("missing command: toro-vmm run IMAGE") }
        switch first {
        case "-h", "--help", "help": return CommandLineOptions(action: .help)
        case "--version": return CommandLineOptions(action: .version)
        case "run": break
        default:
            if let name = optionName(first), valueOptions.contains(name) {
                throw UsageError("--\(name) goes after the command: toro-vmm run IMAGE --\(name) ...")
            }
            if first.hasPrefix("-") { throw UsageError("unknown option '\(first)'") }
            throw UsageError("unknown command '\(first)': the command is 'run'")
        }

        var image: String?
        var options = CommandLineOptions(action: .help)
        var config = MachineConfig(imagePath: "")
        var seen: Set<String> = []
        var optionsEnded = false
        while let argument = rest.popFirst() {
            if !optionsEnded {
                if argument == "--" {
                    optionsEnded = true
                    continue
                }
                if argument == "-h" || argument == "--help" { return CommandLineOptions(action: .help) }
                if argument == "--version" { return CommandLineOptions(action: .version) }
            }
            guard !optionsEnded, argument.hasPrefix("-") else {
                if let image {
                    throw UsageError("unexpected argument '\(argument)': IMAGE is already '\(image)', and run takes one")
                }
                image = argument
                continue
            }
            // --name=value or --name value
            guard let name = optionName(argument), valueOptions.contains(name) else {
                throw UsageError("unknown option '\(argument.split(separator: "=", maxSplits: 1).first ?? "")'")
            }
            var value: String
            if let equals = argument.firstIndex(of: "=") {
                value = String(argument[argument.index(after: equals)...])
            } else {
                // The next argument is the value, unless it is another option: then this one's value was forgotten.
                guard let next = rest.first, !(optionName(next).map(valueOptions.contains) ?? false) else {
                    throw UsageError("--\(name) needs a value")
                }
                value = next
                rest.removeFirst()
            }
            guard seen.insert(name).inserted else { throw UsageError("--\(name) given twice") }
            try apply(name, value, to: &config, &options)
        }
        guard let image else { throw UsageError("missing IMAGE: toro-vmm run IMAGE") }
        if seen.contains("profile-interval") && config.profilePath == nil {
            throw UsageError("--profile-interval needs --profile FILE")
        }
        if options.statsFile != nil && options.stats == .none {
            throw UsageError("--stats-file has nothing to write with --stats none")
        }
        config.imagePath = image
        do { try config.validate() } catch { throw UsageError(error.description) }
        options.action = .run(config)
        return options
    }

    /// `cpus` for `--cpus` or `--cpus=4`; nil for anything that is not a long option.
    static func optionName(_ argument: String) -> String? {
        guard argument.hasPrefix("--"), argument.count > 2 else { return nil }
        return String(argument.dropFirst(2).prefix { $0 != "=" })
    }

    /// Checks one option's value and stores it. Range errors quote the value as
    /// the user wrote it (`1K`, not the 2 MiB it would round up to).
    static func apply(_ name: String, _ value: String, to config: inout MachineConfig,
                      _ options: inout CommandLineOptions) throws(UsageError) {
        switch name {
        case "cpus":
            guard let cpus = Int(value) else { throw UsageError("--cpus must be a whole number, got '\(value)'") }
            guard (1...BootLayout.maxCPUs).contains(cpus) else {
                throw UsageError("--cpus must be between 1 and \(BootLayout.maxCPUs), got \(value)")
            }
            config.cpus = cpus
        case "memory":
            let bytes: UInt64
            do { bytes = try MemorySize.parseBytes(value) } catch { throw UsageError("--memory: \(error)") }
            guard bytes >= MachineConfig.minimumMemory else {
                throw UsageError("--memory must be at least \(MemorySize.format(MachineConfig.minimumMemory)), got \(MemorySize.format(bytes))")
            }
            guard bytes <= MachineConfig.maximumMemory else {
                throw UsageError("--memory must be at most \(MemorySize.format(MachineConfig.maximumMemory)), got \(MemorySize.format(bytes))")
            }
            do { config.memory = try MemorySize.parse(value) } catch { throw UsageError("--memory: \(error)") }
        case "cmdline":
            guard value.utf8.count <= MachineConfig.maxCommandLineBytes else {
                throw UsageError("--cmdline is \(value.utf8.count) bytes long; at most \(MachineConfig.maxCommandLineBytes) fit")
            }
            config.commandLine = value
        case "stats":
            guard let format = StatsFormat(rawValue: value) else {
                throw UsageError("--stats must be text, json or none, got '\(value)'")
            }
            options.stats = format
        case "stats-file":
            guard !value.isEmpty else { throw UsageError("--stats-file needs a path") }
            options.statsFile = value
        case "stats-interval":
            guard let seconds = Double(value) else {
                throw UsageError("--stats-interval must be a number of seconds, got '\(value)'")
            }
            guard MachineConfig.statsIntervalRange.contains(seconds) else {
                throw UsageError("--stats-interval must be at least 0.01 and at most \(Int(MachineConfig.statsIntervalRange.upperBound)) seconds, got '\(value)'")
            }
            config.statsInterval = seconds
        case "mode":
            guard let mode = ModeRequest(rawValue: value) else {
                throw UsageError("--mode must be auto, native or emulated, got '\(value)'")
            }
            config.mode = mode
        case "timeout":
            guard let seconds = Double(value) else { throw UsageError("--timeout must be a number of seconds, got '\(value)'") }
            guard seconds > 0, seconds <= MachineConfig.maxTimeout else {
                throw UsageError("--timeout must be a positive number of seconds up to \(Int(MachineConfig.maxTimeout)), got '\(value)'")
            }
            config.timeout = seconds
        case "halt-poll-ns":
            guard let nanoseconds = UInt64(value) else {
                throw UsageError("--halt-poll-ns must be a whole number of nanoseconds, got '\(value)'")
            }
            guard nanoseconds <= MachineConfig.maxHaltPollNanoseconds else {
                throw UsageError("--halt-poll-ns must be at most \(MachineConfig.maxHaltPollNanoseconds) (1 s), got \(value)")
            }
            config.haltPollNanoseconds = nanoseconds
        case "net":
            config.net = try NetConfig.parse(value)
        case "profile":
            guard !value.isEmpty else { throw UsageError("--profile needs a file name, or - for stderr") }
            config.profilePath = value
        case "profile-interval":
            guard let microseconds = Int(value) else {
                throw UsageError("--profile-interval must be a whole number of microseconds, got '\(value)'")
            }
            guard MachineConfig.profileIntervalRange.contains(microseconds) else {
                throw UsageError("--profile-interval must be between \(MachineConfig.profileIntervalRange.lowerBound) and \(MachineConfig.profileIntervalRange.upperBound) microseconds, got \(value)")
            }
            config.profileIntervalMicroseconds = microseconds
        default:
            throw UsageError("unknown option '--\(name)'")
        }
    }
}
