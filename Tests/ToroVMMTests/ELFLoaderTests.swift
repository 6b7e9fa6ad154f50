import Glibc
import XCTest

@testable import ToroVMM

/// Builds small ELF64 images byte by byte, so that each test can break exactly one field.
private struct ELFBuilder {
    struct Segment {
        var type: UInt32 = 1  // PT_LOAD
        var flags: UInt32 = ELFSegment.readable
        var physicalAddress: UInt64
        var data: [UInt8] = []
        var memorySize: UInt64
        /// Overrides for the fields the builder otherwise computes from `data` and the layout.
        var fileOffset: UInt64? = nil
        var fileSize: UInt64? = nil
    }

    var elfClass: UInt8 = 2
    var elfData: UInt8 = 1
    var identVersion: UInt8 = 1
    var type: UInt16 = 2  // ET_EXEC
    var machine: UInt16 = 62  // EM_X86_64
    var version: UInt32 = 1
    var entry: UInt64 = 0x20_0000
    var programHeaderOffset: UInt64? = nil
    var programHeaderEntrySize: UInt16 = 56
    var programHeaderCount: UInt16? = nil
    var segments: [Segment] = []

    /// A typical kernel: code at 2 MiB (entry at its start), data + bss at 2 MiB + 64 KiB.
    static func kernel() -> ELFBuilder {
        var builder = ELFBuilder()
        builder.segments = [
            Segment(
                flags: ELFSegment.readable | ELFSegment.executable, physicalAddress: 0x20_0000,
                data: [0xF4, 0xEB, 0xFD, 0x90], memorySize: 4),  // hlt; jmp $-3; nop
            Segment(
                flags: ELFSegment.readable | ELFSegment.writable, physicalAddress: 0x21_0000,
                data: [1, 2, 3, 4, 5, 6, 7, 8], memorySize: 0x2000),
        ]
        return builder
    }

    func bytes() -> [UInt8] {
        let phoff = programHeaderOffset ?? 64
        var dataOffset = 64 + UInt64(segments.count) * 56
        var headers: [UInt8] = []
        var data: [UInt8] = []
        for segment in segments {
            let offset = segment.fileOffset ?? dataOffset
            headers += le(segment.type) + le(segment.flags) + le(offset)
            headers += le(segment.physicalAddress) + le(segment.physicalAddress)  // p_vaddr, p_paddr
            headers += le(segment.fileSize ?? UInt64(segment.data.count)) + le(segment.memorySize) + le(UInt64(0x1000))
            data += segment.data
            dataOffset += UInt64(segment.data.count)
        }
        var file: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, elfClass, elfData, identVersion, 0] + [UInt8](repeating: 0, count: 8)
        file += le(type) + le(machine) + le(version) + le(entry)
        file += le(phoff) + le(UInt64(0))  // e_phoff, e_shoff
        file += le(UInt32(0)) + le(UInt16(64)) + le(programHeaderEntrySize)  // e_flags, e_ehsize, e_phentsize
        file += le(programHeaderCount ?? UInt16(segments.count)) + le(UInt16(64)) + le(UInt16(0)) + le(UInt16(0))
        precondition(file.count == 64)
        if phoff == 64 { file += headers + data }
        return file
    }

    private func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }
}

final class ELFLoaderTests: XCTestCase {
    private let memory16M = GuestMemory.layout(size: 16 << 20)

    private func assertParse(_ builder: ELFBuilder, throws expected: ELFError, line: UInt = #line) {
        assertParse(builder.bytes(), throws: expected, line: line)
    }

    private func assertParse(_ bytes: [UInt8], throws expected: ELFError, line: UInt = #line) {
        do {
            let image = try ELFImage.parse(bytes)
            XCTFail("parsed an image that should be refused: entry 0x\(String(image.entry, radix: 16))", line: line)
        } catch {
            XCTAssertEqual(error, expected, line: line)
            XCTAssertFalse(error.description.isEmpty, line: line)
            XCTAssertFalse(error.description.contains("\n"), line: line)
        }
    }

    private func assertValidate(
        _ builder: ELFBuilder, regions: [GuestMemoryRegion]? = nil, throws expected: ELFError, line: UInt = #line
    ) {
        do {
            let image = try ELFImage.parse(builder.bytes())
            try image.validate(regions: regions ?? memory16M, reserved: BootLayout.bootRegion)
            XCTFail("validated an image that should be refused", line: line)
        } catch {
            XCTAssertEqual(error, expected, line: line)
        }
    }

    // MARK: - Success

