import Foundation
@testable import ToroVMM
import XCTest

/// A minimal ELF64 file with section headers only: `.text`, `.symtab`, `.strtab`, `.data`.
private struct SymbolELFBuilder {
    struct Symbol {
        var name: String
        var type: UInt8  // STT_*
        var section: UInt16
        var value: UInt64
        var size: UInt64
    }

    var symbols: [Symbol] = [
        Symbol(name: "alpha", type: 2, section: 1, value: 0x20_0000, size: 0x10),
        Symbol(name: "beta", type: 2, section: 1, value: 0x20_0020, size: 0x20),
        Symbol(name: "inner", type: 0, section: 1, value: 0x20_0028, size: 0),  // a label inside beta
        Symbol(name: "label", type: 0, section: 1, value: 0x20_0100, size: 0),
        Symbol(name: "object", type: 1, section: 4, value: 0x30_0000, size: 8),  // data: not code
        Symbol(name: "undefined", type: 2, section: 0, value: 0, size: 0),
        Symbol(name: ".Ltmp0", type: 0, section: 1, value: 0x20_0030, size: 0),
    ]

    func bytes() -> [UInt8] {
        var strtab: [UInt8] = [0]
        var symtab = [UInt8](repeating: 0, count: 24)  // the null symbol
        for symbol in symbols {
            let nameOffset = UInt32(strtab.count)
            strtab += Array(symbol.name.utf8) + [0]
            symtab += le(nameOffset) + [symbol.type, 0] + le(symbol.section) + le(symbol.value) + le(symbol.size)
        }
        let symtabOffset = 64, strtabOffset = 64 + symtab.count
        let shoff = strtabOffset + strtab.count
        var header = [UInt8](repeating: 0, count: 64)
        header[0...7] = [0x7F, 0x45, 0x4C, 0x46, 2, 1, 1, 0]
        header[16...17] = [2, 0]  // ET_EXEC
        header[18...19] = [62, 0]  // EM_X86_64
        header[20...23] = [1, 0, 0, 0]
        header.replaceSubrange(40..<48, with: le(UInt64(shoff)))
        header.replaceSubrange(58..<60, with: le(UInt16(64)))
        header.replaceSubrange(60..<62, with: le(UInt16(5)))
        func section(type: UInt32, flags: UInt64, address: UInt64, offset: Int, size: Int, link: UInt32 = 0, entrySize: UInt64 = 0) -> [UInt8] {
            le(UInt32(0)) + le(type) + le(flags) + le(address) + le(UInt64(offset)) + le(UInt64(size)) + le(link) + le(UInt32(0))
                + le(UInt64(1)) + le(entrySize)
        }
        let sections = [UInt8](repeating: 0, count: 64)
            + section(type: 1, flags: 6, address: 0x20_0000, offset: 0, size: 0x1000)  // .text, AX
            + section(type: 2, flags: 0, address: 0, offset: symtabOffset, size: symtab.count, link: 3, entrySize: 24)
            + section(type: 3, flags: 0, address: 0, offset: strtabOffset, size: strtab.count)
            + section(type: 1, flags: 3, address: 0x30_0000, offset: 0, size: 0x1000)  // .data, WA
        return header + symtab + strtab + sections
    }

    private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

final class ELFSymbolTableTests: XCTestCase {
    func testReadsFunctionsAndCodeLabelsOnly() {
        let table = ELFSymbolTable.read(SymbolELFBuilder().bytes())
        XCTAssertEqual(table.symbols.map(\.name), ["alpha", "beta", "inner", "label"])
        XCTAssertEqual(table.symbols[1], ELFSymbol(name: "beta", address: 0x20_0020, size: 0x20))
        XCTAssertEqual(table.codeRanges, [0x20_0000..<0x20_1000])
    }

    func testLookup() {
        let table = ELFSymbolTable.read(SymbolELFBuilder().bytes())
        func where_(_ rip: UInt64) -> String? { table.lookup(rip).map { "\($0.symbol.name)+\($0.offset)" } }
        XCTAssertEqual(where_(0x20_0000), "alpha+0")
        XCTAssertEqual(where_(0x20_000F), "alpha+15")
        XCTAssertEqual(where_(0x20_0010), "alpha+16", "a gap in .text: the nearest preceding symbol")
        XCTAssertEqual(where_(0x20_002C), "beta+12", "a label inside a function does not hide the function")
        XCTAssertEqual(where_(0x20_0105), "label+5")
        XCTAssertEqual(where_(0x20_0FFF), "label+3839")
        XCTAssertNil(where_(0x1F_FFFF), "below every symbol")
        XCTAssertNil(where_(0x20_1000), "past the end of .text")
        XCTAssertNil(where_(0x30_0000), "in data")
        XCTAssertNil(ELFSymbolTable.empty.lookup(0x20_0000))
    }

