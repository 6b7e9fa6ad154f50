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
        XCTAssertEqual(result.status, 64, result.stderr)
        XCTAssertTrue(result.stderr.contains("--net: TAP device name a-name-much-too-long-for-linux is longer than 15 bytes"),
                      result.stderr)
        XCTAssertFalse(result.stdout.contains("virtio:"), "the guest must not run: \(result.stdout)")
    }

    func testGuestSeesTheDeviceInANetworkNamespace() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let namespace = try TestNetworkNamespace.open(prefix: "test")
        defer { namespace.delete() }

        let result = try namespace.runVMM([
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
        let stray = try namespace.runVMM([image, "--cmdline", "mode=stray-io", "--net", "tap=torotap0"])
        XCTAssertEqual(stray.status, 0, stray.stderr)
        XCTAssertTrue(stray.stdout.contains("mmio read 0xffffffff"), stray.stdout)

        // An interface that exists but is no TAP device cannot be opened: a set-up failure, one line.
        let loopback = try namespace.runVMM([image, "--cmdline", "mode=virtio-probe", "--net", "tap=lo"])
        XCTAssertEqual(loopback.status, 2, loopback.stderr)
        XCTAssertTrue(loopback.stderr.hasPrefix("toro-vmm: --net: TUNSETIFF lo failed"), loopback.stderr)
        XCTAssertEqual(loopback.stderr.split(separator: "\n").count, 1, loopback.stderr)
        XCTAssertFalse(loopback.stdout.contains("virtio:"), loopback.stdout)
    }
}
