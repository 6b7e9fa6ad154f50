@testable import WebServerCore
import XCTest

final class HTTPRequestParserTests: XCTestCase {
    func parse(_ text: String) -> HTTPParseResult {
        var parser = HTTPRequestParser()
        return parser.parse(request(text), limits: HTTPLimits())
    }

    func head(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> HTTPRequestHead? {
        guard case .complete(let head, let end) = parse(text) else {
            XCTFail("did not parse", file: file, line: line)
            return nil
        }
        XCTAssertEqual(end, request(text).count, file: file, line: line)
        return head
    }

    func testHeadFields() throws {
        let text = "GET /big?x=1 HTTP/1.1\nHost: toro\nConnection: keep-alive\nContent-Length: 0\n\n"
        let head = try XCTUnwrap(head(text))
        XCTAssertEqual(head.method, .get)
        XCTAssertEqual(head.minorVersion, 1)
        XCTAssertEqual(Array(request(text)[head.pathStart..<head.pathEnd]), Array("/big".utf8))
        XCTAssertEqual(head.hostCount, 1)
        XCTAssertTrue(head.connectionKeepAlive)
        XCTAssertFalse(head.connectionClose)
        XCTAssertEqual(head.contentLength, 0)
        XCTAssertFalse(head.hasTransferEncoding)
        XCTAssertTrue(head.keepAlive)
    }

    func testContentLengthIsReadWithOverflowChecks() {
        func length(_ value: String) -> Int?? {
            let text = "POST / HTTP/1.1\nHost: a\nContent-Length: \(value)\n\n"
            switch parse(text) {
            case .complete(let head, _): return .some(head.contentLength)
            case .failed(let status, _):
                XCTAssertEqual(status, .badRequest, value)
                return .none
            case .needMore:
                XCTFail("incomplete: \(value)")
                return .none
            }
        }
        XCTAssertEqual(length("0"), 0)
        XCTAssertEqual(length("9223372036854775807"), Int.max)
        XCTAssertEqual(length("000000000000000000000000009223372036854775807"), Int.max)
        XCTAssertEqual(length("922337203685477580"), 922_337_203_685_477_580)
        XCTAssertEqual(length("12, 12"), 12)
        for overflowing in ["9223372036854775808", "9223372036854775810", "10000000000000000000", "18446744073709551616",
                            "36893488147419103232", String(repeating: "1", count: 40)] {
            XCTAssertNil(length(overflowing), overflowing)
        }
        // The digit reader itself, at the edges.
        let digits = Array("x9223372036854775807y".utf8)
        digits.withUnsafeBufferPointer { bytes in
            XCTAssertEqual(ASCII.decimal(bytes, from: 1, to: 20)?.value, Int.max)
            XCTAssertEqual(ASCII.decimal(bytes, from: 1, to: 20)?.end, 20)
            XCTAssertEqual(ASCII.decimal(bytes, from: 1, to: 5)?.value, 9223)
            XCTAssertNil(ASCII.decimal(bytes, from: 0, to: 20), "no digit first")
            XCTAssertNil(ASCII.decimal(bytes, from: 20, to: 20), "nothing")
        }
        let over = Array("9223372036854775808".utf8)
        over.withUnsafeBufferPointer { XCTAssertNil(ASCII.decimal($0, from: 0, to: $0.count)) }
    }

    func testMethods() {
        let methods: [(String, HTTPMethod)] = [
            ("GET", .get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
            ("OPTIONS", .options), ("PATCH", .patch), ("CONNECT", .connect), ("TRACE", .trace),
            ("GETS", .unrecognized), ("get", .unrecognized), ("HEA", .unrecognized),
        ]
        for (name, method) in methods {
            XCTAssertEqual(head("\(name) / HTTP/1.1\nHost: a\n\n")?.method, method, name)
        }
    }

    func testHTTP10Head() {
        let head = head("GET / HTTP/1.0\n\n")
        XCTAssertEqual(head?.minorVersion, 0)
        XCTAssertEqual(head?.keepAlive, false)
        XCTAssertEqual(self.head("GET / HTTP/1.0\nConnection: keep-alive\n\n")?.keepAlive, true)
        XCTAssertEqual(self.head("GET / HTTP/1.0\nConnection: keep-alive, close\n\n")?.keepAlive, false)
    }

    func testPathWithoutQuery() {
        for (target, path) in [("/", "/"), ("/a?b", "/a"), ("/?", "/"), ("/a/b/c.txt?x=1&y=2", "/a/b/c.txt")] {
            let text = "GET \(target) HTTP/1.1\nHost: a\n\n"
            guard let head = head(text) else { continue }
            XCTAssertEqual(String(decoding: request(text)[head.pathStart..<head.pathEnd], as: UTF8.self), path)
        }
    }

    func testResumesWhereItStopped() {
        let bytes = request("GET /health HTTP/1.1\nHost: a\nX-Long: abcdefghij\n\nGET /")
        var parser = HTTPRequestParser()
        var fed: [UInt8] = []
        var result = HTTPParseResult.needMore
        for byte in bytes {
            fed.append(byte)
            result = parser.parse(fed, limits: HTTPLimits())
            if case .complete = result { break }
            guard case .needMore = result else { return XCTFail("failed at \(fed.count)") }
        }
        guard case .complete(let head, let end) = result else { return XCTFail("never completed") }
        XCTAssertEqual(end, bytes.count - 5)
        XCTAssertEqual(String(decoding: fed[head.pathStart..<head.pathEnd], as: UTF8.self), "/health")
        // The next request, after dropping the first from the buffer's front.
        parser.reset(at: end)
        fed += [UInt8](bytes[fed.count...])
        XCTAssertEqual(fed.count, bytes.count)
        guard case .needMore = parser.parse(fed, limits: HTTPLimits()) else { return XCTFail("second request") }
        fed.removeFirst(end)
        parser.rebase(droppingFirst: end)
        XCTAssertEqual(parser.requestStart, 0)
        fed += request("big HTTP/1.1\nHost: a\n\n")
        guard case .complete(let second, let secondEnd) = parser.parse(fed, limits: HTTPLimits()) else {
            return XCTFail("second request did not complete")
        }
        XCTAssertEqual(secondEnd, fed.count)
        XCTAssertEqual(String(decoding: fed[second.pathStart..<second.pathEnd], as: UTF8.self), "/big")
    }

    func testFailuresCarryTheMethod() {
        guard case .failed(let status, let method) = parse("HEAD / HTTP/1.1\nBad Field: x\n\n") else {
            return XCTFail("parsed")
        }
        XCTAssertEqual(status, .badRequest)
        XCTAssertEqual(method, .head)
        guard case .failed(let version, _) = parse("GET / HTTP/2.0\n") else { return XCTFail("parsed") }
        XCTAssertEqual(version, .httpVersionNotSupported)
    }
}
