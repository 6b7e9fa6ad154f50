import Glibc

/// Turns Swift's mangled symbol names into readable ones with the toolchain's
/// `swift-demangle`, in one process run for all names. Optional: without the
/// tool, or if it fails, the names stay as they are.
public enum Demangler {
    /// `swift-demangle` on PATH, else the toolchain's usual place; nil if neither is executable.
    public static func findTool() -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = String(directory) + "/swift-demangle"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        let fallback = "/opt/swift/usr/bin/swift-demangle"
        return access(fallback, X_OK) == 0 ? fallback : nil
    }

    /// The demangled form of each name, in order; the names themselves when demangling is not possible.
    public static func demangle(_ names: [String], tool: String? = findTool()) -> [String] {
        // Only Swift symbols go to the tool: it rewrites some plain names too
        // (an assembly label `exception_common` comes back as `$exception_common`).
        let swiftNames = names.filter(isMangled)
        guard let tool, !swiftNames.isEmpty else { return names }
        // The names go as arguments (no stdin to feed, so no pipe deadlock); `--compact`
        // prints one line per name, the name itself when it is not a Swift symbol.
        guard let output = run(tool, ["--simplified", "--compact"] + swiftNames) else { return names }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        guard lines.count >= swiftNames.count else { return names }
        var readable: [String: String] = [:]
        for (name, line) in zip(swiftNames, lines) where !line.isEmpty { readable[name] = line }
        return names.map { readable[$0] ?? $0 }
    }

    /// Whether `name` carries a Swift mangling prefix: `$s` (Swift 5 and
    /// later), `$e` (Embedded Swift), `$S` (Swift 4.2), `_T0` (Swift 4), or
    /// one of the first three with the underscore some platforms add.
    public static func isMangled(_ name: String) -> Bool {
        ["$s", "$e", "$S", "_$s", "_$e", "_$S", "_T0"].contains { name.hasPrefix($0) }
    }

    /// Runs `tool` with `arguments` and returns its standard output, or nil if it did not exit 0.
    static func run(_ tool: String, _ arguments: [String]) -> String? {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { return nil }
        // Close-on-exec (Glibc's module lacks pipe2): the child gets the write end only as its stdout.
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], STDOUT_FILENO)
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0)
        // The VMM blocks some signals on its threads; the child must not inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))

        let argv: [UnsafeMutablePointer<CChar>?] = ([tool] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, tool, &actions, &attributes, argv, environ)
        close(pipeFDs[1])
        defer { close(pipeFDs[0]) }
        guard spawned == 0 else { return nil }

        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(pipeFDs[0], $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            output += buffer[0..<count]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED && WEXITSTATUS == 0, without the C macros.
        guard status & 0x7F == 0, (status >> 8) & 0xFF == 0 else { return nil }
        return String(decoding: output, as: UTF8.self)
    }
}
