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
