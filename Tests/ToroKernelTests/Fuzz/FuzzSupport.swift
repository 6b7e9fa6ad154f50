// What every fuzz check of this module shares: the error a broken invariant
// throws, and a reader that turns fuzz input into a program of operations.
//
// Compiled into this test target (the corpus replay, FuzzCorpusTests.swift)
// and, by scripts/fuzz.sh, into each libFuzzer target of Tests/Fuzz that
// checks this module: so the fuzzer and `make test` run the same checks.
// No XCTest here: the fuzz targets do not link it.

@testable import ToroKernelPortable

/// An invariant a fuzz input broke. A fuzz target traps with it (a crash
/// libFuzzer records); the corpus replay test fails with it.
struct FuzzViolation: Error, CustomStringConvertible {
    var description: String
}

/// Throws a FuzzViolation saying `message` unless `condition` holds.
@inline(__always)
func fuzzExpect(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzViolation) {
    if !condition { throw FuzzViolation(description: message()) }
}

/// Reads fuzz input front to back; past its end every read gives zeros, so
/// any input is a complete program.
struct FuzzReader {
    let bytes: [UInt8]
    private(set) var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { index >= bytes.count }

    mutating func u8() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    mutating func bool() -> Bool { u8() & 1 != 0 }

    /// Up to `count` bytes (fewer at the end of the input).
    mutating func take(_ count: Int) -> [UInt8] {
        let available = min(max(0, count), bytes.count - min(index, bytes.count))
        defer { index += available }
        return Array(bytes[index..<(index + available)])
    }

    /// One of `choices`, picked by the next byte.
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int(u8()) % choices.count] }
}
