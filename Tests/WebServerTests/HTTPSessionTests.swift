@testable import WebServerCore
import XCTest

final class HTTPSessionTests: XCTestCase {
    static let site = Site.standard()

    func session(_ limits: HTTPLimits = HTTPLimits()) -> HTTPSession {
        HTTPSession(site: Self.site, limits: limits)
    }

    /// Feeds `bytes` to a new session in one call.
    func answer(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits()) -> HTTPOutput {
        var session = session(limits)
        return session.receive(bytes)
    }

    /// Feeds `bytes` one at a time, collecting every response; checks that
    /// nothing comes back after a closing response.
    func answerByteByByte(_ bytes: [UInt8], limits: HTTPLimits = HTTPLimits(),
                          file: StaticString = #filePath, line: UInt = #line) -> HTTPOutput {
        var session = session(limits)
        var total = HTTPOutput()
        for byte in bytes {
            let output = session.receive([byte])
            if total.close {
                XCTAssertTrue(output.responses.isEmpty, "responses after close", file: file, line: line)
                XCTAssertTrue(output.close, file: file, line: line)
            }
            total.responses += output.responses
            total.close = total.close || output.close
        }
        return total
    }

    /// One request that must get one response with `code` and close as told.
    @discardableResult
    func expect(_ bytes: [UInt8], code: Int, close: Bool, head: Bool = false, limits: HTTPLimits = HTTPLimits(),
                file: StaticString = #filePath, line: UInt = #line) -> ReadResponse? {
        let output = answer(bytes, limits: limits)
        XCTAssertEqual(output.responses.count, 1, file: file, line: line)
        XCTAssertEqual(output.close, close, "HTTPOutput.close", file: file, line: line)
        // The same bytes a byte at a time give the same answer.
        let slow = answerByteByByte(bytes, limits: limits, file: file, line: line)
        XCTAssertEqual(slow.responses, output.responses, "byte at a time differs", file: file, line: line)
        XCTAssertEqual(slow.close, output.close, file: file, line: line)
        guard let first = output.responses.first else { return nil }
        return checkResponse(first, code: code, head: head, close: close, file: file, line: line)
    }

    // MARK: - Pages

    func testIndexPage() {
        for path in ["/", "/index.html"] {
            let response = expect(request("GET \(path) HTTP/1.1\nHost: toro\n\n"), code: 200, close: false)
            XCTAssertEqual(response?.body, Site.indexBody())
            XCTAssertEqual(response?.field("Content-Type"), "text/html; charset=utf-8")
            XCTAssertEqual(response?.reason, "OK")
        }
        let body = String(decoding: Site.indexBody(), as: UTF8.self)
        XCTAssertTrue(body.contains("Toro for Swift"))
        XCTAssertTrue((200...1000).contains(Site.indexBody().count), "\(Site.indexBody().count) bytes")
    }

    func testHealthPage() {
        let response = expect(request("GET /health HTTP/1.1\nHost: toro\n\n"), code: 200, close: false)
        XCTAssertEqual(response?.text, "ok\n")
        XCTAssertEqual(response?.field("Content-Type"), "text/plain; charset=utf-8")
    }

    func testBigPage() {
        let response = expect(request("GET /big HTTP/1.1\nHost: toro\n\n"), code: 200, close: false)
        XCTAssertEqual(response?.body.count, 65536)
        XCTAssertEqual(response?.contentLength, Site.bigPageSize)
        XCTAssertEqual(response?.body, Site.bigPageBody())
    }

    func testBigPageIsDeterministicNumberedLines() {
        let body = Site.bigPageBody()
        XCTAssertEqual(body.count, Site.bigPageSize)
        XCTAssertEqual(body, Site.bigPageBody())
        XCTAssertEqual(body, Site.standard().page("/big").map { readBody($0) })
        let lines = body.split(separator: 10, omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 1025)  // 1024 lines, each ending in LF
        XCTAssertEqual(lines.last?.count, 0)
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz".utf8)
        for (number, line) in lines.dropLast().enumerated() {
            XCTAssertEqual(line.count, 63)
            let text = String(decoding: line, as: UTF8.self)
            XCTAssertEqual(Int(text.prefix(5)), number)
            XCTAssertEqual(line[line.startIndex + 5], 32)
            for (offset, letter) in line.dropFirst(6).enumerated() {
                XCTAssertEqual(letter, alphabet[(number + offset) % 26])
            }
        }
        XCTAssertEqual(String(decoding: lines[0], as: UTF8.self), "00000 abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcde")
    }

    func readBody(_ response: PreparedResponse) -> [UInt8] {
        ReadResponse.parse(response.bytes(close: false, head: false))?.body ?? []
    }

