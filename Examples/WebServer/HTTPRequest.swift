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
// - Content-Length: digits (at most 18), a list of identical values allowed;
//   two different values (in one field or several) are a 400.
// - Transfer-Encoding: remembered; the server does not decode transfer codings
//   and answers 501 (RFC 9112 §6.1) — see HTTPSession.

/// Limits on what one request may make the server hold.
public struct HTTPLimits: Sendable {
    /// The most bytes a request head may take: request line, header fields and
    /// the empty line that ends them, CRLFs included. One byte more is a 413.
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
        // The head may not reach `stop`; if the buffer goes beyond it, that is a 413.
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
        return overflows ? fail(.contentTooLarge) : .needMore
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
        let nameStart = base + tokenStart
        let start = valueStart < 0 ? base + nameEnd : base + valueStart
        let end = valueStart < 0 ? start : base + valueEnd
        switch nameEnd - tokenStart {
        case 4 where ASCII.lowercaseEqual(bytes, nameStart, "host"):
            head.hostCount += 1
            if head.hostCount > 1 { return .badRequest }
        case 10 where ASCII.lowercaseEqual(bytes, nameStart, "connection"):
            readConnection(bytes, start: start, end: end)
        case 14 where ASCII.lowercaseEqual(bytes, nameStart, "content-length"):
            return readContentLength(bytes, start: start, end: end)
        case 17 where ASCII.lowercaseEqual(bytes, nameStart, "transfer-encoding"):
            head.hasTransferEncoding = true
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
                head.connectionClose = true
            } else if count == 10 && ASCII.lowercaseEqual(bytes, tokenStart, "keep-alive") {
                head.connectionKeepAlive = true
            }
        }
    }

    /// Content-Length = 1*DIGIT, or a list of equal ones (RFC 9112 §6.3 item 5).
    mutating func readContentLength(_ bytes: UnsafeBufferPointer<UInt8>, start: Int, end: Int) -> HTTPStatus? {
        var index = start
        repeat {
            while index < end && ASCII.isWhitespace(bytes[index]) { index += 1 }
            var value = 0
            var digits = 0
            while index < end && ASCII.isDigit(bytes[index]) {
                value = value * 10 + Int(bytes[index] - ASCII.zero)
                digits += 1
                index += 1
            }
            // 18 digits cannot overflow an Int.
            guard digits > 0, digits <= 18 else { return .badRequest }
            while index < end && ASCII.isWhitespace(bytes[index]) { index += 1 }
            if index < end {
                guard bytes[index] == ASCII.comma else { return .badRequest }
                index += 1
            }
            if let known = head.contentLength, known != value { return .badRequest }
            head.contentLength = value
        } while index < end
        return nil
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
    static let comma: UInt8 = 0x2C
    static let dot: UInt8 = 0x2E
    static let slash: UInt8 = 0x2F
    static let zero: UInt8 = 0x30
    static let colon: UInt8 = 0x3A
    static let question: UInt8 = 0x3F
    static let del: UInt8 = 0x7F

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte &- zero < 10 }

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool { byte == sp || byte == tab }

    /// tchar (RFC 9110 §5.6.2): the bytes of methods and field names.
    static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A:
            return true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E:
            return true
        default:
            return false
        }
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
    static func lowercaseEqual(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ lowercase: StaticString) -> Bool {
        let expected = lowercase.utf8Start
        for index in 0..<lowercase.utf8CodeUnitCount where bytes[start + index] | 0x20 != expected[index] {
            return false
        }
        return true
    }
}
