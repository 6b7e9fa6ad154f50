import Foundation
import XCTest

/// Runs the real `toro-vmm` binary on real images, for the integration tests.
enum VMMHarness {
    /// The repository root, found from this file's path.
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `toro-vmm` next to the test bundle (the same build configuration), or `TORO_VMM` if set.
    static var binary: URL {
        if let override = ProcessInfo.processInfo.environment["TORO_VMM"] { return URL(fileURLWithPath: override) }
        let testBundle = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        return testBundle.deletingLastPathComponent().appendingPathComponent("toro-vmm")
    }

    /// An image built by `make images`.
    static func image(_ name: String) -> String {
        root.appendingPathComponent(".build/images/\(name).elf").path
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        /// The `--stats json` document, when the run wrote one.
        var stats: [String: Any]?

        var vcpus: [[String: Any]] { stats?["vcpus"] as? [[String: Any]] ?? [] }
    }

    /// Skips the calling test, with the reason printed, where KVM cannot run a guest.
    static func requireKVM() throws {
        guard FileManager.default.fileExists(atPath: "/dev/kvm") else {
            print("SKIP: /dev/kvm is missing: integration tests need KVM")
            throw XCTSkip("/dev/kvm is missing: integration tests need KVM")
        }
        guard access("/dev/kvm", R_OK | W_OK) == 0 else {
            print("SKIP: /dev/kvm is not readable and writable by this user")
            throw XCTSkip("/dev/kvm is not readable and writable by this user")
        }
    }

    /// Whether /dev/kvm is the kvm_pvm back end, which offers `--mode native`
    /// and `--mode emulated` (hardware KVM offers neither).
    static var isPVMHost: Bool {
        FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm")
    }

    /// Skips the calling test, with the reason printed, unless KVM is kvm_pvm.
    static func requirePVM() throws {
        try requireKVM()
        guard isPVMHost else {
            print("SKIP: KVM is not the kvm_pvm back end: --mode native and --mode emulated exist only there")
            throw XCTSkip("KVM is not the kvm_pvm back end")
        }
    }

    /// Fails (not skips) when an image is missing: `make test` builds them first.
    static func requireImage(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let path = image(name)
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("\(path) is missing: build the images with `make images`", file: file, line: line)
            throw XCTSkip("missing image")
        }
        guard FileManager.default.isExecutableFile(atPath: binary.path) else {
            XCTFail("\(binary.path) is missing: run `swift build` first", file: file, line: line)
            throw XCTSkip("missing binary")
        }
        return path
    }

    /// A signal for the harness to send once the guest has printed `text`
    /// (and `delay` seconds more have passed): tied to what the guest did, not
    /// to a guess of how long the host takes to start it.
    struct SignalAfterOutput {
        var signal: Int32
        var text: String
        var delay: TimeInterval = 0
    }

    /// Runs `toro-vmm run ARGS` with JSON statistics in a temporary file; kills it after `limit` seconds.
    /// `binary` replaces toro-vmm with a wrapper that takes the same arguments; `command` replaces `run`.
    static func run(_ arguments: [String], stats: Bool = true, limit: TimeInterval = 30, binary: URL? = nil,
                    command: [String] = ["run"], signal: SignalAfterOutput? = nil) throws -> Result {
        let process = Process()
        process.executableURL = binary ?? VMMHarness.binary
        let statsFile = FileManager.default.temporaryDirectory.appendingPathComponent("toro-stats-\(UUID().uuidString).json")
        var args = command + arguments
        if stats { args += ["--stats", "json", "--stats-file", statsFile.path] }
        process.arguments = args
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Drain both pipes while the process runs, so a chatty guest cannot block
        // on a full pipe; what arrived so far can be looked at meanwhile.
        let outData = Collected(), errData = Collected()
        let group = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            group.enter()
            DispatchQueue.global().async {
                while true {
                    let chunk = pipe.fileHandleForReading.availableData
                    if chunk.isEmpty { break }
                    sink.append(chunk)
                }
                group.leave()
            }
        }
        let deadline = Date().addingTimeInterval(limit)
        var signalAt: Date?
        var signalled = false
        while process.isRunning && Date() < deadline {
            if let signal, !signalled {
                if signalAt == nil, outData.text.contains(signal.text) { signalAt = Date().addingTimeInterval(signal.delay) }
                if let at = signalAt, Date() >= at {
                    kill(process.processIdentifier, signal.signal)
                    signalled = true
                }
            }
            usleep(10_000)
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTFail("toro-vmm \(args.joined(separator: " ")) was still running after \(limit) s")
        }
        process.waitUntilExit()
        group.wait()
        if let signal, !signalled {
            XCTFail("the guest never printed '\(signal.text)', so signal \(signal.signal) was not sent")
        }
        defer { try? FileManager.default.removeItem(at: statsFile) }
        var document: [String: Any]?
        if stats, let data = try? Data(contentsOf: statsFile) {
            document = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
        return Result(status: process.terminationStatus, stdout: outData.text, stderr: errData.text, stats: document)
    }
}

/// Bytes read from a pipe on another thread, as they come.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ chunk: Data) {
        lock.lock()
        data.append(chunk)
        lock.unlock()
    }

    var text: String {
        lock.lock()
        defer { lock.unlock() }
        return String(decoding: data, as: UTF8.self)
    }
}

extension Dictionary where Key == String, Value == Any {
    /// An integer field of a statistics object (JSON numbers arrive as Int or Double).
    func int(_ key: String) -> Int? {
        if let value = self[key] as? Int { return value }
        if let value = self[key] as? Double { return Int(value) }
        return nil
    }
}
