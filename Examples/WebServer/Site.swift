// Site.swift: the built-in pages, serialised once at start-up.
//
//   /, /index.html   a small HTML page about Toro for Swift
//   /big             65536 bytes of numbered text lines, for throughput tests
//   /health          "ok\n"
//
// plus the error responses the session sends. Building a Site costs a few
// hundred kilobytes of copying (each page is kept in four forms, see
// PreparedResponse), so the server builds one and shares it.

/// A page at a path.
public struct SiteRoute: Sendable {
    public var path: String
    public var response: HTTPResponse

    public init(path: String, response: HTTPResponse) {
        self.path = path
        self.response = response
    }
}

/// The pages and the error responses, prebuilt.
public final class Site: Sendable {
    /// The size of /big's body.
    public static let bigPageSize = 65536

    struct Page: Sendable {
        let path: [UInt8]
        let response: PreparedResponse
    }

    let pages: [Page]
    /// Every page's path, one after another, and where each ends: the lookup
    /// compares bytes without touching (retaining) the pages themselves.
    let pathBytes: [UInt8]
    let pathEnds: [Int]
    public let badRequest: PreparedResponse
    public let notFound: PreparedResponse
    public let methodNotAllowed: PreparedResponse
    public let requestTimeout: PreparedResponse
    public let lengthRequired: PreparedResponse
    public let contentTooLarge: PreparedResponse
    public let uriTooLong: PreparedResponse
    public let requestHeaderFieldsTooLarge: PreparedResponse
    public let notImplemented: PreparedResponse
    public let httpVersionNotSupported: PreparedResponse
    /// The response for a connection beyond the server's limit (503,
    /// `Connection: close`, `Retry-After: 1`), prebuilt.
    public let serviceUnavailableResponse: [UInt8]

    /// A site serving `routes` (paths compared byte for byte, without the query).
    public init(routes: [SiteRoute]) {
        var pages: [Page] = []
        pages.reserveCapacity(routes.count)
        for route in routes {
            pages.append(Page(path: Array(route.path.utf8), response: PreparedResponse(route.response)))
        }
        self.pages = pages
        var pathBytes: [UInt8] = []
        var pathEnds: [Int] = []
        for page in pages {
            pathBytes += page.path
            pathEnds.append(pathBytes.count)
        }
        self.pathBytes = pathBytes
        self.pathEnds = pathEnds
        badRequest = PreparedResponse(HTTPResponse(status: .badRequest, text: "bad request\n"))
        notFound = PreparedResponse(HTTPResponse(status: .notFound, text: "not found\n"))
        methodNotAllowed = PreparedResponse(
            HTTPResponse(status: .methodNotAllowed, text: "method not allowed\n", fields: [HTTPHeaderField("Allow", "GET, HEAD")]))
        requestTimeout = PreparedResponse(HTTPResponse(status: .requestTimeout, text: "request timeout\n"))
        lengthRequired = PreparedResponse(HTTPResponse(status: .lengthRequired, text: "length required\n"))
        contentTooLarge = PreparedResponse(HTTPResponse(status: .contentTooLarge, text: "content too large\n"))
        uriTooLong = PreparedResponse(HTTPResponse(status: .uriTooLong, text: "URI too long\n"))
        requestHeaderFieldsTooLarge = PreparedResponse(
            HTTPResponse(status: .requestHeaderFieldsTooLarge, text: "request header fields too large\n"))
        notImplemented = PreparedResponse(HTTPResponse(status: .notImplemented, text: "not implemented\n"))
        httpVersionNotSupported = PreparedResponse(
            HTTPResponse(status: .httpVersionNotSupported, text: "HTTP version not supported\n"))
        serviceUnavailableResponse = makeServiceUnavailableResponse()
    }

    /// The standard site: /, /index.html, /big and /health. Each call builds a new one.
    public static func standard() -> Site {
        let index = HTTPResponse(status: .ok, contentType: "text/html; charset=utf-8", body: indexBody())
        return Site(routes: [
            SiteRoute(path: "/", response: index),
            SiteRoute(path: "/index.html", response: index),
            SiteRoute(path: "/big", response: HTTPResponse(status: .ok, contentType: "text/plain; charset=utf-8", body: bigPageBody())),
            SiteRoute(path: "/health", response: HTTPResponse(status: .ok, text: "ok\n")),
        ])
    }

    /// The page at the path in `bytes[start..<end]`, if there is one.
    public func page(_ bytes: [UInt8], from start: Int, to end: Int) -> PreparedResponse? {
        guard let index = bytes.withUnsafeBufferPointer({ pageIndex($0, from: start, to: end) }) else { return nil }
        return pages[index].response
    }

