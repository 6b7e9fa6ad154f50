import CKVM
import Foundation
@testable import ToroVMM
import XCTest

final class StatisticsTests: XCTestCase {
    /// Descriptor blocks laid out as KVM lays them out: kvm_stats_desc, then the name.
    func descriptors(_ items: [(String, UInt32, UInt16, UInt32)], nameSize: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for (name, flags, size, offset) in items {
            var desc = kvm_stats_desc()
            desc.flags = flags
            desc.size = size
            desc.offset = offset
            withUnsafeBytes(of: desc) { bytes += $0.prefix(MemoryLayout<kvm_stats_desc>.size) }
            var nameBytes = Array(name.utf8)
            nameBytes += [UInt8](repeating: 0, count: nameSize - nameBytes.count)
            bytes += nameBytes
        }
        return bytes
    }

    func testDescriptorsKeepCountersAndSkipHistograms() {
        let raw = descriptors([
            ("halt_exits", UInt32(KVM_STATS_TYPE_CUMULATIVE), 1, 0),
            ("halt_wait_hist", UInt32(KVM_STATS_TYPE_LOG_HIST), 32, 8),
            ("halt_wait_ns", UInt32(KVM_STATS_TYPE_CUMULATIVE | KVM_STATS_UNIT_SECONDS), 1, 264),
            ("blocking", UInt32(KVM_STATS_TYPE_INSTANT), 1, 272),
        ], nameSize: 48)
        let (fields, size) = KVMStatsReader.decodeDescriptors(raw, count: 4, nameSize: 48)
        XCTAssertEqual(fields.map(\.name), ["halt_exits", "halt_wait_ns", "blocking"])
        XCTAssertEqual(fields.map(\.offset), [0, 264, 272])
        XCTAssertEqual(size, 280)
    }

    func testTruncatedDescriptorBlockIsNotOverread() {
        let raw = descriptors([("exits", 0, 1, 0), ("io_exits", 0, 1, 8)], nameSize: 16)
        let (fields, _) = KVMStatsReader.decodeDescriptors(Array(raw.prefix(40)), count: 2, nameSize: 16)
        XCTAssertEqual(fields.map(\.name), ["exits"])
    }

    func sample() -> RunStatistics {
        var a = VCPUStatistics(index: 0)
        a.wallNanoseconds = 2_000_000_000
        a.cpuNanoseconds = 20_000_000
        a.kvm = ["exits": 100, "halt_exits": 40, "halt_wait_ns": 1_900_000_000, "halt_attempted_poll": 10, "halt_successful_poll": 4]
        a.vmmExits = ["io_out": 7]
        var b = VCPUStatistics(index: 1)
        b.wallNanoseconds = 2_000_000_000
        b.cpuNanoseconds = 2_000_000_000
        b.kvm = ["exits": 5]
        b.vmmExits = ["io_out": 1, "interrupted": 1]
        return RunStatistics(
            image: "img \"quoted\".elf", cpus: 2, memoryBytes: 128 << 20, mode: .emulated, stopReason: .guestExit(status: 0),
            wallNanoseconds: 2_100_000_000, firstOutputNanoseconds: 3_000_000, guestStartNanoseconds: 2_000_000,
            processCPUNanoseconds: 2_050_000_000, consoleBytes: 42, rejectedRequests: 0, vcpus: [a, b])
    }

    func testDerivedCounters() {
        let stats = sample()
        XCTAssertEqual(stats.vcpus[0].haltPollFailures, 6)
        XCTAssertEqual(stats.vcpus[0].cpuPercent, 1, accuracy: 1e-9)
        XCTAssertEqual(stats.vcpus[0].haltedPercent ?? 0, 95, accuracy: 1e-9)
        XCTAssertNil(stats.vcpus[1].haltExits, "a counter KVM did not report stays absent")
        XCTAssertEqual(stats.totals.exits, 105)
        XCTAssertEqual(stats.totals.vmmExitTotal, 9)
    }

