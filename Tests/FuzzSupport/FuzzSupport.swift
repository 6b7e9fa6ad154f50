// What every fuzz check shares: the error a broken invariant throws, and a
// reader that turns fuzz input into a program of operations.
//
// A module of its own, linked by the three unit test targets (their corpus
// replay tests, FuzzCorpusTests.swift) and, by scripts/fuzz.sh, by each
// libFuzzer target of Tests/Fuzz: so the fuzzer and `make test` run the same
// checks. No XCTest here: the fuzz targets do not link it.

/// An invariant a fuzz input broke. A fuzz target traps with it (a crash
/// libFuzzer records); the corpus replay test fails with it.
public struct FuzzViolation: Error, CustomStringConvertible {
    public var description: String

    public init(description: String) { self.description = description }
}

/// Throws a FuzzViolation saying `message` unless `condition` holds.
@inline(__always)
public func fuzzExpect(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzViolation) {
    if !condition { throw FuzzViolation(description: message()) }
}

/// Reads fuzz input front to back; past its end every read gives zeros, so
/// any input is a complete program.
public struct FuzzReader {
    public let bytes: [UInt8]
    public private(set) var index = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { index >= bytes.count }

    public mutating func u8() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    public mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    public mutating func bool() -> Bool { u8() & 1 != 0 }

    /// Up to `count` bytes (fewer at the end of the input).
    public mutating func take(_ count: Int) -> [UInt8] {
        let available = min(max(0, count), bytes.count - min(index, bytes.count))
        defer { index += available }
        return Array(bytes[index..<(index + available)])
    }

    /// One of `choices`, picked by the next byte.
    public mutating func pick<T>(_ choices: [T]) -> T { choices[Int(u8()) % choices.count] }
}