    func testMalformedTablesMeanNoSymbolsNeverACrash() {
        let good = SymbolELFBuilder().bytes()
        // Every truncation.
        for length in 0..<good.count {
            let table = ELFSymbolTable.read(Array(good.prefix(length)))
            XCTAssertTrue(table.symbols.count <= 4)
        }
        // Every single byte set to 0xFF and to 0x00.
        for index in good.indices {
            for value: UInt8 in [0xFF, 0x00, 0x80] {
                var bad = good
                bad[index] = value
                _ = ELFSymbolTable.read(bad).lookup(0x20_0020)
            }
        }
        // Stripped: no section headers.
        var stripped = good
        stripped.replaceSubrange(60..<62, with: [0, 0])
        XCTAssertEqual(ELFSymbolTable.read(stripped), .empty)
        // Not ELF at all.
        XCTAssertEqual(ELFSymbolTable.read(Array("hello".utf8)), .empty)
    }

    func testSymbolsOfABuiltImage() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/images/HelloWorld.elf").path
        guard let data = FileManager.default.contents(atPath: path) else {
            print("SKIP: \(path) is absent (build the images with `make images`)")
            throw XCTSkip("\(path) is absent")
        }
        let bytes = [UInt8](data)
        let image = try ELFImage.parse(bytes)
        let table = ELFSymbolTable.read(bytes)
        XCTAssertGreaterThan(table.symbols.count, 50)
        // The entry point is a symbol of its own (the assembly boot code).
        XCTAssertEqual(table.lookup(image.entry)?.offset, 0, "\(table.lookup(image.entry).map { "\($0)" } ?? "nil")")
        // Every function maps to itself, start and end.
        for symbol in table.symbols where symbol.size > 0 {
            XCTAssertTrue(table.lookup(symbol.address)!.symbol.contains(symbol.address), symbol.name)
            XCTAssertTrue(table.lookup(symbol.address + symbol.size - 1)!.symbol.contains(symbol.address + symbol.size - 1), symbol.name)
        }
    }
}

final class ProfileReportTests: XCTestCase {
    let symbols = ELFSymbolTable.read(SymbolELFBuilder().bytes())

    var profile: GuestProfile {
        GuestProfile(image: "k.elf", intervalMicroseconds: 1000, vcpus: [
            VCPUSamples(index: 0, rips: [0x20_0004: 30, 0x20_0008: 10, 0x20_0024: 20], halted: 40, kicks: 101),
            VCPUSamples(index: 1, rips: [0x20_0024: 20, 0x9000_0000: 20], halted: 60, kicks: 100),
        ])
    }

    func testMergesAndRanks() {
        let report = ProfileReport(profile, symbols: symbols)
        XCTAssertEqual(profile.running, 100)
        XCTAssertEqual(profile.halted, 100)
        XCTAssertEqual(profile.vcpus[0].missed, 1)
        XCTAssertEqual(report.functions, [
            .init(name: "alpha", samples: 40, perVCPU: [40, 0]),
            .init(name: "beta", samples: 40, perVCPU: [20, 20]),
            .init(name: ProfileReport.unknown, samples: 20, perVCPU: [0, 20]),
        ])
        XCTAssertEqual(report.addresses.map(\.location), ["beta+0x4", "alpha+0x4", "?", "alpha+0x8"])
        XCTAssertEqual(report.addresses.map(\.samples), [40, 30, 20, 10])
        XCTAssertEqual(report.summary.runningSamples, 100)
        XCTAssertEqual(report.summary.topFunctions.map(\.name), ["alpha", "beta", ProfileReport.unknown])
    }

