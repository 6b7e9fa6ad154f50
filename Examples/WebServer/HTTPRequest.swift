// HTTPRequest.swift: reading a request head (RFC 9112 §2-§6) from a byte stream.
//
// Plain Swift with no imports: it is compiled into the WebServer image (Embedded
// Swift) and, as the WebServerCore target, on the host for the tests.
//
// One pass, resumable: the parser walks each byte of the request line and header
// fields once, as a small state machine, and remembers where it stopped, so a
// head that arrives a byte at a time costs no rescanning. It keeps offsets, not
// strings: a field's name is compared (lower-cased ASCII) only when its line
// ends, and only the values of the four fields the server acts on are read again.
//
// A head that arrives whole (nearly always: a request fits in one segment) takes
// a quicker road, `parseWhole`: one pass with no state machine, GET/HEAD and the
// version compared as words, names and values scanned eight bytes at a time.
// It accepts exactly what the resumable parser accepts and leaves everything
// else (parts, errors, the rare forms) to it, so every answer stays the same.
// (The guest runs under an instruction emulator: instructions are its cost.)
//
// Strictness, chosen because curl, wrk and browsers all send well-formed
// requests and every leniency is a request-smuggling surface:
// - Lines end in CRLF. A bare LF or a CR not followed by LF is a 400 (RFC 9112
//   §2.2 allows accepting a lone LF; we do not).
// - Empty lines (CRLF) before the request line are skipped (RFC 9112 §2.2).
// - Request line: token SP request-target SP HTTP-version CRLF, single spaces.
//   Targets are origin-form ("/path?query"); "*" is accepted for methods other
//   than GET and HEAD (they get 405 anyway); anything else (absolute-form,
//   authority-form) is a 400. The query is not part of the path used to route.
//   The path is not percent-decoded.
// - The version must look like HTTP/D.D (case-sensitive) or it is a 400; a
//   well-formed version other than HTTP/1.0 and HTTP/1.1 is a 505.
// - Field lines: token ":" OWS value OWS. Whitespace before the colon, a line
//   without a colon, an obs-fold continuation line, and control bytes in a
//   value are 400s.
// - Host: required in HTTP/1.1, at most once (RFC 9112 §3.2).
// - Content-Length: digits, read with overflow checks: a value above Int.max
//   (2^63 - 1) is a 400, as are a sign, whitespace inside a number, an empty
//   list element and two different values (in one field or several); a list
//   of identical values is allowed.
// - Transfer-Encoding: its codings are read (a list of tokens, each with
//   optional parameters; a malformed one is a 400) and judged by HTTPSession:
//   the server decodes no transfer coding (RFC 9112 §6.1, §6.3).
// - A head beyond HTTPLimits.maximumHeaderBytes is answered by where it
//   overflowed: 414 in the request-target (RFC 9112 §3), 431 in the header
//   fields (RFC 6585 §5), 501 in the method (RFC 9112 §3: a method longer
//   than any the server implements), 400 in leading empty lines or the version.

/// Limits on what one request may make the server hold.
public struct HTTPLimits: Sendable {
    /// The most bytes a request head may take: request line, header fields and
    /// the empty line that ends them, CRLFs included. One byte more is a 414
    /// (in the request-target) or a 431 (in the header fields).
    public var maximumHeaderBytes: Int = 8192
    /// The largest request body the server reads (and throws away) to keep the
    /// connection open. A larger body is not read: GET and HEAD get 413, other
    /// methods their 405/501; either way the connection closes after it.
    public var maximumBodyBytes: Int = 0

    public init() {}
}

/// The request methods the server tells apart (RFC 9110 §9).
public enum HTTPMethod: Equatable, Sendable {
    case get, head, post, put, delete, options, patch, connect, trace
    /// A well-formed method token the server does not know (answered 501).
    case unrecognized

