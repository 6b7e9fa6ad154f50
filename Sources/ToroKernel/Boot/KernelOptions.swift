/// The parsed kernel command line, and the options the kernel itself reads.
extension Kernel {
    /// The command line from the boot information, parsed on first use.
    public static var commandLine: KernelCommandLine { parsedCommandLine }

    /// Keys the kernel reads; anything else is left to the application.
    static let kernelOptions = ["idle", "spin", "ip", "gw"]

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

private let parsedCommandLine = KernelCommandLine(bytes: BootInfo.current.commandLineBytes)