    func testLoadsSegmentsAndZeroesBSS() throws {
        let memory = try GuestMemory(size: 16 << 20)
        // Dirty the bss first, so the test sees the loader zero it rather than mmap.
        try memory.fill(0xAA, at: GuestAddress(0x21_0000), count: 0x3000)

        let image = try ELFLoader.load(ELFBuilder.kernel().bytes(), into: memory)

        XCTAssertEqual(image.entry, 0x20_0000)
        XCTAssertEqual(image.segments.count, 2)
        XCTAssertEqual(try memory.read(at: GuestAddress(0x20_0000), count: 4), [0xF4, 0xEB, 0xFD, 0x90])
        XCTAssertEqual(try memory.read(at: GuestAddress(0x21_0000), count: 8), [1, 2, 3, 4, 5, 6, 7, 8])
        XCTAssertEqual(try memory.read(at: GuestAddress(0x21_0008), count: 0x2000 - 8), [UInt8](repeating: 0, count: 0x2000 - 8))
        // Past memsz the loader wrote nothing.
        XCTAssertEqual(try memory.read(at: GuestAddress(0x21_2000), count: 16), [UInt8](repeating: 0xAA, count: 16))
    }

    func testParsedSegmentsAndLoadedRanges() throws {
        var builder = ELFBuilder.kernel()
        builder.segments.swapAt(0, 1)  // program header order need not be address order
        let image = try ELFImage.parse(builder.bytes())
        XCTAssertEqual(image.segments.map(\.index), [0, 1])
        XCTAssertEqual(image.segments[0].physicalAddress, 0x21_0000)
        XCTAssertEqual(image.segments[0].fileSize, 8)
        XCTAssertEqual(image.segments[0].memorySize, 0x2000)
        XCTAssertFalse(image.segments[0].isExecutable)
        XCTAssertTrue(image.segments[1].isExecutable)
        XCTAssertEqual(image.loadedRanges, [0x20_0000..<0x20_0004, 0x21_0000..<0x21_2000])
        XCTAssertEqual(image.memoryBytes, 0x2004)
    }

    func testEntryInsideExecutableSegment() throws {
        var builder = ELFBuilder.kernel()
        builder.entry = 0x20_0003  // last byte of the code segment
        XCTAssertEqual(try ELFImage.parse(builder.bytes()).entry, 0x20_0003)
    }

    func testIgnoresNonLoadAndZeroSizeSegments() throws {
        var builder = ELFBuilder.kernel()
        builder.segments.append(.init(type: 0x6474_E551, physicalAddress: 0, memorySize: 0))  // PT_GNU_STACK
        // A PT_NOTE inside the boot region: not loaded, so not refused.
        builder.segments.append(.init(type: 4, physicalAddress: 0x1000, data: [9, 9], memorySize: 2))
        builder.segments.append(.init(physicalAddress: 0x20_0000, memorySize: 0, fileOffset: 1 << 40))  // empty PT_LOAD
        let image = try ELFImage.parse(builder.bytes())
        XCTAssertEqual(image.segments.map(\.index), [0, 1])
        XCTAssertNoThrow(try image.validate(regions: memory16M, reserved: BootLayout.bootRegion))
    }

    func testAdjacentSegmentsDoNotOverlap() throws {
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = 0x20_0004
        XCTAssertEqual(try ELFImage.parse(builder.bytes()).loadedRanges.count, 2)
    }

    func testSegmentAboveMMIOHole() throws {
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = 1 << 32
        let image = try ELFImage.parse(builder.bytes())
        XCTAssertNoThrow(try image.validate(regions: GuestMemory.layout(size: 4 << 30), reserved: BootLayout.bootRegion))
    }

    // MARK: - Header

    func testRejectsNotELF() {
        assertParse([0x7F, 0x45, 0x4C], throws: .notELF)
        assertParse([UInt8]("#!/bin/sh\necho not a kernel\n".utf8), throws: .notELF)
        assertParse([], throws: .notELF)
    }

    func testRejectsELF32() {
        var builder = ELFBuilder.kernel()
        builder.elfClass = 1
        assertParse(builder, throws: .notELF64(class: 1))
    }

    func testRejectsBigEndian() {
        var builder = ELFBuilder.kernel()
        builder.elfData = 2
        assertParse(builder, throws: .notLittleEndian(data: 2))
    }

    func testRejectsBadIdentVersion() {
        var builder = ELFBuilder.kernel()
        builder.identVersion = 0
        assertParse(builder, throws: .badVersion(0))
    }

    func testRejectsBadVersion() {
        var builder = ELFBuilder.kernel()
        builder.version = 2
        assertParse(builder, throws: .badVersion(2))
    }