    /// The method spelled by `count` bytes at `start` (methods are case-sensitive).
    init(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, count: Int) {
        switch count {
        case 3:
            if ASCII.equal(bytes, start, "GET") { self = .get; return }
            if ASCII.equal(bytes, start, "PUT") { self = .put; return }
        case 4:
            if ASCII.equal(bytes, start, "HEAD") { self = .head; return }
            if ASCII.equal(bytes, start, "POST") { self = .post; return }
        case 5:
            if ASCII.equal(bytes, start, "PATCH") { self = .patch; return }
            if ASCII.equal(bytes, start, "TRACE") { self = .trace; return }
        case 6:
            if ASCII.equal(bytes, start, "DELETE") { self = .delete; return }
        case 7:
            if ASCII.equal(bytes, start, "OPTIONS") { self = .options; return }
            if ASCII.equal(bytes, start, "CONNECT") { self = .connect; return }
        default:
            break
        }
        self = .unrecognized
    }
}

/// What the server needs to know of one request head.
public struct HTTPRequestHead: Sendable {
    public var method: HTTPMethod = .unrecognized
    /// The N of HTTP/1.N (0 or 1).
    public var minorVersion = 1
    /// Where the path (the target without its query) lies in the parsed buffer.
    /// Offsets relative to the request's start while parsing; absolute in the
    /// head that `HTTPRequestParser.parse` returns.
    public var pathStart = 0
    public var pathEnd = 0
    /// The target was "*" (asterisk-form).
    public var asteriskTarget = false
    public var hostCount = 0
    /// A `close` token in Connection.
    public var connectionClose = false
    /// A `keep-alive` token in Connection.
    public var connectionKeepAlive = false
    public var contentLength: Int? = nil
    public var hasTransferEncoding = false
    /// The transfer codings named in Transfer-Encoding (every field, in order):
    /// how many were `chunked`, whether the last one was, and whether any
    /// other coding was named.
    public var chunkedCodings = 0
    public var chunkedIsLast = false
    public var otherTransferCodings = false

    public init() {}

    /// Whether the connection persists after this request (RFC 9112 §9.3):
    /// HTTP/1.1 unless it says `close`; HTTP/1.0 only if it says `keep-alive`.
    public var keepAlive: Bool {
        if connectionClose { return false }
        return minorVersion >= 1 || connectionKeepAlive
    }

    /// The length of the body that follows the head.
    public var bodyLength: Int { contentLength ?? 0 }
}

/// How far parsing got.
public enum HTTPParseResult: Sendable {
    /// The head is not complete yet: feed more bytes.
    case needMore
    /// A complete, well-formed head; the next request starts at `end`.
    case complete(HTTPRequestHead, end: Int)
    /// The request cannot be served: answer `status` and close. `method` is the
    /// method if it was read (for a HEAD, the answer carries no body).
    case failed(HTTPStatus, method: HTTPMethod)
}

/// The resumable request-head parser. Each `parse` call continues from where the
/// last stopped, in a buffer that only grows at its end (the session drops
/// consumed bytes at its front and calls `rebase`).
public struct HTTPRequestParser: Sendable {
    enum State: UInt8, Sendable {
        case lineStart, leadingLF, method, target, version, requestLineLF
        case fieldStart, fieldName, fieldValue, fieldLF, finalLF
    }

    /// Where the request being parsed starts in the buffer.
    public private(set) var requestStart = 0
    /// The next byte to look at.
    var position = 0
    var state = State.lineStart
    // Offsets relative to requestStart, so that rebasing moves only two numbers.
    var tokenStart = 0  // of the method, target, version or field name being read
    var nameEnd = 0
    var valueStart = -1  // first non-OWS byte of the value, -1 while none
    var valueEnd = 0  // after its last non-OWS byte
    var queryStart = -1
    var head = HTTPRequestHead()

    public init() {}

    /// Starts over for a request at offset `start`.
    public mutating func reset(at start: Int) {
        self = HTTPRequestParser()
        requestStart = start
        position = start
    }

    /// The buffer lost `count` bytes at its front (all before `requestStart`).
    public mutating func rebase(droppingFirst count: Int) {
        requestStart -= count
        position -= count
    }