    func testHeadHasHeadersButNoBody() {
        for (path, code, length) in [("/", 200, Site.indexBody().count), ("/big", 200, 65536),
                                     ("/health", 200, 3), ("/missing", 404, 10)] {
            let response = expect(request("HEAD \(path) HTTP/1.1\nHost: toro\n\n"), code: code, close: false, head: true)
            XCTAssertEqual(response?.contentLength, length, path)
            XCTAssertEqual(response?.body.count, 0, path)
            let get = ReadResponse.parse(answer(request("GET \(path) HTTP/1.1\nHost: toro\n\n")).responses[0])
            XCTAssertEqual(get?.fields.map { $0.name }, response?.fields.map { $0.name })
            XCTAssertEqual(get?.contentLength, response?.contentLength)
        }
    }

    func testQueryStringIsNotPartOfThePath() {
        XCTAssertEqual(expect(request("GET /big?x=1 HTTP/1.1\nHost: toro\n\n"), code: 200, close: false)?.body.count, 65536)
        XCTAssertEqual(expect(request("GET /health? HTTP/1.1\nHost: toro\n\n"), code: 200, close: false)?.text, "ok\n")
        XCTAssertEqual(expect(request("GET /?a=b?c HTTP/1.1\nHost: toro\n\n"), code: 200, close: false)?.body,
                       Site.indexBody())
        expect(request("GET /nothing?big HTTP/1.1\nHost: toro\n\n"), code: 404, close: false)
        // Only the query is dropped: other near misses are not found.
        for path in ["/big/", "/BIG", "/bi", "/bigg", "//", "/%62ig", "/index.htm"] {
            expect(request("GET \(path) HTTP/1.1\nHost: toro\n\n"), code: 404, close: false)
        }
    }

    func testNotFoundKeepsTheConnection() {
        var session = session()
        let missing = session.receive(request("GET /nowhere HTTP/1.1\nHost: toro\n\n"))
        XCTAssertFalse(missing.close)
        let response = checkResponse(missing.responses[0], code: 404, close: false)
        XCTAssertEqual(response?.text, "not found\n")
        XCTAssertEqual(response?.reason, "Not Found")
        let next = session.receive(request("GET /health HTTP/1.1\nHost: toro\n\n"))
        checkResponse(next.responses[0], code: 200, close: false)
    }

    // MARK: - Persistence

    func testHTTP11IsPersistentUntilConnectionClose() {
        var session = session()
        for _ in 0..<3 {
            let output = session.receive(request("GET /health HTTP/1.1\nHost: toro\n\n"))
            XCTAssertFalse(output.close)
            checkResponse(output.responses[0], code: 200, close: false)
        }
        let last = session.receive(request("GET /health HTTP/1.1\nHost: toro\nConnection: close\n\n"))
        XCTAssertTrue(last.close)
        checkResponse(last.responses[0], code: 200, close: true)
        XCTAssertTrue(session.closed)
        // Anything after is ignored.
        let after = session.receive(request("GET /health HTTP/1.1\nHost: toro\n\n"))
        XCTAssertTrue(after.responses.isEmpty)
        XCTAssertTrue(after.close)
        XCTAssertEqual(session.answered, 4)
    }

    func testConnectionTokensAnyCaseInAList() {
        expect(request("GET / HTTP/1.1\nHost: toro\nConnection: Keep-Alive, CLOSE\n\n"), code: 200, close: true)
        expect(request("GET / HTTP/1.1\nHost: toro\nconnection:upgrade,close \n\n"), code: 200, close: true)
        expect(request("GET / HTTP/1.1\nHost: toro\nConnection: closed\n\n"), code: 200, close: false)
        expect(request("GET / HTTP/1.1\nHost: toro\nX-Connection: close\n\n"), code: 200, close: false)
        expect(request("GET / HTTP/1.1\nHost: toro\nConnection: keep-alive\n\n"), code: 200, close: false)
    }

    func testHTTP10ClosesUnlessKeepAlive() {
        // HTTP/1.0 needs no Host.
        expect(request("GET /health HTTP/1.0\n\n"), code: 200, close: true)
        expect(request("GET /health HTTP/1.0\nHost: toro\n\n"), code: 200, close: true)
        var session = session()
        let kept = session.receive(request("GET /health HTTP/1.0\nConnection: keep-alive\n\n"))
        XCTAssertFalse(kept.close)
        checkResponse(kept.responses[0], code: 200, close: false)
        let again = session.receive(request("GET / HTTP/1.0\nConnection: Keep-Alive\n\n"))
        checkResponse(again.responses[0], code: 200, close: false)
        let closed = session.receive(request("GET / HTTP/1.0\n\n"))
        XCTAssertTrue(closed.close)
        checkResponse(closed.responses[0], code: 200, close: true)
    }

    // MARK: - Splitting and pipelining

    let pipeline = request("GET / HTTP/1.1\nHost: toro\n\nHEAD /big HTTP/1.1\nHost: toro\n\nGET /health?q HTTP/1.1\nHost: toro\nUser-Agent: test\n\n")

