import ToroVMM
import XCTest

final class CommandLineOptionsTests: XCTestCase {
    func parse(_ line: String) throws -> CommandLineOptions {
        try CommandLineOptions.parse(line.split(separator: " ").map(String.init))
    }

    func config(_ line: String) throws -> MachineConfig {
        guard case let .run(config) = try parse(line).action else {
            XCTFail("not a run: \(line)")
            return MachineConfig(imagePath: "")
        }
        return config
    }

    func assertUsageError(_ line: String, mentions text: String, file: StaticString = #filePath, line number: UInt = #line) {
        assertUsageError(line.split(separator: " ").map(String.init), mentions: text, file: file, line: number)
    }

    /// Every usage error is one line that says what is wrong.
    func assertUsageError(_ arguments: [String], mentions text: String, file: StaticString = #filePath, line number: UInt = #line) {
        XCTAssertThrowsError(try CommandLineOptions.parse(arguments), file: file, line: number) { error in
            let message = (error as? CommandLineOptions.UsageError)?.description ?? ""
            XCTAssertTrue(message.contains(text), "'\(message)' lacks '\(text)'", file: file, line: number)
            XCTAssertFalse(message.contains("\n"), "'\(message)' is more than one line", file: file, line: number)
        }
    }

    func testDefaults() throws {
        let options = try parse("run kernel.elf")
        let config = try config("run kernel.elf")
        XCTAssertEqual(config.imagePath, "kernel.elf")
        XCTAssertEqual(config.cpus, 1)
        XCTAssertEqual(config.memory, 128 << 20)
        XCTAssertEqual(config.commandLine, "")
        XCTAssertNil(config.timeout)
        XCTAssertEqual(options.stats, .text)
        XCTAssertNil(options.statsFile)
    }

    func testEveryOptionInBothForms() throws {
        let options = try parse("run --cpus 4 --memory=1G k.elf --cmdline=a=b --stats json --stats-file=/tmp/s.json --timeout 2.5")
        guard case let .run(config) = options.action else { return XCTFail() }
        XCTAssertEqual(config.imagePath, "k.elf")
        XCTAssertEqual(config.cpus, 4)
        XCTAssertEqual(config.memory, 1 << 30)
        XCTAssertEqual(config.commandLine, "a=b")
        XCTAssertEqual(config.timeout, 2.5)
        XCTAssertEqual(options.stats, .json)
        XCTAssertEqual(options.statsFile, "/tmp/s.json")
    }

    func testLiveStatisticsAndHaltPolling() throws {
        let config = try config("run k.elf --stats-interval 0.5 --halt-poll-ns 0")
        XCTAssertEqual(config.statsInterval, 0.5)
        XCTAssertEqual(config.haltPollNanoseconds, 0)
        assertUsageError("run k.elf --stats-interval 0", mentions: "at least 0.01")
        assertUsageError("run k.elf --stats-interval 0.001", mentions: "got '0.001'")
        assertUsageError("run k.elf --stats-interval 2000000", mentions: "at most 1000000 seconds, got '2000000'")
        XCTAssertEqual(try self.config("run k.elf --stats-interval 0.01").statsInterval, 0.01)
        XCTAssertEqual(try self.config("run k.elf --halt-poll-ns 1000000000").haltPollNanoseconds, 1_000_000_000)
        assertUsageError("run k.elf --stats-interval often", mentions: "number of seconds")
        assertUsageError("run k.elf --halt-poll-ns -1", mentions: "whole number")
        assertUsageError("run k.elf --halt-poll-ns 5000000000", mentions: "at most")
    }

    func testCommandLineWithSpacesIsOneArgument() throws {
        let options = try CommandLineOptions.parse(["run", "k.elf", "--cmdline", "idle=halt ip=10.0.0.2/24"])
        guard case let .run(config) = options.action else { return XCTFail() }
        XCTAssertEqual(config.commandLine, "idle=halt ip=10.0.0.2/24")
    }

    func testHelpAndVersion() throws {
        XCTAssertEqual(try parse("--help").action, .help)
        XCTAssertEqual(try parse("run k.elf --help").action, .help)
        XCTAssertEqual(try parse("--version").action, .version)
        XCTAssertTrue(CommandLineOptions.usage.contains("--stats-file"))
        XCTAssertTrue(CommandLineOptions.usage.contains("125"))
    }

