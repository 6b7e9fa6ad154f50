// HTTPSession.swift: one connection's HTTP/1.1 protocol engine.
//
// The socket side feeds it whatever arrived; it answers with the prebuilt
// responses to send, in order, and whether to close afterwards. No I/O here, so
// the host tests drive it exactly as the server does.
//
// Decisions, after a head has parsed (HTTPRequest.swift lists the 400s, 414,
// 431, 501 and 505 the parser gives):
// - Transfer-Encoding present (RFC 9112 §6.1, §6.3), always closing: 400 when
//   chunked is not the last coding (the body's length cannot be known), when
//   chunked is named twice, or in an HTTP/1.0 request (whose framing must then
//   be treated as faulty); 501 when another coding is named (the server
//   decodes none); else (plain chunked) 411 Length Required: the server reads
//   no chunked body, and RFC 9112 §6.3 lets it ask for a Content-Length.
// - GET, HEAD: a body longer than HTTPLimits.maximumBodyBytes is a 413, close;
//   otherwise the page at the path (query ignored) or a 404.
// - POST, PUT, DELETE, OPTIONS, PATCH, CONNECT, TRACE: 405 with Allow: GET, HEAD;
//   any other method token: 501. If the body is longer than maximumBodyBytes it
//   is not read, so the connection closes after the answer.
// - A body within the limit is skipped (counted, never copied), so the next
//   pipelined request parses.
// - Persistence: HTTP/1.1 unless Connection: close; HTTP/1.0 only with
//   Connection: keep-alive; every error above that closes says Connection: close.
// - HEAD gets the GET response without its body, errors included.
// - Once a response closes the connection, later bytes (even ones already in the
//   same buffer) are ignored.
//
// Whole requests are answered straight from the caller's array (no copy, no
// allocation but what the socket needs); only a request split across receives
// is buffered, with block copies.

/// The responses for what a connection sent, and whether to close after them.
public struct HTTPOutput: Sendable {
    /// Complete responses, in request order.
    public var responses: [[UInt8]]
    /// Close the connection once `responses` are sent.
    public var close: Bool

    public init(responses: [[UInt8]] = [], close: Bool = false) {
        self.responses = responses
        self.close = close
    }
}

/// How many responses of each status a session (or a server) sent.
public struct HTTPStatusCounts: Equatable, Sendable {
    public var ok = 0
    public var badRequest = 0
    public var notFound = 0
    public var methodNotAllowed = 0
    public var requestTimeout = 0
    public var lengthRequired = 0
    public var contentTooLarge = 0
    public var uriTooLong = 0
    public var requestHeaderFieldsTooLarge = 0
    public var notImplemented = 0
    public var serviceUnavailable = 0
    public var httpVersionNotSupported = 0

    public init() {}

    public subscript(status: HTTPStatus) -> Int {
        get {
            switch status {
            case .ok: return ok
            case .badRequest: return badRequest
            case .notFound: return notFound
            case .methodNotAllowed: return methodNotAllowed
            case .requestTimeout: return requestTimeout
            case .lengthRequired: return lengthRequired
            case .contentTooLarge: return contentTooLarge
            case .uriTooLong: return uriTooLong
            case .requestHeaderFieldsTooLarge: return requestHeaderFieldsTooLarge
            case .notImplemented: return notImplemented
            case .serviceUnavailable: return serviceUnavailable
            case .httpVersionNotSupported: return httpVersionNotSupported
            }
        }
        set {
            switch status {
            case .ok: ok = newValue
            case .badRequest: badRequest = newValue
            case .notFound: notFound = newValue
            case .methodNotAllowed: methodNotAllowed = newValue
            case .requestTimeout: requestTimeout = newValue
            case .lengthRequired: lengthRequired = newValue
            case .contentTooLarge: contentTooLarge = newValue
            case .uriTooLong: uriTooLong = newValue
            case .requestHeaderFieldsTooLarge: requestHeaderFieldsTooLarge = newValue
            case .notImplemented: notImplemented = newValue
            case .serviceUnavailable: serviceUnavailable = newValue
            case .httpVersionNotSupported: httpVersionNotSupported = newValue
            }
        }
    }

    /// The sum of every count.
    public var total: Int {
        ok + badRequest + notFound + methodNotAllowed + requestTimeout + lengthRequired + contentTooLarge + uriTooLong
            + requestHeaderFieldsTooLarge + notImplemented + serviceUnavailable + httpVersionNotSupported
    }

    /// Adds `other`'s counts (merging sessions into server totals).
    public mutating func add(_ other: HTTPStatusCounts) {
        ok += other.ok
        badRequest += other.badRequest
        notFound += other.notFound
        methodNotAllowed += other.methodNotAllowed
        requestTimeout += other.requestTimeout
        lengthRequired += other.lengthRequired
        contentTooLarge += other.contentTooLarge
        uriTooLong += other.uriTooLong
        requestHeaderFieldsTooLarge += other.requestHeaderFieldsTooLarge
        notImplemented += other.notImplemented
        serviceUnavailable += other.serviceUnavailable
        httpVersionNotSupported += other.httpVersionNotSupported
    }
}

