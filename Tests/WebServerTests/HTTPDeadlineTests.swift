@testable import WebServerCore
import XCTest

/// How long a connection waits for its client (`HTTPDeadline`), and what it
/// answers when the time runs out (`HTTPSession.timeOut()`): the server's
/// defence against a head that never ends (slowloris).
final class HTTPDeadlineTests: XCTestCase {
    static let site = Site.standard()
    let second: UInt64 = 1_000_000_000

    func testIdleConnectionWaitsTheLimitFromItsLastAnswer() {
        var deadline = HTTPDeadline(now: 100, limit: 5 * second)
        XCTAssertEqual(deadline.deadline, 100 + 5 * second)
        XCTAssertEqual(deadline.remaining(now: 100), 5 * second)
        XCTAssertEqual(deadline.remaining(now: 100 + 5 * second), 0)
        XCTAssertEqual(deadline.remaining(now: .max), 0)
        // A whole request answered at 3 s: idle again, from then.
        deadline.update(now: 3 * second, answered: 1, midRequest: false)
        XCTAssertEqual(deadline.deadline, 8 * second)
    }

    func testATrickledHeadCannotRenewTheDeadline() {
        var deadline = HTTPDeadline(now: 0, limit: 2 * second)
        // The first bytes of a request at 1 s: it has 2 s from then.
        deadline.update(now: 1 * second, answered: 0, midRequest: true)
        XCTAssertEqual(deadline.deadline, 3 * second)
        // More bytes of the same head, none completing it: no more time.
        for tenth in 11..<30 {
            deadline.update(now: UInt64(tenth) * second / 10, answered: 0, midRequest: true)
            XCTAssertEqual(deadline.deadline, 3 * second)
        }
        XCTAssertEqual(deadline.remaining(now: 3 * second), 0)
    }

    func testAnsweringARequestStartsTheCountAgain() {
        var deadline = HTTPDeadline(now: 0, limit: 2 * second)
        deadline.update(now: 1 * second, answered: 0, midRequest: true)
        // The head completes at 2.5 s with the start of the next one behind it.
        deadline.update(now: 5 * second / 2, answered: 1, midRequest: true)
        XCTAssertEqual(deadline.deadline, 9 * second / 2)
        // A request completed and nothing pending.
        deadline.update(now: 4 * second, answered: 1, midRequest: false)
        XCTAssertEqual(deadline.deadline, 6 * second)
    }

    func testDeadlineArithmeticSaturates() {
        var deadline = HTTPDeadline(now: .max - 1, limit: .max)
        XCTAssertEqual(deadline.deadline, .max)
        deadline.update(now: .max, answered: 0, midRequest: false)
        XCTAssertEqual(deadline.deadline, .max)
        XCTAssertEqual(deadline.remaining(now: .max), 0)
    }

    func testSessionSaysWhenARequestIsUnderWay() {
        var session = HTTPSession(site: Self.site)
        XCTAssertFalse(session.isMidRequest)
        _ = session.receive(request("GET / HTTP/1.1\nHost: a\n\n"))
        XCTAssertFalse(session.isMidRequest, "a whole request leaves nothing pending")
        _ = session.receive(request("GET / HTTP/1.1\nHo"))
        XCTAssertTrue(session.isMidRequest)
        _ = session.receive(request("st: a\n\n"))
        XCTAssertFalse(session.isMidRequest)
        // Empty lines before a request line are the start of a request.
        _ = session.receive(request("\n"))
        XCTAssertTrue(session.isMidRequest)
        // A body being skipped.
        var limits = HTTPLimits()
        limits.maximumBodyBytes = 10
        var bodied = HTTPSession(site: Self.site, limits: limits)
        _ = bodied.receive(request("GET / HTTP/1.1\nHost: a\nContent-Length: 10\n\nabc"))
        XCTAssertTrue(bodied.isMidRequest)
        _ = bodied.receive(Array("defghij".utf8))
        XCTAssertFalse(bodied.isMidRequest)
    }

    func testTimeOutAnswers408OnlyForARequestUnderWay() {
        var session = HTTPSession(site: Self.site)
        _ = session.receive(request("GET / HTTP/1.1\nHost: a\nX-Slow: "))
        let output = session.timeOut()
        XCTAssertTrue(output.close)
        XCTAssertEqual(output.responses.count, 1)
        let response = checkResponse(output.responses[0], code: 408, close: true)
        XCTAssertEqual(response?.reason, "Request Timeout")
        XCTAssertEqual(session.statusCounts[.requestTimeout], 1)
        XCTAssertTrue(session.closed)
        XCTAssertFalse(session.isMidRequest)
        // Nothing more is read.
        let after = session.receive(request("\nGET / HTTP/1.1\nHost: a\n\n"))
        XCTAssertTrue(after.responses.isEmpty)
        XCTAssertTrue(after.close)

        var idle = HTTPSession(site: Self.site)
        _ = idle.receive(request("GET / HTTP/1.1\nHost: a\n\n"))
        let quiet = idle.timeOut()
        XCTAssertTrue(quiet.close)
        XCTAssertTrue(quiet.responses.isEmpty, "an idle keep-alive connection just closes")
        XCTAssertEqual(idle.answered, 1)
    }
}