    func checkPipeline(_ output: HTTPOutput, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(output.responses.count, 3, file: file, line: line)
        XCTAssertFalse(output.close, file: file, line: line)
        guard output.responses.count == 3 else { return }
        XCTAssertEqual(checkResponse(output.responses[0], code: 200, close: false, file: file, line: line)?.body,
                       Site.indexBody(), file: file, line: line)
        XCTAssertEqual(checkResponse(output.responses[1], code: 200, head: true, close: false, file: file, line: line)?
            .contentLength, 65536, file: file, line: line)
        XCTAssertEqual(checkResponse(output.responses[2], code: 200, close: false, file: file, line: line)?.text,
                       "ok\n", file: file, line: line)
    }

    func testThreePipelinedRequestsInOneBuffer() {
        var session = session()
        checkPipeline(session.receive(pipeline))
        XCTAssertEqual(session.answered, 3)
        XCTAssertTrue(session.buffer.isEmpty)
        // And the session goes on.
        checkResponse(session.receive(request("GET /health HTTP/1.1\nHost: toro\n\n")).responses[0], code: 200)
    }

    func testByteAtATime() {
        var session = session()
        var output = HTTPOutput()
        for (index, byte) in pipeline.enumerated() {
            let step = session.receive([byte])
            // A response comes exactly with the last byte of each request.
            let ends = [request("GET / HTTP/1.1\nHost: toro\n\n").count - 1,
                        request("GET / HTTP/1.1\nHost: toro\n\nHEAD /big HTTP/1.1\nHost: toro\n\n").count - 1,
                        pipeline.count - 1]
            XCTAssertEqual(step.responses.count, ends.contains(index) ? 1 : 0, "at byte \(index)")
            output.responses += step.responses
        }
        checkPipeline(output)
    }

    func testEverySplitIntoTwoOrThreeParts() {
        for first in 0...pipeline.count {
            var session = session()
            var output = session.receive(Array(pipeline[..<first]))
            output.responses += session.receive(Array(pipeline[first...])).responses
            checkPipeline(output)
        }
        for first in stride(from: 0, through: pipeline.count, by: 7) {
            for second in first...pipeline.count {
                var session = session()
                var output = session.receive(Array(pipeline[..<first]))
                output.responses += session.receive(Array(pipeline[first..<second])).responses
                output.responses += session.receive(Array(pipeline[second...])).responses
                checkPipeline(output)
            }
        }
    }

    func testPipelineStopsAtAClosingResponse() {
        let bytes = request("GET / HTTP/1.1\nHost: a\n\nGET /health HTTP/1.1\nHost: a\nConnection: close\n\nGET /big HTTP/1.1\nHost: a\n\n")
        let output = answer(bytes)
        XCTAssertEqual(output.responses.count, 2)
        XCTAssertTrue(output.close)
        checkResponse(output.responses[0], code: 200, close: false)
        checkResponse(output.responses[1], code: 200, close: true)
        XCTAssertEqual(answerByteByByte(bytes).responses, output.responses)
        // An error closes too: nothing after the malformed request is answered.
        let bad = answer(request("GET / HTTP/1.1\nHost: a\n\nGET / HTTP/9\n\nGET / HTTP/1.1\nHost: a\n\n"))
        XCTAssertEqual(bad.responses.count, 2)
        checkResponse(bad.responses[1], code: 400, close: true)
    }

    func testEmptyLinesBeforeARequestAreSkipped() {
        expect(request("\n\nGET /health HTTP/1.1\nHost: toro\n\n"), code: 200, close: false)
        let output = answer(request("GET / HTTP/1.1\nHost: a\n\n\nGET /health HTTP/1.1\nHost: a\n\n"))
        XCTAssertEqual(output.responses.count, 2)
        expect(request("\nGET / HTTP/1.1\nHost: a\n\n", raw: true), code: 400, close: true)
    }

    func testEmptyReceiveDoesNothing() {
        var session = session()
        let output = session.receive([])
        XCTAssertTrue(output.responses.isEmpty)
        XCTAssertFalse(output.close)
        XCTAssertEqual(session.receive(request("GET /health HTTP/1.1\nHost: a\n")).responses.count, 0)
        XCTAssertEqual(session.receive([]).responses.count, 0)
        XCTAssertEqual(session.receive(request("\n")).responses.count, 1)
    }

    // MARK: - Methods and bodies

