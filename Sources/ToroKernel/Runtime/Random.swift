import KernelSupport

/// `arc4random_buf(3)`: random bytes for the Swift runtime, which uses them to
/// seed `Hasher` (so `Dictionary` and `Set` order differs from run to run).
///
/// From `rdrand` when CPUID says the CPU has it (KVM passes it through), else
/// from a xorshift generator whose state is stirred with the time-stamp
/// counter on every call. The fallback is unpredictable enough for hash
/// seeding, and is not meant for cryptography.
@_cdecl("arc4random_buf")
public func runtimeRandomBytes(_ buffer: UnsafeMutableRawPointer?, _ count: Int) {
    guard let buffer else { return }
    var filled = 0
    while filled < count {
        var word = RandomSource.next()
        let chunk = min(8, count - filled)
        withUnsafeBytes(of: &word) { bytes in
            (buffer + filled).copyMemory(from: bytes.baseAddress!, byteCount: chunk)
        }
        filled += chunk
    }
}

enum RandomSource {
    /// How often to retry `rdrand` before falling back; Intel recommends 10.
    static let rdrandRetries = 10

    static func next() -> UInt64 {
        if CPU.hasRDRAND {
            var value: UInt64 = 0
            for _ in 0..<rdrandRetries where kernel_rdrand64(&value) {
                return value
            }
        }
        return fallback.withLock { state in
            // xorshift64* with the TSC mixed in, so that no two boots agree.
            state ^= CPU.timestamp() &* 0x9E37_79B9_7F4A_7C15
            if state == 0 { state = 0x2545_F491_4F6C_DD1D }
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
    }

    private static let fallback = SpinLock<UInt64>(0)
}
