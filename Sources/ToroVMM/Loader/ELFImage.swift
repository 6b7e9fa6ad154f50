// Parsing and checking of the kernel's ELF64 image, before any byte of it
// reaches guest memory.
//
// The kernel is a static x86-64 `ET_EXEC` linked at physical addresses: the
// VMM copies every `PT_LOAD` segment to its `p_paddr`, zeroes the rest of its
// memory size, and starts the vCPU at `e_entry` under an identity map. There
// is no bootloader to fix anything up, so whatever the image says is checked
// here first: the file is input from the user, and a bad header must become a
// clear message, never a write outside guest RAM.
//
// This file is pure (no I/O, no guest memory): ``ELFImage/parse(_:)`` makes
// the structural checks and ``ELFImage/validate(regions:reserved:)`` the
// placement checks against a memory layout. ``ELFLoader`` does the copying.

import Glibc  // strerror, for ELFError's description only

// MARK: - Errors

/// Why a kernel image was refused. Each description is one line for the user;
/// it does not name the file, which the caller puts in front (``VMMError/image(path:_:)``).
public enum ELFError: Error, Equatable, CustomStringConvertible {
    /// The file does not exist.
    case fileNotFound(path: String)
    /// open(2), fstat(2) or read(2) of the file failed.
    case unreadable(path: String, errno: Int32)
    /// The path names a directory, a device or a pipe, not a regular file.
    case notRegularFile(path: String)
    /// The file is larger than any kernel the loader accepts.
    case fileTooLarge(path: String, size: UInt64, limit: UInt64)
    /// The file is empty.
    case empty(path: String)
    /// The file does not start with the ELF magic bytes.
    case notELF
    /// The image is ELF, but not ELFCLASS64.
    case notELF64(class: UInt8)
    /// The image is big-endian (or of an unknown byte order).
    case notLittleEndian(data: UInt8)
    /// `EI_VERSION` or `e_version` is not EV_CURRENT.
    case badVersion(UInt32)
    /// `e_machine` is not EM_X86_64.
    case notX86_64(machine: UInt16)
    /// `e_type` is not ET_EXEC (a PIE or shared object is ET_DYN, an object file ET_REL).
    case notExecutable(type: UInt16)
    /// The file ends inside the 64-byte ELF header.
    case truncatedHeader(size: Int)
    /// `e_phentsize` is not the 56 bytes of an Elf64_Phdr.
    case badProgramHeaderSize(UInt16)
    /// The program header table reaches past the end of the file.
    case truncatedProgramHeaders(offset: UInt64, count: UInt16, fileSize: Int)
    /// A segment's file bytes reach past the end of the file.
    case truncatedSegment(index: Int, offset: UInt64, size: UInt64, fileSize: Int)
    /// A segment's file size is larger than its memory size.
    case segmentSizeInvalid(index: Int, fileSize: UInt64, memorySize: UInt64)
    /// A segment's physical address plus its memory size does not fit in 64 bits.
    case segmentAddressOverflow(index: Int, address: UInt64, memorySize: UInt64)
    /// No `PT_LOAD` segment with a non-zero memory size.
    case noLoadableSegment
    /// More loadable segments than ``ELFImage/maxSegments``.
    case tooManySegments(Int)
    /// A segment is not wholly inside one region of guest RAM.
    case segmentOutsideMemory(index: Int, start: UInt64, end: UInt64, memorySize: UInt64)
    /// A segment overlaps the VMM's boot structures (``BootLayout/bootRegion``).
    case segmentOverBootRegion(index: Int, start: UInt64, end: UInt64, reserved: Range<UInt64>)
    /// Two segments share physical addresses; the indices are program header indices.
    case overlappingSegments(Int, Int)
    /// `e_entry` is not inside any executable (PF_X) loadable segment.
    case entryOutsideExecutableSegment(UInt64)
    /// The segments need more memory, in total, than the guest has.
    case imageTooLarge(imageBytes: UInt64, memoryBytes: UInt64)

