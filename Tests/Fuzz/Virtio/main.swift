// libFuzzer target Virtio: the virtio-mmio transport, its split virtqueues and
// VirtioNet, driven by register accesses and guest memory contents from the input.
// Built by scripts/fuzz.sh (make fuzz) with -sanitize=fuzzer; the checks are
// VirtioFuzz.check in Tests/ToroVMMTests/Fuzz, which the corpus replay test runs too.

@testable import ToroVMM

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = [UInt8](UnsafeBufferPointer(start: data, count: size))
    do {
        try VirtioFuzz.check(bytes)
    } catch {
        fatalError("Virtio: \(error)")
    }
    return 0
}