    /// Reads on through `bytes` (the same buffer as before, perhaps longer).
    public mutating func parse(_ bytes: [UInt8], limits: HTTPLimits) -> HTTPParseResult {
        bytes.withUnsafeBufferPointer { scan($0, limits: limits) }
    }

    mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, limits: HTTPLimits) -> HTTPParseResult {
        let end = bytes.count
        // The head may not reach `stop`; if the buffer goes beyond it, overflowStatus answers.
        let stop: Int
        let overflows: Bool
        if end - requestStart > limits.maximumHeaderBytes {
            stop = requestStart + limits.maximumHeaderBytes
            overflows = true
        } else {
            stop = end
            overflows = false
        }
        let base = requestStart
        var p = position
        var state = self.state
        defer {
            self.position = p
            self.state = state
        }
        while p < stop {
            let byte = bytes[p]
            switch state {
            case .lineStart:
                if byte == ASCII.cr {
                    state = .leadingLF
                } else if ASCII.isToken(byte) {
                    tokenStart = p - base
                    state = .method
                } else {
                    return fail(.badRequest)
                }
            case .leadingLF:
                guard byte == ASCII.lf else { return fail(.badRequest) }
                state = .lineStart
            case .method:
                if byte == ASCII.sp {
                    head.method = HTTPMethod(bytes, start: base + tokenStart, count: p - base - tokenStart)
                    tokenStart = p + 1 - base
                    state = .target
                } else if !ASCII.isToken(byte) {
                    return fail(.badRequest)
                }
            case .target:
                // Visible ASCII up to the space; the first "?" ends the path.
                var q = p
                while q < stop {
                    let b = bytes[q]
                    if b > ASCII.sp && b < ASCII.del {
                        if b == ASCII.question && queryStart < 0 { queryStart = q - base }
                        q += 1
                    } else {
                        break
                    }
                }
                p = q
                guard q < stop else { continue }
                guard bytes[q] == ASCII.sp, q - base > tokenStart else { return fail(.badRequest) }
                let first = bytes[base + tokenStart]
                if first == ASCII.slash {
                    head.pathStart = tokenStart
                    head.pathEnd = queryStart >= 0 ? queryStart : q - base
                } else if first == ASCII.asterisk && q - base == tokenStart + 1
                    && head.method != .get && head.method != .head
                {
                    head.asteriskTarget = true
                } else {
                    return fail(.badRequest)
                }
                tokenStart = q + 1 - base
                state = .version
            case .version:
                if byte == ASCII.cr {
                    if let status = readVersion(bytes, start: base + tokenStart, end: p) {
                        return fail(status)
                    }
                    state = .requestLineLF
                } else if byte <= ASCII.sp || byte >= ASCII.del {
                    return fail(.badRequest)
                }
            case .requestLineLF:
                guard byte == ASCII.lf else { return fail(.badRequest) }
                state = .fieldStart
            case .fieldStart:
                if byte == ASCII.cr {
                    state = .finalLF
                } else if ASCII.isToken(byte) {
                    tokenStart = p - base
                    state = .fieldName
                } else {
                    // SP or HTAB here is obs-fold (RFC 9112 §5.2); ":" an empty name.
                    return fail(.badRequest)
                }
            case .fieldName:
                if byte == ASCII.colon {
                    nameEnd = p - base
                    valueStart = -1
                    state = .fieldValue
                } else if !ASCII.isToken(byte) {
                    // Whitespace before the colon (RFC 9112 §5.1), or no colon at all.
                    return fail(.badRequest)
                }
            case .fieldValue:
                // VCHAR, obs-text, SP and HTAB up to the CR; OWS at either end is not
                // part of the value.
                var q = p
                while q < stop {
                    let b = bytes[q]
                    if b > ASCII.sp && b != ASCII.del {
                        if valueStart < 0 { valueStart = q - base }
                        q += 1
                        valueEnd = q - base
                    } else if b == ASCII.sp || b == ASCII.tab {
                        q += 1
                    } else {
                        break
                    }
                }
                p = q
                guard q < stop else { continue }
                guard bytes[q] == ASCII.cr else { return fail(.badRequest) }
                state = .fieldLF
            case .fieldLF:
                guard byte == ASCII.lf else { return fail(.badRequest) }
                if let status = readField(bytes, base: base) { return fail(status) }
                state = .fieldStart
            case .finalLF:
                guard byte == ASCII.lf else { return fail(.badRequest) }
                if head.minorVersion >= 1 && head.hostCount == 0 { return fail(.badRequest) }
                var complete = head
                complete.pathStart += base
                complete.pathEnd += base
                p += 1
                return .complete(complete, end: p)
            }
            p += 1
        }
        return overflows ? fail(Self.overflowStatus(state)) : .needMore
    }

    /// The answer to a head that reached HTTPLimits.maximumHeaderBytes in `state`.
    static func overflowStatus(_ state: State) -> HTTPStatus {
        switch state {
        case .target: return .uriTooLong
        case .method: return .notImplemented
        case .lineStart, .leadingLF, .version: return .badRequest
        case .requestLineLF, .fieldStart, .fieldName, .fieldValue, .fieldLF, .finalLF: return .requestHeaderFieldsTooLarge
        }
    }

    func fail(_ status: HTTPStatus) -> HTTPParseResult {
        .failed(status, method: head.method)
    }

    /// Checks the HTTP-version in `start..<end`: nil if it is 1.0 or 1.1.
    mutating func readVersion(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int) -> HTTPStatus? {
        guard end - start == 8, ASCII.equal(bytes, start, "HTTP/"), bytes[start + 6] == ASCII.dot else {
            return .badRequest
        }
        let major = bytes[start + 5]
        let minor = bytes[start + 7]
        guard ASCII.isDigit(major), ASCII.isDigit(minor) else { return .badRequest }
        guard major == ASCII.zero + 1, minor <= ASCII.zero + 1 else { return .httpVersionNotSupported }
        head.minorVersion = Int(minor - ASCII.zero)
        return nil
    }

    /// Acts on the field line just ended, if it is one the server cares about.
    mutating func readField(_ bytes: UnsafeBufferPointer<UInt8>, base: Int) -> HTTPStatus? {
        let start = valueStart < 0 ? base + nameEnd : base + valueStart
        let end = valueStart < 0 ? start : base + valueEnd
        return head.readField(bytes, nameStart: base + tokenStart, nameEnd: base + nameEnd, valueStart: start, valueEnd: end)
    }
}

