import Glibc

/// Reads the kernel's ELF file and loads it into guest memory.
///
/// There is no bootloader, no firmware and no real mode: every `PT_LOAD`
/// segment is copied straight to its physical address and the vCPU starts at
/// the entry point in long mode. Nothing is written until the whole image has
/// passed ``ELFImage/parse(_:)`` and ``ELFImage/validate(regions:reserved:)``,
/// so a refused image leaves guest memory untouched.
public enum ELFLoader {
    /// The largest file ``read(path:)`` accepts. A kernel is a few MiB; this
    /// only stops a wrong path (a disk image, say) from being read into memory.
    public static let maxFileSize: UInt64 = 1 << 30

    /// Parses and checks `bytes`, then copies each segment to its physical
    /// address in `memory` and zeroes the rest of its memory size (the bss).
    ///
    /// - Parameter reserved: guest-physical addresses no segment may touch;
    ///   by default the VMM's boot structures.
    /// - Returns: the parsed image, for its entry point and loaded ranges.
    @discardableResult
    public static func load(
        _ bytes: [UInt8], into memory: GuestMemory, reserved: Range<UInt64> = BootLayout.bootRegion
    ) throws(ELFError) -> ELFImage {
        let image = try ELFImage.parse(bytes)
        try image.validate(regions: memory.regions, reserved: reserved)
        for segment in image.segments {
            do {
                let address = GuestAddress(segment.physicalAddress)
                if segment.fileSize > 0 {
                    // parse() checked fileOffset + fileSize <= bytes.count.
                    let start = Int(segment.fileOffset)
                    let end = start + Int(segment.fileSize)
                    // withUnsafeBytes is `rethrows`, which erases a typed error: carry it out in a Result.
                    let copied = bytes[start..<end].withUnsafeBytes { source in
                        Result { () throws(GuestMemoryError) in try memory.write(source, at: address) }
                    }
                    try copied.get()
                }
                // Guest RAM starts zeroed, but the loader does not rely on who mapped it.
                let bss = segment.memorySize - segment.fileSize
                if bss > 0 {
                    try memory.fill(0, at: address.adding(segment.fileSize), count: bss)
                }
            } catch {
                // validate() makes this unreachable; keep the message right if it ever is not.
                let range = segment.physicalRange
                throw .segmentOutsideMemory(
                    index: segment.index, start: range.lowerBound, end: range.upperBound, memorySize: memory.size)
            }
        }
        return image
    }

    /// Reads the whole file at `path`, refusing what cannot be a kernel image
    /// (a missing file, a directory, an empty file, a file over ``maxFileSize``)
    /// before reading a byte.
    public static func read(path: String) throws(ELFError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw code == ENOENT ? .fileNotFound(path: path) : .unreadable(path: path, errno: code)
        }
        defer { close(fd) }

        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .unreadable(path: path, errno: errno) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .notRegularFile(path: path) }
        let size = UInt64(info.st_size)
        guard size <= maxFileSize else { throw .fileTooLarge(path: path, size: size, limit: maxFileSize) }
        guard size > 0 else { throw .empty(path: path) }

        var bytes = [UInt8](repeating: 0, count: Int(size))
        var filled = 0
        let failure: Int32? = bytes.withUnsafeMutableBytes { buffer in
            while filled < buffer.count {
                let count = Glibc.read(fd, buffer.baseAddress! + filled, buffer.count - filled)
                if count < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                if count == 0 { break }  // the file shrank since fstat: keep what is there
                filled += count
            }
            return nil
        }
        if let failure { throw .unreadable(path: path, errno: failure) }
        guard filled > 0 else { throw .empty(path: path) }
        if filled < bytes.count { bytes.removeSubrange(filled...) }
        return bytes
    }
}