    func testRejectsOtherMachine() {
        var builder = ELFBuilder.kernel()
        builder.machine = 183  // EM_AARCH64
        assertParse(builder, throws: .notX86_64(machine: 183))
    }

    func testRejectsPIE() {
        var builder = ELFBuilder.kernel()
        builder.type = 3  // ET_DYN
        assertParse(builder, throws: .notExecutable(type: 3))
        XCTAssertTrue(ELFError.notExecutable(type: 3).description.contains("-no-pie"))
    }

    func testRejectsRelocatable() {
        var builder = ELFBuilder.kernel()
        builder.type = 1
        assertParse(builder, throws: .notExecutable(type: 1))
    }

    func testRejectsTruncatedHeader() {
        let bytes = ELFBuilder.kernel().bytes()
        assertParse(Array(bytes[0..<40]), throws: .truncatedHeader(size: 40))
        assertParse(Array(bytes[0..<8]), throws: .truncatedHeader(size: 8))
    }

    // MARK: - Program headers

    func testRejectsBadProgramHeaderSize() {
        var builder = ELFBuilder.kernel()
        builder.programHeaderEntrySize = 32
        assertParse(builder, throws: .badProgramHeaderSize(32))
    }

    func testRejectsProgramHeadersPastEnd() {
        var builder = ELFBuilder.kernel()
        builder.programHeaderCount = 60
        let bytes = builder.bytes()
        assertParse(bytes, throws: .truncatedProgramHeaders(offset: 64, count: 60, fileSize: bytes.count))
    }

    func testRejectsProgramHeaderOffsetOverflow() {
        var builder = ELFBuilder.kernel()
        builder.programHeaderOffset = UInt64.max - 8
        let bytes = builder.bytes()
        assertParse(bytes, throws: .truncatedProgramHeaders(offset: UInt64.max - 8, count: 2, fileSize: bytes.count))
    }

    func testRejectsNoProgramHeaders() {
        var builder = ELFBuilder.kernel()
        builder.segments = []
        assertParse(builder, throws: .noLoadableSegment)
    }

    func testRejectsNoLoadableSegment() {
        var builder = ELFBuilder()
        builder.segments = [
            .init(type: 4, physicalAddress: 0x20_0000, data: [1], memorySize: 1),  // PT_NOTE
            .init(physicalAddress: 0x30_0000, memorySize: 0),  // empty PT_LOAD
        ]
        assertParse(builder, throws: .noLoadableSegment)
    }

    func testRejectsTooManySegments() {
        var builder = ELFBuilder.kernel()
        for page in 0..<UInt64(ELFImage.maxSegments) {
            builder.segments.append(.init(physicalAddress: 0x40_0000 + page * 0x1000, data: [0], memorySize: 1))
        }
        assertParse(builder, throws: .tooManySegments(ELFImage.maxSegments + 2))
    }

    // MARK: - Segments against the file

