import ArgumentParser
import Glibc
import ToroVMM

/// `toro-vmm`: boots a Toro kernel image on KVM and reports what each vCPU cost.
@main
struct ToroVMMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toro-vmm",
        abstract: "Boot a Toro for Swift kernel on KVM and measure what it costs while it runs and while it idles.",
        subcommands: [Run.self],
        defaultSubcommand: Run.self)
}

/// `--stats` formats.
enum StatsFormatOption: String, ExpressibleByArgument, CaseIterable {
    case text, json, none
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Boot IMAGE (an ELF64 x86-64 Toro kernel) and run it until it exits.",
        discussion: """
            Exit status: the guest's own status (0-255) when it exits through the exit port; \
            2 when the VM cannot be set up; 64 for bad usage; 124 after --timeout; \
            125 when the guest crashes; 126 when toro-vmm fails; 130/143 after SIGINT/SIGTERM.
            """)

    @Argument(help: "The kernel image to boot (ELF64, x86-64, ET_EXEC).")
    var image: String

    @Option(help: "Number of vCPUs (1-\(BootLayout.maxCPUs)).")
    var cpus: Int = 1

    @Option(help: "Guest RAM: bytes or a number with K, M, G (e.g. 128M, 1G); rounded up to 2 MiB.")
    var memory: String = "128M"

    @Option(help: "The kernel command line.")
    var cmdline: String = ""

    @Option(help: "Statistics printed at exit: text (a table on stderr), json, or none.")
    var stats: StatsFormatOption = .text

    @Option(help: "Write the statistics to this file instead of stderr.")
    var statsFile: String?

    @Option(help: "Stop the VM after this many seconds (exit status 124).")
    var timeout: Double?

    /// The configuration these options describe; bad values are usage errors (exit 64).
    func machineConfig() throws -> MachineConfig {
        var config = MachineConfig(imagePath: image)
        config.cpus = cpus
        config.commandLine = cmdline
        config.timeout = timeout
        do {
            config.memory = try MemorySize.parse(memory)
        } catch {
            throw ValidationError("--memory: \(error)")
        }
        do {
            try config.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return config
    }

    func validate() throws {
        _ = try machineConfig()
    }

    func run() throws {
        let start = Clock.monotonicNanoseconds()
        let config = try machineConfig()
        let statistics: RunStatistics
        do {
            let machine = try Machine(config: config, startNanoseconds: start)
            statistics = try machine.run()
        } catch {
            writeError("toro-vmm: \(error)")
            throw ExitCode(ExitStatus.setupFailed)
        }
        if case let .guestCrashed(_, report) = statistics.stopReason {
            writeError("toro-vmm: \(report)")
        }
        switch statistics.stopReason {
        case let .timeout(seconds): writeError("toro-vmm: guest still running after \(seconds) s; stopped (--timeout)")
        case let .internalError(text): writeError("toro-vmm: \(text)")
        default: break
        }
        try report(statistics)
        throw ExitCode(statistics.stopReason.exitStatus)
    }

    func report(_ statistics: RunStatistics) throws {
        let text: String
        switch stats {
        case .none: return
        case .text: text = StatisticsFormat.text(statistics)
        case .json: text = StatisticsFormat.json(statistics)
        }
        guard let statsFile else { return writeError(text) }
        let fd = open(statsFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            writeError("toro-vmm: cannot write statistics to \(statsFile): \(String(cString: strerror(errno)))")
            throw ExitCode(ExitStatus.internalError)
        }
        defer { close(fd) }
        var remaining = Array(text.utf8)[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written > 0 else {
                writeError("toro-vmm: cannot write statistics to \(statsFile): \(String(cString: strerror(errno)))")
                throw ExitCode(ExitStatus.internalError)
            }
            remaining = remaining.dropFirst(written)
        }
    }
}
