/// `putchar(3)`: where Embedded Swift's `print` sends each byte. Buffered per
/// CPU and per line (see ``Console``), so a line costs one VM exit, not one per byte.
@_cdecl("putchar")
public func runtimePutchar(_ character: Int32) -> Int32 {
    Console.put(UInt8(truncatingIfNeeded: character))
    return character
}
