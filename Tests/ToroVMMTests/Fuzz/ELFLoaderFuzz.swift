// The ELF loader under fuzzing: the input is a kernel image file. Shared by the
// libFuzzer target ELFLoader (make fuzz) and the corpus replay (FuzzCorpusTests).
//
// Beyond "no trap": a parsed image's segments are in program header order,
// their sizes consistent with the file and 64-bit addresses, disjoint, and the
// entry point lies in an executable one; an image placed by `validate` lies in
// RAM regions and clear of the boot region, for several memory sizes (up to
// 64 GiB, two regions, without mapping them); loading into a small real
// GuestMemory succeeds exactly when `validate` accepts, and afterwards each
// segment holds its file bytes followed by zeros. The symbol table reader
// (the profiler's) gets the same bytes: its symbols are sorted and every
// lookup answers with a symbol at or below the address.

import Glibc

import FuzzSupport
@testable import ToroVMM

enum ELFLoaderFuzz {
    /// The guest images are loaded into: 4 MiB, the first 2 of them the boot region.
    static let memory: GuestMemory = {
        do { return try GuestMemory(size: 4 << 20) } catch { fatalError("cannot map the fuzz guest memory: \(error)") }
    }()

    /// RAM sizes whose layouts `validate` is checked against: one region, exactly
    /// up to the MMIO hole, two regions, the largest guest.
    static let layoutSizes: [UInt64] = [4 << 20, GuestMemory.mmioHoleBase, GuestMemory.mmioHoleBase + (2 << 20), 64 << 30]

    static func check(_ bytes: [UInt8]) throws(FuzzViolation) {
        try checkSymbols(bytes)
        let image: ELFImage
        do throws(ELFError) {
            image = try ELFImage.parse(bytes)
        } catch {
            try fuzzExpect(!error.description.isEmpty, "an error without a message")
            return
        }
        try checkStructure(image, bytes)
        let reserved = BootLayout.bootRegion
        for size in layoutSizes {
            let regions = GuestMemory.layout(size: size)
            do throws(ELFError) {
                try image.validate(regions: regions, reserved: reserved)
            } catch {
                try fuzzExpect(!error.description.isEmpty, "an error without a message")
                continue
            }
            try checkPlacement(image, regions: regions, reserved: reserved)
        }
        try checkLoad(image, bytes)
    }

    /// What `parse` promises about an image it accepts.
    static func checkStructure(_ image: ELFImage, _ bytes: [UInt8]) throws(FuzzViolation) {
        try fuzzExpect(
            !image.segments.isEmpty && image.segments.count <= ELFImage.maxSegments,
            "\(image.segments.count) segments")
        var previous = -1
        var total: UInt64 = 0
        for segment in image.segments {
            try fuzzExpect(segment.index > previous, "segment \(segment.index) out of program header order")
            previous = segment.index
            try fuzzExpect(segment.memorySize > 0, "segment \(segment.index) occupies nothing")
            try fuzzExpect(segment.fileSize <= segment.memorySize, "segment \(segment.index): file size over memory size")
            try fuzzExpect(
                !segment.physicalAddress.addingReportingOverflow(segment.memorySize).overflow,
                "segment \(segment.index): address + size overflows")
            if segment.fileSize > 0 {
                let (end, overflow) = segment.fileOffset.addingReportingOverflow(segment.fileSize)
                try fuzzExpect(!overflow && end <= UInt64(bytes.count), "segment \(segment.index) reaches past the file")
            }
            let (sum, overflow) = total.addingReportingOverflow(segment.memorySize)
            try fuzzExpect(!overflow, "the segments' sizes overflow 64 bits")
            total = sum
        }
        try fuzzExpect(image.memoryBytes == total, "memoryBytes \(image.memoryBytes), the segments sum to \(total)")
        let ranges = image.loadedRanges
        for (first, second) in zip(ranges, ranges.dropFirst()) {
            try fuzzExpect(first.upperBound <= second.lowerBound, "segments \(first) and \(second) overlap")
        }
        try fuzzExpect(
            image.segments.contains { $0.isExecutable && $0.physicalRange.contains(image.entry) },
            "the entry point is outside every executable segment")
    }

