// The request-head parsers under fuzzing: the input is the bytes a client
// sent. Shared by the libFuzzer target HTTPRequest (make fuzz) and the corpus
// replay (WebServerFuzzCorpusTests).
//
// An input whose first byte is below 8 picks smaller limits with that byte
// (the rest is the request); any other input is the request itself, under
// the default limits.
//
// Beyond "no trap": a complete head ends in CRLF CRLF within the limit, its
// path starts with "/" inside the head, its version is 1.0 or 1.1 and an
// HTTP/1.1 head has exactly one Host; a failure is a 400, 413 or 505, or (only
// for a head over the limit) a 414, 431 or 501. And the
// parsers agree with each other: the one-pass parser (`parseWhole`), when it
// answers, gives the resumable parser's answer; the resumable parser gives
// the same answer whether the bytes come at once, in random pieces or one at
// a time, and wherever in its buffer the request starts.

import FuzzSupport
@testable import WebServerCore

enum HTTPRequestFuzz {
    static let limitChoices: [Int] = [8192, 64, 16, 1, 0, 40, 8192, 200]

    /// The limits and the request bytes of an input.
    static func split(_ bytes: [UInt8]) -> (HTTPLimits, [UInt8]) {
        var limits = HTTPLimits()
        guard let first = bytes.first, first < 8 else { return (limits, bytes) }
        limits.maximumHeaderBytes = limitChoices[Int(first)]
        return (limits, Array(bytes.dropFirst()))
    }

    static func check(_ bytes: [UInt8]) throws(FuzzViolation) {
        let (limits, data) = split(bytes)
        var parser = HTTPRequestParser()
        let whole = parser.parse(data, limits: limits)
        try checkResult(whole, data, start: 0, limits: limits)
        let expected = describe(whole, shift: 0)

        // The one-pass parser decides only what it accepts, and then as the resumable one does.
        if let (head, end) = data.withUnsafeBufferPointer({ HTTPRequestParser.parseWhole($0, from: 0, limits: limits) }) {
            let quick = describe(.complete(head, end: end), shift: 0)
            try fuzzExpect(quick == expected, "parseWhole gave \(quick), the resumable parser \(expected)")
        }

        // In pieces: random ones, and a byte at a time for short inputs.
        var random = SplitMix(data)
        let pieces = piecewise(data, limits: limits) { Int(random.next() % 16) + 1 }
        try fuzzExpect(pieces == expected, "in random pieces: \(pieces), at once: \(expected)")
        if data.count <= 300 {
            let bytewise = piecewise(data, limits: limits) { 1 }
            try fuzzExpect(bytewise == expected, "a byte at a time: \(bytewise), at once: \(expected)")
        }

        // Behind other bytes in the buffer: the same answer, shifted.
        let shift = data.count % 5 + 1
        let shifted = [UInt8](repeating: 0x58, count: shift) + data
        var later = HTTPRequestParser()
        later.reset(at: shift)
        let behind = describe(later.parse(shifted, limits: limits), shift: shift)
        try fuzzExpect(behind == expected, "at offset \(shift): \(behind), at 0: \(expected)")
        if let (head, end) = shifted.withUnsafeBufferPointer({ HTTPRequestParser.parseWhole($0, from: shift, limits: limits) }) {
            let quick = describe(.complete(head, end: end), shift: shift)
            try fuzzExpect(quick == expected, "parseWhole at offset \(shift): \(quick), the resumable parser \(expected)")
        }
    }

    /// Feeds `data` to one parser in pieces of `size()` bytes, in a buffer that grows.
    static func piecewise(_ data: [UInt8], limits: HTTPLimits, size: () -> Int) -> String {
        var parser = HTTPRequestParser()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(data.count)
        while true {
            let end = min(data.count, buffer.count + size())
            buffer += data[buffer.count..<end]
            let result = parser.parse(buffer, limits: limits)
            if case .needMore = result, buffer.count < data.count { continue }
            return describe(result, shift: 0)
        }
    }

    /// What a result says, offsets made relative to `shift`: two results agree when these are equal.
    static func describe(_ result: HTTPParseResult, shift: Int) -> String {
        switch result {
        case .needMore:
            return "needMore"
        case .failed(let status, let method):
            return "failed \(status.code) \(method)"
        case .complete(let head, let end):
            let path = head.asteriskTarget ? "*" : "\(head.pathStart - shift)..<\(head.pathEnd - shift)"
            return "complete \(head.method) 1.\(head.minorVersion) \(path) host \(head.hostCount) close \(head.connectionClose)"
                + " keep-alive \(head.connectionKeepAlive) length \(String(describing: head.contentLength))"
                + " transfer-encoding \(head.hasTransferEncoding) end \(end - shift)"
        }
    }

    /// What a single answer promises on its own.
    static func checkResult(_ result: HTTPParseResult, _ data: [UInt8], start: Int, limits: HTTPLimits) throws(FuzzViolation) {
        switch result {
        case .needMore:
            try fuzzExpect(data.count - start <= limits.maximumHeaderBytes, "needMore with \(data.count) bytes over the limit")
        case .failed(let status, _):
            switch status {
            case .badRequest, .contentTooLarge, .httpVersionNotSupported:
                break
            case .uriTooLong, .requestHeaderFieldsTooLarge, .notImplemented:
                // Only a head that reached the limit gets these (which one says where it stopped).
                try fuzzExpect(data.count - start > limits.maximumHeaderBytes, "\(status) for \(data.count - start) bytes")
            default:
                throw FuzzViolation(description: "a head failed with \(status)")
            }
        case .complete(let head, let end):
            try fuzzExpect(end > start && end <= data.count, "a head ending at \(end) of \(data.count)")
            try fuzzExpect(end - start <= limits.maximumHeaderBytes, "a \(end - start)-byte head over the limit")
            try fuzzExpect(end - start >= 4 && Array(data[(end - 4)..<end]) == [13, 10, 13, 10], "a head not ending in CRLF CRLF")
            if !head.asteriskTarget {
                try fuzzExpect(
                    head.pathStart >= start && head.pathStart < head.pathEnd && head.pathEnd <= end,
                    "a path at \(head.pathStart)..<\(head.pathEnd) outside the head")
                try fuzzExpect(data[head.pathStart] == UInt8(ascii: "/"), "a path not starting with /")
                try fuzzExpect(
                    !data[head.pathStart..<head.pathEnd].contains { $0 <= 0x20 || $0 >= 0x7F || $0 == UInt8(ascii: "?") },
                    "a path with a space, a control byte or a query")
            } else {
                try fuzzExpect(head.method != .get && head.method != .head, "a \(head.method) of *")
            }
            try fuzzExpect(head.minorVersion == 0 || head.minorVersion == 1, "HTTP/1.\(head.minorVersion)")
            try fuzzExpect(head.hostCount <= 1 && (head.minorVersion == 0 || head.hostCount == 1), "\(head.hostCount) Host fields")
            try fuzzExpect((head.contentLength ?? 0) >= 0, "Content-Length \(String(describing: head.contentLength))")
        }
    }
}

/// splitmix64 seeded by the input's FNV-1a hash: pieces that differ from input
/// to input, yet the same every time for one input.
struct SplitMix {
    var state: UInt64

    init(_ bytes: [UInt8]) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        state = hash
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
