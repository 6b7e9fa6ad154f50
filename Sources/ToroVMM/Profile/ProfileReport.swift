/// One vCPU's samples from `--profile`: a histogram of RIPs and the halted count.
public struct VCPUSamples: Equatable, Sendable {
    public var index: Int
    /// Samples taken while the guest ran, by RIP.
    public var rips: [UInt64: Int]
    /// Samples that found the vCPU halted (KVM_MP_STATE_HALTED), not attributed to code.
    public var halted: Int
    /// Kicks the profiler sent; those that found the thread in the VMM (handling an exit) took no sample.
    public var kicks: Int

    public init(index: Int, rips: [UInt64: Int] = [:], halted: Int = 0, kicks: Int = 0) {
        self.index = index
        self.rips = rips
        self.halted = halted
        self.kicks = kicks
    }

    public var running: Int { rips.values.reduce(0, +) }
    public var missed: Int { max(0, kicks - running - halted) }
}

/// The raw result of a profiled run.
public struct GuestProfile: Equatable, Sendable {
    public var image: String
    public var intervalMicroseconds: Int
    public var vcpus: [VCPUSamples]

    public init(image: String, intervalMicroseconds: Int, vcpus: [VCPUSamples]) {
        self.image = image
        self.intervalMicroseconds = intervalMicroseconds
        self.vcpus = vcpus
    }

    public var running: Int { vcpus.reduce(0) { $0 + $1.running } }
    public var halted: Int { vcpus.reduce(0) { $0 + $1.halted } }
}

/// The short form of a profile that goes into the JSON statistics (`profile`).
public struct ProfileSummary: Equatable, Sendable {
    public var intervalMicroseconds: Int
    public var runningSamples: Int
    public var haltedSamples: Int
    /// The ten functions with the most running samples, most first.
    public var topFunctions: [(name: String, samples: Int)]

    public init(intervalMicroseconds: Int, runningSamples: Int, haltedSamples: Int, topFunctions: [(name: String, samples: Int)]) {
        self.intervalMicroseconds = intervalMicroseconds
        self.runningSamples = runningSamples
        self.haltedSamples = haltedSamples
        self.topFunctions = topFunctions
    }

    public static func == (a: ProfileSummary, b: ProfileSummary) -> Bool {
        a.intervalMicroseconds == b.intervalMicroseconds && a.runningSamples == b.runningSamples
            && a.haltedSamples == b.haltedSamples && a.topFunctions.map(\.name) == b.topFunctions.map(\.name)
            && a.topFunctions.map(\.samples) == b.topFunctions.map(\.samples)
    }
}

/// A profile with every RIP mapped to a function: the merged histograms and the report text.
public struct ProfileReport {
    /// A function's samples, over all vCPUs and per vCPU (in `profile.vcpus` order).
    public struct Function: Equatable {
        public var name: String
        public var samples: Int
        public var perVCPU: [Int]

        public init(name: String, samples: Int, perVCPU: [Int]) {
            self.name = name
            self.samples = samples
            self.perVCPU = perVCPU
        }
    }

    /// One hot address and where it is.
    public struct Address: Equatable {
        public var rip: UInt64
        public var samples: Int
        /// `function+0xoffset`, or `?` without a symbol.
        public var location: String
    }

    public static let functionRows = 60
    public static let addressRows = 30
    /// The name under which RIPs outside every symbol are counted.
    public static let unknown = "[no symbol]"

    public let profile: GuestProfile
    /// Most samples first; ties by name.
    public let functions: [Function]
    public let addresses: [Address]
    public let symbolCount: Int
    public let demangled: Bool

