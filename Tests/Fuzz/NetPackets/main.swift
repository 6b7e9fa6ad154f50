// libFuzzer target NetPackets: the Ethernet, ARP, IPv4, ICMP, TCP and UDP parsers, the
// checksums and the link layer's answers on one frame.
// Built by scripts/fuzz.sh (make fuzz) with -sanitize=fuzzer; the checks are
// NetPacketsFuzz.check in Tests/ToroKernelTests/Fuzz, which the corpus replay test runs too.

@testable import ToroKernelPortable

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    do {
        try NetPacketsFuzz.check(bytes)
    } catch {
        fatalError("NetPackets: \(error)")
    }
    return 0
}