    public var description: String {
        switch self {
        case .fileNotFound:
            return "no such file"
        case let .unreadable(_, errno):
            return "cannot read: \(errnoText(errno))"
        case .notRegularFile:
            return "not a regular file"
        case let .fileTooLarge(_, size, limit):
            return "\(sizeText(size)) is too large for a kernel image (the limit is \(sizeText(limit)))"
        case .empty:
            return "the file is empty"
        case .notELF:
            return "not an ELF file (no \\x7fELF magic at the start)"
        case let .notELF64(elfClass):
            return "not a 64-bit ELF file (EI_CLASS is \(elfClass), ELFCLASS64 is 2)"
        case let .notLittleEndian(data):
            return "not a little-endian ELF file (EI_DATA is \(data), ELFDATA2LSB is 1)"
        case let .badVersion(version):
            return "unsupported ELF version \(version) (expected 1, EV_CURRENT)"
        case let .notX86_64(machine):
            return "not an x86-64 ELF file (e_machine is \(machine), EM_X86_64 is 62)"
        case let .notExecutable(type):
            let kind: String
            switch type {
            case 1: kind = "a relocatable object (ET_REL)"
            case 3: kind = "position-independent (ET_DYN); link the kernel with -no-pie"
            case 4: kind = "a core dump (ET_CORE)"
            default: kind = "of type \(type)"
            }
            return "not an executable ELF file (ET_EXEC): the image is \(kind)"
        case let .truncatedHeader(size):
            return "truncated ELF header: the file has \(size) bytes, the ELF64 header needs 64"
        case let .badProgramHeaderSize(size):
            return "bad program header entry size \(size) (e_phentsize; an Elf64_Phdr is 56 bytes)"
        case let .truncatedProgramHeaders(offset, count, fileSize):
            return "truncated program headers: \(count) entries at offset \(hex(offset))"
                + " reach past the end of the \(fileSize)-byte file"
        case let .truncatedSegment(index, offset, size, fileSize):
            return "truncated segment \(index): \(size) bytes at file offset \(hex(offset))"
                + " reach past the end of the \(fileSize)-byte file"
        case let .segmentSizeInvalid(index, fileSize, memorySize):
            return "invalid segment \(index): its file size (\(hex(fileSize)))"
                + " is larger than its memory size (\(hex(memorySize)))"
        case let .segmentAddressOverflow(index, address, memorySize):
            return "invalid segment \(index): address \(hex(address)) plus memory size \(hex(memorySize)) overflows 64 bits"
        case .noLoadableSegment:
            return "no loadable segment: the image has no PT_LOAD segment with a non-zero memory size"
        case let .tooManySegments(count):
            return "too many loadable segments: \(count) (at most \(ELFImage.maxSegments))"
        case let .segmentOutsideMemory(index, start, end, memorySize):
            return "segment \(index) at [\(hex(start)), \(hex(end))) is outside guest RAM (\(sizeText(memorySize)));"
                + " raise --memory or link the kernel lower"
        case let .segmentOverBootRegion(index, start, end, reserved):
            return "segment \(index) at [\(hex(start)), \(hex(end))) overlaps the VMM's boot structures"
                + " at [\(hex(reserved.lowerBound)), \(hex(reserved.upperBound)));"
                + " link the kernel at \(hex(reserved.upperBound)) or above"
        case let .overlappingSegments(first, second):
            return "segments \(first) and \(second) overlap in physical memory"
        case let .entryOutsideExecutableSegment(entry):
            return "entry point \(hex(entry)) is not inside any loaded executable segment"
        case let .imageTooLarge(imageBytes, memoryBytes):
            return "the kernel image needs \(sizeText(imageBytes)) but guest RAM is only \(sizeText(memoryBytes)); raise --memory"
        }
    }
}

private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

/// "16 MiB" when exact, otherwise "1234567 bytes (1.2 MiB)".
private func sizeText(_ bytes: UInt64) -> String {
    let units: [(UInt64, String)] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
    for (unit, name) in units where bytes >= unit {
        if bytes % unit == 0 { return "\(bytes / unit) \(name)" }
        let tenths = bytes % unit * 10 / unit  // rounded down: a rough figure is enough
        return "\(bytes) bytes (\(bytes / unit).\(tenths) \(name))"
    }
    return "\(bytes) bytes"
}