    func testText() {
        let text = ProfileReport(profile, symbols: symbols) { $0.map { $0.uppercased() } }.text
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertEqual(lines[0], "toro-vmm guest profile of k.elf")
        XCTAssertEqual(lines[1], "  interval 1000 us; 200 samples: 100 running, 100 halted")
        XCTAssertEqual(lines[2], "  vcpu0: 60 running, 40 halted, 1 kicks took no sample (coalesced, or the thread was in the VMM)")
        XCTAssertEqual(lines[3], "  vcpu1: 40 running, 60 halted")
        XCTAssertTrue(text.contains("  samples     %  vcpu0%  vcpu1%  function\n"), text)
        XCTAssertTrue(text.contains("       40  40.0    66.7     0.0  ALPHA\n"), text)
        XCTAssertTrue(text.contains("       40  40.0    33.3    50.0  BETA\n"), text)
        XCTAssertTrue(text.contains("       20  20.0     0.0    50.0  [no symbol]\n"), text)
        XCTAssertTrue(text.contains("       40  40.0    0x200024  BETA+0x4\n"), text)
        XCTAssertTrue(text.contains("       20  20.0  0x90000000  ?\n"), text)
        XCTAssertTrue(text.contains("demangled"))
    }

    func testEqualDemangledNamesAreToldApart() {
        let report = ProfileReport(profile, symbols: symbols) { $0.map { _ in "same" } }
        XCTAssertEqual(report.functions.map(\.name), ["same @0x200000", "same @0x200020", ProfileReport.unknown])
        XCTAssertEqual(report.addresses.first?.location, "same @0x200020+0x4")
    }

    func testEmptyProfile() {
        let report = ProfileReport(GuestProfile(image: "k", intervalMicroseconds: 100, vcpus: [VCPUSamples(index: 0)]), symbols: .empty)
        XCTAssertTrue(report.functions.isEmpty)
        XCTAssertTrue(report.text.contains("0 samples: 0 running, 0 halted"))
    }

    func testDemanglerFallsBackToTheNames() {
        XCTAssertEqual(Demangler.demangle(["$e9MisbehaveAAV4mainyyFZ", "plain"], tool: nil), ["$e9MisbehaveAAV4mainyyFZ", "plain"])
        XCTAssertEqual(Demangler.demangle(["x"], tool: "/nonexistent/swift-demangle"), ["x"])
        guard let tool = Demangler.findTool() else {
            print("SKIP: swift-demangle not found; only the fallback was tested")
            return
        }
        XCTAssertEqual(Demangler.demangle(["$e9MisbehaveAAV4mainyyFZ", "kernel_cpuid"], tool: tool), ["static Misbehave.main()", "kernel_cpuid"])
        // swift-demangle itself turns this assembly label into `$exception_common`.
        XCTAssertEqual(
            Demangler.demangle(["exception_common", "$e9MisbehaveAAV4mainyyFZ", "interrupt_common"], tool: tool),
            ["exception_common", "static Misbehave.main()", "interrupt_common"])
    }

    func testOnlySwiftSymbolsCountAsMangled() {
        for name in ["$s4main3fooyyF", "$e9MisbehaveAAV4mainyyFZ", "_$s4main3fooyyF", "$S4main3fooyyF", "_T04main3fooyyF"] {
            XCTAssertTrue(Demangler.isMangled(name), name)
        }
        for name in ["exception_common", "kernel_cpuid", "memmove", "e", "$", ""] {
            XCTAssertFalse(Demangler.isMangled(name), name)
        }
    }

    func testJSONHasTheProfileOnlyWhenProfiling() throws {
        var stats = RunStatistics(
            image: "k", cpus: 1, memoryBytes: 128 << 20, mode: .native, stopReason: .guestExit(status: 0), wallNanoseconds: 1,
            firstOutputNanoseconds: nil, guestStartNanoseconds: 0, processCPUNanoseconds: 0, consoleBytes: 0,
            rejectedRequests: 0, vcpus: [VCPUStatistics(index: 0)])
        let plain = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(StatisticsFormat.json(stats).utf8)) as? [String: Any])
        XCTAssertNil(plain["profile"])
        stats.profile = ProfileReport(profile, symbols: symbols).summary
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(StatisticsFormat.json(stats).utf8)) as? [String: Any])
        let section = try XCTUnwrap(document["profile"] as? [String: Any])
        XCTAssertEqual(section["interval_us"] as? Int, 1000)
        XCTAssertEqual(section["samples"] as? Int, 200)
        XCTAssertEqual(section["running_samples"] as? Int, 100)
        XCTAssertEqual(section["halted_samples"] as? Int, 100)
        let top = try XCTUnwrap(section["top_functions"] as? [[String: Any]])
        XCTAssertEqual(top.map { $0["name"] as? String }, ["alpha", "beta", "[no symbol]"])
        XCTAssertEqual(top.map { $0["samples"] as? Int }, [40, 40, 20])
    }
}
