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
func report(_ statistics: RunStatistics, _ options: CommandLineOptions) -> Bool {
    let text: String
    switch options.stats {
    case .none: return true
    case .text: text = StatisticsFormat.text(statistics)
    case .json: text = StatisticsFormat.json(statistics)
    }
    guard let path = options.statsFile else { return write(text, to: STDERR_FILENO) }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
        writeError("toro-vmm: cannot write statistics to \(path): \(String(cString: strerror(errno)))")
        return false
    }
    defer { close(fd) }
    guard write(text, to: fd) else {
        writeError("toro-vmm: cannot write statistics to \(path): \(String(cString: strerror(errno)))")
        return false
    }
    return true
}

let options: CommandLineOptions
do {
    options = try CommandLineOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    writeError("toro-vmm: \(error)\nUsage: toro-vmm run IMAGE [options]; see 'toro-vmm --help'")
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
    let statistics: RunStatistics
    do {
        statistics = try Machine(config: config, startNanoseconds: start).run { sample in
            writeError(StatisticsFormat.sampleLine(sample))
        }
    } catch {
        writeError("toro-vmm: \(error)")
        exit(ExitStatus.setupFailed)
    }
    switch statistics.stopReason {
    case let .guestCrashed(_, report): writeError("toro-vmm: \(report)")
    case let .timeout(seconds): writeError("toro-vmm: guest still running after --timeout \(seconds) s; stopped")
    case let .internalError(text): writeError("toro-vmm: \(text)")
    default: break
    }
    guard report(statistics, options) else { exit(ExitStatus.internalError) }
    exit(statistics.stopReason.exitStatus)
}
