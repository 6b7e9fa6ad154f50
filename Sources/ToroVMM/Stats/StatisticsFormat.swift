/// Renders ``RunStatistics`` as the aligned text table or the JSON document that README documents.
public enum StatisticsFormat {
    // MARK: - Text

    /// An aligned table, one row per vCPU and a total row.
    public static func text(_ stats: RunStatistics) -> String {
        var lines: [String] = []
        let stop: String
        switch stats.stopReason {
        case let .guestExit(status): stop = "guest exited with status \(status)"
        case let .guestCrashed(summary, _): stop = "guest crashed: \(summary)"
        case let .timeout(seconds): stop = "stopped after --timeout \(formatNumber(seconds, decimals: 1)) s"
        case let .signal(number): stop = "stopped by signal \(number)"
        case let .internalError(text): stop = "toro-vmm failed: \(text)"
        }
        lines.append("toro-vmm: \(stop); \(stats.cpus) vCPU(s), \(MemorySize.format(stats.memoryBytes)), mode \(stats.mode.rawValue)")
        var summary = "  wall \(milliseconds(stats.wallNanoseconds)) ms, process CPU \(milliseconds(stats.processCPUNanoseconds)) ms (\(formatNumber(stats.processCPUPercent, decimals: 1))%)"
        if let first = stats.firstOutputNanoseconds { summary += ", first console byte at \(milliseconds(first)) ms" }
        lines.append(summary)
        let header = ["vcpu", "wall ms", "cpu ms", "cpu%", "exits", "hlt", "halted ms", "halted%", "poll ok", "poll fail", "traps", "io", "mmio", "vmm exits"]
        var rows = [header]
        for vcpu in stats.vcpus { rows.append(row(String(vcpu.index), vcpu)) }
        if stats.vcpus.count > 1 { rows.append(row("all", stats.totals)) }
        lines.append(contentsOf: table(rows))
        let reasons = stats.totals.vmmExits.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        if !reasons.isEmpty { lines.append("  vmm exits by reason: " + reasons.joined(separator: " ")) }
        if stats.rejectedRequests > 0 { lines.append("  rejected guest requests: \(stats.rejectedRequests)") }
        for device in stats.devices {
            let c = device.counters
            lines.append("  \(device.kind) at 0x\(String(device.base, radix: 16)) irq \(device.irq) (\(device.backend), mac \(device.mac)): "
                + "tx \(c.txFrames) frames \(c.txBytes) bytes \(c.txDrops) dropped, rx \(c.rxFrames) frames \(c.rxBytes) bytes \(c.rxDrops) dropped, "
                + "\(c.notifications) notifications, \(device.interruptsRaised) interrupts, \(device.errors) errors, "
                + "\(device.ignoredAccesses) ignored accesses")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func row(_ name: String, _ v: VCPUStatistics) -> [String] {
        func count(_ value: UInt64?) -> String { value.map(String.init) ?? "-" }
        return [
            name, milliseconds(v.wallNanoseconds), milliseconds(v.cpuNanoseconds), formatNumber(v.cpuPercent, decimals: 1),
            count(v.exits), count(v.haltExits), v.haltWaitNanoseconds.map(milliseconds) ?? "-",
            v.haltedPercent.map { formatNumber($0, decimals: 1) } ?? "-",
            count(v.haltPollSuccesses), count(v.haltPollFailures), count(v.traps), count(v.ioExits), count(v.mmioExits), String(v.vmmExitTotal),
        ]
    }

    static func table(_ rows: [[String]]) -> [String] {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            "  " + row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return i == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
    }

    // MARK: - JSON

    /// Version of the JSON document's shape; raised whenever a field changes meaning or goes away.
    public static let jsonVersion = 1

    /// One JSON document; field names are stable and documented in README.
    public static func json(_ stats: RunStatistics) -> String {
        var stop: [(String, JSON)] = [("reason", .string(stats.stopReason.name)), ("exit_status", .int(Int64(stats.stopReason.exitStatus)))]
        switch stats.stopReason {
        case let .guestExit(status): stop.append(("guest_status", .int(Int64(status))))
        case let .guestCrashed(summary, _): stop.append(("detail", .string(summary)))
        case let .timeout(seconds): stop.append(("timeout_s", .double(seconds)))
        case let .signal(number): stop.append(("signal", .int(Int64(number))))
        case let .internalError(text): stop.append(("detail", .string(text)))
        }
        var fields: [(String, JSON)] = [
            ("version", .int(Int64(jsonVersion))),
            ("image", .string(stats.image)),
            ("cpus", .int(Int64(stats.cpus))),
            ("memory_bytes", .uint(stats.memoryBytes)),
            ("mode", .string(stats.mode.rawValue)),
            ("stop", .object(stop)),
            ("wall_ns", .uint(stats.wallNanoseconds)),
            ("guest_start_ns", .uint(stats.guestStartNanoseconds)),
            ("first_output_ns", stats.firstOutputNanoseconds.map(JSON.uint) ?? .null),
            ("process_cpu_ns", .uint(stats.processCPUNanoseconds)),
            ("process_cpu_percent", .double(stats.processCPUPercent)),
            ("console_bytes", .uint(stats.consoleBytes)),
            ("rejected_requests", .uint(stats.rejectedRequests)),
            ("vcpus", .array(stats.vcpus.map(vcpuJSON))),
            ("totals", vcpuJSON(stats.totals)),
            ("samples", .array(stats.samples.map(sampleJSON))),
            ("devices", .array(stats.devices.map(deviceJSON))),
        ]
        // Only with --profile: a document without it is unchanged.
        if let profile = stats.profile { fields.append(("profile", profileJSON(profile))) }
        return JSON.object(fields).rendered() + "\n"
    }

    static func profileJSON(_ p: ProfileSummary) -> JSON {
        .object([
            ("interval_us", .int(Int64(p.intervalMicroseconds))),
            ("samples", .int(Int64(p.runningSamples + p.haltedSamples))),
            ("running_samples", .int(Int64(p.runningSamples))),
            ("halted_samples", .int(Int64(p.haltedSamples))),
            ("top_functions", .array(p.topFunctions.map { .object([("name", .string($0.name)), ("samples", .int(Int64($0.samples)))]) })),
        ])
    }

    static func vcpuJSON(_ v: VCPUStatistics) -> JSON {
        func optional(_ value: UInt64?) -> JSON { value.map(JSON.uint) ?? .null }
        var fields: [(String, JSON)] = []
        if v.index >= 0 { fields.append(("index", .int(Int64(v.index)))) }
        fields += [
            ("wall_ns", .uint(v.wallNanoseconds)),
            ("cpu_ns", .uint(v.cpuNanoseconds)),
            ("cpu_percent", .double(v.cpuPercent)),
            ("exits", optional(v.exits)),
            ("hlt_exits", optional(v.haltExits)),
            ("halt_wait_ns", optional(v.haltWaitNanoseconds)),
            ("halted_percent", v.haltedPercent.map(JSON.double) ?? .null),
            ("halt_poll_success", optional(v.haltPollSuccesses)),
            ("halt_poll_fail", optional(v.haltPollFailures)),
            ("traps", optional(v.traps)),
            ("io_exits", optional(v.ioExits)),
            ("mmio_exits", optional(v.mmioExits)),
            ("vmm_exits", .uint(v.vmmExitTotal)),
            ("vmm_exits_by_reason", .object(v.vmmExits.sorted { $0.key < $1.key }.map { ($0.key, .uint($0.value)) })),
            ("kvm", .object(v.kvm.sorted { $0.key < $1.key }.map { ($0.key, .uint($0.value)) })),
        ]
        return .object(fields)
    }

    static func deviceJSON(_ d: DeviceStatistics) -> JSON {
        let c = d.counters
        return .object([
            ("type", .string(d.kind)),
            ("base", .uint(d.base)),
            ("irq", .uint(UInt64(d.irq))),
            ("backend", .string(d.backend)),
            ("mac", .string(d.mac)),
            ("tx_frames", .uint(c.txFrames)),
            ("tx_bytes", .uint(c.txBytes)),
            ("tx_drops", .uint(c.txDrops)),
            ("rx_frames", .uint(c.rxFrames)),
            ("rx_bytes", .uint(c.rxBytes)),
            ("rx_drops", .uint(c.rxDrops)),
            ("notifications", .uint(c.notifications)),
            ("interrupts", .uint(d.interruptsRaised)),
            ("errors", .uint(d.errors)),
            ("ignored_accesses", .uint(d.ignoredAccesses)),
        ])
    }

    static func sampleJSON(_ sample: Sample) -> JSON {
        .object([
            ("t_ns", .uint(sample.timeNanoseconds)),
            ("interval_ns", .uint(sample.intervalNanoseconds)),
            ("process_cpu_percent", .double(sample.processCPUPercent)),
            ("vcpus", .array(sample.vcpus.map { vcpu in
                .object([
                    ("index", .int(Int64(vcpu.index))),
                    ("cpu_percent", .double(vcpu.cpuPercent)),
                    ("hlt_exits_per_s", .double(vcpu.haltExitsPerSecond)),
                    ("exits_per_s", .double(vcpu.exitsPerSecond)),
                    ("halted_percent", .double(vcpu.haltedPercent)),
                ])
            })),
        ])
    }

    // MARK: - Live lines

    /// One line per interval, as `top` shows a process: time, the VMM's CPU, then each vCPU.
    ///
    /// `   2.0 s  vmm   0.4%  | vcpu0 cpu   0.1% hlt     12/s exits     15/s halted  99.8% | vcpu1 ...`
    public static func sampleLine(_ sample: Sample) -> String {
        func padded(_ text: String, _ width: Int) -> String {
            String(repeating: " ", count: max(0, width - text.count)) + text
        }
        var line = padded(formatNumber(Double(sample.timeNanoseconds) / 1e9, decimals: 1), 7) + " s  vmm "
            + padded(formatNumber(sample.processCPUPercent, decimals: 1), 6) + "%"
        for vcpu in sample.vcpus {
            line += "  | vcpu\(vcpu.index) cpu " + padded(formatNumber(vcpu.cpuPercent, decimals: 1), 5) + "%"
            line += " hlt " + padded(formatNumber(vcpu.haltExitsPerSecond, decimals: 0), 6) + "/s"
            line += " exits " + padded(formatNumber(vcpu.exitsPerSecond, decimals: 0), 6) + "/s"
            line += " halted " + padded(formatNumber(vcpu.haltedPercent, decimals: 1), 5) + "%"
        }
        return line
    }

    // MARK: - Numbers

    static func milliseconds(_ nanoseconds: UInt64) -> String {
        formatNumber(Double(nanoseconds) / 1_000_000, decimals: 1)
    }

    /// Fixed-point formatting without Foundation.
    static func formatNumber(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = UInt64(scaled / scale)
        let fraction = UInt64(scaled - Double(whole) * scale)
        var text = (value < 0 && scaled > 0 ? "-" : "") + String(whole)
        if decimals > 0 {
            let digits = String(fraction)
            text += "." + String(repeating: "0", count: decimals - digits.count) + digits
        }
        return text
    }
}

/// A minimal JSON value with ordered objects, enough to write the statistics without Foundation.
enum JSON {
    case null
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    func rendered() -> String {
        switch self {
        case .null: return "null"
        case let .int(value): return String(value)
        case let .uint(value): return String(value)
        case let .double(value): return StatisticsFormat.formatNumber(value, decimals: 3)
        case let .string(value): return JSON.quote(value)
        case let .array(items): return "[" + items.map { $0.rendered() }.joined(separator: ",") + "]"
        case let .object(fields): return "{" + fields.map { JSON.quote($0.0) + ":" + $0.1.rendered() }.joined(separator: ",") + "}"
        }
    }

    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
