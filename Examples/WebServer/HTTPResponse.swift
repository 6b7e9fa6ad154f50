// HTTPResponse.swift: status codes and response serialisation (RFC 9110 §15, RFC 9112 §4).
//
// Responses are built once, at start-up, into complete byte arrays (status line,
// header fields, body) and handed out for every request: an Array is
// copy-on-write, so giving the same one to many connections copies nothing.
// Each is prepared in four variants, persistent or closing and with or without
// the body (for HEAD), which differ only in `Connection:` and the body.
//
// Every response has Server, Content-Type, Content-Length and Connection; there
// is no Date field, as the kernel has no wall clock (RFC 9110 §6.6.1 lets an
// origin server without one leave it out).

/// The statuses the server answers with.
public enum HTTPStatus: Int, Equatable, Sendable {
    case ok = 200
    case badRequest = 400
    case notFound = 404
    case methodNotAllowed = 405
    /// RFC 9110 §15.5.9: a request that began but did not arrive whole within
    /// the server's time for it (a head that never ends); the connection closes.
    case requestTimeout = 408
    /// RFC 9110 §15.5.12: a request body in chunked transfer coding, which
    /// this server does not decode: RFC 9112 §6.3 lets a server refuse a
    /// body without a Content-Length with 411.
    case lengthRequired = 411
    /// RFC 9110 §15.5.14 "Content Too Large" (formerly "Payload Too Large"): a
    /// request body beyond HTTPLimits.maximumBodyBytes (a GET or HEAD with a body).
    case contentTooLarge = 413
    /// RFC 9110 §15.5.15: the request-target alone runs past the head limit
    /// (RFC 9112 §3: a server MUST answer a target longer than it will parse with 414).
    case uriTooLong = 414
    /// RFC 6585 §5: the header fields run past HTTPLimits.maximumHeaderBytes.
    case requestHeaderFieldsTooLarge = 431
    case notImplemented = 501
    case serviceUnavailable = 503
    case httpVersionNotSupported = 505

    /// The three-digit code.
    public var code: Int { rawValue }

    /// The reason phrase (RFC 9110 §15 names; RFC 6585 for 431).
    public var reason: String {
        switch self {
        case .ok: return "OK"
        case .badRequest: return "Bad Request"
        case .notFound: return "Not Found"
        case .methodNotAllowed: return "Method Not Allowed"
        case .requestTimeout: return "Request Timeout"
        case .lengthRequired: return "Length Required"
        case .contentTooLarge: return "Content Too Large"
        case .uriTooLong: return "URI Too Long"
        case .requestHeaderFieldsTooLarge: return "Request Header Fields Too Large"
        case .notImplemented: return "Not Implemented"
        case .serviceUnavailable: return "Service Unavailable"
        case .httpVersionNotSupported: return "HTTP Version Not Supported"
        }
    }

    /// Every status, in the order of `HTTPStatusCounts`.
    public static var all: [HTTPStatus] {[
        .ok, .badRequest, .notFound, .methodNotAllowed, .requestTimeout, .lengthRequired, .contentTooLarge,
        .uriTooLong, .requestHeaderFieldsTooLarge, .notImplemented, .serviceUnavailable, .httpVersionNotSupported,
    ]}
}

/// One header field beyond the four every response has.
public struct HTTPHeaderField: Sendable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A response to be serialised: status, content type, body and extra fields.
public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var contentType: String
    public var body: [UInt8]
    public var fields: [HTTPHeaderField]

    public init(status: HTTPStatus, contentType: String, body: [UInt8], fields: [HTTPHeaderField] = []) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.fields = fields
    }

    /// A text/plain response whose body is `text`.
    public init(status: HTTPStatus, text: String, fields: [HTTPHeaderField] = []) {
        self.init(status: status, contentType: "text/plain; charset=utf-8", body: Array(text.utf8), fields: fields)
    }

    /// The whole response as sent: status line, fields, empty line, and the body
    /// unless `includeBody` is false (a HEAD: Content-Length still gives the size
    /// of the body a GET would get, RFC 9110 §9.3.2).
    public func serialized(close: Bool, includeBody: Bool) -> [UInt8] {
        // Measured, then written in one pass of block copies: appending
        // String.UTF8Views to an Array goes a byte at a time in the kernel's
        // -Osize build, and every response is built at start-up.
        var pieces: [String] = [
            "HTTP/1.1 ", String(status.code), " ", status.reason, "\r\nServer: toro-swift\r\nContent-Type: ", contentType,
            "\r\nContent-Length: ", String(body.count),
        ]
        for field in fields {
            pieces.append("\r\n")
            pieces.append(field.name)
            pieces.append(": ")
            pieces.append(field.value)
        }
        pieces.append(close ? "\r\nConnection: close\r\n\r\n" : "\r\nConnection: keep-alive\r\n\r\n")
        var total = includeBody ? body.count : 0
        for piece in pieces { total += piece.utf8.count }
        return [UInt8](unsafeUninitializedCapacity: total) { buffer, initialized in
            let base = UnsafeMutableRawPointer(buffer.baseAddress!)
            var offset = 0
            for var piece in pieces {
                piece.withUTF8 { bytes in
                    if let start = bytes.baseAddress, bytes.count > 0 { (base + offset).copyMemory(from: start, byteCount: bytes.count) }
                    offset += bytes.count
                }
            }
            if includeBody {
                body.withUnsafeBytes { if let start = $0.baseAddress, $0.count > 0 { (base + offset).copyMemory(from: start, byteCount: $0.count) } }
            }
            initialized = total
        }
    }
}

/// A response serialised once in the four forms a request may need.
public struct PreparedResponse: Sendable {
    public let status: HTTPStatus
    /// The Content-Length every form announces.
    public let bodyCount: Int
    let persistent: [UInt8]
    let closing: [UInt8]
    let persistentHead: [UInt8]
    let closingHead: [UInt8]

    public init(_ response: HTTPResponse) {
        status = response.status
        bodyCount = response.body.count
        persistent = response.serialized(close: false, includeBody: true)
        closing = response.serialized(close: true, includeBody: true)
        persistentHead = response.serialized(close: false, includeBody: false)
        closingHead = response.serialized(close: true, includeBody: false)
    }

    /// The bytes to send: with `Connection: close` if `close`, without the body if `head`.
    public func bytes(close: Bool, head: Bool) -> [UInt8] {
        if head { return close ? closingHead : persistentHead }
        return close ? closing : persistent
    }
}

/// The response for refusing a connection beyond the server's limit: 503, with
/// `Connection: close` and `Retry-After: 1`. `Site` builds it once
/// (`Site.serviceUnavailableResponse`) for the server to use.
func makeServiceUnavailableResponse() -> [UInt8] {
    HTTPResponse(status: .serviceUnavailable, text: "service unavailable\n", fields: [HTTPHeaderField("Retry-After", "1")])
        .serialized(close: true, includeBody: true)
}
