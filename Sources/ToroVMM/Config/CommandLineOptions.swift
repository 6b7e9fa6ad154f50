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

    public static let usage = """
        USAGE: toro-vmm run IMAGE [--cpus N] [--memory SIZE] [--cmdline STRING]
                               [--stats text|json|none] [--stats-file PATH] [--stats-interval SECONDS]
                               [--timeout SECONDS] [--halt-poll-ns N] [--mode auto|native|emulated]
                               [--net tap=NAME[,mac=MAC][,drop=PERCENT]]
                               [--profile FILE] [--profile-interval MICROSECONDS]

        Boot IMAGE, an ELF64 x86-64 Toro kernel, on KVM and report what each vCPU cost.

        OPTIONS:
          --cpus N            number of vCPUs, 1-\(BootLayout.maxCPUs) (default 1)
          --memory SIZE       guest RAM: bytes or a number with K, M, G (default 128M); rounded up to 2 MiB
          --cmdline STRING    the kernel command line (default empty)
          --stats FORMAT      statistics at exit: text (a table on stderr), json, or none (default text)
          --stats-file PATH   write the statistics to PATH instead of stderr
          --stats-interval S  also print one line of live statistics every S seconds (stderr), and keep
                              them as the time series "samples" in the JSON statistics
          --timeout SECONDS   stop the VM after SECONDS (exit status 124)
          --halt-poll-ns N    how long KVM polls after a guest HLT before it sleeps the vCPU thread
                              (KVM_CAP_HALT_POLL; 0 turns polling off; default: the host's setting)
          --mode MODE         how KVM runs the guest: auto (default: native where the host is kvm_pvm
                              and offers its native opt-in, otherwise what KVM does), native (that
                              opt-in; an error elsewhere) or emulated (kvm_pvm's instruction emulator,
                              which counts every guest instruction; an error elsewhere)
          --net tap=NAME[,mac=MAC][,drop=PERCENT]
                              a virtio-net device (virtio-mmio at 0xd1000000, GSI 5) whose frames go to
                              host TAP interface NAME, created if missing (needs CAP_NET_ADMIN); MAC
                              defaults to 52:54:00:12:34:01; drop= loses PERCENT of frames on purpose
          --profile FILE      sample each vCPU's RIP and write the hottest guest functions and addresses
                              to FILE at exit ('-' for stderr); halted samples are counted apart
          --profile-interval US
                              microseconds between samples, 100-1000000 (default 1000); each sample
                              is a VM exit (~15 us here), so 1 kHz costs the guest about 1.5%
          -h, --help          show this help
          --version           show the version

        EXIT STATUS:
          0-255  the guest's own status, written to its exit port
          2      the VM could not be set up (KVM, image, memory, TAP device)
          64     bad command-line usage
          124    --timeout expired
          125    the guest crashed (triple fault, emulation failure, bad exit status)
          126    toro-vmm failed while the guest ran
          130    stopped by SIGINT
          143    stopped by SIGTERM

        """

    /// Parses the arguments after the program name.
    public static func parse(_ arguments: [String]) throws(UsageError) -> CommandLineOptions {
        var rest = arguments[...]
        guard let first = rest.popFirst() else { throw UsageError("missing command: try 'toro-vmm run IMAGE' or 'toro-vmm --help'") }
        switch first {
        case "-h", "--help", "help": return CommandLineOptions(action: .help)
        case "--version": return CommandLineOptions(action: .version)
        case "run": break
        default:
            if first.hasPrefix("-") { throw UsageError("unknown option '\(first)'") }
            throw UsageError("unknown command '\(first)': the command is 'run'")
        }

        var image: String?
        var options = CommandLineOptions(action: .help)
        var config = MachineConfig(imagePath: "")
        var seen: Set<String> = []
        while let argument = rest.popFirst() {
            if argument == "-h" || argument == "--help" { return CommandLineOptions(action: .help) }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                guard image == nil else { throw UsageError("unexpected argument '\(argument)': only one IMAGE") }
                image = argument
                continue
            }
            // --name=value or --name value
            var name = String(argument.dropFirst(2))
            var inlineValue: String?
            if let equals = name.firstIndex(of: "=") {
                inlineValue = String(name[name.index(after: equals)...])
                name = String(name[..<equals])
            }
            guard ["cpus", "memory", "cmdline", "stats", "stats-file", "stats-interval", "timeout", "halt-poll-ns", "net",
                  "profile", "mode", "profile-interval"].contains(name) else {
                throw UsageError("unknown option '--\(name)'")
            }
            guard seen.insert(name).inserted else { throw UsageError("--\(name) given twice") }
            guard let value = inlineValue ?? rest.popFirst() else { throw UsageError("--\(name) needs a value") }
            switch name {
            case "cpus":
                guard let cpus = Int(value) else { throw UsageError("--cpus must be a whole number, got '\(value)'") }
                config.cpus = cpus
            case "memory":
                do { config.memory = try MemorySize.parse(value) } catch { throw UsageError("--memory: \(error)") }
            case "cmdline":
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
                config.statsInterval = seconds
            case "halt-poll-ns":
                guard let nanoseconds = UInt64(value) else {
                    throw UsageError("--halt-poll-ns must be a whole number of nanoseconds, got '\(value)'")
                }
                config.haltPollNanoseconds = nanoseconds
            case "net":
                config.net = try NetConfig.parse(value)
            case "mode":
                guard let mode = ModeRequest(rawValue: value) else {
                    throw UsageError("--mode must be auto, native or emulated, got '\(value)'")
                }
                config.mode = mode
            case "profile":
                guard !value.isEmpty else { throw UsageError("--profile needs a file name, or - for stderr") }
                config.profilePath = value
            case "profile-interval":
                guard let microseconds = Int(value) else {
                    throw UsageError("--profile-interval must be a whole number of microseconds, got '\(value)'")
                }
                config.profileIntervalMicroseconds = microseconds
            default:  // timeout
                guard let seconds = Double(value) else { throw UsageError("--timeout must be a number of seconds, got '\(value)'") }
                config.timeout = seconds
            }
        }
        guard let image else { throw UsageError("missing IMAGE: toro-vmm run IMAGE") }
        if seen.contains("profile-interval") && config.profilePath == nil {
            throw UsageError("--profile-interval needs --profile FILE")
        }
        config.imagePath = image
        do { try config.validate() } catch { throw UsageError(error.description) }
        options.action = .run(config)
        return options
    }
}
