// One HTTP connection under fuzzing: the input is everything a client sends
// on it. Shared by the libFuzzer target HTTPSession (make fuzz) and the corpus
// replay (WebServerFuzzCorpusTests).
//
// An input whose first byte is below 8 picks other limits with that byte
// (header and body limits; the rest is the stream); any other input is the
// stream itself, under the default limits.
//
// Beyond "no trap": every response is a complete HTTP/1.1 response whose
// body is as long as its Content-Length says (or empty, for a HEAD); nothing
// is answered after a response that closes; the counts agree with the
// responses; the session never holds more than a head's worth of bytes nor
// more body to skip than the limit. And the stream gives the same responses,
// byte for byte, and the same close, whether it arrives at once, in random
// pieces or (short streams) a byte at a time.

import FuzzSupport
@testable import WebServerCore

enum HTTPSessionFuzz {
    static let site = Site.standard()
    static let limitChoices: [(header: Int, body: Int)] = [
        (8192, 0), (256, 16), (32, 1 << 20), (8192, 100), (1, 0), (64, Int.max), (8192, 0), (512, 5),
    ]

    static func split(_ bytes: [UInt8]) -> (HTTPLimits, [UInt8]) {
        var limits = HTTPLimits()
        guard let first = bytes.first, first < 8 else { return (limits, bytes) }
        limits.maximumHeaderBytes = limitChoices[Int(first)].header
        limits.maximumBodyBytes = limitChoices[Int(first)].body
        return (limits, Array(bytes.dropFirst()))
    }

    /// What a connection answered: every response in order, and whether it closed.
    struct Transcript: Equatable {
        var responses: [[UInt8]] = []
        var close = false
        var counts = HTTPStatusCounts()
    }

    static func check(_ bytes: [UInt8]) throws(FuzzViolation) {
        let (limits, data) = split(bytes)
        let whole = try converse(data, limits: limits) { data.count }
        var random = SplitMix(data)
        let pieces = try converse(data, limits: limits) { Int(random.next() % 65) }
        try fuzzExpect(pieces == whole, "in random pieces: \(summary(pieces)); at once: \(summary(whole))")
        if data.count <= 400 {
            let bytewise = try converse(data, limits: limits) { 1 }
            try fuzzExpect(bytewise == whole, "a byte at a time: \(summary(bytewise)); at once: \(summary(whole))")
        }
    }

    static func summary(_ transcript: Transcript) -> String {
        let codes = transcript.responses.map { String(decoding: $0.prefix(12).dropFirst(9), as: UTF8.self) }
        return "\(codes.joined(separator: ",")) close \(transcript.close)"
    }

    /// Feeds `data` to a new session in pieces of `size()` bytes (0 allowed), checking each answer.
    static func converse(_ data: [UInt8], limits: HTTPLimits, size: () -> Int) throws(FuzzViolation) -> Transcript {
        var session = HTTPSession(site: site, limits: limits)
        var transcript = Transcript()
        var offset = 0
        while offset < data.count {
            let end = min(data.count, offset + size())
            let output = session.receive(Array(data[offset..<end]))
            offset = end
            if transcript.close {
                try fuzzExpect(output.responses.isEmpty && output.close, "answered after closing")
            }
            for response in output.responses { try checkResponse(response) }
            transcript.responses += output.responses
            transcript.close = transcript.close || output.close
            try fuzzExpect(output.close == session.closed, "output.close \(output.close), session closed \(session.closed)")
            try fuzzExpect(
                session.answered == transcript.responses.count && session.statusCounts.total == session.answered,
                "\(session.answered) answered, \(transcript.responses.count) responses, counts \(session.statusCounts.total)")
            try fuzzExpect(
                session.closed || session.buffer.count <= limits.maximumHeaderBytes,
                "the session holds \(session.buffer.count) bytes, over the \(limits.maximumHeaderBytes)-byte limit")
            try fuzzExpect(
                session.bodyRemaining >= 0 && session.bodyRemaining <= limits.maximumBodyBytes,
                "\(session.bodyRemaining) body bytes to skip, the limit is \(limits.maximumBodyBytes)")
        }
        transcript.counts = session.statusCounts
        return transcript
    }

    /// A response: status line, fields, empty line, then a body of Content-Length bytes (or none, for a HEAD).
    static func checkResponse(_ response: [UInt8]) throws(FuzzViolation) {
        let prefix = Array("HTTP/1.1 ".utf8)
        try fuzzExpect(response.starts(with: prefix), "a response not starting with HTTP/1.1")
        let code = response.dropFirst(prefix.count).prefix(3)
        try fuzzExpect(code.count == 3 && code.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }, "a response without a status code")
        let terminator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int? = nil
        var index = 0
        while index + 4 <= response.count {
            if response[index] == 13 && Array(response[index..<(index + 4)]) == terminator {
                headEnd = index + 4
                break
            }
            index += 1
        }
        guard let headEnd else { throw FuzzViolation(description: "a response without an empty line") }
        let field = Array("\r\nContent-Length: ".utf8)
        guard let start = (0...(headEnd - field.count)).first(where: { response[$0..<($0 + field.count)].elementsEqual(field) })
        else { throw FuzzViolation(description: "a response without Content-Length") }
        let digits = response[(start + field.count)..<headEnd].prefix { $0 >= 0x30 && $0 <= 0x39 }
        guard let length = Int(String(decoding: digits, as: UTF8.self)) else {
            throw FuzzViolation(description: "a bad Content-Length")
        }
        let body = response.count - headEnd
        try fuzzExpect(body == length || body == 0, "a \(body)-byte body under Content-Length \(length)")
    }
}
