import Foundation
import XCTest

/// `Tests/Guests/Hostile` attacks the VMM's devices on purpose, one family per
/// test (`attack=FAMILY`), and all of them in one boot. What must hold every
/// time: toro-vmm neither traps nor hangs; a step that breaks the virtio rules
/// leaves the device in DEVICE_NEEDS_RESET (the guest reads it back) and is
/// counted in `errors`, with one warning on stderr; odd accesses are ignored
/// and counted (`ignored_accesses`), bad console requests refused and counted
/// (`rejected_requests`); and after each family the guest resets the device
/// and exchanges frames with the host (an ARP request and its reply), last
/// through the kernel's own driver.
///
/// The device families run with `--net` on a TAP inside a network namespace the
/// test creates (10.77.0.1/24, up), so the device exists and no frame leaves the
/// namespace; they skip, with the reason printed, where that needs root.
final class HostileGuestTests: XCTestCase {
    /// What the guest's last line says the statistics must show.
    struct Expected {
        var errors = 0
        var ignored = 0
        var rejected = 0
    }

    func attack(_ family: String, net options: String = "", limit: TimeInterval = 60) throws -> VMMHarness.Result {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Hostile")
        let namespace = try TestNetworkNamespace.open(prefix: "hostile", tap: "torohost0")
        defer { namespace.delete() }
        return try namespace.runVMM(
            [image, "--cmdline", "attack=\(family)", "--net", "tap=torohost0,mac=02:54:00:aa:bb:07" + options], limit: limit)
    }

    /// The guest's summary line, read.
    func expected(_ result: VMMHarness.Result, file: StaticString = #filePath, line: UInt = #line) -> Expected {
        guard let summary = result.stdout.split(separator: "\n").first(where: { $0.hasPrefix("hostile: done:") }) else {
            XCTFail("no summary line:\n" + result.stdout, file: file, line: line)
            return Expected()
        }
        func number(after marker: String) -> Int {
            guard let range = summary.range(of: marker) else { return -1 }
            return Int(summary[range.upperBound...].prefix { $0.isNumber }) ?? -1
        }
        return Expected(
            errors: number(after: "errors >= "), ignored: number(after: "ignored_accesses >= "),
            rejected: number(after: "rejected_requests == "))
    }

