@testable import WebServerCore
import XCTest

/// The one-pass parse of a head that arrived whole (`HTTPRequestParser.parseWhole`)
/// and the session's use of it: it must accept exactly what the resumable parser
/// accepts, give the same head, and hand everything else back to that parser.
final class HTTPFastPathTests: XCTestCase {
    static let site = Site.standard()
    static let curl = "GET / HTTP/1.1\r\nHost: 10.77.0.2\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"

    /// The resumable parser's answer for `bytes` from `start`, fed in one buffer.
    func slowParse(_ bytes: [UInt8], from start: Int = 0, limits: HTTPLimits = HTTPLimits()) -> HTTPParseResult {
        var parser = HTTPRequestParser()
        parser.reset(at: start)
        return parser.parse(bytes, limits: limits)
    }

    func fastParse(_ bytes: [UInt8], from start: Int = 0, limits: HTTPLimits = HTTPLimits())
        -> (head: HTTPRequestHead, end: Int)?
    {
        bytes.withUnsafeBufferPointer { HTTPRequestParser.parseWhole($0, from: start, limits: limits) }
    }

    func describe(_ head: HTTPRequestHead) -> String {
        "\(head.method) 1.\(head.minorVersion) \(head.pathStart)..<\(head.pathEnd) *\(head.asteriskTarget) "
            + "host=\(head.hostCount) close=\(head.connectionClose) keep=\(head.connectionKeepAlive) "
            + "length=\(String(describing: head.contentLength)) te=\(head.hasTransferEncoding) "
            + "chunked=\(head.chunkedCodings) last=\(head.chunkedIsLast) other=\(head.otherTransferCodings)"
    }

    /// Checks that the fast parse of `bytes` from `start` is nil or the slow one's
    /// complete head; returns whether it was taken.
    @discardableResult
    func checkAgreement(_ bytes: [UInt8], from start: Int = 0, limits: HTTPLimits = HTTPLimits(),
                        _ message: String = "", file: StaticString = #filePath, line: UInt = #line) -> Bool {
        guard let fast = fastParse(bytes, from: start, limits: limits) else { return false }
        guard case .complete(let slow, let end) = slowParse(bytes, from: start, limits: limits) else {
            XCTFail("fast path accepted what the parser does not: \(message)", file: file, line: line)
            return true
        }
        XCTAssertEqual(fast.end, end, message, file: file, line: line)
        XCTAssertEqual(describe(fast.head), describe(slow), message, file: file, line: line)
        return true
    }

    // MARK: - Building blocks