    /// Maps every sampled RIP with `symbols`; the names shown in the report (and only
    /// those) are passed through `demangle` in one call.
    public init(_ profile: GuestProfile, symbols: ELFSymbolTable, demangle: (([String]) -> [String])? = nil) {
        self.profile = profile
        self.symbolCount = symbols.symbols.count
        var byName: [String: [Int]] = [:]
        var allRIPs: [UInt64: Int] = [:]
        var located: [UInt64: (String, UInt64)?] = [:]
        var starts: [String: UInt64] = [:]  // each symbol's address, to tell apart equal demangled names
        for (slot, vcpu) in profile.vcpus.enumerated() {
            for (rip, count) in vcpu.rips {
                allRIPs[rip, default: 0] += count
                if located[rip] == nil {
                    let found = symbols.lookup(rip)
                    located[rip] = .some(found.map { ($0.symbol.name, $0.offset) })
                    if let found { starts[found.symbol.name] = found.symbol.address }
                }
                let name = located[rip]!.map(\.0) ?? Self.unknown
                byName[name, default: [Int](repeating: 0, count: profile.vcpus.count)][slot] += count
            }
        }
        var functions = byName.map { Function(name: $0.key, samples: $0.value.reduce(0, +), perVCPU: $0.value) }
            .sorted { ($1.samples, $0.name) < ($0.samples, $1.name) }
        functions = Array(functions.prefix(Self.functionRows))
        let hot = allRIPs.sorted { ($1.value, $0.key) < ($0.value, $1.key) }.prefix(Self.addressRows)

        // Demangle the names that will be shown, once.
        var shown = Set(functions.map(\.name))
        for (rip, _) in hot { if let name = located[rip]??.0 { shown.insert(name) } }
        shown.remove(Self.unknown)
        let mangled = shown.sorted()
        var readable: [String: String] = [:]
        if let demangle {
            let names = demangle(mangled)
            if names.count == mangled.count { readable = Dictionary(uniqueKeysWithValues: zip(mangled, names)) }
        }
        // `--simplified` can give two specializations the same text: add their addresses.
        var uses: [String: Int] = [:]
        for name in mangled { uses[readable[name] ?? name, default: 0] += 1 }
        for name in mangled {
            guard let text = readable[name], uses[text, default: 0] > 1, let start = starts[name] else { continue }
            readable[name] = text + " @0x" + String(start, radix: 16)
        }
        self.demangled = !readable.isEmpty
        func pretty(_ name: String) -> String { readable[name] ?? name }

        self.functions = functions.map { Function(name: pretty($0.name), samples: $0.samples, perVCPU: $0.perVCPU) }
        self.addresses = hot.map { rip, count in
            let location = located[rip]??.0 == nil ? "?" : "\(pretty(located[rip]!!.0))+0x\(String(located[rip]!!.1, radix: 16))"
            return Address(rip: rip, samples: count, location: location)
        }
    }

    // MARK: - Text

    /// The report `--profile FILE` writes.
    public var text: String {
        let running = profile.running, halted = profile.halted
        var lines: [String] = []
        lines.append("toro-vmm guest profile of \(profile.image)")
        lines.append("  interval \(profile.intervalMicroseconds) us; \(running + halted) samples: \(running) running, \(halted) halted")
        for vcpu in profile.vcpus {
            var line = "  vcpu\(vcpu.index): \(vcpu.running) running, \(vcpu.halted) halted"
            if vcpu.missed > 0 { line += ", \(vcpu.missed) kicks took no sample (coalesced, or the thread was in the VMM)" }
            lines.append(line)
        }
        lines.append("  symbols: \(symbolCount) from .symtab\(demangled ? ", demangled" : "")")
        lines.append("  percentages are of running samples; halted samples are not attributed to code")
        lines.append("")
        lines.append("top \(Self.functionRows) functions (all vCPUs):")
        var rows = [["samples", "%"] + (profile.vcpus.count > 1 ? profile.vcpus.map { "vcpu\($0.index)%" } : []) + ["function"]]
        for function in functions {
            var row = [String(function.samples), share(function.samples, of: running)]
            if profile.vcpus.count > 1 {
                row += zip(function.perVCPU, profile.vcpus).map { share($0, of: $1.running) }
            }
            rows.append(row + [function.name])
        }
        lines.append(contentsOf: table(rows))
        lines.append("")
        lines.append("top \(Self.addressRows) addresses:")
        var addressRows = [["samples", "%", "rip", "function+offset"]]
        for address in addresses {
            addressRows.append([String(address.samples), share(address.samples, of: running), "0x" + String(address.rip, radix: 16), address.location])
        }
        lines.append(contentsOf: table(addressRows))
        return lines.joined(separator: "\n") + "\n"
    }

    /// The JSON statistics' `profile` object.
    public var summary: ProfileSummary {
        ProfileSummary(
            intervalMicroseconds: profile.intervalMicroseconds, runningSamples: profile.running, haltedSamples: profile.halted,
            topFunctions: functions.prefix(10).map { ($0.name, $0.samples) })
    }

    func share(_ part: Int, of whole: Int) -> String {
        StatisticsFormat.formatNumber(whole == 0 ? 0 : Double(part) * 100 / Double(whole), decimals: 1)
    }

    /// Right-aligned numbers, the last column (a name) left-aligned and unpadded.
    func table(_ rows: [[String]]) -> [String] {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) } }
        return rows.map { row in
            "  " + row.enumerated().map { i, cell in
                i == row.count - 1 ? cell : String(repeating: " ", count: widths[i] - cell.count) + cell
            }.joined(separator: "  ")
        }
    }
}
