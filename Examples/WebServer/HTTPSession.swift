// HTTPSession.swift: one connection's HTTP/1.1 protocol engine.
//
// The socket side feeds it whatever arrived; it answers with the prebuilt
// responses to send, in order, and whether to close afterwards. No I/O here, so
// the host tests drive it exactly as the server does.
//
// Decisions, after a head has parsed (HTTPRequest.swift lists the 400s, 413 and 505):
// - Transfer-Encoding present: 501, close (the server decodes no transfer codings).
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
    public var contentTooLarge = 0
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
            case .contentTooLarge: return contentTooLarge
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
            case .contentTooLarge: contentTooLarge = newValue
            case .notImplemented: notImplemented = newValue
            case .serviceUnavailable: serviceUnavailable = newValue
            case .httpVersionNotSupported: httpVersionNotSupported = newValue
            }
        }
    }

    /// The sum of every count.
    public var total: Int {
        ok + badRequest + notFound + methodNotAllowed + contentTooLarge + notImplemented
            + serviceUnavailable + httpVersionNotSupported
    }

    /// Adds `other`'s counts (merging sessions into server totals).
    public mutating func add(_ other: HTTPStatusCounts) {
        ok += other.ok
        badRequest += other.badRequest
        notFound += other.notFound
        methodNotAllowed += other.methodNotAllowed
        contentTooLarge += other.contentTooLarge
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
    var buffer: [UInt8] = []
    var parser = HTTPRequestParser()
    /// Bytes of a request body still to skip.
    var bodyRemaining = 0
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

    /// Feeds received bytes (any split: a request may arrive a byte at a time, or
    /// several pipelined requests in one buffer). Returns the responses to send,
    /// in order, and whether the connection must close after sending them.
    public mutating func receive(_ bytes: [UInt8]) -> HTTPOutput {
        var output = HTTPOutput()
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
            // Usually a whole request: parse the caller's array itself, no copy.
            buffer = skipped == 0 ? bytes : Array(bytes[skipped...])
        } else {
            buffer.append(contentsOf: bytes[skipped...])
        }

        while true {
            switch parser.parse(buffer, limits: limits) {
            case .needMore:
                break
            case .failed(let status, let method):
                send(site.response(for: status), close: true, head: method == .head, into: &output)
            case .complete(let head, let end):
                let (response, close) = answer(head)
                send(response, close: close, head: head.method == .head, into: &output)
                if !close {
                    // Skip the body (within maximumBodyBytes, or answer() closed).
                    let inBuffer = min(head.bodyLength, buffer.count - end)
                    bodyRemaining = head.bodyLength - inBuffer
                    parser.reset(at: end + inBuffer)
                    continue
                }
            }
            break
        }

        // Keep only the incomplete request, at the front of the buffer.
        if closed || parser.requestStart >= buffer.count {
            buffer = []
            parser.reset(at: 0)
        } else if parser.requestStart > 0 {
            let consumed = parser.requestStart
            buffer.removeFirst(consumed)
            parser.rebase(droppingFirst: consumed)
        }
        return output
    }

    /// The response to a well-formed head, and whether to close after it.
    func answer(_ head: HTTPRequestHead) -> (PreparedResponse, close: Bool) {
        if head.hasTransferEncoding { return (site.notImplemented, true) }
        let bodyTooLarge = head.bodyLength > limits.maximumBodyBytes
        switch head.method {
        case .get, .head:
            if bodyTooLarge { return (site.contentTooLarge, true) }
            let page = site.page(buffer, from: head.pathStart, to: head.pathEnd) ?? site.notFound
            return (page, !head.keepAlive)
        case .unrecognized:
            return (site.notImplemented, bodyTooLarge || !head.keepAlive)
        case .post, .put, .delete, .options, .patch, .connect, .trace:
            return (site.methodNotAllowed, bodyTooLarge || !head.keepAlive)
        }
    }

    mutating func send(_ response: PreparedResponse, close: Bool, head: Bool, into output: inout HTTPOutput) {
        output.responses.append(response.bytes(close: close, head: head))
        answered += 1
        statusCounts[response.status] += 1
        if close {
            closed = true
            output.close = true
        }
    }
}