    func testTokenSetIsTchar() {
        let extra = Array("!#$%&'*+-.^_`|~".utf8)
        for value in 0...255 {
            let byte = UInt8(value)
            let tchar = (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
                || extra.contains(byte)
            XCTAssertEqual(ASCII.isToken(byte), tchar, "byte \(value)")
        }
    }

    func testControlOrDeleteWordTest() {
        func scalar(_ word: UInt64) -> Bool {
            (0..<8).contains { (word >> UInt64($0 * 8)) & 0xFF < 0x20 || (word >> UInt64($0 * 8)) & 0xFF == 0x7F }
        }
        // Every byte value at every position, among bytes that are fine.
        for filler in [UInt8(0x20), 0x41, 0x7E, 0x80, 0xFF] {
            for position in 0..<8 {
                for value in 0...255 {
                    var word: UInt64 = 0
                    for index in 0..<8 {
                        word |= UInt64(index == position ? UInt8(value) : filler) << UInt64(index * 8)
                    }
                    XCTAssertEqual(ASCII.hasControlOrDelete(word), scalar(word), "\(value) at \(position)")
                }
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<100_000 {
            let word = UInt64.random(in: .min ... .max, using: &generator)
            XCTAssertEqual(ASCII.hasControlOrDelete(word), scalar(word))
        }
    }

    func testControlOrDeleteMarksTheFirstExactly() {
        func first(_ word: UInt64) -> Int? {
            (0..<8).first { (word >> UInt64($0 * 8)) & 0xFF < 0x20 || (word >> UInt64($0 * 8)) & 0xFF == 0x7F }
        }
        func check(_ word: UInt64) {
            let marks = ASCII.controlOrDeleteBytes(word)
            XCTAssertEqual(marks & ~0x8080_8080_8080_8080, 0)
            XCTAssertEqual(marks == 0 ? nil : marks.trailingZeroBitCount >> 3, first(word), String(word, radix: 16))
        }
        for filler in [UInt8(0x20), 0x41, 0x7E, 0x80, 0xFF, 0x00, 0x09] {
            for position in 0..<8 {
                for value in 0...255 {
                    var word: UInt64 = 0
                    for index in 0..<8 { word |= UInt64(index == position ? UInt8(value) : filler) << UInt64(index * 8) }
                    check(word)
                }
            }
        }
        var generator = SystemRandomNumberGenerator()
        let interesting: [UInt8] = [0x00, 0x09, 0x0D, 0x0A, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0xFF]
        for _ in 0..<100_000 {
            check(UInt64.random(in: .min ... .max, using: &generator))
            var word: UInt64 = 0
            for index in 0..<8 { word |= UInt64(interesting.randomElement(using: &generator)!) << UInt64(index * 8) }
            check(word)
        }
    }

    func testNonNameBytesMarksExactly() {
        func isNameByte(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D
        }
        func check(_ word: UInt64) {
            let marks = ASCII.nonNameBytes(word)
            for index in 0..<8 {
                let byte = UInt8(truncatingIfNeeded: word >> UInt64(index * 8))
                XCTAssertEqual((marks >> UInt64(index * 8)) & 0xFF, isNameByte(byte) ? 0 : 0x80, "byte \(byte)")
            }
        }
        for filler in [UInt8(0x41), 0x2D, 0x39, 0x00, 0xFF, 0x7F, 0x80] {
            for position in 0..<8 {
                for value in 0...255 {
                    var word: UInt64 = 0
                    for index in 0..<8 { word |= UInt64(index == position ? UInt8(value) : filler) << UInt64(index * 8) }
                    check(word)
                }
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 { check(UInt64.random(in: .min ... .max, using: &generator)) }
    }

    func testWords() {
        func word<T: FixedWidthInteger>(_ text: String, _: T.Type) -> T {
            Array(text.utf8).withUnsafeBufferPointer { T(littleEndian: UnsafeRawPointer($0.baseAddress!).loadUnaligned(as: T.self)) }
        }
        XCTAssertEqual(ASCII.getSpace, word("GET ", UInt32.self))
        XCTAssertEqual(ASCII.headWord, word("HEAD", UInt32.self))
        XCTAssertEqual(ASCII.http11, word("HTTP/1.1", UInt64.self))
        XCTAssertEqual(ASCII.http10, word("HTTP/1.0", UInt64.self))
        XCTAssertEqual(ASCII.crlf, word("\r\n", UInt16.self))
    }

    func testLowercaseEqual() {
        for (text, literal, equal) in [
            ("Host", "host", true), ("HOST", "host", true), ("hosT", "host", true), ("Hast", "host", false),
            ("Content-Length", "content-length", true), ("CONTENT-LENGTH", "content-length", true),
            ("Content-Lengtx", "content-length", false), ("Xontent-Length", "content-length", false),
            ("Content_Length", "content-length", false), ("connectioN", "connection", true),
            ("connectiom", "connection", false), ("Transfer-Encoding", "transfer-encoding", true),
            ("Transfer-EncodinG", "transfer-encoding", true), ("Transfer-Encodinh", "transfer-encoding", false),
            ("Keep-Alive", "keep-alive", true), ("CLOSE", "close", true), ("closf", "close", false),
        ] as [(String, StaticString, Bool)] {
            let bytes = Array("x\(text)y".utf8)
            XCTAssertEqual(bytes.withUnsafeBufferPointer { ASCII.lowercaseEqual($0, 1, literal) }, equal, text)
        }
    }

    // MARK: - The parse

    func testCurlRequestTakesTheFastPath() {
        let bytes = Array(Self.curl.utf8)
        XCTAssertTrue(checkAgreement(bytes))
        let head = fastParse(bytes)?.head
        XCTAssertEqual(head?.method, .get)
        XCTAssertEqual(head?.hostCount, 1)
        XCTAssertEqual(fastParse(bytes)?.end, bytes.count)
        // From an offset, with more behind it.
        let two = bytes + bytes + Array("GET /".utf8)
        XCTAssertEqual(fastParse(two, from: bytes.count)?.end, 2 * bytes.count)
        XCTAssertNil(fastParse(two, from: 2 * bytes.count))
    }

    /// Requests the fast path must take, and ones it may leave or must refuse.
    let corpus: [String] = [
        "GET / HTTP/1.1\nHost: a\n\n",
        "HEAD /big HTTP/1.1\nHost: a\n\n",
        "GET /health?x=1&y=?2 HTTP/1.1\nHost: a\n\n",
        "GET /? HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.0\n\n",
        "GET / HTTP/1.0\nConnection: keep-alive\n\n",
        "GET / HTTP/1.1\nHost: a\nConnection: Keep-Alive, CLOSE\n\n",
        "GET / HTTP/1.1\nhOsT:toro\n\n",
        "GET / HTTP/1.1\nHost: toro \t\n\n",
        "GET / HTTP/1.1\nHost:\n\n",
        "GET / HTTP/1.1\nHost: a\nCONTENT-LENGTH: 0, 0\ncontent-length:0\n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length:  12 \n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length: 9223372036854775807\n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length: 00000000000000000000000000000000000012\n\n",
        "GET / HTTP/1.1\nHost: a\nX-Empty:\nX-Odd: caf\u{E9} \"quoted\" (c) {}\n\n",
        "GET / HTTP/1.1\nHost: a\nX-!#$%&'*+-.^_`|~: token bytes\n\n",
        "GET / HTTP/1.1\nHost: a\nHosts: b\nContent-Lengths: x\nTransfer-Encodings: y\n\n",
        "GET / HTTP/1.1\nHost: a\nX-Long: 0123456789abcdef0123456789abcdef \t x\n\n",
        "GET / HTTP/1.1\nHost: a\nX-Tab: a\tb\tc\td\te\tf\tg\th\ti\n\n",
        "POST /form HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello",
        "POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
        "POST / HTTP/1.1\nHost: a\nTransfer-Encoding: gzip;q=\"a,b\" , Chunked\ntransfer-encoding: chunked\n\n",
        "BREW / HTTP/1.1\nHost: a\n\n", "GETS / HTTP/1.1\nHost: a\n\n", "get / HTTP/1.1\nHost: a\n\n",
        "HEADS / HTTP/1.1\nHost: a\n\n", "HEA / HTTP/1.1\nHost: a\n\n", "X / HTTP/1.1\nHost: a\n\n",
        "OPTIONS * HTTP/1.1\nHost: a\n\n", "\n\nGET / HTTP/1.1\nHost: a\n\n",
        // Malformed: the fast path must refuse each.
        "GET /\n\n", "GET HTTP/1.1\nHost: a\n\n", "GET  / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1 \nHost: a\n\n",
        "GET\t/ HTTP/1.1\nHost: a\n\n", " GET / HTTP/1.1\nHost: a\n\n", "GET http://toro/ HTTP/1.1\nHost: a\n\n",
        "GET * HTTP/1.1\nHost: a\n\n", "GET / http/1.1\nHost: a\n\n", "GET / HTTP/1.10\nHost: a\n\n",
        "GET / HTTP/2.0\nHost: a\n\n", "GET / HTTP/1.2\nHost: a\n\n", "GET / HTTP/1.1\n\n",
        "GET / HTTP/1.1\nHost: a\nhost: a\n\n", "GET / HTTP/1.1\nHost: a\nAccept text/html\n\n",
        "GET / HTTP/1.1\nHost : a\n\n", "GET / HTTP/1.1\nHost: a\n: x\n\n", "GET / HTTP/1.1\nHost: a\nX(y): z\n\n",
        "GET / HTTP/1.1\nHost: a\nX-Long: one\n two\n\n", "GET / HTTP/1.1\n Host: a\n\n",
        "GET / HTTP/1.1\nHost: a\nX: a\u{01}b\n\n", "GET / HTTP/1.1\nHost: a\nX: 0123456789\u{7F}abcdef\n\n",
        "GET /a\u{00} HTTP/1.1\nHost: a\n\n", "GET /\u{7F} HTTP/1.1\nHost: a\n\n", "GET /é HTTP/1.1\nHost: a\n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length: abc\n\n", "GET / HTTP/1.1\nHost: a\nContent-Length:\n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length: 0, 1\n\n", "GET / HTTP/1.1\nHost: a\nContent-Length: 1 0\n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length: 9223372036854775808\n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length: 18446744073709551616\n\n",
        "GET / HTTP/1.1\nHost: a\nContent-Length: -1\n\n", "GET / HTTP/1.1\nHost: a\nContent-Length: 5,\n\n",
        "POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked gzip\n\n",
        "POST / HTTP/1.1\nHost: a\nTransfer-Encoding: \"chunked\"\n\n",
        "POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked;x=\"open\n\n",
    ]

    func testAgreesWithTheResumableParser() {
        var taken = 0
        for text in corpus {
            let bytes = request(text)
            if checkAgreement(bytes, text) { taken += 1 }
            // Every shorter prefix is incomplete or malformed: never taken.
            for count in 0..<bytes.count where !text.hasSuffix("hello") || count < bytes.count - 5 {
                let prefix = Array(bytes[..<count])
                if case .complete = slowParse(prefix) { continue }
                XCTAssertNil(fastParse(prefix), "\(text) cut at \(count)")
            }
        }
        // The well-formed origin-form requests without leading lines all take it.
        XCTAssertEqual(taken, 28)
        // Raw line endings the resumable parser refuses.
        for text in ["GET / HTTP/1.1\nHost: a\n\n", "GET / HTTP/1.1\r\nHost: a\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\n\n",
                     "GET / HTTP/1.1\rHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n"] {
            XCTAssertNil(fastParse(request(text, raw: true)), text)
        }
    }

    func testAgreesAtTheHeaderLimit() {
        for size in [60, 70, 75, 76, 77, 78, 79, 80, 100] {
            var limits = HTTPLimits()
            limits.maximumHeaderBytes = size
            let bytes = Array(Self.curl.utf8)
            let taken = checkAgreement(bytes, limits: limits, "limit \(size)")
            XCTAssertEqual(taken, size >= bytes.count, "limit \(size)")
            // And for the second of two pipelined requests.
            XCTAssertEqual(checkAgreement(bytes + bytes, from: bytes.count, limits: limits), size >= bytes.count)
        }
    }

    // MARK: - The session

    func session(_ limits: HTTPLimits = HTTPLimits()) -> HTTPSession {
        HTTPSession(site: Self.site, limits: limits)
    }

    /// Every response `bytes` gets when fed in one call, and then split at each
    /// position into two calls and into three: all must be the same.
    func checkEverySplit(_ bytes: [UInt8], responses count: Int, close: Bool, limits: HTTPLimits = HTTPLimits(),
                         file: StaticString = #filePath, line: UInt = #line) {
        var whole = session(limits)
        let output = whole.receive(bytes)
        XCTAssertEqual(output.responses.count, count, file: file, line: line)
        XCTAssertEqual(output.close, close, file: file, line: line)
        for split in 0...bytes.count {
            var session = session(limits)
            let first = session.receive(Array(bytes[..<split]))
            let second = session.receive(Array(bytes[split...]))
            XCTAssertEqual(first.responses + second.responses, output.responses, "split at \(split)", file: file, line: line)
            XCTAssertEqual(first.close || second.close, close, "split at \(split)", file: file, line: line)
            if !close { XCTAssertTrue(session.buffer.isEmpty, "split at \(split)", file: file, line: line) }
        }
        for first in stride(from: 0, through: bytes.count, by: 5) {
            for second in first...bytes.count {
                var session = session(limits)
                var responses = session.receive(Array(bytes[..<first])).responses
                responses += session.receive(Array(bytes[first..<second])).responses
                responses += session.receive(Array(bytes[second...])).responses
                XCTAssertEqual(responses, output.responses, "split at \(first), \(second)", file: file, line: line)
            }
        }
    }

    func testCurlRequestSplitAnywhere() {
        let bytes = Array(Self.curl.utf8)
        checkEverySplit(bytes, responses: 1, close: false)
        var session = session()
        let output = session.receive(bytes)
        checkResponse(output.responses[0], code: 200, close: false)
        XCTAssertEqual(ReadResponse.parse(output.responses[0])?.body, Site.indexBody())
    }

    func testPipelinesMixingBothPaths() {
        // Fast, slow (leading empty line), fast with a skipped body, slow ("*"),
        // fast HEAD, and a missing page.
        var limits = HTTPLimits()
        limits.maximumBodyBytes = 8
        let bytes = Array(Self.curl.utf8)
            + request("\nGET /health HTTP/1.1\nHost: a\n\n")
            + request("POST /x HTTP/1.1\nHost: a\nContent-Length: 4\n\nGET ")
            + request("OPTIONS * HTTP/1.1\nHost: a\n\n")
            + request("HEAD /big HTTP/1.1\nHost: a\n\n")
            + request("GET /nowhere?q HTTP/1.1\nHost: a\n\n")
        checkEverySplit(bytes, responses: 6, close: false, limits: limits)
        var session = session(limits)
        let output = session.receive(bytes)
        checkResponse(output.responses[0], code: 200, close: false)
        checkResponse(output.responses[1], code: 200, close: false)
        checkResponse(output.responses[2], code: 405, close: false)
        checkResponse(output.responses[3], code: 405, close: false)
        checkResponse(output.responses[4], code: 200, head: true, close: false)
        checkResponse(output.responses[5], code: 404, close: false)
        XCTAssertEqual(session.statusCounts.ok, 3)
        XCTAssertEqual(session.statusCounts.methodNotAllowed, 2)
        XCTAssertEqual(session.statusCounts.notFound, 1)
    }

    func testPipelinesEndingInErrorsOrClose() {
        let curl = Array(Self.curl.utf8)
        checkEverySplit(curl + request("GET / HTTP/2.0\nHost: a\n\n") + curl, responses: 2, close: true)
        checkEverySplit(curl + request("GET / HTTP/1.1\nHost: a\nConnection: close\n\n") + curl, responses: 2, close: true)
        checkEverySplit(curl + request("GET / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n") + curl, responses: 2,
                        close: true)
        checkEverySplit(curl + request("GET / HTTP/1.1\nHost: a\nContent-Length: 1\n\nx") + curl, responses: 2, close: true)
        var limits = HTTPLimits()
        limits.maximumHeaderBytes = curl.count
        checkEverySplit(curl + curl + curl, responses: 3, close: false, limits: limits)
        checkEverySplit(curl + curl + request("GET / HTTP/1.1\nHost: a\nX-Pad: \(String(repeating: "p", count: 80))\n\n"),
                        responses: 3, close: true, limits: limits)
    }

    func testBodySkippedAcrossCalls() {
        var limits = HTTPLimits()
        limits.maximumBodyBytes = 100
        var session = session(limits)
        let post = request("POST / HTTP/1.1\nHost: a\nContent-Length: 20\n\n0123456789")
        XCTAssertEqual(session.receive(post).responses.count, 1)
        XCTAssertEqual(session.bodyRemaining, 10)
        // The rest of the body, then a whole request in the same call.
        let output = session.receive(Array("abcdefghij".utf8) + Array(Self.curl.utf8))
        XCTAssertEqual(output.responses.count, 1)
        checkResponse(output.responses[0], code: 200, close: false)
        XCTAssertTrue(session.buffer.isEmpty)
        XCTAssertEqual(session.bodyRemaining, 0)
    }

    func testOutputsStayIndependentWhenTheirArrayIsReused() {
        var session = session()
        let first = session.receive(request("GET /health HTTP/1.1\nHost: a\n\n"))
        let second = session.receive(request("GET /nowhere HTTP/1.1\nHost: a\n\n"))
        let third = session.receive(request("GET /health HTTP/1.1\nHost: a\n\nGET / HTTP/1.1\nHost: a\n\n"))
        XCTAssertEqual(first.responses.count, 1)
        XCTAssertEqual(ReadResponse.parse(first.responses[0])?.text, "ok\n")
        XCTAssertEqual(second.responses.count, 1)
        checkResponse(second.responses[0], code: 404, close: false)
        XCTAssertEqual(third.responses.count, 2)
        // Dropped outputs: the next ones still carry only their own responses.
        for _ in 0..<3 {
            let output = session.receive(Array(Self.curl.utf8))
            XCTAssertEqual(output.responses.count, 1)
        }
        XCTAssertEqual(session.answered, 7)
    }

    /// Informational only: host time per curl-like request through the session.
    /// (The guest's cost is instructions, measured with `toro-vmm run --profile`.)
    func testPrintsTimePerRequest() {
        let bytes = Array(Self.curl.utf8)
        var session = session()
        let count = 100_000
        var answered = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for _ in 0..<count { answered += session.receive(bytes).responses.count }
        }
        XCTAssertEqual(answered, count)
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        print("HTTPSession.receive: \(nanoseconds / Int64(count)) ns per request (informational)")
    }
}