    /// The index in `pages` of the page at the path in `bytes[start..<end]`.
    func pageIndex(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int, to end: Int) -> Int? {
        let count = end - start
        return pathBytes.withUnsafeBufferPointer { paths in
            pathEnds.withUnsafeBufferPointer { ends in
                var pathStart = 0
                for index in 0..<ends.count {
                    let pathEnd = ends[index]
                    if pathEnd - pathStart == count {
                        // count > 0 here means both buffers have bytes.
                        var offset = 0
                        while offset < count && paths[pathStart + offset] == bytes[start + offset] { offset += 1 }
                        if offset == count { return index }
                    }
                    pathStart = pathEnd
                }
                return nil
            }
        }
    }

    /// The status of the page at `index`.
    func pageStatus(_ index: Int) -> HTTPStatus {
        pages.withUnsafeBufferPointer { $0[index].response.status }
    }

    /// The bytes of the page at `index`, as `PreparedResponse.bytes(close:head:)`.
    func pageBytes(_ index: Int, close: Bool, head: Bool) -> [UInt8] {
        pages.withUnsafeBufferPointer { $0[index].response.bytes(close: close, head: head) }
    }

    /// The page at `path`, if there is one.
    public func page(_ path: String) -> PreparedResponse? {
        let bytes = Array(path.utf8)
        return page(bytes, from: 0, to: bytes.count)
    }

    /// The prepared response for an error `status` (404 for a status that has none).
    public func response(for status: HTTPStatus) -> PreparedResponse {
        switch status {
        case .badRequest: return badRequest
        case .methodNotAllowed: return methodNotAllowed
        case .requestTimeout: return requestTimeout
        case .lengthRequired: return lengthRequired
        case .contentTooLarge: return contentTooLarge
        case .uriTooLong: return uriTooLong
        case .requestHeaderFieldsTooLarge: return requestHeaderFieldsTooLarge
        case .notImplemented: return notImplemented
        case .httpVersionNotSupported: return httpVersionNotSupported
        case .ok, .notFound, .serviceUnavailable: return notFound
        }
    }

    // MARK: - The pages' bodies

    /// The body of / and /index.html.
    public static func indexBody() -> [UInt8] {
        Array(
            """
            <!DOCTYPE html>
            <html lang="en">
            <head><meta charset="utf-8"><title>Toro for Swift</title></head>
            <body>
            <h1>Toro for Swift</h1>
            <p>This page comes from a unikernel written in Embedded Swift, running on a
            KVM virtual machine monitor written in Swift.</p>
            <ul>
            <li><a href="/big">/big</a>: 65536 bytes of numbered lines</li>
            <li><a href="/health">/health</a>: ok</li>
            </ul>
            </body>
            </html>

            """.utf8)
    }

    /// The body of /big: 1024 lines of 64 bytes, line N being N in five decimal
    /// digits, a space, 57 letters of the alphabet starting at letter N mod 26,
    /// and LF. Written in place, the letters of each line in one block copy.
    /// (Built once at start-up, so it is on the path of a cold start.)
    public static func bigPageBody() -> [UInt8] {
        let lineLength = 64
        let letters = lineLength - 7
        var alphabet: [UInt8] = []
        for _ in 0..<4 {
            for letter in UInt8(0x61)...UInt8(0x7A) { alphabet.append(letter) }
        }
        return alphabet.withUnsafeBytes { source in
            [UInt8](unsafeUninitializedCapacity: bigPageSize) { buffer, initialized in
                let base = buffer.baseAddress!
                for line in 0..<(bigPageSize / lineLength) {
                    let start = base + line * lineLength
                    // The line number: the previous line's plus one, counted in
                    // ASCII (a division per digit is dear when emulated).
                    if line == 0 {
                        for digit in 0..<5 { start[digit] = ASCII.zero }
                    } else {
                        for digit in 0..<5 { start[digit] = start[digit - lineLength] }
                        var digit = 4
                        while start[digit] == ASCII.zero + 9 {
                            start[digit] = ASCII.zero
                            digit -= 1
                        }
                        start[digit] += 1
                    }
                    start[5] = ASCII.sp
                    UnsafeMutableRawPointer(start + 6).copyMemory(from: source.baseAddress! + line % 26, byteCount: letters)
                    start[lineLength - 1] = ASCII.lf
                }
                initialized = bigPageSize
            }
        }
    }
}
