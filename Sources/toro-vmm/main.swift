// toro-vmm: boots a Toro kernel image on KVM and reports what each vCPU cost.
// Everything but argument handling and the process exit lives in ToroVMM.
import Glibc
import ToroVMM

let start = Clock.monotonicNanoseconds()

func write(_ text: String, to fd: Int32) -> Bool {
    var bytes = Array(text.utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return false }
        bytes = bytes.dropFirst(written)
    }
    return true
}

/// Prints the statistics where the options say; false if they could not be written.
func report(_ statistics: RunStatistics, _ options: CommandLineOptions, to file: OutputFile?) -> Bool {
    let text: String
    switch options.stats {
    case .none: return true
    case .text: text = StatisticsFormat.text(statistics)
    case .json: text = StatisticsFormat.json(statistics)
    }
    guard let file else { return write(text, to: STDERR_FILENO) }
    if let failure = file.write(text) {
        writeError("toro-vmm: \(failure)")
        return false
    }
    return true
}

let options: CommandLineOptions
do {
    options = try CommandLineOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    // One line, as every error: what is wrong, then where the usage is.
    writeError("toro-vmm: \(error) (see 'toro-vmm --help')")
    exit(ExitStatus.usage)
}

switch options.action {
case .help:
    _ = write(CommandLineOptions.usage, to: STDOUT_FILENO)
    exit(0)
case .version:
    _ = write("toro-vmm \(CommandLineOptions.version)\n", to: STDOUT_FILENO)
    exit(0)
case let .run(config):
    // Opened before the guest starts: a path that cannot be written must not cost a whole run.
    var statsFile: OutputFile?
    if let path = options.statsFile {
        do { statsFile = try OutputFile(path: path, contents: "statistics") } catch {
            writeError("toro-vmm: \(error)")
            exit(ExitStatus.setupFailed)
        }
    }
    let statistics: RunStatistics
    do {
        statistics = try Machine(config: config, startNanoseconds: start).run { sample in
            writeError(StatisticsFormat.sampleLine(sample))
        }
    } catch {
        writeError("toro-vmm: \(error)")
        statsFile?.discard()
        exit(ExitStatus.setupFailed)
    }
    switch statistics.stopReason {
    case let .guestCrashed(_, report): writeError("toro-vmm: \(report)")
    case let .timeout(seconds): writeError("toro-vmm: guest still running after --timeout \(seconds) s; stopped")
    case let .internalError(text): writeError("toro-vmm: \(text)")
    default: break
    }
    guard report(statistics, options, to: statsFile) else { exit(ExitStatus.internalError) }
    exit(statistics.stopReason.exitStatus)
}