    func testOtherMethodsAreNotAllowed() {
        for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"] {
            let response = expect(request("\(method) / HTTP/1.1\nHost: toro\n\n"), code: 405, close: false)
            XCTAssertEqual(response?.field("Allow"), "GET, HEAD", method)
            XCTAssertEqual(response?.reason, "Method Not Allowed")
        }
        expect(request("OPTIONS * HTTP/1.1\nHost: toro\n\n"), code: 405, close: false)
        expect(request("POST /big HTTP/1.0\n\n"), code: 405, close: true)
    }

    func testUnknownMethodsAreNotImplemented() {
        for method in ["FETCH", "get", "Head", "BREW", "X"] {
            let response = expect(request("\(method) / HTTP/1.1\nHost: toro\n\n"), code: 501, close: false)
            XCTAssertEqual(response?.reason, "Not Implemented", method)
        }
    }

    func testBodyOfAnUnservedMethodClosesTheConnection() {
        let bytes = request("POST /form HTTP/1.1\nHost: toro\nContent-Length: 5\n\nhelloGET / HTTP/1.1\nHost: toro\n\n")
        let output = answer(bytes)
        XCTAssertEqual(output.responses.count, 1)
        XCTAssertTrue(output.close)
        checkResponse(output.responses[0], code: 405, close: true)
        // A zero-length body is no body.
        expect(request("POST / HTTP/1.1\nHost: toro\nContent-Length: 0\n\n"), code: 405, close: false)
    }

    func testGetWithABodyIsTooLarge() {
        let response = expect(request("GET / HTTP/1.1\nHost: toro\nContent-Length: 1\n\nx"), code: 413, close: true)
        XCTAssertEqual(response?.reason, "Content Too Large")
        expect(request("GET / HTTP/1.1\nHost: toro\nContent-Length: 0\n\n"), code: 200, close: false)
        expect(request("HEAD / HTTP/1.1\nHost: toro\nContent-Length: 3\n\n"), code: 413, close: true, head: true)
    }

    /// Content-Length is read with overflow checks (RFC 9112 §6.3): up to
    /// Int.max it is a length (too long a body to read here, so 413 for GET and
    /// 405 for POST, both closing); one more, or any invalid form, is a 400 and
    /// a close. None of these may trap (the guest would stop).
    func testContentLengthBoundaries() {
        let valid = [
            "9223372036854775807",  // 2^63 - 1
            "1234567890123456789",  // 19 digits, within Int
            "0009223372036854775807",  // leading zeros: the value decides
        ]
        for value in valid {
            expect(request("GET / HTTP/1.1\nHost: a\nContent-Length: \(value)\n\n"), code: 413, close: true)
            expect(request("POST / HTTP/1.1\nHost: a\nContent-Length: \(value)\n\n"), code: 405, close: true)
        }
        let invalid = [
            "9223372036854775808",  // 2^63
            "9999999999999999999",  // 19 digits, above Int.max
            "18446744073709551615",  // 2^64 - 1
            "18446744073709551616",  // 2^64
            "100000000000000000000",  // 21 digits
            String(repeating: "9", count: 100),
            "-1", "-0", "+5", "+0", "0x10", "5;", "5 5", "1\t0", "5, 6", "5,", ",5", "5,,5", "",
            "9223372036854775807, 9223372036854775808",  // the first fits, the second does not
        ]
        for value in invalid {
            for method in ["GET", "POST", "HEAD"] {
                expect(request("\(method) / HTTP/1.1\nHost: a\nContent-Length: \(value)\n\n"), code: 400, close: true,
                       head: method == "HEAD")
            }
        }
        // Two fields that disagree, even when one of them overflows.
        expect(request("POST / HTTP/1.1\nHost: a\nContent-Length: 3\nContent-Length: 4\n\n"), code: 400, close: true)
        expect(request("POST / HTTP/1.1\nHost: a\nContent-Length: 3\nContent-Length: 18446744073709551616\n\n"),
               code: 400, close: true)
        // Whitespace around a value or a list element is OWS, and equal values are one length.
        var limits = HTTPLimits()
        limits.maximumBodyBytes = 16
        for value in ["5", " \t5\t ", "5,5", "5 , 5", "005", "5, 0005"] {
            let bytes = request("POST / HTTP/1.1\nHost: a\nContent-Length: \(value)\n\nhello")
                + request("GET /health HTTP/1.1\nHost: a\n\n")
            let output = answer(bytes, limits: limits)
            XCTAssertEqual(output.responses.count, 2, value)
            XCTAssertFalse(output.close, value)
            if output.responses.count == 2 {
                checkResponse(output.responses[0], code: 405, close: false)
                checkResponse(output.responses[1], code: 200, close: false)
            }
        }
    }

    func testBodiesWithinTheLimitAreSkipped() {
        var limits = HTTPLimits()
        limits.maximumBodyBytes = 16
        let bytes = request("GET /health HTTP/1.1\nHost: a\nContent-Length: 16\n\n0123456789abcdef")
            + request("POST / HTTP/1.1\nHost: a\nContent-Length: 4\n\nGET ")
            + request("GET /big HTTP/1.1\nHost: a\n\n")
        var whole = session(limits)
        let output = whole.receive(bytes)
        XCTAssertEqual(output.responses.count, 3)
        XCTAssertFalse(output.close)
        checkResponse(output.responses[0], code: 200, close: false)
        checkResponse(output.responses[1], code: 405, close: false)
        checkResponse(output.responses[2], code: 200, close: false)
        XCTAssertEqual(answerByteByByte(bytes, limits: limits).responses, output.responses)
        for split in 0...bytes.count {
            var session = session(limits)
            var parts = session.receive(Array(bytes[..<split])).responses
            parts += session.receive(Array(bytes[split...])).responses
            XCTAssertEqual(parts, output.responses, "split at \(split)")
        }
        // One byte beyond the limit is not read.
        expect(request("GET / HTTP/1.1\nHost: a\nContent-Length: 17\n\n"), code: 413, close: true, limits: limits)
    }

    /// RFC 9112 §6.1 and §6.3: the server decodes no transfer coding, and
    /// every request with Transfer-Encoding closes the connection after its
    /// answer. Plain chunked (any case, any list form) is a body without a
    /// Content-Length: 411. Another coding before the final chunked is one
    /// the server does not implement: 501. Chunked not last (or absent), named
    /// twice, in HTTP/1.0, or a coding that is not a token: the body's length
    /// cannot be known, 400.
    func testTransferEncoding() {
        for value in ["chunked", "Chunked", "CHUNKED", " chunked ", ",chunked", "chunked,", ", ,chunked , ",
                      "chunked;foo=bar", "chunked ; a=\"x,y\""] {
            for method in ["GET", "POST", "PUT", "BREW"] {
                expect(request("\(method) / HTTP/1.1\nHost: toro\nTransfer-Encoding: \(value)\n\n0\n\n"), code: 411,
                       close: true)
            }
        }
        expect(request("POST / HTTP/1.1\nHost: toro\nTransfer-Encoding: chunked\n\n5\nhello\n0\n\n"), code: 411, close: true)
        // With a Content-Length too: Transfer-Encoding decides, and the connection closes.
        expect(request("POST / HTTP/1.1\nHost: toro\nContent-Length: 5\nTransfer-Encoding: chunked\n\nhello"), code: 411,
               close: true)
        expect(request("GET / HTTP/1.1\nHost: toro\nContent-Length: 0\nTransfer-Encoding: chunked\n\n"), code: 411, close: true)
        for value in ["gzip, chunked", "x-custom;q=1, chunked", "deflate,chunked"] {
            expect(request("GET / HTTP/1.1\nHost: toro\ntransfer-encoding: \(value)\n\n"), code: 501, close: true)
        }
        // Two fields make one list.
        expect(request("POST / HTTP/1.1\nHost: toro\nTransfer-Encoding: gzip\nTransfer-Encoding: chunked\n\n"), code: 501,
               close: true)
        expect(request("POST / HTTP/1.1\nHost: toro\nTransfer-Encoding: chunked\nTransfer-Encoding: gzip\n\n"), code: 400,
               close: true)
        for value in ["gzip", "chunked, gzip", "chunked, chunked", "chunked,chunked", "", " ", ",", "identity",
                      "chunked gzip", "\"chunked\"", "chunked;x=\"open", "chunked;x=\"a\\", "chunked/1", "chunked=1",
                      "chunke", "chunkedd", "@chunked"] {
            expect(request("POST / HTTP/1.1\nHost: toro\nTransfer-Encoding: \(value)\n\n"), code: 400, close: true)
        }
        // HTTP/1.0 has no transfer codings: its framing is faulty (§6.1).
        expect(request("POST / HTTP/1.0\nTransfer-Encoding: chunked\n\n"), code: 400, close: true)
        expect(request("GET / HTTP/1.0\nConnection: keep-alive\nTransfer-Encoding: chunked\n\n"), code: 400, close: true)
        // A HEAD's answer has no body.
        expect(request("HEAD / HTTP/1.1\nHost: toro\nTransfer-Encoding: chunked\n\n"), code: 411, close: true, head: true)
        // Nothing after it is read, even a well-formed pipelined request.
        let output = answer(request("POST / HTTP/1.1\nHost: toro\nTransfer-Encoding: chunked\n\n0\n\nGET / HTTP/1.1\nHost: a\n\n"))
        XCTAssertEqual(output.responses.count, 1)
        XCTAssertTrue(output.close)
    }

    // MARK: - Limits

    /// A GET whose head is exactly `size` bytes (padded with an X-Pad field).
    func head(ofSize size: Int) -> [UInt8] {
        let bare = request("GET /health HTTP/1.1\nHost: toro\nX-Pad: \n\n")
        precondition(size >= bare.count)
        return request("GET /health HTTP/1.1\nHost: toro\nX-Pad: \(String(repeating: "p", count: size - bare.count))\n\n")
    }

    func testHeadExactlyAtTheLimitIsServed() {
        let bytes = head(ofSize: 8192)
        XCTAssertEqual(bytes.count, 8192)
        expect(bytes, code: 200, close: false)
        var limits = HTTPLimits()
        limits.maximumHeaderBytes = 100
        expect(head(ofSize: 100), code: 200, close: false, limits: limits)
        // With a pipelined request behind it, in the same buffer.
        let output = answer(head(ofSize: 100) + head(ofSize: 100), limits: limits)
        XCTAssertEqual(output.responses.count, 2)
    }

    func testHeadOneByteOverTheLimitIs431() {
        let bytes = head(ofSize: 8193)
        let response = expect(bytes, code: 431, close: true)
        XCTAssertEqual(response?.text, "request header fields too large\n")
        XCTAssertEqual(response?.reason, "Request Header Fields Too Large")
        var limits = HTTPLimits()
        limits.maximumHeaderBytes = 100
        expect(head(ofSize: 101), code: 431, close: true, limits: limits)
        // A HEAD gets its 431 without a body.
        expect(request("HEAD / HTTP/1.1\nHost: toro\nX-Pad: \(String(repeating: "p", count: 200))\n\n"),
               code: 431, close: true, head: true, limits: limits)
        // Many small fields count like one large one.
        let many = String(repeating: "X-A: b\n", count: 1200)
        expect(request("GET / HTTP/1.1\nHost: toro\n\(many)\n"), code: 431, close: true)
        // 1000 tiny fields within the limit are served: the server keeps none of them.
        let tiny = String(repeating: "a:b\n", count: 1000)
        expect(request("GET / HTTP/1.1\nHost: toro\n\(tiny)\n"), code: 200, close: false)
    }

    /// Where the head passes the limit decides the answer: 414 in the
    /// request-target (RFC 9112 §3), 431 in the fields, 501 in the method
    /// (longer than any method the server implements), 400 in leading empty
    /// lines or in the version.
    func testOverflowStatusDependsOnWhereTheHeadOverflows() {
        let longTarget = "/" + String(repeating: "u", count: 65536)
        let response = expect(request("GET \(longTarget) HTTP/1.1\nHost: toro\n\n"), code: 414, close: true)
        XCTAssertEqual(response?.reason, "URI Too Long")
        XCTAssertEqual(response?.text, "URI too long\n")
        expect(request("HEAD \(longTarget) HTTP/1.1\nHost: toro\n\n"), code: 414, close: true, head: true)
        expect(request("GET /?\(String(repeating: "q", count: 9000)) HTTP/1.1\nHost: toro\n\n"), code: 414, close: true)
        // A target that fits, with fields that do not: 431.
        expect(request("GET /\(String(repeating: "u", count: 8000)) HTTP/1.1\nHost: toro\nX: \(String(repeating: "v", count: 300))\n\n"),
               code: 431, close: true)
        expect(request("\(String(repeating: "M", count: 9000)) / HTTP/1.1\nHost: toro\n\n"), code: 501, close: true)
        expect(request(String(repeating: "\n", count: 5000) + "GET / HTTP/1.1\nHost: toro\n\n"), code: 400, close: true)
        expect(request("GET / HTTP/1.1\(String(repeating: "1", count: 9000))\nHost: toro\n\n"), code: 400, close: true)
        var limits = HTTPLimits()
        limits.maximumHeaderBytes = 20
        expect(request("GET /0123456789012345 HTTP/1.1\nHost: a\n\n"), code: 414, close: true, limits: limits)
        expect(request("GET /0123 HTTP/1.1\nHost: a\n\n"), code: 431, close: true, limits: limits)
        expect(request("GET /012345 HTTP/1.1\nHost: a\n\n"), code: 400, close: true, limits: limits)  // in the version
    }

    func testOversizedHeadIsRefusedAsSoonAsItPassesTheLimit() {
        var limits = HTTPLimits()
        limits.maximumHeaderBytes = 64
        // A head that never ends: the 431 comes with byte 65, not later.
        var session = session(limits)
        let line = request("GET / HTTP/1.1\nX-Long: ")
        var sent = session.receive(line).responses.count
        var count = line.count
        while sent == 0 && count < 1000 {
            sent += session.receive([UInt8(ascii: "a")]).responses.count
            count += 1
        }
        XCTAssertEqual(count, 65)
        XCTAssertTrue(session.closed)
        // And in one buffer far beyond the limit.
        expect(request("GET / HTTP/1.1\nX: \(String(repeating: "a", count: 10000))"), code: 431, close: true,
               limits: limits)
    }

    func testLimitCountsEachPipelinedRequestOnItsOwn() {
        var limits = HTTPLimits()
        limits.maximumHeaderBytes = 100
        var session = session(limits)
        var bytes: [UInt8] = []
        for _ in 0..<10 { bytes += head(ofSize: 100) }
        XCTAssertEqual(session.receive(bytes).responses.count, 10)
        for _ in 0..<10 {
            let output = session.receive(head(ofSize: 100))
            XCTAssertEqual(output.responses.count, 1)
        }
        XCTAssertFalse(session.closed)
    }

    // MARK: - Malformed requests

    func testMalformedRequestsAre400() {
        let malformed: [(String, String)] = [
            ("no version", "GET /\n\n"),
            ("no target", "GET HTTP/1.1\nHost: a\n\n"),
            ("two spaces", "GET  / HTTP/1.1\nHost: a\n\n"),
            ("space after version", "GET / HTTP/1.1 \nHost: a\n\n"),
            ("tab separator", "GET\t/ HTTP/1.1\nHost: a\n\n"),
            ("space first", " GET / HTTP/1.1\nHost: a\n\n"),
            ("absolute form", "GET http://toro/ HTTP/1.1\nHost: a\n\n"),
            ("authority form", "CONNECT toro:80 HTTP/1.1\nHost: a\n\n"),
            ("asterisk for GET", "GET * HTTP/1.1\nHost: a\n\n"),
            ("asterisk with more", "OPTIONS *x HTTP/1.1\nHost: a\n\n"),
            ("lower-case version", "GET / http/1.1\nHost: a\n\n"),
            ("short version", "GET / HTTP/1\nHost: a\n\n"),
            ("long version", "GET / HTTP/1.10\nHost: a\n\n"),
            ("letter version", "GET / HTTP/1.x\nHost: a\n\n"),
            ("not HTTP", "GET / HTXP/1.1\nHost: a\n\n"),
            ("missing Host", "GET / HTTP/1.1\n\n"),
            ("two Hosts", "GET / HTTP/1.1\nHost: a\nhost: a\n\n"),
            ("no colon", "GET / HTTP/1.1\nHost: a\nAccept text/html\n\n"),
            ("space before colon", "GET / HTTP/1.1\nHost : a\n\n"),
            ("tab before colon", "GET / HTTP/1.1\nHost\t: a\n\n"),
            ("empty name", "GET / HTTP/1.1\nHost: a\n: x\n\n"),
            ("bad name byte", "GET / HTTP/1.1\nHost: a\nX(y): z\n\n"),
            ("obs-fold", "GET / HTTP/1.1\nHost: a\nX-Long: one\n two\n\n"),
            ("obs-fold tab", "GET / HTTP/1.1\nHost: a\nX-Long: one\n\ttwo\n\n"),
            ("whitespace before first field", "GET / HTTP/1.1\n Host: a\n\n"),
            ("control byte in value", "GET / HTTP/1.1\nHost: a\nX: a\u{01}b\n\n"),
            ("DEL in value", "GET / HTTP/1.1\nHost: a\nX: a\u{7F}\n\n"),
            ("NUL in target", "GET /a\u{00} HTTP/1.1\nHost: a\n\n"),
            ("DEL in target", "GET /\u{7F} HTTP/1.1\nHost: a\n\n"),
            ("non-ASCII in target", "GET /é HTTP/1.1\nHost: a\n\n"),
            ("Content-Length letters", "GET / HTTP/1.1\nHost: a\nContent-Length: abc\n\n"),
            ("Content-Length signed", "GET / HTTP/1.1\nHost: a\nContent-Length: +0\n\n"),
            ("Content-Length empty", "GET / HTTP/1.1\nHost: a\nContent-Length:\n\n"),
            ("Content-Length 2^63", "GET / HTTP/1.1\nHost: a\nContent-Length: 9223372036854775808\n\n"),
            ("Content-Length list differs", "GET / HTTP/1.1\nHost: a\nContent-Length: 0, 1\n\n"),
            ("Content-Length fields differ", "GET / HTTP/1.1\nHost: a\nContent-Length: 0\nContent-length: 2\n\n"),
            ("Content-Length inner space", "GET / HTTP/1.1\nHost: a\nContent-Length: 1 0\n\n"),
        ]
        for (name, text) in malformed {
            let response = expect(request(text), code: 400, close: true)
            XCTAssertEqual(response?.reason, "Bad Request", name)
            XCTAssertEqual(response?.text, "bad request\n", name)
        }
    }

    func testBareLineEndingsAre400() {
        let malformed = [
            "GET / HTTP/1.1\nHost: a\n\n",  // LF only
            "GET / HTTP/1.1\r\nHost: a\n\r\n",  // a field ending in LF
            "GET / HTTP/1.1\r\nHost: a\r\n\n",  // the empty line as LF
            "GET / HTTP/1.1\rHost: a\r\n\r\n",  // CR only
            "GET / HTTP/1.1\r\nHost: a\r\r\n\r\n",  // CR CR LF
            "GET / HTTP/1.1\r\nHost: a\r\n\rX",  // CR then not LF in the empty line
            "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n",  // CR in the target
        ]
        for text in malformed {
            expect(request(text, raw: true), code: 400, close: true)
        }
    }

    func testOtherVersionsAre505() {
        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
            let response = expect(request("GET / \(version)\nHost: a\n\n"), code: 505, close: true)
            XCTAssertEqual(response?.reason, "HTTP Version Not Supported", version)
        }
    }

    func testAcceptedFieldForms() {
        // No space after the colon, trailing whitespace, repeated equal lengths, any case.
        expect(request("GET / HTTP/1.1\nhOsT:toro\n\n"), code: 200, close: false)
        expect(request("GET / HTTP/1.1\nHost: toro \t\n\n"), code: 200, close: false)
        expect(request("GET / HTTP/1.1\nHost:\n\n"), code: 200, close: false)
        expect(request("GET / HTTP/1.1\nHost: a\nCONTENT-LENGTH: 0, 0\ncontent-length:0\n\n"), code: 200, close: false)
        expect(request("GET / HTTP/1.1\nHost: a\nX-Empty:\nX-Odd: caf\u{E9} \"quoted\" (c) {}\n\n"), code: 200, close: false)
        expect(request("GET / HTTP/1.1\nHost: a\nX-!#$%&'*+-.^_`|~: token bytes\n\n"), code: 200, close: false)
        // Near misses of the fields the server reads are just other fields.
        expect(request("GET / HTTP/1.1\nHost: a\nHosts: b\nContent-Lengths: x\nTransfer-Encodings: y\n\n"), code: 200, close: false)
    }

    func testHeadGetsErrorsWithoutBodies() {
        // The method was read before the error: a HEAD's 400 has no body.
        let response = expect(request("HEAD / HTTP/1.1\n\n"), code: 400, close: true, head: true)
        XCTAssertEqual(response?.contentLength, 12)
        expect(request("HEAD / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n"), code: 411, close: true, head: true)
        expect(request("HEAD / HTTP/2.0\n\n"), code: 505, close: true, head: true)
    }

    // MARK: - Counting and refusing

    func testAnsweredCountsByStatus() {
        var session = session()
        _ = session.receive(request("GET / HTTP/1.1\nHost: a\n\nGET /x HTTP/1.1\nHost: a\n\nPOST / HTTP/1.1\nHost: a\n\n"))
        _ = session.receive(request("BREW / HTTP/1.1\nHost: a\n\nHEAD /big HTTP/1.1\nHost: a\n\n"))
        _ = session.receive(request("GET / HTTP/1.1\n\n"))
        XCTAssertEqual(session.answered, 6)
        XCTAssertEqual(session.statusCounts.ok, 2)
        XCTAssertEqual(session.statusCounts[.notFound], 1)
        XCTAssertEqual(session.statusCounts[.methodNotAllowed], 1)
        XCTAssertEqual(session.statusCounts[.notImplemented], 1)
        XCTAssertEqual(session.statusCounts[.badRequest], 1)
        XCTAssertEqual(session.statusCounts.total, 6)
        var totals = HTTPStatusCounts()
        totals.add(session.statusCounts)
        totals.add(session.statusCounts)
        XCTAssertEqual(totals.total, 12)
        XCTAssertEqual(totals[.ok], 4)
    }

    func testServiceUnavailable() {
        let bytes = Self.site.serviceUnavailableResponse
        let response = checkResponse(bytes, code: 503, close: true)
        XCTAssertEqual(response?.reason, "Service Unavailable")
        XCTAssertEqual(response?.field("Retry-After"), "1")
        XCTAssertEqual(response?.text, "service unavailable\n")
    }

    func testEveryStatusHasAResponse() {
        for status in HTTPStatus.all where status != .ok && status != .serviceUnavailable {
            let prepared = Self.site.response(for: status)
            if status != .notFound { XCTAssertEqual(prepared.status, status) }
            for close in [false, true] {
                for head in [false, true] {
                    let response = checkResponse(prepared.bytes(close: close, head: head), code: prepared.status.code,
                                                 head: head, close: close)
                    XCTAssertEqual(response?.reason, prepared.status.reason)
                    XCTAssertEqual(response?.contentLength, prepared.bodyCount)
                }
            }
        }
    }

    func testResponsesAreTheSamePrebuiltBytes() {
        // Keep-alive and close forms differ only in Connection.
        let page = Self.site.page("/big")!
        let kept = ReadResponse.parse(page.bytes(close: false, head: false))!
        let closed = ReadResponse.parse(page.bytes(close: true, head: false))!
        XCTAssertEqual(kept.body, closed.body)
        XCTAssertEqual(kept.fields.filter { $0.name != "Connection" }.map { "\($0.name): \($0.value)" },
                       closed.fields.filter { $0.name != "Connection" }.map { "\($0.name): \($0.value)" })
        // Every request for it gets those bytes, shared rather than rebuilt.
        let first = answer(request("GET /big HTTP/1.1\nHost: a\n\n")).responses[0]
        first.withUnsafeBufferPointer { a in
            page.bytes(close: false, head: false).withUnsafeBufferPointer { b in
                XCTAssertEqual(a.baseAddress, b.baseAddress)
            }
        }
    }
}
