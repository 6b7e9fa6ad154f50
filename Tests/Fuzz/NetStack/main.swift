// libFuzzer target NetStack: NetStackCore as a peer sees it: frames in (raw or built
// with valid checksums), the clock, application calls, poll.
// Built by scripts/fuzz.sh (make fuzz) with -sanitize=fuzzer; the checks are
// NetStackFuzz.check in Tests/ToroKernelTests/Fuzz, which the corpus replay test runs too.

@testable import ToroKernelPortable

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    do {
        try NetStackFuzz.check(bytes)
    } catch {
        fatalError("NetStack: \(error)")
    }
    return 0
}
