import Foundation
import XCTest

/// `--net`: the virtio-net device on a TAP interface, seen from a real guest.
///
/// The TAP test runs toro-vmm inside a network namespace of its own, created and
/// deleted by the test, so the interface never exists in the host's namespace and
/// no frame can leave it (the interface is not even brought up).
final class NetDeviceTests: XCTestCase {
    func testUncreatableTapNameIsAClearUsageError() throws {
        let image = try VMMHarness.requireImage("Misbehave")
        let result = try VMMHarness.run(
            [image, "--cmdline", "mode=virtio-probe", "--net", "tap=a-name-much-too-long-for-linux"], stats: false)
        XCTAssertTrue(result.status == 64 || result.status == 2, "status \(result.status): \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("--net: TAP device name a-name-much-too-long-for-linux is longer than 15 bytes"),
                      result.stderr)
        XCTAssertFalse(result.stdout.contains("virtio:"), "the guest must not run: \(result.stdout)")
    }

    func testGuestSeesTheDeviceInANetworkNamespace() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        guard geteuid() == 0 else { return try skip("not root: creating a network namespace and a TAP device needs root") }
        guard FileManager.default.fileExists(atPath: "/dev/net/tun") else { return try skip("/dev/net/tun is missing") }
        guard let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first(where: FileManager.default.isExecutableFile)
        else { return try skip("the ip command is missing") }

        let namespace = "toro-test-\(getpid())"
        let (added, addOutput) = try command(ip, ["netns", "add", namespace])
        guard added == 0 else { return try skip("cannot create network namespace \(namespace): \(addOutput)") }
        defer {
            let (deleted, output) = (try? command(ip, ["netns", "delete", namespace])) ?? (-1, "")
            XCTAssertEqual(deleted, 0, "network namespace \(namespace) was not deleted: \(output)")
        }

        // `ip netns exec NS toro-vmm ...`: the harness runs TORO_VMM, so go through a wrapper.
        let result = try runInNamespace(ip: ip, namespace: namespace, [
            image, "--cmdline", "mode=virtio-probe", "--net", "tap=torotap0,mac=02:54:00:aa:bb:cc",
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("virtio: magic 0x74726976 version 2 device 1"), result.stdout)
        XCTAssertTrue(result.stdout.contains("virtio: mac 02:54:00:aa:bb:cc"), result.stdout)
        let devices = result.stats?["devices"] as? [[String: Any]] ?? []
        XCTAssertEqual(devices.count, 1, "\(result.stats ?? [:])")
        XCTAssertEqual(devices.first?["type"] as? String, "virtio-net")
        XCTAssertEqual(devices.first?["backend"] as? String, "tap:torotap0")
        XCTAssertEqual(devices.first?["mac"] as? String, "02:54:00:aa:bb:cc")
        XCTAssertEqual(devices.first?.int("base"), 0xD100_0000)
        XCTAssertEqual(devices.first?.int("irq"), 5)
        XCTAssertEqual(devices.first?.int("tx_frames"), 0)

        // The plain MMIO hole stays unclaimed with the device present.
        let stray = try runInNamespace(ip: ip, namespace: namespace, [image, "--cmdline", "mode=stray-io", "--net", "tap=torotap0"])
        XCTAssertEqual(stray.status, 0, stray.stderr)
        XCTAssertTrue(stray.stdout.contains("mmio read 0xffffffff"), stray.stdout)

        // An interface that exists but is no TAP device cannot be opened: a set-up failure, one line.
        let loopback = try runInNamespace(ip: ip, namespace: namespace, [image, "--cmdline", "mode=virtio-probe", "--net", "tap=lo"])
        XCTAssertEqual(loopback.status, 2, loopback.stderr)
        XCTAssertTrue(loopback.stderr.hasPrefix("toro-vmm: --net: TUNSETIFF lo failed"), loopback.stderr)
        XCTAssertEqual(loopback.stderr.split(separator: "\n").count, 1, loopback.stderr)
        XCTAssertFalse(loopback.stdout.contains("virtio:"), loopback.stdout)
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
