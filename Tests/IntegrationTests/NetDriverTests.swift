import Foundation
import XCTest

/// The kernel's virtio-net driver (Sources/ToroKernel/Drivers/Virtio) against
/// the real device on a TAP interface: `Tests/Guests/NetCheck` sends an ARP
/// request for the TAP's address and must print the host's reply.
///
/// Everything happens inside a network namespace the test creates and deletes:
/// the TAP interface (10.77.0.1/24, up) exists only there, so no frame can
/// reach the host's own network.
final class NetDriverTests: XCTestCase {
    func testArpRequestGetsTheHostsReply() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("NetCheck")
        guard geteuid() == 0 else { return try skip("not root: creating a network namespace and a TAP device needs root") }
        guard FileManager.default.fileExists(atPath: "/dev/net/tun") else { return try skip("/dev/net/tun is missing") }
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: FileManager.default.isExecutableFile)
        else { return try skip("the ip command is missing") }

        let namespace = "toro-drv-\(getpid())"
        let (added, addOutput) = try command(ip, ["netns", "add", namespace])
        guard added == 0 else { return try skip("cannot create network namespace \(namespace): \(addOutput)") }
        defer {
            let (deleted, output) = (try? command(ip, ["netns", "delete", namespace])) ?? (-1, "")
            XCTAssertEqual(deleted, 0, "network namespace \(namespace) was not deleted: \(output)")
        }
        for arguments in [
            ["tuntap", "add", "dev", "torotap1", "mode", "tap"],
            ["addr", "add", "10.77.0.1/24", "dev", "torotap1"],
            ["link", "set", "torotap1", "up"],
        ] {
            let (status, output) = try command(ip, ["-n", namespace] + arguments)
            guard status == 0 else { return try skip("ip \(arguments.joined(separator: " ")) failed: \(output)") }
        }

        let result = try runInNamespace(ip: ip, namespace: namespace, [
            image, "--cmdline", "sender=10.77.0.2 target=10.77.0.1", "--net", "tap=torotap1,mac=02:54:00:aa:bb:01",
        ])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("net: mac 02:54:00:aa:bb:01"), result.stdout)
        let (_, link) = try command(ip, ["-n", namespace, "-o", "link", "show", "torotap1"])
        let hostMAC = link.components(separatedBy: "link/ether ").dropFirst().first?.prefix(17) ?? "?"
        XCTAssertTrue(result.stdout.contains("net: arp reply from 10.77.0.1 is at \(hostMAC)"), result.stdout + "\n" + link)

        let devices = result.stats?["devices"] as? [[String: Any]] ?? []
        XCTAssertEqual(devices.count, 1, "\(result.stats ?? [:])")
        XCTAssertGreaterThanOrEqual(devices.first?.int("tx_frames") ?? 0, 1, "\(devices)")
        XCTAssertGreaterThanOrEqual(devices.first?.int("rx_frames") ?? 0, 1, "\(devices)")

        // Nobody answers for another address: a bounded wait, exit 1, one clear line.
        let silent = try runInNamespace(ip: ip, namespace: namespace, [
            image, "--cmdline", "target=10.77.0.9 wait=300", "--net", "tap=torotap1",
        ])
        XCTAssertEqual(silent.status, 1, silent.stdout + silent.stderr)
        XCTAssertTrue(silent.stdout.contains("net: FAIL: no arp reply from 10.77.0.9 within 300 ms"), silent.stdout)
    }

    /// The network stack (Sources/ToroKernel/Net) answers the host's ARP and
    /// ICMP echo: `Tests/Guests/Pinger` serves 10.77.0.2/24 while the host
    /// pings it from inside the namespace.
    func testPingGetsEchoReplies() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Pinger")
        guard geteuid() == 0 else { return try skip("not root: creating a network namespace and a TAP device needs root") }
        guard FileManager.default.fileExists(atPath: "/dev/net/tun") else { return try skip("/dev/net/tun is missing") }
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: FileManager.default.isExecutableFile)
        else { return try skip("the ip command is missing") }
        guard let ping = ["/usr/bin/ping", "/bin/ping", "/usr/sbin/ping", "/sbin/ping"].first(where: FileManager.default.isExecutableFile)
        else { return try skip("the ping command (iputils-ping) is missing") }

        let namespace = "toro-ping-\(getpid())"
        let (added, addOutput) = try command(ip, ["netns", "add", namespace])
        guard added == 0 else { return try skip("cannot create network namespace \(namespace): \(addOutput)") }
        defer {
            let (deleted, output) = (try? command(ip, ["netns", "delete", namespace])) ?? (-1, "")
            XCTAssertEqual(deleted, 0, "network namespace \(namespace) was not deleted: \(output)")
        }
        for arguments in [
            ["tuntap", "add", "dev", "torotap2", "mode", "tap"],
            ["addr", "add", "10.77.0.1/24", "dev", "torotap2"],
            ["link", "set", "torotap2", "up"],
        ] {
            let (status, output) = try command(ip, ["-n", namespace] + arguments)
            guard status == 0 else { return try skip("ip \(arguments.joined(separator: " ")) failed: \(output)") }
        }

        // The VM runs while the host pings, so its output is read as it comes.
        let vm = Process()
        vm.executableURL = URL(fileURLWithPath: ip)
        vm.arguments = ["netns", "exec", namespace, VMMHarness.binary.path, "run", image,
                        "--cmdline", "ip=10.77.0.2/24 seconds=8", "--net", "tap=torotap2,mac=02:54:00:aa:bb:02"]
        let out = Pipe()
        vm.standardOutput = out
        vm.standardError = out
        vm.standardInput = FileHandle.nullDevice
        let collected = Collected()
        let lock = NSLock()
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            lock.lock()
            collected.data.append(data)
            lock.unlock()
        }
        func output() -> String {
            lock.lock()
            defer { lock.unlock() }
            return String(decoding: collected.data, as: UTF8.self)
        }
        try vm.run()
        defer {
            if vm.isRunning {
                kill(vm.processIdentifier, SIGKILL)
                vm.waitUntilExit()
            }
            out.fileHandleForReading.readabilityHandler = nil
        }
        var deadline = Date().addingTimeInterval(20)
        while !output().contains("net: serving 10.77.0.2/24") && vm.isRunning && Date() < deadline { usleep(20_000) }
        guard output().contains("net: serving 10.77.0.2/24") else { return XCTFail("the guest never served:\n" + output()) }

        let (pinged, pingOutput) = try command(ip, ["netns", "exec", namespace, ping, "-c", "3", "-W", "2", "10.77.0.2"])
        XCTAssertEqual(pinged, 0, pingOutput)
        XCTAssertTrue(pingOutput.contains("3 packets transmitted, 3 received, 0% packet loss"), pingOutput)

        deadline = Date().addingTimeInterval(30)
        while vm.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(vm.isRunning, "the guest did not stop serving:\n" + output())
        if vm.isRunning { return }
        vm.waitUntilExit()
        usleep(100_000)  // the last bytes of output
        let text = output()
        XCTAssertEqual(vm.terminationStatus, 0, text)
        let replies = text.components(separatedBy: "echo_replies=").dropFirst().first
            .flatMap { Int($0.prefix(while: { $0.isNumber })) } ?? -1
        XCTAssertGreaterThanOrEqual(replies, 3, text)
    }

    // MARK: - Helpers

    func skip(_ reason: String) throws {
        print("SKIP: \(reason)")
        throw XCTSkip(reason)
    }

    /// Runs `toro-vmm run ARGS` as `ip netns exec NAMESPACE toro-vmm run ARGS`, with JSON statistics.
    func runInNamespace(ip: String, namespace: String, _ arguments: [String]) throws -> VMMHarness.Result {
        let wrapper = FileManager.default.temporaryDirectory.appendingPathComponent("toro-netns-\(UUID().uuidString).sh")
        let script = "#!/bin/sh\nexec '\(ip)' netns exec '\(namespace)' '\(VMMHarness.binary.path)' \"$@\"\n"
        try script.write(to: wrapper, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: wrapper) }
        chmod(wrapper.path, 0o755)
        return try VMMHarness.run(arguments, binary: wrapper)
    }

    /// Runs a host command to completion: its status and its output (both streams).
    func command(_ path: String, _ arguments: [String]) throws -> (Int32, String) {
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
