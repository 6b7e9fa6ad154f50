import Foundation
import XCTest

/// A network namespace a test creates for itself, with an optional TAP device,
/// so that no frame of the test can reach the host's own network.
///
/// `open` skips the calling test, with the reason printed, where the host
/// cannot make one (not root, no /dev/net/tun, no `ip`). Call ``delete()``
/// in a `defer` right after creating it.
struct TestNetworkNamespace {
    let name: String
    /// The `ip` command.
    let ip: String

    /// Creates `toro-PREFIX-PID`; with `tap`, also a TAP device at 10.77.0.1/24, up.
    static func open(prefix: String, tap: String? = nil) throws -> TestNetworkNamespace {
        guard geteuid() == 0 else { return try skip("not root: creating a network namespace and a TAP device needs root") }
        guard FileManager.default.fileExists(atPath: "/dev/net/tun") else { return try skip("/dev/net/tun is missing") }
        guard let ip = executable(["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]) else {
            return try skip("the ip command is missing")
        }
        let namespace = TestNetworkNamespace(name: "toro-\(prefix)-\(getpid())", ip: ip)
        let (added, output) = try command(ip, ["netns", "add", namespace.name])
        guard added == 0 else { return try skip("cannot create network namespace \(namespace.name): \(output)") }
        guard let tap else { return namespace }
        for arguments in [
            ["tuntap", "add", "dev", tap, "mode", "tap"],
            ["addr", "add", "10.77.0.1/24", "dev", tap],
            ["link", "set", tap, "up"],
        ] {
            let (status, output) = try namespace.ip(arguments)
            guard status == 0 else {
                namespace.delete()
                return try skip("ip \(arguments.joined(separator: " ")) failed: \(output)")
            }
        }
        return namespace
    }

    /// Deletes the namespace and everything in it; a failure fails the test.
    func delete() {
        let (deleted, output) = (try? Self.command(ip, ["netns", "delete", name])) ?? (-1, "")
        XCTAssertEqual(deleted, 0, "network namespace \(name) was not deleted: \(output)")
    }

    /// `ip -n NAMESPACE ARGUMENTS`.
    func ip(_ arguments: [String]) throws -> (Int32, String) {
        try Self.command(ip, ["-n", name] + arguments)
    }

    /// Runs a host command inside the namespace to completion.
    func exec(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
        try Self.command(ip, ["netns", "exec", name, path] + arguments)
    }

    /// Starts a host command inside the namespace and returns at once (a
    /// client or server that runs alongside the VM); its output is discarded.
    /// Terminate it in a `defer`.
    func start(_ path: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ip)
        process.arguments = ["netns", "exec", name, path] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs `toro-vmm run ARGS` inside the namespace, with JSON statistics; killed
    /// (and the test failed) after `limit` seconds.
    func runVMM(_ arguments: [String], limit: TimeInterval = 30) throws -> VMMHarness.Result {
        // The harness runs one binary: go through a wrapper that enters the namespace.
        let wrapper = FileManager.default.temporaryDirectory.appendingPathComponent("toro-netns-\(UUID().uuidString).sh")
        let script = "#!/bin/sh\nexec '\(ip)' netns exec '\(name)' '\(VMMHarness.binary.path)' \"$@\"\n"
        try script.write(to: wrapper, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: wrapper) }
        chmod(wrapper.path, 0o755)
        return try VMMHarness.run(arguments, limit: limit, binary: wrapper)
    }

    /// Waits until `path` exists (a helper process creates it when it is
    /// ready); false after `seconds`. Readiness is then a fact, not a guess
    /// of how long the helper takes to start on a busy host.
    static func waitForFile(_ path: String, seconds: TimeInterval = 30) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: path) { return true }
            usleep(20_000)
        }
        return FileManager.default.fileExists(atPath: path)
    }

    /// The first of `paths` that is an executable file.
    static func executable(_ paths: [String]) -> String? {
        paths.first(where: FileManager.default.isExecutableFile)
    }

    /// python3's path, or a skip saying it is missing and what needed it.
    static func requirePython(_ neededFor: String) throws -> String {
        guard let python = executable(["/usr/bin/python3", "/bin/python3", "/usr/local/bin/python3"]) else {
            return try skip("python3 is missing: \(neededFor)")
        }
        return python
    }

    static func skip<T>(_ reason: String) throws -> T {
        print("SKIP: \(reason)")
        throw XCTSkip(reason)
    }

    /// Runs a host command to completion: its status and its output (both streams).
    static func command(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
