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

    /// Runs `toro-vmm run ARGS` with JSON statistics in a temporary file; kills it after `limit` seconds.
    /// `binary` replaces toro-vmm with a wrapper that takes the same arguments; `command` replaces `run`.
    static func run(_ arguments: [String], stats: Bool = true, limit: TimeInterval = 30, binary: URL? = nil,
                    command: [String] = ["run"], afterStart: ((Process) -> Void)? = nil) throws -> Result {
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
        // Drain both pipes while the process runs, so a chatty guest cannot block on a full pipe.
        let outData = Collected(), errData = Collected()
        let group = DispatchGroup()
        for (pipe, sink) in [(out, outData), (err, errData)] {
            group.enter()
            DispatchQueue.global().async {
                sink.data = pipe.fileHandleForReading.readDataToEndOfFile()
                group.leave()
            }
        }
        afterStart?(process)
        let deadline = Date().addingTimeInterval(limit)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            XCTFail("toro-vmm \(args.joined(separator: " ")) was still running after \(limit) s")
        }
        process.waitUntilExit()
        group.wait()
        defer { try? FileManager.default.removeItem(at: statsFile) }
        var document: [String: Any]?
        if stats, let data = try? Data(contentsOf: statsFile) {
            document = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        }
        return Result(status: process.terminationStatus, stdout: String(decoding: outData.data, as: UTF8.self),
                      stderr: String(decoding: errData.data, as: UTF8.self), stats: document)
    }
}

/// Bytes read from a pipe on another thread; read only after the group finished.
final class Collected: @unchecked Sendable {
    var data = Data()
}

extension Dictionary where Key == String, Value == Any {
    /// An integer field of a statistics object (JSON numbers arrive as Int or Double).
    func int(_ key: String) -> Int? {
        if let value = self[key] as? Int { return value }
        if let value = self[key] as? Double { return Int(value) }
        return nil
    }
}