// MARK: - The whole head in one buffer

extension HTTPRequestParser {
    /// Parses a head that lies whole in `buffer` from `start` (the usual case: a
    /// request arrives in one segment), in one tight pass over the bytes, without
    /// the resumable state machine. Returns nil for anything else (incomplete,
    /// malformed, over the limit, leading empty lines, "*" targets): the caller
    /// then runs the resumable parser from `start`, which gives the answer. So
    /// this accepts exactly the heads `scan` accepts (and gives the same head,
    /// offsets absolute), and decides nothing else.
    static func parseWhole(
        _ buffer: UnsafeBufferPointer<UInt8>, from start: Int, limits: HTTPLimits
    ) -> (head: HTTPRequestHead, end: Int)? {
        guard let bytes = buffer.baseAddress, start < buffer.count else { return nil }
        // The head must end before `stop` (as in `scan`).
        let stop = buffer.count - start > limits.maximumHeaderBytes ? start + limits.maximumHeaderBytes : buffer.count
        var head = HTTPRequestHead()
        var p = start

        // Method SP: GET and HEAD by one load each, any other token the long way.
        if stop - p >= 5 && ASCII.load32(bytes + p) == ASCII.getSpace {
            head.method = .get
            p += 4
        } else if stop - p >= 5 && ASCII.load32(bytes + p) == ASCII.headWord && bytes[p + 4] == ASCII.sp {
            head.method = .head
            p += 5
        } else {
            while p < stop && ASCII.isToken(bytes[p]) { p += 1 }
            guard p < stop, p > start, bytes[p] == ASCII.sp else { return nil }
            head.method = HTTPMethod(buffer, start: start, count: p - start)
            p += 1
        }

        // origin-form target SP: visible ASCII, the path up to the first "?".
        guard p < stop, bytes[p] == ASCII.slash else { return nil }
        head.pathStart = p
        p += 1
        while p < stop {
            let b = bytes[p]
            guard b > ASCII.sp && b < ASCII.del && b != ASCII.question else { break }
            p += 1
        }
        head.pathEnd = p
        if p < stop && bytes[p] == ASCII.question {
            p += 1
            while p < stop {
                let b = bytes[p]
                guard b > ASCII.sp && b < ASCII.del else { break }
                p += 1
            }
        }
        guard p < stop, bytes[p] == ASCII.sp else { return nil }
        p += 1

        // "HTTP/1.1" or "HTTP/1.0", CRLF.
        guard stop - p >= 10 else { return nil }
        let version = ASCII.load64(bytes + p)
        if version == ASCII.http11 {
            head.minorVersion = 1
        } else if version == ASCII.http10 {
            head.minorVersion = 0
        } else {
            return nil
        }
        guard ASCII.load16(bytes + p + 8) == ASCII.crlf else { return nil }
        p += 10

        // Field lines up to the empty line.
        while p < stop {
            if bytes[p] == ASCII.cr {
                guard p + 1 < stop, bytes[p + 1] == ASCII.lf else { return nil }
                if head.minorVersion >= 1 && head.hostCount == 0 { return nil }
                return (head, p + 2)
            }
            let nameStart = p
            // Letters, digits and "-" eight at a time, then byte by byte.
            while stop - p >= 8 {
                let others = ASCII.nonNameBytes(ASCII.load64(bytes + p))
                if others == 0 {
                    p += 8
                } else {
                    p += others.trailingZeroBitCount >> 3
                    break
                }
            }
            while p < stop && ASCII.isToken(bytes[p]) { p += 1 }
            guard p < stop, p > nameStart, bytes[p] == ASCII.colon else { return nil }
            let nameEnd = p
            p += 1
            // The value: eight bytes at a time to the first control byte or DEL;
            // past it if it is an HTAB. Byte by byte near the end of the buffer.
            while true {
                if stop - p >= 8 {
                    let controls = ASCII.controlOrDeleteBytes(ASCII.load64(bytes + p))
                    if controls == 0 {
                        p += 8
                        continue
                    }
                    p += controls.trailingZeroBitCount >> 3
                } else {
                    while p < stop {
                        let b = bytes[p]
                        guard b >= ASCII.sp && b != ASCII.del else { break }
                        p += 1
                    }
                    guard p < stop else { return nil }
                }
                guard bytes[p] == ASCII.tab else { break }
                p += 1
            }
            guard stop - p >= 2, bytes[p] == ASCII.cr, bytes[p + 1] == ASCII.lf else { return nil }
            switch nameEnd - nameStart {
            case 4, 10, 14, 17:
                if head.readField(buffer, nameStart: nameStart, nameEnd: nameEnd, valueStart: nameEnd + 1, valueEnd: p)
                    != nil
                {
                    return nil
                }
            default:
                break
            }
            p += 2
        }
        return nil
    }
}

