// The kernel image's function symbols, for the profiler (`--profile`).
//
// Unlike ELFImage.parse, nothing here refuses an image: symbols are optional.
// A stripped image, a missing or truncated `.symtab`/`.strtab`, or section
// headers that point outside the file all give an empty table (or the part
// that could be read), never an error and never a read outside the file.

/// One code symbol: a function (`STT_FUNC`), or an untyped label in an executable section.
public struct ELFSymbol: Equatable, Sendable {
    /// The name as in `.strtab` (mangled for Swift).
    public var name: String
    public var address: UInt64
    /// `st_size`; 0 for labels of unknown size.
    public var size: UInt64

    public init(name: String, address: UInt64, size: UInt64) {
        self.name = name
        self.address = address
        self.size = size
    }

    /// Whether `address` is inside the symbol's `[address, address + size)`.
    public func contains(_ address: UInt64) -> Bool {
        address >= self.address && address - self.address < size
    }
}

/// The image's code symbols, sorted by address, and the code ranges they may cover.
public struct ELFSymbolTable: Equatable, Sendable {
    /// Sorted by address; at one address a sized symbol comes before a label.
    public let symbols: [ELFSymbol]
    /// The executable sections' address ranges: a RIP outside them is not matched to
    /// a "nearest preceding" symbol (it would be a guess far from any code).
    public let codeRanges: [Range<UInt64>]

    public static let empty = ELFSymbolTable(symbols: [], codeRanges: [])

    public init(symbols: [ELFSymbol], codeRanges: [Range<UInt64>]) {
        self.symbols = symbols.sorted { ($0.address, $1.size) < ($1.address, $0.size) }
        self.codeRanges = codeRanges
    }

    /// Limits that keep a hostile file from costing much: a kernel has a few thousand symbols.
    static let maxSymbols = 1 << 20
    static let maxNameLength = 4096

    /// Reads `.symtab` and the string table it links to; anything malformed means "no symbols".
    public static func read(_ bytes: [UInt8]) -> ELFSymbolTable {
        let file = LittleEndianBytes(bytes)
        // ELF64, little-endian: the same identification ELFImage.parse insists on.
        guard bytes.count >= 64, bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46,
            bytes[4] == 2, bytes[5] == 1,
            let shoff = file.u64(at: 40), let shentsize = file.u16(at: 58), let shnum = file.u16(at: 60),
            shentsize == 64, shnum > 0,
            shoff <= UInt64(bytes.count), UInt64(bytes.count) - shoff >= UInt64(shnum) * 64
        else { return .empty }

        struct Section {
            var type: UInt32, flags: UInt64, address: UInt64, offset: UInt64, size: UInt64, link: UInt32, entrySize: UInt64
        }
        var sections: [Section] = []
        for index in 0..<Int(shnum) {
            let base = Int(shoff) + index * 64
            guard let type = file.u32(at: base + 4), let flags = file.u64(at: base + 8), let address = file.u64(at: base + 16),
                let offset = file.u64(at: base + 24), let size = file.u64(at: base + 32), let link = file.u32(at: base + 40),
                let entrySize = file.u64(at: base + 56)
            else { return .empty }
            sections.append(Section(type: type, flags: flags, address: address, offset: offset, size: size, link: link, entrySize: entrySize))
        }
        /// Whether a section's file bytes are wholly inside the file (SHT_NOBITS has none).
        func inFile(_ section: Section) -> Bool {
            section.offset <= UInt64(bytes.count) && section.size <= UInt64(bytes.count) - section.offset
        }

        let shtSymtab: UInt32 = 2, shtStrtab: UInt32 = 3
        let shfAlloc: UInt64 = 0x2, shfExecinstr: UInt64 = 0x4
        var executable = Set<Int>()
        var codeRanges: [Range<UInt64>] = []
        for (index, section) in sections.enumerated() where section.flags & (shfAlloc | shfExecinstr) == shfAlloc | shfExecinstr {
            let (end, overflow) = section.address.addingReportingOverflow(section.size)
            guard !overflow, section.size > 0 else { continue }
            executable.insert(index)
            codeRanges.append(section.address..<end)
        }

        guard let symtab = sections.first(where: { $0.type == shtSymtab }), inFile(symtab), symtab.entrySize == 24,
            Int(symtab.link) < sections.count
        else { return ELFSymbolTable(symbols: [], codeRanges: codeRanges) }
        let strtab = sections[Int(symtab.link)]
        guard strtab.type == shtStrtab, inFile(strtab) else { return ELFSymbolTable(symbols: [], codeRanges: codeRanges) }
        let strings = Int(strtab.offset)..<Int(strtab.offset + strtab.size)

        func name(at offset: UInt32) -> String? {
            guard UInt64(offset) < UInt64(strings.count) else { return nil }
            let start = strings.lowerBound + Int(offset)
            let limit = min(strings.upperBound, start + maxNameLength)
            guard let end = bytes[start..<limit].firstIndex(of: 0), end > start else { return nil }
            return String(decoding: bytes[start..<end], as: UTF8.self)
        }

        let sttNotype: UInt8 = 0, sttFunc: UInt8 = 2
        var symbols: [ELFSymbol] = []
        let count = min(Int(symtab.size / 24), maxSymbols)
        for index in 0..<count {
            let base = Int(symtab.offset) + index * 24
            guard let nameOffset = file.u32(at: base), let shndx = file.u16(at: base + 6),
                let value = file.u64(at: base + 8), let size = file.u64(at: base + 16)
            else { break }
            let type = bytes[base + 4] & 0xF
            // Functions anywhere; untyped labels (assembly entry points) only in code.
            guard type == sttFunc || (type == sttNotype && executable.contains(Int(shndx))) else { continue }
            guard shndx != 0, shndx < 0xFF00, let name = name(at: nameOffset), !name.hasPrefix(".L") else { continue }
            symbols.append(ELFSymbol(name: name, address: value, size: type == sttFunc ? size : 0))
        }
        return ELFSymbolTable(symbols: symbols, codeRanges: codeRanges)
    }

    /// The function containing `address`, or else the nearest symbol before it in the
    /// same code section (a label, or code the symbol table does not cover), with the offset.
    public func lookup(_ address: UInt64) -> (symbol: ELFSymbol, offset: UInt64)? {
        // The last symbol starting at or below `address`.
        var low = 0, high = symbols.count
        while low < high {
            let middle = (low + high) / 2
            if symbols[middle].address <= address { low = middle + 1 } else { high = middle }
        }
        guard low > 0 else { return nil }
        // Several symbols may start below and one of the earlier ones may still contain
        // `address` (a nested label): prefer a containing function, looking back a few.
        var index = low - 1
        for candidate in stride(from: low - 1, through: max(0, low - 8), by: -1) where symbols[candidate].contains(address) {
            index = candidate
            break
        }
        let symbol = symbols[index]
        if !symbol.contains(address) {
            guard let range = codeRanges.first(where: { $0.contains(address) }), range.contains(symbol.address) else { return nil }
        }
        return (symbol, address - symbol.address)
    }
}
