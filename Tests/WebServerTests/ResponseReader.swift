@testable import WebServerCore
import XCTest

/// A response as a client reads it back: a deliberately small, strict parser of
/// one serialised response, independent of the code that wrote it.
struct ReadResponse {
    var version: String
    var code: Int
    var reason: String
    var fields: [(name: String, value: String)]
    var body: [UInt8]

    /// The value of the first field called `name` (any case).
    func field(_ name: String) -> String? {
        fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var contentLength: Int? { field("Content-Length").flatMap { Int($0) } }
    var closes: Bool { field("Connection") == "close" }
    var text: String { String(decoding: body, as: UTF8.self) }

    /// Parses `bytes`: status line and fields each ending in CRLF, an empty line,
    /// then the body (everything after it). Nil if any of that is malformed.
    static func parse(_ bytes: [UInt8]) -> ReadResponse? {
        var lines: [String] = []
        var index = 0
        var lineStart = 0
        while true {
            guard index + 1 < bytes.count else { return nil }
            if bytes[index] == 13 {
                guard bytes[index + 1] == 10 else { return nil }
                let line = String(decoding: bytes[lineStart..<index], as: UTF8.self)
                index += 2
                lineStart = index
                if line.isEmpty { break }
                lines.append(line)
            } else {
                guard bytes[index] != 10 else { return nil }
                index += 1
            }
        }
        guard let statusLine = lines.first else { return nil }
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].count == 3, let code = Int(parts[1]) else { return nil }
        var fields: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            let name = String(line[..<colon])
            guard !name.isEmpty, !name.contains(" ") else { return nil }
            var value = line[line.index(after: colon)...]
            while value.first == " " || value.first == "\t" { value.removeFirst() }
            while value.last == " " || value.last == "\t" { value.removeLast() }
            fields.append((name, String(value)))
        }
        return ReadResponse(version: String(parts[0]), code: code, reason: String(parts[2]), fields: fields,
                            body: Array(bytes[index...]))
    }
}

/// Asserts that `bytes` is one well-formed response with the four fields every
/// response carries, a body as long as Content-Length says (none for a HEAD),
/// and no Date; returns it for further checks.
@discardableResult
func checkResponse(_ bytes: [UInt8], code: Int, head: Bool = false, close: Bool? = nil,
                   file: StaticString = #filePath, line: UInt = #line) -> ReadResponse? {
    guard let response = ReadResponse.parse(bytes) else {
        XCTFail("not a response: \(String(decoding: bytes.prefix(300), as: UTF8.self))", file: file, line: line)
        return nil
    }
    XCTAssertEqual(response.version, "HTTP/1.1", file: file, line: line)
    XCTAssertEqual(response.code, code, "status line: \(response.code) \(response.reason)", file: file, line: line)
    XCTAssertEqual(response.field("Server"), "toro-swift", file: file, line: line)
    XCTAssertNotNil(response.field("Content-Type"), file: file, line: line)
    XCTAssertNil(response.field("Date"), file: file, line: line)
    let connection = response.field("Connection")
    XCTAssertTrue(connection == "close" || connection == "keep-alive", "Connection: \(connection ?? "none")",
                  file: file, line: line)
    if let close {
        XCTAssertEqual(response.closes, close, "Connection: \(connection ?? "none")", file: file, line: line)
    }
    guard let length = response.contentLength else {
        XCTFail("no Content-Length", file: file, line: line)
        return response
    }
    XCTAssertEqual(response.fields.filter { $0.name == "Content-Length" }.count, 1, file: file, line: line)
    XCTAssertEqual(response.body.count, head ? 0 : length, "body bytes vs Content-Length \(length)",
                   file: file, line: line)
    return response
}

/// The bytes of `text`, in which "\n" stands for CRLF unless `raw`.
func request(_ text: String, raw: Bool = false) -> [UInt8] {
    var bytes: [UInt8] = []
    for byte in text.utf8 {
        if byte == 10 && !raw { bytes.append(13) }
        bytes.append(byte)
    }
    return bytes
}
