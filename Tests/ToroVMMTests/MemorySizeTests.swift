import ToroVMM
import XCTest

final class MemorySizeTests: XCTestCase {
    func testUnitsArePowersOf1024() throws {
        XCTAssertEqual(try MemorySize.parse("128M"), 128 << 20)
        XCTAssertEqual(try MemorySize.parse("1G"), 1 << 30)
        XCTAssertEqual(try MemorySize.parse("1gib"), 1 << 30)
        XCTAssertEqual(try MemorySize.parse("64MB"), 64 << 20)
        XCTAssertEqual(try MemorySize.parse("16384K"), 16 << 20)
        XCTAssertEqual(try MemorySize.parse(" 256M "), 256 << 20)
    }

    func testPlainBytesRoundUpToTwoMiB() throws {
        XCTAssertEqual(try MemorySize.parse("134217728"), 128 << 20)
        XCTAssertEqual(try MemorySize.parse("134217729"), 130 << 20)
        XCTAssertEqual(try MemorySize.parse("1"), 2 << 20)
    }

    func testBadValuesAreErrors() {
        XCTAssertThrowsError(try MemorySize.parse("")) { XCTAssertEqual($0 as? MemorySize.ParseError, .empty) }
        XCTAssertThrowsError(try MemorySize.parse("lots")) { XCTAssertEqual($0 as? MemorySize.ParseError, .notANumber("lots")) }
        XCTAssertThrowsError(try MemorySize.parse("-5M")) { XCTAssertEqual($0 as? MemorySize.ParseError, .notANumber("-5M")) }
        XCTAssertThrowsError(try MemorySize.parse("1.5G")) { XCTAssertEqual($0 as? MemorySize.ParseError, .notANumber("1.5G")) }
        XCTAssertThrowsError(try MemorySize.parse("12Q")) { XCTAssertEqual($0 as? MemorySize.ParseError, .unknownSuffix("12Q")) }
        XCTAssertThrowsError(try MemorySize.parse("0M")) { XCTAssertEqual($0 as? MemorySize.ParseError, .zero) }
        XCTAssertThrowsError(try MemorySize.parse("99999999999999T")) { XCTAssertEqual($0 as? MemorySize.ParseError, .tooLarge("99999999999999T")) }
        XCTAssertThrowsError(try MemorySize.parse("99999999999999999999999")) { XCTAssertNotNil($0 as? MemorySize.ParseError) }
    }

    func testBytesAsWrittenAreNotRounded() throws {
        XCTAssertEqual(try MemorySize.parseBytes("1K"), 1024)
        XCTAssertEqual(try MemorySize.parseBytes("3"), 3)
        XCTAssertEqual(try MemorySize.parseBytes("1T"), 1 << 40)
        XCTAssertThrowsError(try MemorySize.parseBytes("1Q")) { XCTAssertEqual($0 as? MemorySize.ParseError, .unknownSuffix("1Q")) }
    }

    func testFormat() {
        XCTAssertEqual(MemorySize.format(128 << 20), "128 MiB")
        XCTAssertEqual(MemorySize.format(2 << 30), "2 GiB")
        XCTAssertEqual(MemorySize.format(1536 << 10), "1536 KiB")
        XCTAssertEqual(MemorySize.format(1000), "1000 bytes")
    }

    func testConfigRanges() {
        var config = MachineConfig(imagePath: "x")
        config.cpus = 0
        XCTAssertThrowsError(try config.validate())
        config.cpus = BootLayout.maxCPUs + 1
        XCTAssertThrowsError(try config.validate())
        config.cpus = 2
        XCTAssertNoThrow(try config.validate())
        config.memory = 4 << 20
        XCTAssertThrowsError(try config.validate())
        config.memory = 128 << 20
        config.timeout = -1
        XCTAssertThrowsError(try config.validate())
        config.timeout = .infinity
        XCTAssertThrowsError(try config.validate())
        config.timeout = nil
        config.commandLine = String(repeating: "x", count: 1024)
        XCTAssertThrowsError(try config.validate())
        config.commandLine = String(repeating: "x", count: 1023)
        XCTAssertNoThrow(try config.validate())
        config.memory = MachineConfig.maximumMemory + (2 << 20)
        XCTAssertThrowsError(try config.validate())
    }
}
