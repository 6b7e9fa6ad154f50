/// The parsed kernel command line, and the options the kernel itself reads.
extension Kernel {
    /// The command line from the boot information, parsed on first use.
    public static var commandLine: KernelCommandLine { parsedCommandLine }

    /// Keys the kernel reads; anything else is left to the application.
    static let kernelOptions = ["idle", "spin", "pollgrace", "ip", "gw", "tcpidle", "timewait"]

    /// Says once, at boot, which words of the command line the kernel does not
    /// read (they are the application's) and which it could not parse.
    static func reportCommandLine() {
        let line = commandLine
        let unknown = line.unknownKeys(known: kernelOptions)
        if !unknown.isEmpty {
            Console.withLockedState { text in
                text.write("cmdline: not kernel options, left to the application:")
                for key in unknown {
                    text.write(" ")
                    text.write(key)
                }
                text.write("\n")
                text.flushIfLineEnded()
            }
        }
        for word in line.malformed {
            Console.withLockedState { text in
                text.write("cmdline: cannot read '")
                text.write(word)
                text.write("', ignored\n")
                text.flushIfLineEnded()
            }
        }
    }
}

extension Kernel {
    /// On CPU 0 at boot, before the other CPUs run: applies the options the
    /// kernel reads itself, and says so once for any value it cannot use.
    ///
    /// | option | values | meaning |
    /// | --- | --- | --- |
    /// | `idle=` | `halt` (default), `poll` | idle cases 2-4 (`IdleCase`): halt the core, or loop |
    /// | `spin=` | `pause` (default), `nopause` | idle case 1: `pause` in every spin-wait turn, or not |
    /// | `pollgrace=` | microseconds, default 1000 | how long a poller may find nothing before it counts as idle |
    static func applyCommandLine() {
        // Only what is there is looked at: with none of these options (the
        // common case) this builds no string and no array on the boot path.
        let line = commandLine
        var halting = true
        var pause = true
        var grace = IdlePolicy.defaultPollGraceMicroseconds
        if let value = line.value("idle") {
            if value == "poll" {
                halting = false
            } else if value != "halt" {
                reportInvalid("idle", value, expected: "halt or poll")
            }
        }
        if let value = line.value("spin") {
            if value == "nopause" {
                pause = false
            } else if value != "pause" {
                reportInvalid("spin", value, expected: "pause or nopause")
            }
        }
        // At most 60 s: the grace is turned into TSC ticks through nanoseconds.
        switch line.number("pollgrace", in: 0...60_000_000) {
        case .absent: break
        case .value(let microseconds): grace = UInt64(microseconds)
        case .invalid(let value): reportInvalid("pollgrace", value, expected: "microseconds, 0 to 60000000")
        }
        IdlePolicy.configure(halting: halting, pollGraceMicroseconds: grace)
        SpinWait.configure(pause: pause)
    }

    private static func reportInvalid(_ key: StaticString, _ value: String, expected: StaticString) {
        Console.withLockedState { text in
            text.write("cmdline: ")
            text.write(key)
            text.write("=")
            text.write(value)
            text.write(" is not ")
            text.write(expected)
            text.write("; using the default\n")
            text.flushIfLineEnded()
        }
    }
}

private let parsedCommandLine = KernelCommandLine(bytes: BootInfo.current.commandLineBytes)