    func testUsageErrors() {
        assertUsageError([], mentions: "missing command")
        assertUsageError("launch k.elf", mentions: "unknown command")
        assertUsageError("--cpus 2 run k.elf", mentions: "--cpus goes after the command")
        assertUsageError("run", mentions: "missing IMAGE")
        assertUsageError("run a.elf b.elf", mentions: "unexpected argument 'b.elf'")
        assertUsageError("run k.elf --cpus", mentions: "needs a value")
        assertUsageError("run k.elf --cpus two", mentions: "whole number")
        assertUsageError("run k.elf --cpus 0", mentions: "between 1 and")
        assertUsageError("run k.elf --cpus 1 --cpus 2", mentions: "twice")
        assertUsageError("run k.elf --memory 12Q", mentions: "unknown unit")
        assertUsageError("run k.elf --memory 4M", mentions: "at least")
        assertUsageError("run k.elf --timeout soon", mentions: "number of seconds")
        assertUsageError("run k.elf --timeout -1", mentions: "positive")
        assertUsageError("run k.elf --timeout nan", mentions: "positive")
        assertUsageError("run k.elf --stats xml", mentions: "text, json or none")
        assertUsageError("run k.elf --frobnicate", mentions: "unknown option '--frobnicate'")
        assertUsageError("run k.elf --frobnicate=3", mentions: "unknown option '--frobnicate'")
        assertUsageError("run k.elf --stats-file=", mentions: "needs a path")
        assertUsageError("run k.elf --stats none --stats-file s.json", mentions: "nothing to write with --stats none")
    }

    /// A dash-led word is an option: an unknown one is named as such, not taken for a second IMAGE.
    func testShortAndUnknownOptions() {
        assertUsageError("run k.elf -x", mentions: "unknown option '-x'")
        assertUsageError("run -x k.elf", mentions: "unknown option '-x'")
        assertUsageError("run k.elf -", mentions: "unknown option '-'")
        assertUsageError("-x", mentions: "unknown option '-x'")
    }

    /// `--` ends the options: what follows is IMAGE, even when it starts with a dash.
    func testDoubleDashEndsOptions() throws {
        XCTAssertEqual(try config("run -- k.elf").imagePath, "k.elf")
        XCTAssertEqual(try config("run --cpus 2 -- -k.elf").imagePath, "-k.elf")
        XCTAssertEqual(try config("run --cpus 2 -- -k.elf").cpus, 2)
        assertUsageError("run -- k.elf --cpus 2", mentions: "unexpected argument '--cpus'")
        assertUsageError("run --", mentions: "missing IMAGE")
    }

    /// A forgotten value is reported as such, not as a bad value that happens to be the next option.
    func testOptionFollowedByAnotherOptionLacksItsValue() {
        assertUsageError("run k.elf --cpus --memory 1G", mentions: "--cpus needs a value")
        assertUsageError("run k.elf --cmdline --timeout 2", mentions: "--cmdline needs a value")
        XCTAssertEqual(try config("run k.elf --cmdline=--timeout").commandLine, "--timeout")
    }

    /// Range errors quote what the user typed, not the value it was rounded or converted to.
    func testRangeErrorsNameTheGivenValue() {
        assertUsageError("run k.elf --memory 1K", mentions: "--memory must be at least 8 MiB, got 1 KiB")
        assertUsageError("run k.elf --memory 5000000", mentions: "got 5000000 bytes")
        assertUsageError("run k.elf --memory 64G", mentions: "--memory must be at most 63 GiB, got 64 GiB")
        assertUsageError("run k.elf --memory 1T", mentions: "got 1 TiB")
        assertUsageError("run k.elf --timeout 0", mentions: "got '0'")
        assertUsageError("run k.elf --timeout 2e9", mentions: "up to 1000000000, got '2e9'")
        assertUsageError("run k.elf --cpus 33", mentions: "between 1 and 32, got 33")
    }

    func testMemoryRangeEnds() throws {
        XCTAssertEqual(try config("run k.elf --memory 8M").memory, 8 << 20)
        XCTAssertEqual(try config("run k.elf --memory 63G").memory, 63 << 30)
        XCTAssertEqual(try config("run k.elf --memory 8388609").memory, 10 << 20)
    }

    /// The boot information holds 1023 bytes of command line; more is a usage error (64), not a set-up failure.
    func testCommandLineLength() throws {
        let longest = String(repeating: "x", count: MachineConfig.maxCommandLineBytes)
        XCTAssertEqual(MachineConfig.maxCommandLineBytes, 1023)
        guard case let .run(config) = try CommandLineOptions.parse(["run", "k.elf", "--cmdline", longest]).action else {
            return XCTFail()
        }
        XCTAssertEqual(config.commandLine.utf8.count, 1023)
        assertUsageError(["run", "k.elf", "--cmdline", longest + "x"], mentions: "--cmdline is 1024 bytes long; at most 1023 fit")
        // Bytes, not characters: 512 two-byte characters are 1024 bytes.
        assertUsageError(["run", "k.elf", "--cmdline", String(repeating: "é", count: 512)], mentions: "1024 bytes")
    }