// MARK: - The four fields the server reads

extension HTTPRequestHead {
    /// Acts on a field line, if it is one the server cares about: the name in
    /// `nameStart..<nameEnd`, the value (OWS at either end allowed) in
    /// `valueStart..<valueEnd`. Non-nil: the request is malformed.
    mutating func readField(
        _ bytes: UnsafeBufferPointer<UInt8>, nameStart: Int, nameEnd: Int, valueStart: Int, valueEnd: Int
    ) -> HTTPStatus? {
        switch nameEnd - nameStart {
        case 4 where ASCII.lowercaseEqual(bytes, nameStart, "host"):
            hostCount += 1
            if hostCount > 1 { return .badRequest }
        case 10 where ASCII.lowercaseEqual(bytes, nameStart, "connection"):
            let (start, end) = ASCII.trimmed(bytes, valueStart, valueEnd)
            readConnection(bytes, start: start, end: end)
        case 14 where ASCII.lowercaseEqual(bytes, nameStart, "content-length"):
            let (start, end) = ASCII.trimmed(bytes, valueStart, valueEnd)
            return readContentLength(bytes, start: start, end: end)
        case 17 where ASCII.lowercaseEqual(bytes, nameStart, "transfer-encoding"):
            hasTransferEncoding = true
            let (start, end) = ASCII.trimmed(bytes, valueStart, valueEnd)
            return readTransferEncoding(bytes, start: start, end: end)
        default:
            break
        }
        return nil
    }