    func testJSONIsValidAndStable() throws {
        let text = StatisticsFormat.json(sample())
        let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        let document = try XCTUnwrap(object)
        XCTAssertEqual(document["version"] as? Int, 1)
        XCTAssertEqual(document["image"] as? String, "img \"quoted\".elf")
        let stop = try XCTUnwrap(document["stop"] as? [String: Any])
        XCTAssertEqual(stop["reason"] as? String, "guest_exit")
        XCTAssertEqual(stop["exit_status"] as? Int, 0)
        let vcpus = try XCTUnwrap(document["vcpus"] as? [[String: Any]])
        XCTAssertEqual(vcpus.count, 2)
        XCTAssertEqual(vcpus[0]["hlt_exits"] as? Int, 40)
        XCTAssertEqual(vcpus[0]["halt_poll_fail"] as? Int, 6)
        XCTAssertTrue(vcpus[1]["hlt_exits"] is NSNull)
        XCTAssertEqual((vcpus[1]["vmm_exits_by_reason"] as? [String: Int])?["interrupted"], 1)
        let totals = try XCTUnwrap(document["totals"] as? [String: Any])
        XCTAssertNil(totals["index"])
        XCTAssertEqual(totals["exits"] as? Int, 105)
    }

    func testTextTableHasARowPerVCPUAndATotal() {
        let lines = StatisticsFormat.text(sample()).split(separator: "\n")
        XCTAssertTrue(lines[0].contains("guest exited with status 0"))
        let rows = lines.filter { $0.hasPrefix("  0 ") || $0.hasPrefix("  1 ") || $0.hasPrefix("  all ") }
        XCTAssertEqual(rows.count, 3)
        let widths = Set(lines.filter { $0.hasPrefix("  vcpu") || rows.contains($0) }.map(\.count))
        XCTAssertEqual(widths.count, 1, "columns are aligned")
    }

    func testNumberFormatting() {
        XCTAssertEqual(StatisticsFormat.formatNumber(1.25, decimals: 1), "1.3")
        XCTAssertEqual(StatisticsFormat.formatNumber(0.04, decimals: 1), "0.0")
        XCTAssertEqual(StatisticsFormat.formatNumber(99.999, decimals: 2), "100.00")
        XCTAssertEqual(StatisticsFormat.formatNumber(-2.5, decimals: 1), "-2.5")
        XCTAssertEqual(StatisticsFormat.formatNumber(.nan, decimals: 1), "0")
    }

    func testDevicesInTextAndJSON() throws {
        var stats = sample()
        XCTAssertEqual(try devices(StatisticsFormat.json(stats)).count, 0)
        var counters = VirtioNetCounters()
        counters.txFrames = 3
        counters.txBytes = 180
        counters.rxFrames = 2
        counters.rxBytes = 120
        counters.rxDrops = 1
        counters.notifications = 4
        stats.devices = [DeviceStatistics(
            kind: "virtio-net", base: 0xD100_0000, irq: 5, backend: "tap:toro0", mac: "52:54:00:12:34:01",
            counters: counters, interruptsRaised: 2, errors: 0)]
        let device = try XCTUnwrap(try devices(StatisticsFormat.json(stats)).first)
        XCTAssertEqual(device["type"] as? String, "virtio-net")
        XCTAssertEqual(device["base"] as? Int, 0xD100_0000)
        XCTAssertEqual(device["irq"] as? Int, 5)
        XCTAssertEqual(device["backend"] as? String, "tap:toro0")
        XCTAssertEqual(device["tx_frames"] as? Int, 3)
        XCTAssertEqual(device["tx_bytes"] as? Int, 180)
        XCTAssertEqual(device["rx_drops"] as? Int, 1)
        XCTAssertEqual(device["notifications"] as? Int, 4)
        XCTAssertEqual(device["interrupts"] as? Int, 2)
        XCTAssertEqual(device["errors"] as? Int, 0)
        let text = StatisticsFormat.text(stats)
        XCTAssertTrue(text.contains("virtio-net at 0xd1000000 irq 5 (tap:toro0, mac 52:54:00:12:34:01): tx 3 frames 180 bytes"), text)
        XCTAssertTrue(text.contains("rx 2 frames 120 bytes 1 dropped, 4 notifications, 2 interrupts"), text)
    }

    func devices(_ json: String) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return try XCTUnwrap(object?["devices"] as? [[String: Any]])
    }
}
