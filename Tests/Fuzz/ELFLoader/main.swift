// libFuzzer target ELFLoader: ELFImage.parse, ELFImage.validate, ELFLoader.load and the
// symbol table reader on an image file.
// Built by scripts/fuzz.sh (make fuzz) with -sanitize=fuzzer; the checks are
// ELFLoaderFuzz.check in Tests/ToroVMMTests/Fuzz, which the corpus replay test runs too.

@testable import ToroVMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    do {
        try ELFLoaderFuzz.check(bytes)
    } catch {
        fatalError("ELFLoader: \(error)")
    }
    return 0
}
