import Glibc

/// A guest-physical address. Never a host pointer: only ``GuestMemory`` turns it into one.
public struct GuestAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var raw: UInt64
    public init(_ raw: UInt64) { self.raw = raw }
    public static func < (a: GuestAddress, b: GuestAddress) -> Bool { a.raw < b.raw }
    public func adding(_ offset: UInt64) -> GuestAddress { GuestAddress(raw &+ offset) }
    public var description: String { "0x" + String(raw, radix: 16) }
}

/// Why a guest-memory access was refused.
public enum GuestMemoryError: Error, Equatable, CustomStringConvertible {
    /// The range is not wholly inside one region of guest RAM.
    case outOfBounds(address: UInt64, length: UInt64)
    /// mmap(2) of the backing memory failed.
    case mapFailed(size: UInt64, errno: Int32)
    /// The requested size cannot be laid out (zero, unaligned, or too large).
    case badSize(UInt64)

    public var description: String {
        switch self {
        case let .outOfBounds(address, length):
            return "guest range 0x\(String(address, radix: 16))+\(length) is outside guest memory"
        case let .mapFailed(size, errno):
            return "cannot map \(size) bytes of guest memory: \(String(cString: strerror(errno)))"
        case let .badSize(size):
            return "cannot lay out \(size) bytes of guest memory"
        }
    }
}

/// One contiguous stretch of guest RAM and where it lives in the host mapping.
public struct GuestMemoryRegion: Sendable, Equatable {
    /// First guest-physical address of the region.
    public var guestBase: UInt64
    /// Bytes in the region.
    public var size: UInt64
    /// Offset of the region inside the host mapping.
    public var hostOffset: UInt64
    public var guestEnd: UInt64 { guestBase + size }
}

/// All of a guest's RAM, and the only door to it.
///
/// Guest RAM is one anonymous host mapping. RAM below 4 GiB stops at
/// ``mmioHoleBase`` so that the interrupt controllers and device MMIO have room;
/// the rest continues at 4 GiB. Every read and write is bounds-checked against
/// the regions here: a guest-supplied address never becomes a host pointer
/// without passing ``hostPointer(_:length:)``.
public final class GuestMemory: @unchecked Sendable {
    /// Where RAM below 4 GiB ends (``TORO_MMIO_HOLE_BASE``).
    public static let mmioHoleBase: UInt64 = 0xC000_0000
    public static let pageSize: UInt64 = 4096

    /// Total bytes of RAM.
    public let size: UInt64
    /// Regions of RAM, in ascending guest-physical order.
    public let regions: [GuestMemoryRegion]
    /// Base of the host mapping, for KVM_SET_USER_MEMORY_REGION.
    public let hostBase: UnsafeMutableRawPointer

    /// Maps `size` bytes of zeroed guest RAM. `size` must be a positive multiple of 2 MiB.
    public init(size: UInt64) throws(GuestMemoryError) {
        guard size > 0, size % (2 << 20) == 0, size <= (1 << 40) else { throw .badSize(size) }
        self.regions = GuestMemory.layout(size: size)
        let pointer = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let pointer, pointer != MAP_FAILED else { throw .mapFailed(size: size, errno: errno) }
        self.size = size
        self.hostBase = pointer
    }

    deinit {
        munmap(hostBase, Int(size))
    }

    /// The guest-physical regions that `size` bytes of RAM occupy.
    public static func layout(size: UInt64) -> [GuestMemoryRegion] {
        if size <= mmioHoleBase {
            return [GuestMemoryRegion(guestBase: 0, size: size, hostOffset: 0)]
        }
        return [
            GuestMemoryRegion(guestBase: 0, size: mmioHoleBase, hostOffset: 0),
            GuestMemoryRegion(guestBase: 1 << 32, size: size - mmioHoleBase, hostOffset: mmioHoleBase),
        ]
    }

    /// The highest guest-physical address of RAM, plus one.
    public var guestEnd: UInt64 { regions.last!.guestEnd }

    /// Whether `[address, address + length)` lies inside one RAM region.
    public func contains(_ address: GuestAddress, length: UInt64) -> Bool {
        region(for: address, length: length) != nil
    }

    private func region(for address: GuestAddress, length: UInt64) -> GuestMemoryRegion? {
        let (end, overflow) = address.raw.addingReportingOverflow(length)
        if overflow { return nil }
        for region in regions where address.raw >= region.guestBase && end <= region.guestEnd {
            return region
        }
        return nil
    }

    /// The host pointer for `[address, address + length)`, or an error if any byte is outside RAM.
    public func hostPointer(_ address: GuestAddress, length: UInt64) throws(GuestMemoryError) -> UnsafeMutableRawPointer {
        guard let region = region(for: address, length: length) else {
            throw .outOfBounds(address: address.raw, length: length)
        }
        return hostBase + Int(region.hostOffset + (address.raw - region.guestBase))
    }

    /// Copies `bytes` into guest memory at `address`.
    public func write(_ bytes: UnsafeRawBufferPointer, at address: GuestAddress) throws(GuestMemoryError) {
        let target = try hostPointer(address, length: UInt64(bytes.count))
        if let source = bytes.baseAddress, bytes.count > 0 {
            target.copyMemory(from: source, byteCount: bytes.count)
        }
    }

    /// Copies `bytes` into guest memory at `address`.
    public func write(_ bytes: [UInt8], at address: GuestAddress) throws(GuestMemoryError) {
        let target = try hostPointer(address, length: UInt64(bytes.count))
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { target.copyMemory(from: base, byteCount: source.count) }
        }
    }

    /// Sets `count` bytes at `address` to `byte`.
    public func fill(_ byte: UInt8, at address: GuestAddress, count: UInt64) throws(GuestMemoryError) {
        let target = try hostPointer(address, length: count)
        memset(target, Int32(byte), Int(count))
    }

    /// Copies `count` bytes out of guest memory.
    public func read(at address: GuestAddress, count: UInt64) throws(GuestMemoryError) -> [UInt8] {
        let source = try hostPointer(address, length: count)
        return [UInt8](UnsafeRawBufferPointer(start: source, count: Int(count)))
    }

    /// Reads a trivial value (a C struct, an integer) stored at `address`, unaligned loads allowed.
    public func load<T: BitwiseCopyable>(_ type: T.Type, at address: GuestAddress) throws(GuestMemoryError) -> T {
        let source = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        return source.loadUnaligned(as: T.self)
    }

    /// Stores a trivial value (a C struct, an integer) at `address`.
    public func store<T: BitwiseCopyable>(_ value: T, at address: GuestAddress) throws(GuestMemoryError) {
        let target = try hostPointer(address, length: UInt64(MemoryLayout<T>.size))
        withUnsafeBytes(of: value) { target.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
}
