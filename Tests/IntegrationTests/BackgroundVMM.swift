import Foundation
import XCTest

/// A `toro-vmm run` that keeps running while the test talks to its guest:
/// started inside a test's network namespace, its output collected as it
/// comes, stopped by the guest's own exit or by a signal.
final class BackgroundVMM: @unchecked Sendable {
    let process = Process()
    let statsFile = FileManager.default.temporaryDirectory.appendingPathComponent("toro-stats-\(UUID().uuidString).json")
    private let pipe = Pipe()
    private let lock = NSLock()
    private var collected = Data()
    /// Set once the pipe reached its end: every byte the VMM wrote is in `collected`.
    private var ended = false

    /// Starts `toro-vmm run ARGUMENTS` in `namespace`, with JSON statistics to a file.
    init(in namespace: TestNetworkNamespace, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: namespace.ip)
        process.arguments = ["netns", "exec", namespace.name, VMMHarness.binary.path, "run"] + arguments
            + ["--stats", "json", "--stats-file", statsFile.path]
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }
            guard let self else { return }
            self.lock.lock()
            self.collected.append(data)
            if data.isEmpty { self.ended = true }
            self.lock.unlock()
        }
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        pipe.fileHandleForReading.readabilityHandler = nil
        try? FileManager.default.removeItem(at: statsFile)
    }

    /// Everything the VMM and its guest printed so far.
    var output: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: collected, as: UTF8.self)
    }

    /// Waits until the output contains `text`; false if the VMM stopped or `seconds` passed first.
    func waitFor(_ text: String, seconds: TimeInterval = 20) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if output.contains(text) { return true }
            if !process.isRunning { return output.contains(text) }
            usleep(20_000)
        }
        return output.contains(text)
    }

    /// Waits for the VMM to exit (sending `signal` first if given); its status,
    /// or nil if it was still running after `seconds` (then it is killed).
    func finish(signal: Int32? = nil, seconds: TimeInterval = 30) -> Int32? {
        if let signal, process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        process.waitUntilExit()
        // The last bytes of output: wait for the pipe's end rather than a while.
        let drained = Date().addingTimeInterval(10)
        while Date() < drained {
            lock.lock()
            let done = ended
            lock.unlock()
            if done { break }
            usleep(10_000)
        }
        return process.terminationStatus
    }

    /// The statistics document written at exit.
    var stats: [String: Any]? {
        guard let data = try? Data(contentsOf: statsFile) else { return nil }
        return try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    }

    /// The integer after `key=` in the output (the guest's `name=value` counters).
    func counter(_ key: String) -> Int? {
        output.components(separatedBy: " \(key)=").dropFirst().last.flatMap { Int($0.prefix(while: { $0.isNumber })) }
    }
}

extension BackgroundVMM {
    /// Boots Examples/WebServer at 10.77.0.2 on a fresh namespace's TAP
    /// (`net`: more `--net` parameters, such as ",drop=5") and waits until it
    /// listens; the test deletes the namespace when done.
    static func webServer(
        _ prefix: String, tap: String, cmdline: String, net: String = "", cpus: Int = 2, timeout: Int = 120
    ) throws -> (TestNetworkNamespace, BackgroundVMM) {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("WebServer")
        let namespace = try TestNetworkNamespace.open(prefix: prefix, tap: tap)
        do {
            let vm = try BackgroundVMM(
                in: namespace,
                [image, "--cpus", String(cpus), "--cmdline", "ip=10.77.0.2/24 " + cmdline, "--net", "tap=\(tap)" + net,
                 "--timeout", String(timeout)])
            guard vm.waitFor("webserver: http://10.77.0.2:80/") else {
                namespace.delete()
                XCTFail("the server never listened:\n" + vm.output)
                throw XCTSkip("no server")
            }
            return (namespace, vm)
        } catch {
            namespace.delete()
            throw error
        }
    }
}