/// What one connection's byte stream asks for.
public struct HTTPSession: Sendable {
    public let site: Site
    public let limits: HTTPLimits
    /// Received bytes not yet consumed: the start of a request still incomplete.
    /// Empty between requests (then `parser` is reset at 0 and the next bytes
    /// are parsed where they arrived, without copying).
    var buffer: [UInt8] = []
    var parser = HTTPRequestParser()
    /// Bytes of a request body still to skip.
    var bodyRemaining = 0
    /// The last output's array of responses, kept to be emptied and reused: once
    /// the caller has dropped that output, the next one needs no allocation.
    var spareResponses: [[UInt8]] = []
    /// A response closed the connection: nothing more is read.
    public private(set) var closed = false
    /// Requests answered so far.
    public private(set) var answered = 0
    /// Requests answered so far, by status.
    public private(set) var statusCounts = HTTPStatusCounts()

    public init(site: Site, limits: HTTPLimits = HTTPLimits()) {
        self.site = site
        self.limits = limits
    }

    /// Whether part of a request has arrived and waits for the rest: a head
    /// not yet complete (leading empty lines included), or a body being skipped.
    public var isMidRequest: Bool { !closed && (!buffer.isEmpty || bodyRemaining > 0) }

    /// The connection's time ran out (see ``HTTPDeadline``): a request that had
    /// begun gets 408 Request Timeout (RFC 9110 §15.5.9), an idle connection
    /// nothing; either way the connection closes.
    public mutating func timeOut() -> HTTPOutput {
        var output = HTTPOutput()
        if isMidRequest {
            send(site.requestTimeout, close: true, head: false, into: &output)
        }
        closed = true
        buffer = []
        bodyRemaining = 0
        parser.reset(at: 0)
        output.close = true
        return output
    }

    /// Feeds received bytes (any split: a request may arrive a byte at a time, or
    /// several pipelined requests in one buffer). Returns the responses to send,
    /// in order, and whether the connection must close after sending them.
    public mutating func receive(_ bytes: [UInt8]) -> HTTPOutput {
        var output = HTTPOutput(responses: spareResponses)
        spareResponses = []
        while !output.responses.isEmpty { output.responses.removeLast() }
        defer { spareResponses = output.responses }
        if closed {
            output.close = true
            return output
        }
        // The rest of a body being skipped comes first (the buffer is empty then).
        var skipped = 0
        if bodyRemaining > 0 {
            skipped = min(bodyRemaining, bytes.count)
            bodyRemaining -= skipped
        }
        if skipped == bytes.count { return output }

        if buffer.isEmpty {
            // Usually whole requests: parse them where they are, no copy.
            guard let resume = answerWholeRequests(bytes, from: skipped, into: &output) else { return output }
            // Something else (a part, or a request the quick pass leaves to the
            // resumable parser): parse the caller's array from there.
            buffer = bytes
            parser.reset(at: resume)
        } else {
            buffer = concatenated(buffer, bytes, from: skipped)
        }

        let data = buffer
        data.withUnsafeBufferPointer { bytes in
            while true {
                switch parser.scan(bytes, limits: limits) {
                case .needMore:
                    break
                case .failed(let status, let method):
                    send(site.response(for: status), close: true, head: method == .head, into: &output)
                case .complete(let head, let end):
                    if !respond(to: head, in: bytes, into: &output) {
                        // Skip the body (within maximumBodyBytes, or respond() closed).
                        let inBuffer = min(head.bodyLength, bytes.count - end)
                        bodyRemaining = head.bodyLength - inBuffer
                        parser.reset(at: end + inBuffer)
                        continue
                    }
                }
                break
            }
        }

        // Keep only the incomplete request, at the front of the buffer.
        if closed || parser.requestStart >= buffer.count {
            buffer = []
            parser.reset(at: 0)
        } else if parser.requestStart > 0 {
            let consumed = parser.requestStart
            buffer = concatenated([], buffer, from: consumed)
            parser.rebase(droppingFirst: consumed)
        }
        return output
    }

    /// Answers the requests whose heads lie whole in `bytes` from `start` on.
    /// Returns nil if that consumed every byte (or a response closed), else where
    /// the resumable parser must take over.
    mutating func answerWholeRequests(_ bytes: [UInt8], from start: Int, into output: inout HTTPOutput) -> Int? {
        bytes.withUnsafeBufferPointer { bytes in
            var start = start
            while let (head, end) = HTTPRequestParser.parseWhole(bytes, from: start, limits: limits) {
                if respond(to: head, in: bytes, into: &output) { return nil }
                let inBuffer = min(head.bodyLength, bytes.count - end)
                bodyRemaining = head.bodyLength - inBuffer
                start = end + inBuffer
                if start == bytes.count { return nil }
            }
            return start
        }
    }

