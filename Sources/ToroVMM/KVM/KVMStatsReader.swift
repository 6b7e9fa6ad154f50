import CKVM
import Glibc

/// Reads KVM's binary statistics (KVM_GET_STATS_FD) for one vCPU or VM.
///
/// The descriptors are read once; each ``read()`` is then a single `pread` of
/// the data block. Counters are reported by their KVM names, because which ones
/// exist depends on the host kernel and back end: a counter missing here is
/// absent from the result, never invented as zero.
public final class KVMStatsReader: @unchecked Sendable {
    public let fd: Int32
    /// Name and byte offset (inside the data block) of every single-value statistic.
    public let fields: [(name: String, offset: Int)]
    private let dataOffset: Int
    private let dataSize: Int

    public init(fd: Int32) throws(KVMError) {
        self.fd = fd
        var header = kvm_stats_header()
        guard pread(fd, &header, MemoryLayout<kvm_stats_header>.size, 0) == MemoryLayout<kvm_stats_header>.size else {
            close(fd)
            throw KVMError("read KVM stats header", errno: errno)
        }
        let descriptorSize = MemoryLayout<kvm_stats_desc>.size + Int(header.name_size)
        var raw = [UInt8](repeating: 0, count: descriptorSize * Int(header.num_desc))
        let got = raw.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(header.desc_offset)) }
        guard got == raw.count else {
            close(fd)
            throw KVMError("read KVM stats descriptors", errno: got < 0 ? errno : EIO)
        }
        (self.fields, self.dataSize) = KVMStatsReader.decodeDescriptors(
            raw, count: Int(header.num_desc), nameSize: Int(header.name_size))
        self.dataOffset = Int(header.data_offset)
    }

    deinit { close(fd) }

    /// Decodes the descriptor block: keeps single 64-bit values, skips histograms.
    static func decodeDescriptors(_ raw: [UInt8], count: Int, nameSize: Int) -> ([(name: String, offset: Int)], Int) {
        let descriptorSize = MemoryLayout<kvm_stats_desc>.size + nameSize
        var fields: [(name: String, offset: Int)] = []
        var end = 0
        raw.withUnsafeBytes { bytes in
            for i in 0..<count {
                let base = i * descriptorSize
                guard base + descriptorSize <= bytes.count else { break }
                let desc = bytes.loadUnaligned(fromByteOffset: base, as: kvm_stats_desc.self)
                let nameBytes = bytes[(base + MemoryLayout<kvm_stats_desc>.size)..<(base + descriptorSize)]
                let name = String(decoding: nameBytes.prefix { $0 != 0 }, as: UTF8.self)
                end = max(end, Int(desc.offset) + Int(desc.size) * 8)
                let type = desc.flags & UInt32(KVM_STATS_TYPE_MASK)
                if desc.size == 1, type != UInt32(KVM_STATS_TYPE_LINEAR_HIST), type != UInt32(KVM_STATS_TYPE_LOG_HIST) {
                    fields.append((name, Int(desc.offset)))
                }
            }
        }
        return (fields, end)
    }

    /// The current value of every counter, by KVM's name.
    public func read() -> [String: UInt64] {
        var data = [UInt64](repeating: 0, count: (dataSize + 7) / 8)
        let got = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, dataSize, off_t(dataOffset)) }
        guard got == dataSize else { return [:] }
        var values: [String: UInt64] = [:]
        for field in fields { values[field.name] = data[field.offset / 8] }
        return values
    }
}