    /// Everything a run of device families must show: a clean exit, every step
    /// as expected (`steps` among them), the device working after each family
    /// and through the kernel's driver at the end, and the counts.
    func assertSurvived(
        _ result: VMMHarness.Result, families: [String], steps: [String] = [], file: StaticString = #filePath,
        line: UInt = #line
    ) {
        let output = result.stdout + "\n--- stderr ---\n" + result.stderr
        XCTAssertEqual(result.status, 0, output, file: file, line: line)
        XCTAssertFalse(result.stdout.contains("UNEXPECTED"), output, file: file, line: line)
        for step in steps {
            XCTAssertTrue(result.stdout.contains("hostile: \(step): ok"), "step '\(step)':\n" + output, file: file, line: line)
        }
        for family in families where !["console", "com1"].contains(family) {
            XCTAssertTrue(result.stdout.contains("hostile: \(family) works after reset: ok"), output, file: file, line: line)
        }
        XCTAssertTrue(
            result.stdout.contains("hostile: recovered: the kernel's driver got an arp reply from 10.77.0.1"), output,
            file: file, line: line)
        XCTAssertFalse(result.stderr.contains("guest crashed"), output, file: file, line: line)

        let want = expected(result, file: file, line: line)
        guard let stats = result.stats, let device = (stats["devices"] as? [[String: Any]])?.first else {
            return XCTFail("no device statistics:\n" + output, file: file, line: line)
        }
        XCTAssertEqual((stats["stop"] as? [String: Any])?["reason"] as? String, "guest_exit", file: file, line: line)
        XCTAssertGreaterThanOrEqual(device.int("errors") ?? -1, want.errors, "\(device)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(device.int("ignored_accesses") ?? -1, want.ignored, "\(device)", file: file, line: line)
        XCTAssertEqual(stats.int("rejected_requests"), want.rejected, file: file, line: line)
        XCTAssertGreaterThanOrEqual(device.int("tx_frames") ?? 0, 2, "\(device)", file: file, line: line)
        XCTAssertGreaterThanOrEqual(device.int("rx_frames") ?? 0, 2, "\(device)", file: file, line: line)
        // The first driver error is reported once, on one line; the rest are counted.
        let warnings = result.stderr.components(separatedBy: "broke the device's rules").count - 1
        XCTAssertEqual(warnings, want.errors > 0 ? 1 : 0, result.stderr, file: file, line: line)
    }

    func testEveryRegisterAtEveryWidthAndTheWindowsEdges() throws {
        let result = try attack("registers")
        assertSurvived(result, families: ["registers"], steps: [
            "registers read every offset at widths 1, 2, 4, 8",
            "registers write every offset at the wrong width or alignment, and the config space",
            "registers all ones into every register", "registers the driver's bits did not stick",
            "registers accesses beyond the window's edges", "registers reset clears it",
        ])
        XCTAssertGreaterThanOrEqual(expected(result).ignored, 3000)
    }

    func testBadFeatureNegotiation() throws {
        assertSurvived(try attack("features"), families: ["features"], steps: [
            "features every feature bit", "features no VIRTIO_F_VERSION_1 (a legacy driver)",
            "features feature words beyond bit 63", "features features rewritten after FEATURES_OK",
            "features DRIVER_OK without FEATURES_OK", "features a notification then",
            "features DEVICE_NEEDS_RESET and undefined bits from the driver",
            "features status bits cleared without a reset", "features DRIVER_OK taken back",
            "features a queue register before FEATURES_OK",
        ])
    }

    func testBadQueueSetUps() throws {
        assertSurvived(try attack("queues"), families: ["queues"], steps: [
            "queues size 0", "queues size 3", "queues size 512, above QueueNumMax", "queues size 65536 (0 in 16 bits)",
            "queues descriptor table outside RAM", "queues descriptor table in the device's own window",
            "queues descriptor table at the top of the address space", "queues used ring running past the end of RAM",
            "queues descriptor table misaligned", "queues available ring misaligned", "queues used ring misaligned",
            "queues available ring inside the descriptor table", "queues used ring on the descriptor table",
            "queues queue 1's descriptor table on queue 0's used ring", "queues a queue that does not exist",
            "queues queue registers rewritten while ready", "queues a queue disabled after DRIVER_OK",
            "queues a ring moved after DRIVER_OK", "queues DRIVER_OK with no queue, then a notification",
        ])
    }

    func testBadDescriptorChains() throws {
        assertSurvived(try attack("descriptors"), families: ["descriptors"], steps: [
            "descriptors a chain that loops", "descriptors a descriptor that points at itself",
            "descriptors a head beyond the queue", "descriptors a next beyond the queue",
            "descriptors a buffer outside RAM", "descriptors a buffer in the MMIO hole",
            "descriptors a 4 GiB length", "descriptors an address and length that wrap",
            "descriptors a frame over 64 KiB, in RAM", "descriptors a device-writable transmit buffer",
            "descriptors a readable buffer after a writable one", "descriptors an indirect descriptor, never negotiated",
            "descriptors every descriptor in one ring", "descriptors a device-readable receive buffer",
            "descriptors a receive buffer over its own used ring", "descriptors a receive buffer over the transmit descriptors",
            "descriptors header and frame in one buffer, twice over", "descriptors zero-length descriptors in the chain",
            "descriptors a transmit buffer that is the rings themselves", "descriptors two chains on one buffer",
        ])
    }

    func testAvailableIndexJumps() throws {
        assertSurvived(try attack("avail"), families: ["avail"], steps: [
            "avail the transmit index 100 ahead in a queue of 16", "avail the transmit index moved back",
            "avail the receive index half the index space ahead",
            "avail a whole queue's worth at once, one descriptor 16 times",
            "avail 300 frames one by one, the ring wrapping 18 times",
        ])
    }

    func testNotificationStorms() throws {
        let result = try attack("storm")
        assertSurvived(result, families: ["storm"], steps: [
            "storm 5000 notifications before DRIVER_OK", "storm 10000 notifications of empty queues",
            "storm 2000 notifications of queue 7", "storm 200 frames, 10 notifications each",
            "storm 2000 interrupt acknowledgements of nothing",
        ])
        let device = (result.stats?["devices"] as? [[String: Any]])?.first ?? [:]
        // Served notifications are counted, however the eventfd added them up (the
        // last few of a round may still wait when the next reset drops them).
        XCTAssertGreaterThanOrEqual(device.int("notifications") ?? 0, 10000 + 1000, "\(device)")
        XCTAssertGreaterThanOrEqual(device.int("tx_frames") ?? 0, 200, "\(device)")
    }

    func testResetsDuringIO() throws {
        assertSurvived(try attack("reset"), families: ["reset"], steps: [
            "reset reset with 16 frames in flight", "reset reset while a reply is on its way",
            "reset reset right after 1000 notifications", "reset 1000 resets", "reset reset in the middle of set-up",
        ])
    }

    func testWritesAfterDeviceNeedsReset() throws {
        assertSurvived(try attack("needsreset"), families: ["needsreset"], steps: [
            "needsreset the device gives up", "needsreset writes while it waits for the reset", "needsreset the reset",
        ])
    }

    /// All families in one boot, one after the other: what one leaves behind
    /// must not upset the next.
    func testEveryAttackInOneBoot() throws {
        let result = try attack("all", limit: 180)
        assertSurvived(result, families: ["registers", "features", "queues", "descriptors", "avail", "storm", "reset",
                                          "needsreset", "console", "com1"])
        XCTAssertEqual(expected(result).rejected, 9)
    }

    /// The same with the device's I/O thread busy polling (`poll=`): the queues
    /// are served from a second path, which must keep every rule too.
    func testEveryAttackInOneBootWithBusyPolling() throws {
        let result = try attack("all", net: ",poll=200", limit: 180)
        assertSurvived(result, families: ["registers", "features", "queues", "descriptors", "avail", "storm", "reset",
                                          "needsreset", "console", "com1"])
    }

    // MARK: The VMM's own ports (no device needed, no root)

    func ports(_ family: String) throws -> VMMHarness.Result {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Hostile")
        return try VMMHarness.run([image, "--cmdline", "attack=\(family)"])
    }

    func testConsolePortGarbage() throws {
        let result = try ports("console")
        let output = result.stdout + "\n--- stderr ---\n" + result.stderr
        XCTAssertEqual(result.status, 0, output)
        XCTAssertFalse(result.stdout.contains("UNEXPECTED"), output)
        XCTAssertEqual(expected(result).rejected, 9)
        XCTAssertEqual(result.stats?.int("rejected_requests"), 9, output)
        // `rep outsl` with two descriptors is two writes.
        XCTAssertTrue(result.stdout.contains("hostile: console rep outsl one\nhostile: console rep outsl two\n"), output)
        XCTAssertTrue(result.stdout.contains("hostile: console reads of the console and exit ports: ok"), output)
        // Warned once, on one line.
        XCTAssertEqual(result.stderr.components(separatedBy: "toro-vmm: vCPU 0: console").count - 1, 1, result.stderr)
    }

    func testCOM1AtEveryWidth() throws {
        let result = try ports("com1")
        let output = result.stdout + "\n--- stderr ---\n" + result.stderr
        XCTAssertEqual(result.status, 0, output)
        XCTAssertFalse(result.stdout.contains("UNEXPECTED"), output)
        XCTAssertTrue(result.stdout.contains("hostile: com1 byte by byte\n"), output)
        // 16- and 32-bit writes put their low byte on the line, as a UART does.
        XCTAssertTrue(result.stdout.contains("hostile: com1 wide AB\n"), output)
        XCTAssertTrue(result.stdout.contains("hostile: com1 rep outsb\n"), output)
        XCTAssertTrue(result.stdout.contains("hostile: com1 the other registers, at every width: ok"), output)
        XCTAssertEqual(result.stats?.int("rejected_requests"), 0)
    }

    func testExitPortGarbage() throws {
        let result = try ports("exit")
        XCTAssertEqual(result.status, 125, result.stdout + result.stderr)
        XCTAssertTrue(result.stderr.contains("guest wrote exit status 4660, outside 0-255"), result.stderr)
        XCTAssertTrue(result.stdout.contains("hostile: exit neighbours and reads: ok"), result.stdout)
        XCTAssertFalse(result.stdout.contains("UNEXPECTED"), result.stdout)
        XCTAssertEqual((result.stats?["stop"] as? [String: Any])?["reason"] as? String, "guest_crashed")
    }
}