    /// What `validate` promises about an image it placed in `regions`.
    static func checkPlacement(_ image: ELFImage, regions: [GuestMemoryRegion], reserved: Range<UInt64>) throws(FuzzViolation) {
        var ram: UInt64 = 0
        for region in regions { ram += region.size }
        try fuzzExpect(image.memoryBytes <= ram, "an image larger than RAM was placed")
        for segment in image.segments {
            let range = segment.physicalRange
            try fuzzExpect(!range.overlaps(reserved), "segment \(segment.index) placed over the boot region")
            try fuzzExpect(
                regions.contains { range.lowerBound >= $0.guestBase && range.upperBound <= $0.guestEnd },
                "segment \(segment.index) at \(range) placed outside every RAM region")
        }
    }

    /// Loads into the real memory; checks it is refused exactly when `validate`
    /// refuses, and that what it wrote is the file's bytes and the bss.
    static func checkLoad(_ image: ELFImage, _ bytes: [UInt8]) throws(FuzzViolation) {
        let memory = Self.memory
        let fits = (try? image.validate(regions: memory.regions, reserved: BootLayout.bootRegion)) != nil
        if fits {
            // Poison what the loader must overwrite, so the check below sees its writes.
            for segment in image.segments {
                do {
                    try memory.fill(0xA5, at: GuestAddress(segment.physicalAddress), count: segment.memorySize)
                } catch {
                    throw FuzzViolation(description: "segment \(segment.index) validated but outside memory: \(error)")
                }
            }
        }
        let loaded: ELFImage
        do {
            loaded = try ELFLoader.load(bytes, into: memory)
        } catch {
            try fuzzExpect(!fits, "load refused an image validate placed: \(error)")
            return
        }
        try fuzzExpect(fits, "load accepted an image validate refused")
        try fuzzExpect(loaded.entry == image.entry && loaded.segments == image.segments, "load parsed differently")
        for segment in loaded.segments {
            let pointer: UnsafeMutableRawPointer
            do {
                pointer = try memory.hostPointer(GuestAddress(segment.physicalAddress), length: segment.memorySize)
            } catch {
                throw FuzzViolation(description: "segment \(segment.index) loaded outside memory: \(error)")
            }
            let fileSize = Int(segment.fileSize)
            if fileSize > 0 {
                let same = bytes.withUnsafeBytes { file in
                    memcmp(pointer, file.baseAddress! + Int(segment.fileOffset), fileSize) == 0
                }
                try fuzzExpect(same, "segment \(segment.index): memory differs from the file")
            }
            let bss = UnsafeRawBufferPointer(start: pointer + fileSize, count: Int(segment.memorySize) - fileSize)
            try fuzzExpect(!bss.contains { $0 != 0 }, "segment \(segment.index): the bss is not zeroed")
        }
    }

    /// The profiler's symbol reader on the same bytes: never refuses, never traps,
    /// gives sorted symbols, and lookups that land at or above a symbol's start.
    static func checkSymbols(_ bytes: [UInt8]) throws(FuzzViolation) {
        let table = ELFSymbolTable.read(bytes)
        for (first, second) in zip(table.symbols, table.symbols.dropFirst()) {
            try fuzzExpect(first.address <= second.address, "symbols out of order")
        }
        var probes: [UInt64] = [0, 1, UInt64.max, 0x20_0000]
        for symbol in table.symbols.prefix(16) {
            probes += [symbol.address, symbol.address &- 1, symbol.address &+ symbol.size, symbol.address &+ symbol.size / 2]
        }
        for range in table.codeRanges.prefix(8) {
            probes += [range.lowerBound, range.upperBound &- 1, range.upperBound]
        }
        for probe in probes {
            guard let (symbol, offset) = table.lookup(probe) else { continue }
            try fuzzExpect(symbol.address <= probe, "lookup(\(probe)) gave a symbol above it")
            try fuzzExpect(offset == probe - symbol.address, "lookup(\(probe)) gave a wrong offset")
            try fuzzExpect(!symbol.name.isEmpty, "a symbol without a name")
        }
    }
}