    /// Answers a well-formed head whose path lies in `bytes`; returns whether the
    /// connection closes after it.
    mutating func respond(to head: HTTPRequestHead, in bytes: UnsafeBufferPointer<UInt8>,
                          into output: inout HTTPOutput) -> Bool {
        let isHead = head.method == .head
        if head.hasTransferEncoding {
            let answer: PreparedResponse
            if !head.chunkedIsLast || head.chunkedCodings > 1 || head.minorVersion == 0 {
                answer = site.badRequest
            } else if head.otherTransferCodings {
                answer = site.notImplemented
            } else {
                answer = site.lengthRequired
            }
            send(answer, close: true, head: isHead, into: &output)
            return true
        }
        let bodyTooLarge = head.bodyLength > limits.maximumBodyBytes
        let close: Bool
        switch head.method {
        case .get, .head:
            if bodyTooLarge {
                send(site.contentTooLarge, close: true, head: isHead, into: &output)
                return true
            }
            close = !head.keepAlive
            if let index = site.pageIndex(bytes, from: head.pathStart, to: head.pathEnd) {
                record(site.pageStatus(index), bytes: site.pageBytes(index, close: close, head: isHead), close: close,
                       into: &output)
            } else {
                send(site.notFound, close: close, head: isHead, into: &output)
            }
        case .unrecognized:
            close = bodyTooLarge || !head.keepAlive
            send(site.notImplemented, close: close, head: isHead, into: &output)
        case .post, .put, .delete, .options, .patch, .connect, .trace:
            close = bodyTooLarge || !head.keepAlive
            send(site.methodNotAllowed, close: close, head: isHead, into: &output)
        }
        return close
    }

    mutating func send(_ response: PreparedResponse, close: Bool, head: Bool, into output: inout HTTPOutput) {
        record(response.status, bytes: response.bytes(close: close, head: head), close: close, into: &output)
    }

    mutating func record(_ status: HTTPStatus, bytes: [UInt8], close: Bool, into output: inout HTTPOutput) {
        output.responses.append(bytes)
        answered += 1
        statusCounts[status] += 1
        if close {
            closed = true
            output.close = true
        }
    }
}

/// `head` followed by `tail[start...]`, copied in two blocks.
func concatenated(_ head: [UInt8], _ tail: [UInt8], from start: Int) -> [UInt8] {
    head.withUnsafeBytes { headBytes in
        tail.withUnsafeBytes { tailBytes in
            concatenated(headBytes, UnsafeRawBufferPointer(rebasing: tailBytes[start...]))
        }
    }
}

/// `head` followed by `tail`, copied in two blocks. (In the kernel's -Osize
/// build, Array's `append(contentsOf:)` and generic initialisers copy bytes one
/// at a time; `copyMemory` is one memmove.)
func concatenated(_ head: UnsafeRawBufferPointer, _ tail: UnsafeRawBufferPointer) -> [UInt8] {
    let total = head.count + tail.count
    return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
        if total > 0 {
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            if let start = head.baseAddress, head.count > 0 { base.copyMemory(from: start, byteCount: head.count) }
            if let start = tail.baseAddress, tail.count > 0 { (base + head.count).copyMemory(from: start, byteCount: tail.count) }
        }
        initialized = total
    }
}

/// When a connection stops waiting for its client. An idle connection (no
/// request begun) waits `limit` from its last response (or its accept); a
/// request, once its first byte arrives, must arrive whole within `limit` of
/// that byte, however slowly its bytes come: a client that trickles a head
/// that never ends (slowloris) holds its connection at most twice `limit`.
/// Answering a request starts the count again. Times are nanoseconds of any
/// clock; arithmetic saturates, never traps.
public struct HTTPDeadline: Sendable {
    public let limit: UInt64
    /// When the connection gives up.
    public private(set) var deadline: UInt64
    var midRequest = false

    public init(now: UInt64, limit: UInt64) {
        self.limit = limit
        deadline = Self.adding(now, limit)
    }

    /// After the session took bytes at `now`: it answered `answered` requests,
    /// and `midRequest` (``HTTPSession/isMidRequest``) says whether a request
    /// is now partly received.
    public mutating func update(now: UInt64, answered: Int, midRequest: Bool) {
        if !midRequest || !self.midRequest || answered > 0 {
            // Idle from now, or a request began with these bytes.
            deadline = Self.adding(now, limit)
        }
        self.midRequest = midRequest
    }

    /// How long to wait for more bytes at `now`; 0 once the deadline passed.
    public func remaining(now: UInt64) -> UInt64 {
        deadline > now ? deadline - now : 0
    }

    static func adding(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }
}