private func errnoText(_ code: Int32) -> String {
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

// MARK: - Segments

/// One `PT_LOAD` segment with a non-zero memory size.
public struct ELFSegment: Equatable, Sendable {
    /// Index of the segment's entry in the program header table (as `readelf -l` counts).
    public var index: Int
    /// Where the segment's bytes start in the file.
    public var fileOffset: UInt64
    /// Bytes copied from the file (`p_filesz`).
    public var fileSize: UInt64
    /// Guest-physical address the segment is loaded at (`p_paddr`).
    public var physicalAddress: UInt64
    /// Bytes the segment occupies in memory (`p_memsz`); the part past ``fileSize`` is zeroed.
    public var memorySize: UInt64
    /// `p_flags`: ``ELFSegment/executable``, ``ELFSegment/writable``, ``ELFSegment/readable``.
    public var flags: UInt32

    public static let executable: UInt32 = 1  // PF_X
    public static let writable: UInt32 = 2  // PF_W
    public static let readable: UInt32 = 4  // PF_R

    public init(index: Int, fileOffset: UInt64, fileSize: UInt64, physicalAddress: UInt64, memorySize: UInt64, flags: UInt32) {
        self.index = index
        self.fileOffset = fileOffset
        self.fileSize = fileSize
        self.physicalAddress = physicalAddress
        self.memorySize = memorySize
        self.flags = flags
    }

    public var isExecutable: Bool { flags & ELFSegment.executable != 0 }

    /// `[physicalAddress, physicalAddress + memorySize)`. ``ELFImage/parse(_:)`` guarantees it does not overflow.
    public var physicalRange: Range<UInt64> { physicalAddress..<(physicalAddress + memorySize) }
}

// MARK: - Image

/// A parsed kernel image: where it starts and what it loads.
public struct ELFImage: Sendable {
    /// The most loadable segments an image may have; a kernel has three or four.
    public static let maxSegments = 64

    /// The address the vCPU starts at (`e_entry`); inside an executable segment.
    public let entry: UInt64
    /// The loadable segments with a non-zero memory size, in program header order.
    public let segments: [ELFSegment]

    /// Bytes of guest RAM the segments occupy, summed (they do not overlap).
    public var memoryBytes: UInt64 { segments.reduce(0) { $0 + $1.memorySize } }

    /// The physical ranges the kernel occupies, in ascending order: the
    /// boot memory map reports them as kernel memory.
    public var loadedRanges: [Range<UInt64>] {
        segments.map(\.physicalRange).sorted { $0.lowerBound < $1.lowerBound }
    }

    // ELF constants (System V ABI, "ELF Header" and "Program Header").
    static let headerSize = 64
    static let programHeaderSize = 56
    static let elfClass64: UInt8 = 2
    static let elfData2LSB: UInt8 = 1
    static let evCurrent: UInt32 = 1
    static let etExec: UInt16 = 2
    static let emX86_64: UInt16 = 62
    static let ptLoad: UInt32 = 1

    /// Parses `bytes` as an ELF64 x86-64 executable and makes every check that
    /// needs nothing but the file: the header, the program header table, each
    /// segment's sizes against the file, overlaps between segments and the entry point.
    public static func parse(_ bytes: [UInt8]) throws(ELFError) -> ELFImage {
        let file = LittleEndianBytes(bytes)

        // e_ident: magic, class, byte order, version. Checked before the
        // length of the whole header so that a short ELF32 file is called ELF32.
        guard bytes.count >= 4, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else {
            throw .notELF
        }
        guard bytes.count >= 16 else { throw .truncatedHeader(size: bytes.count) }
        guard bytes[4] == elfClass64 else { throw .notELF64(class: bytes[4]) }
        guard bytes[5] == elfData2LSB else { throw .notLittleEndian(data: bytes[5]) }
        guard UInt32(bytes[6]) == evCurrent else { throw .badVersion(UInt32(bytes[6])) }
        guard bytes.count >= headerSize,
            let type = file.u16(at: 16), let machine = file.u16(at: 18), let version = file.u32(at: 20),
            let entry = file.u64(at: 24), let phoff = file.u64(at: 32),
            let phentsize = file.u16(at: 54), let phnum = file.u16(at: 56)
        else { throw .truncatedHeader(size: bytes.count) }
        guard machine == emX86_64 else { throw .notX86_64(machine: machine) }
        guard type == etExec else { throw .notExecutable(type: type) }
        guard version == evCurrent else { throw .badVersion(version) }

        // The program header table.
        guard phnum > 0 else { throw .noLoadableSegment }
        guard Int(phentsize) == programHeaderSize else { throw .badProgramHeaderSize(phentsize) }
        let tableSize = UInt64(phnum) * UInt64(programHeaderSize)  // at most 0xFFFF * 56: no overflow
        let (tableEnd, tableOverflow) = phoff.addingReportingOverflow(tableSize)
        guard !tableOverflow, tableEnd <= UInt64(bytes.count) else {
            throw .truncatedProgramHeaders(offset: phoff, count: phnum, fileSize: bytes.count)
        }

        var segments: [ELFSegment] = []
        for index in 0..<Int(phnum) {
            let base = Int(phoff) + index * programHeaderSize
            guard let type = file.u32(at: base), let flags = file.u32(at: base + 4),
                let offset = file.u64(at: base + 8), let paddr = file.u64(at: base + 24),
                let filesz = file.u64(at: base + 32), let memsz = file.u64(at: base + 40)
            else { throw .truncatedProgramHeaders(offset: phoff, count: phnum, fileSize: bytes.count) }
            guard type == ptLoad else { continue }
            guard filesz <= memsz else {
                throw .segmentSizeInvalid(index: index, fileSize: filesz, memorySize: memsz)
            }
            if memsz == 0 { continue }  // occupies nothing: ignored
            if filesz > 0 {
                let (fileEnd, overflow) = offset.addingReportingOverflow(filesz)
                guard !overflow, fileEnd <= UInt64(bytes.count) else {
                    throw .truncatedSegment(index: index, offset: offset, size: filesz, fileSize: bytes.count)
                }
            }
            guard !paddr.addingReportingOverflow(memsz).overflow else {
                throw .segmentAddressOverflow(index: index, address: paddr, memorySize: memsz)
            }
            segments.append(
                ELFSegment(
                    index: index, fileOffset: offset, fileSize: filesz,
                    physicalAddress: paddr, memorySize: memsz, flags: flags))
        }
        guard !segments.isEmpty else { throw .noLoadableSegment }
        // Bounds the work below and in the loader; e_phnum < 65536 bounds the loop above.
        guard segments.count <= maxSegments else { throw .tooManySegments(segments.count) }

        // Overlaps: sorted by start, a segment can only overlap the one before it.
        let sorted = segments.sorted { $0.physicalAddress < $1.physicalAddress }
        for (previous, next) in zip(sorted, sorted.dropFirst()) where next.physicalAddress < previous.physicalRange.upperBound {
            throw .overlappingSegments(min(previous.index, next.index), max(previous.index, next.index))
        }

        // The vCPU starts at e_entry with paging identity-mapped, so the entry
        // must be a physical address inside code that the loader writes.
        guard segments.contains(where: { $0.isExecutable && $0.physicalRange.contains(entry) }) else {
            throw .entryOutsideExecutableSegment(entry)
        }
        return ELFImage(entry: entry, segments: segments)
    }

    /// Checks that the image can be placed in a guest whose RAM is `regions`
    /// without touching `reserved` (the VMM's boot structures): the total size
    /// first, then every segment inside one RAM region and clear of `reserved`.
    public func validate(regions: [GuestMemoryRegion], reserved: Range<UInt64>) throws(ELFError) {
        let memoryBytes = regions.reduce(0) { $0 + $1.size }
        guard self.memoryBytes <= memoryBytes else {
            throw .imageTooLarge(imageBytes: self.memoryBytes, memoryBytes: memoryBytes)
        }
        for segment in segments {
            let range = segment.physicalRange
            if range.overlaps(reserved) {
                throw .segmentOverBootRegion(
                    index: segment.index, start: range.lowerBound, end: range.upperBound, reserved: reserved)
            }
            // A segment may not straddle the MMIO hole: it must fit in one region.
            guard regions.contains(where: { range.lowerBound >= $0.guestBase && range.upperBound <= $0.guestEnd }) else {
                throw .segmentOutsideMemory(
                    index: segment.index, start: range.lowerBound, end: range.upperBound, memorySize: memoryBytes)
            }
        }
    }
}

// MARK: - Reading the file

/// Bounds-checked little-endian reads from the file's bytes: an offset that
/// runs past the end gives `nil`, never a read outside the array.
struct LittleEndianBytes {
    let bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func u16(at offset: Int) -> UInt16? { read(UInt16.self, at: offset) }
    func u32(at offset: Int) -> UInt32? { read(UInt32.self, at: offset) }
    func u64(at offset: Int) -> UInt64? { read(UInt64.self, at: offset) }

    private func read<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, at offset: Int) -> T? {
        let width = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - width else { return nil }
        var value: T = 0
        for byte in (0..<width).reversed() {
            value = value << 8 | T(bytes[offset + byte])
        }
        return value
    }
}