    func testNetDevice() throws {
        XCTAssertNil(try config("run k.elf").net)
        XCTAssertEqual(try config("run k.elf --net tap=toro0").net, NetConfig(tapName: "toro0"))
        let full = try config("run k.elf --net=tap=toro0,mac=02:aa:bb:cc:dd:0e,drop=25").net
        XCTAssertEqual(full?.tapName, "toro0")
        XCTAssertEqual(full?.mac, MACAddress("02:aa:bb:cc:dd:0e"))
        XCTAssertEqual(full?.dropPercent, 25)
        XCTAssertEqual(try config("run k.elf --net drop=100,tap=t").net?.dropPercent, 100)
        XCTAssertEqual(try config("run k.elf --net tap=t").net?.pollMicroseconds, 0)
        XCTAssertEqual(try config("run k.elf --net tap=t,poll=50").net?.pollMicroseconds, 50)
        XCTAssertEqual(try config("run k.elf --net tap=t,poll=1000").net?.pollMicroseconds, 1000)
    }

    func testModeOption() throws {
        XCTAssertEqual(try config("run k.elf").mode, .auto)
        XCTAssertEqual(try config("run k.elf --mode native").mode, .native)
        XCTAssertEqual(try config("run k.elf --mode=emulated").mode, .emulated)
        assertUsageError("run k.elf --mode fast", mentions: "auto, native or emulated")
    }

    func testNetDeviceUsageErrors() {
        assertUsageError("run k.elf --net", mentions: "--net needs a value")
        assertUsageError("run k.elf --net mac=02:00:00:00:00:01", mentions: "missing tap=NAME")
        assertUsageError("run k.elf --net tap=", mentions: "tap= needs an interface name")
        assertUsageError("run k.elf --net tap=a-name-that-is-too-long", mentions: "longer than 15 bytes")
        assertUsageError("run k.elf --net tap=a/b", mentions: "not a valid interface name")
        assertUsageError("run k.elf --net tap=t,mac=02:00:00:00:00", mentions: "six hexadecimal bytes")
        assertUsageError("run k.elf --net tap=t,mac=01:00:5e:00:00:01", mentions: "multicast")
        assertUsageError("run k.elf --net tap=t,drop=101", mentions: "0-100")
        assertUsageError("run k.elf --net tap=t,drop=-1", mentions: "0-100")
        assertUsageError("run k.elf --net tap=t,speed=10", mentions: "unknown key 'speed'")
        assertUsageError("run k.elf --net tap=t,poll=1001", mentions: "0-1000")
        assertUsageError("run k.elf --net tap=t,poll=-5", mentions: "0-1000")
        assertUsageError("run k.elf --net tap=t,tap=u", mentions: "tap= given twice")
        assertUsageError("run k.elf --net tap", mentions: "not KEY=VALUE")
        assertUsageError("run k.elf --net tap=t --net tap=u", mentions: "--net given twice")
    }

    func testProfile() throws {
        XCTAssertNil(try config("run k.elf").profilePath)
        let plain = try config("run k.elf --profile /tmp/p.txt")
        XCTAssertEqual(plain.profilePath, "/tmp/p.txt")
        XCTAssertEqual(plain.profileIntervalMicroseconds, 1000)
        XCTAssertEqual(try config("run k.elf --profile - --profile-interval 100").profileIntervalMicroseconds, 100)
        XCTAssertEqual(try config("run k.elf --profile=- --profile-interval=1000000").profileIntervalMicroseconds, 1_000_000)
        XCTAssertEqual(try config("run k.elf --profile=-").profilePath, "-")
    }

    func testProfileUsageErrors() {
        assertUsageError("run k.elf --profile", mentions: "--profile needs a value")
        assertUsageError("run k.elf --profile=", mentions: "--profile needs a file name")
        assertUsageError("run k.elf --profile p --profile-interval 99", mentions: "--profile-interval must be between 100 and 1000000 microseconds, got 99")
        assertUsageError("run k.elf --profile p --profile-interval 1000001", mentions: "between 100 and 1000000")
        assertUsageError("run k.elf --profile p --profile-interval 0", mentions: "between 100 and 1000000")
        assertUsageError("run k.elf --profile p --profile-interval -5", mentions: "between 100 and 1000000")
        assertUsageError("run k.elf --profile p --profile-interval 1ms", mentions: "whole number of microseconds, got '1ms'")
        assertUsageError("run k.elf --profile-interval 500", mentions: "--profile-interval needs --profile FILE")
        assertUsageError("run k.elf --profile a --profile b", mentions: "--profile given twice")
    }
}
