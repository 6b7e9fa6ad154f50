// libFuzzer target HTTPSession: HTTPSession on a whole connection's bytes, given in one
// piece and in random pieces.
// Built by scripts/fuzz.sh (make fuzz) with -sanitize=fuzzer; the checks are
// HTTPSessionFuzz.check in Tests/WebServerTests/Fuzz, which the corpus replay test runs too.

@testable import WebServerCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    do {
        try HTTPSessionFuzz.check(bytes)
    } catch {
        fatalError("HTTPSession: \(error)")
    }
    return 0
}
