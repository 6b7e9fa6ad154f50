import Glibc

/// A file toro-vmm writes only when the run ends (`--stats-file`, `--profile`),
/// opened before the guest starts: a path that cannot be written is then
/// reported at once, as a set-up error, rather than after a run whose results
/// would be lost.
public final class OutputFile {
    public let path: String
    /// What goes there, for messages: "statistics", "the profile".
    let contents: String
    private let fd: Int32
    /// Whether opening the file created it: a file toro-vmm created and never
    /// wrote is removed again, so a failed start leaves nothing behind.
    private let created: Bool
    private var written = false

    /// Opens (or creates) `path` for writing without truncating it yet: until
    /// the run ends, an existing file keeps what it had.
    public init(path: String, contents: String) throws(VMMError) {
        self.path = path
        self.contents = contents
        var fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        var created = fd >= 0
        if fd < 0 && errno == EEXIST {
            fd = open(path, O_WRONLY | O_CLOEXEC)
            created = false
        }
        guard fd >= 0 else { throw .output("cannot write \(contents) to \(path): \(String(cString: strerror(errno)))") }
        self.fd = fd
        self.created = created
    }

    deinit {
        close(fd)
        if created && !written { unlink(path) }
    }

    /// Replaces the file's contents with `text`; on failure, the one line to show.
    public func write(_ text: String) -> String? {
        written = true
        var status = stat()
        // Only a regular file can be truncated; a FIFO or a terminal just takes the text.
        if fstat(fd, &status) == 0 && (status.st_mode & S_IFMT) == S_IFREG {
            guard ftruncate(fd, 0) == 0, lseek(fd, 0, SEEK_SET) == 0 else { return failure() }
        }
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return failure() }
            bytes = bytes.dropFirst(count)
        }
        return nil
    }

    /// Removes the file if opening it created it and nothing was written.
    public func discard() {
        guard created && !written else { return }
        written = true
        unlink(path)
    }

    private func failure() -> String {
        "cannot write \(contents) to \(path): \(String(cString: strerror(errno)))"
    }
}
