// libFuzzer target HTTPRequest: the one-pass and the resumable request-head parsers on
// one buffer, whole and in pieces.
// Built by scripts/fuzz.sh (make fuzz) with -sanitize=fuzzer; the checks are
// HTTPRequestFuzz.check in Tests/WebServerTests/Fuzz, which the corpus replay test runs too.

@testable import WebServerCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    do {
        try HTTPRequestFuzz.check(bytes)
    } catch {
        fatalError("HTTPRequest: \(error)")
    }
    return 0
}