    func testRejectsTruncatedSegment() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].fileSize = 0x1000  // more than the 8 bytes that are there
        let bytes = builder.bytes()
        assertParse(bytes, throws: .truncatedSegment(index: 1, offset: 64 + 2 * 56 + 4, size: 0x1000, fileSize: bytes.count))
    }

    func testRejectsSegmentOffsetOverflow() {
        var builder = ELFBuilder.kernel()
        builder.segments[0].fileOffset = UInt64.max - 1
        let bytes = builder.bytes()
        assertParse(bytes, throws: .truncatedSegment(index: 0, offset: UInt64.max - 1, size: 4, fileSize: bytes.count))
    }

    func testRejectsFileSizeLargerThanMemorySize() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].memorySize = 4
        assertParse(builder, throws: .segmentSizeInvalid(index: 1, fileSize: 8, memorySize: 4))
    }

    func testRejectsAddressOverflow() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = UInt64.max - 0xFFF
        assertParse(builder, throws: .segmentAddressOverflow(index: 1, address: UInt64.max - 0xFFF, memorySize: 0x2000))
    }

    func testRejectsOverlappingSegments() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = 0x1F_F000  // its bss runs over the code at 2 MiB
        assertParse(builder, throws: .overlappingSegments(0, 1))
    }

    func testRejectsEntryOutsideSegments() {
        var builder = ELFBuilder.kernel()
        builder.entry = 0x20_0004  // one past the code
        assertParse(builder, throws: .entryOutsideExecutableSegment(0x20_0004))
    }

    func testRejectsEntryInDataSegment() {
        var builder = ELFBuilder.kernel()
        builder.entry = 0x21_0000  // inside the data segment, which is not PF_X
        assertParse(builder, throws: .entryOutsideExecutableSegment(0x21_0000))
    }

    // MARK: - Placement

    func testRejectsSegmentOverBootRegion() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = 0x20_0004  // right after the code, at 2 MiB + 4: fine
        XCTAssertNoThrow(try ELFImage.parse(builder.bytes()).validate(regions: memory16M, reserved: BootLayout.bootRegion))
        builder.segments[1].physicalAddress = 0x1F_E000  // the last 8 KiB of the boot region (the boot stacks)
        assertValidate(
            builder, throws: .segmentOverBootRegion(index: 1, start: 0x1F_E000, end: 0x20_0000, reserved: 0..<0x20_0000))
        builder.segments[1].physicalAddress = 0x8000  // the page tables
        assertValidate(builder, throws: .segmentOverBootRegion(index: 1, start: 0x8000, end: 0xA000, reserved: 0..<0x20_0000))
    }

    func testRejectsSegmentOutsideMemory() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = 0xFF_F000  // straddles the end of 16 MiB
        assertValidate(
            builder, throws: .segmentOutsideMemory(index: 1, start: 0xFF_F000, end: 0x100_1000, memorySize: 16 << 20))
    }

    func testRejectsSegmentInMMIOHole() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = 0xBFFF_F000  // straddles the start of the hole at 3 GiB
        assertValidate(
            builder, regions: GuestMemory.layout(size: 4 << 30),
            throws: .segmentOutsideMemory(index: 1, start: 0xBFFF_F000, end: 0xC000_1000, memorySize: 4 << 30))
    }

    func testRejectsImageLargerThanMemory() {
        var builder = ELFBuilder.kernel()
        builder.segments[1].memorySize = 32 << 20
        assertValidate(builder, throws: .imageTooLarge(imageBytes: (32 << 20) + 4, memoryBytes: 16 << 20))
        let message = ELFError.imageTooLarge(imageBytes: 32 << 20, memoryBytes: 16 << 20).description
        XCTAssertTrue(message.contains("32 MiB") && message.contains("16 MiB") && message.contains("--memory"), message)
    }

    func testRefusedImageLeavesMemoryUntouched() throws {
        let memory = try GuestMemory(size: 16 << 20)
        var builder = ELFBuilder.kernel()
        builder.segments[1].physicalAddress = 0x1000
        XCTAssertThrowsError(try ELFLoader.load(builder.bytes(), into: memory)) { error in
            XCTAssertEqual(
                error as? ELFError, .segmentOverBootRegion(index: 1, start: 0x1000, end: 0x3000, reserved: 0..<0x20_0000))
        }
        XCTAssertEqual(try memory.read(at: GuestAddress(0x20_0000), count: 4), [0, 0, 0, 0])
    }

    // MARK: - Reading the file

    func testReadsFile() throws {
        let path = temporaryPath()
        defer { unlink(path) }
        let bytes = ELFBuilder.kernel().bytes()
        try write(bytes, to: path)
        XCTAssertEqual(try ELFLoader.read(path: path), bytes)
    }

    func testReadRejectsMissingFile() {
        let path = "/nonexistent/toro-kernel.elf"
        XCTAssertThrowsError(try ELFLoader.read(path: path)) { error in
            XCTAssertEqual(error as? ELFError, .fileNotFound(path: path))
        }
    }

    func testReadRejectsEmptyFile() throws {
        let path = temporaryPath()
        defer { unlink(path) }
        try write([], to: path)
        XCTAssertThrowsError(try ELFLoader.read(path: path)) { error in
            XCTAssertEqual(error as? ELFError, .empty(path: path))
        }
    }

    func testReadRejectsDirectory() {
        XCTAssertThrowsError(try ELFLoader.read(path: "/tmp")) { error in
            XCTAssertEqual(error as? ELFError, .notRegularFile(path: "/tmp"))
        }
    }

    func testErrorDescriptionsNameAddressesInHex() {
        let outside = ELFError.segmentOutsideMemory(index: 2, start: 0x100_0000, end: 0x200_0000, memorySize: 16 << 20)
        let message = outside.description
        XCTAssertTrue(message.contains("0x1000000") && message.contains("0x2000000"), message)
        XCTAssertEqual(ELFError.overlappingSegments(0, 1).description, "segments 0 and 1 overlap in physical memory")
        let unreadable = ELFError.unreadable(path: "k.elf", errno: EACCES).description
        XCTAssertEqual(unreadable, "cannot read: Permission denied")
    }

    // MARK: - Helpers

    private func temporaryPath() -> String {
        "/tmp/toro-elf-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).elf"
    }

    private func write(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw XCTSkip("cannot create \(path)") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        XCTAssertEqual(written, bytes.count)
    }
}