    /// Connection = #connection-option: notes `close` and `keep-alive`, any case.
    mutating func readConnection(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int) {
        var index = start
        while index < end {
            while index < end && (bytes[index] == ASCII.comma || ASCII.isWhitespace(bytes[index])) { index += 1 }
            let tokenStart = index
            while index < end && bytes[index] != ASCII.comma && !ASCII.isWhitespace(bytes[index]) { index += 1 }
            let count = index - tokenStart
            if count == 5 && ASCII.lowercaseEqual(bytes, tokenStart, "close") {
                connectionClose = true
            } else if count == 10 && ASCII.lowercaseEqual(bytes, tokenStart, "keep-alive") {
                connectionKeepAlive = true
            }
        }
    }

    /// Transfer-Encoding = #transfer-coding, transfer-coding = token *( OWS ";"
    /// OWS transfer-parameter ) (RFC 9112 §6.1, RFC 9110 §10.1.4): notes each
    /// coding (`chunked` in any case, or another). Empty list elements are
    /// skipped (RFC 9110 §5.6.1); a coding that is not a token is a 400, as
    /// the body's length cannot be known then. Parameters are not read: after
    /// a ";" everything up to the next comma outside a quoted string belongs
    /// to them (a quoted string may hold commas; one left open is a 400).
    mutating func readTransferEncoding(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int) -> HTTPStatus? {
        var index = start
        while index < end {
            let byte = bytes[index]
            if byte == ASCII.comma || ASCII.isWhitespace(byte) {
                index += 1
                continue
            }
            let tokenStart = index
            while index < end && ASCII.isToken(bytes[index]) { index += 1 }
            let count = index - tokenStart
            guard count > 0 else { return .badRequest }
            if count == 7 && ASCII.lowercaseEqual(bytes, tokenStart, "chunked") {
                chunkedCodings += 1
                chunkedIsLast = true
            } else {
                otherTransferCodings = true
                chunkedIsLast = false
            }
            while index < end && ASCII.isWhitespace(bytes[index]) { index += 1 }
            guard index < end else { break }
            if bytes[index] == ASCII.semicolon {
                // Parameters: skipped to the next comma outside a quoted string.
                var quoted = false
                while index < end {
                    let b = bytes[index]
                    if quoted {
                        if b == ASCII.backslash {
                            index += 1  // quoted-pair: the next byte is literal
                        } else if b == ASCII.quote {
                            quoted = false
                        }
                    } else if b == ASCII.quote {
                        quoted = true
                    } else if b == ASCII.comma {
                        break
                    }
                    index += 1
                }
                guard !quoted else { return .badRequest }
            } else if bytes[index] != ASCII.comma {
                return .badRequest  // two tokens without a comma, or a byte no token has
            }
        }
        return nil
    }

    /// Content-Length = 1*DIGIT, or a list of equal ones (RFC 9112 §6.3 item 5).
    ///
    /// The value comes from the peer, so it is read with overflow checks: a
    /// number above Int.max (2^63 - 1) cannot be a length this server could
    /// ever count to, and is a 400 like any other invalid value (RFC 9112 §6.3
    /// item 6), never a trap. Leading zeros are digits like any other (the value
    /// decides, not the digit count). A sign, any other byte, whitespace inside
    /// a number, an empty list element and two different values are 400s.
    mutating func readContentLength(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int) -> HTTPStatus? {
        var index = start
        while true {
            while index < end && ASCII.isWhitespace(bytes[index]) { index += 1 }
            guard let (value, after) = ASCII.decimal(bytes, from: index, to: end) else { return .badRequest }
            index = after
            while index < end && ASCII.isWhitespace(bytes[index]) { index += 1 }
            if let known = contentLength, known != value { return .badRequest }
            contentLength = value
            if index == end { return nil }
            // Another element must follow the comma ("5," is not a list of lengths).
            guard bytes[index] == ASCII.comma else { return .badRequest }
            index += 1
        }
    }
}

// MARK: - ASCII

/// The bytes the parser looks for, and comparisons without Strings.
enum ASCII {
    static let tab: UInt8 = 0x09
    static let lf: UInt8 = 0x0A
    static let cr: UInt8 = 0x0D
    static let sp: UInt8 = 0x20
    static let asterisk: UInt8 = 0x2A
    static let quote: UInt8 = 0x22
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let semicolon: UInt8 = 0x3B
    static let question: UInt8 = 0x3F
    static let backslash: UInt8 = 0x5C
    static let del: UInt8 = 0x7F

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- zero < 10 }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == sp || byte == tab }

    /// The run of ASCII digits at `start` (before `end`) as a non-negative Int,
    /// and the index after it; nil when there is no digit or the value exceeds
    /// Int.max. Every step is overflow-checked: the digits come from the peer,
    /// and a trapping multiply would stop the whole machine.
    static func decimal(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> (value: Int, end: Int)? {
        var index = start
        var value = 0
        while index < end && isDigit(bytes[index]) {
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = shifted.addingReportingOverflow(Int(bytes[index] &- zero))
            guard !overflowed, !carried else { return nil }
            value = sum
            index += 1
        }
        return index > start ? (value, index) : nil
    }

    /// tchar (RFC 9110 §5.6.2): the bytes of methods and field names, as a
    /// 128-bit set (bit N of the pair is byte N): "!#$%&'*+-." and digits in the
    /// low word, letters and "^_`|~" in the high one.
    static let tokenLow: UInt64 = 0x03FF_6CFA_0000_0000
    static let tokenHigh: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    @inline(__always)
    static func isToken(_ byte: UInt8) -> Bool {
        let set = byte < 64 ? tokenLow : tokenHigh
        return byte < 128 && (set >> UInt64(byte & 63)) & 1 != 0
    }

    // Loads of 2, 4 and 8 bytes at any address, little-endian (x86-64 and the
    // hosts the tests run on), and the words the fast path compares them with.

    @inline(__always)
    static func load16(_ pointer: UnsafePointer<UInt8>) -> UInt16 {
        UInt16(littleEndian: UnsafeRawPointer(pointer).loadUnaligned(as: UInt16.self))
    }

    @inline(__always)
    static func load32(_ pointer: UnsafePointer<UInt8>) -> UInt32 {
        UInt32(littleEndian: UnsafeRawPointer(pointer).loadUnaligned(as: UInt32.self))
    }

    @inline(__always)
    static func load64(_ pointer: UnsafePointer<UInt8>) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(pointer).loadUnaligned(as: UInt64.self))
    }

    /// "GET ", "HEAD", "HTTP/1.1", "HTTP/1.0" and CRLF as little-endian words.
    static let getSpace: UInt32 = 0x2054_4547
    static let headWord: UInt32 = 0x4441_4548
    static let http11: UInt64 = 0x312E_312F_5054_5448
    static let http10: UInt64 = 0x302E_312F_5054_5448
    static let crlf: UInt16 = 0x0A0D

    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highs: UInt64 = 0x8080_8080_8080_8080

    /// Marks (0x80 in that byte) the bytes of `word` below SP (control bytes,
    /// HTAB and CR included) or equal to DEL. The classic "has a byte less than
    /// N" and "has a zero byte" tricks: a borrow runs only upwards from a marked
    /// byte, so the lowest mark is exact (bytes above it may be marked wrongly).
    @inline(__always)
    static func controlOrDeleteBytes(_ word: UInt64) -> UInt64 {
        let below = (word &- ones &* 0x20) & ~word
        let delete = word ^ (ones &* 0x7F)
        return (below | ((delete &- ones) & ~delete)) & highs
    }

    /// Whether any of the eight bytes in `word` is below SP or DEL.
    @inline(__always)
    static func hasControlOrDelete(_ word: UInt64) -> Bool { controlOrDeleteBytes(word) != 0 }

    /// Marks (0x80 in that byte) the bytes of `word` that are not an ASCII
    /// letter, digit or "-" (the bytes of nearly every field name), exactly:
    /// every sum stays within its byte.
    @inline(__always)
    static func nonNameBytes(_ word: UInt64) -> UInt64 {
        let low7 = word & ~highs  // each byte 0...0x7F
        // Bit 7 of each byte of `atLeast(n)` is set where that byte of `y` is >= n.
        func atLeast(_ y: UInt64, _ n: UInt64) -> UInt64 { (y &+ ones &* (0x80 &- n)) & highs }
        let printable = atLeast(low7, 0x20)
        let folded = low7 | ones &* 0x20  // "A"-"Z" onto "a"-"z"; digits and "-" stay
        let letter = atLeast(folded, 0x61) & ~atLeast(folded, 0x7B)
        let digit = atLeast(folded, 0x30) & ~atLeast(folded, 0x3A)
        let dashBits = folded ^ (ones &* 0x2D)
        let dash = ~(dashBits &+ ones &* 0x7F) & highs
        return ~((letter | digit | dash) & printable & ~word) & highs
    }

    /// `start..<end` without SP and HTAB at either end.
    static func trimmed(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (Int, Int) {
        var start = start
        var end = end
        while start < end && isWhitespace(bytes[start]) { start += 1 }
        while end > start && isWhitespace(bytes[end - 1]) { end -= 1 }
        return (start, end)
    }

    /// Whether the bytes at `start` are `literal` (the caller checked there are enough).
    static func equal(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ literal: StaticString) -> Bool {
        let expected = literal.utf8Start
        for index in 0..<literal.utf8CodeUnitCount where bytes[start + index] != expected[index] {
            return false
        }
        return true
    }

    /// Whether the bytes at `start` are `lowercase` in any case. `lowercase` holds
    /// only lower-case letters and "-": OR-ing 0x20 maps "A"-"Z" onto "a"-"z" and
    /// leaves them and "-" alone; the only other byte it maps onto one of them is
    /// CR (onto "-"), which never occurs inside a name or a field value.
    @inline(__always)
    static func lowercaseEqual(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ lowercase: StaticString) -> Bool {
        let expected = lowercase.utf8Start
        let count = lowercase.utf8CodeUnitCount
        let actual = bytes.baseAddress! + start
        // Eight bytes at a time, the last word overlapping the one before.
        if count >= 8 {
            let mask: UInt64 = 0x2020_2020_2020_2020
            var index = 0
            while index + 8 < count {
                guard load64(actual + index) | mask == load64(expected + index) else { return false }
                index += 8
            }
            return load64(actual + count - 8) | mask == load64(expected + count - 8)
        }
        if count >= 4 {
            let mask: UInt32 = 0x2020_2020
            return load32(actual) | mask == load32(expected)
                && load32(actual + count - 4) | mask == load32(expected + count - 4)
        }
        for index in 0..<count where actual[index] | 0x20 != expected[index] {
            return false
        }
        return true
    }
}
