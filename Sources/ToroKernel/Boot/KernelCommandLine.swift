/// The kernel command line: words separated by spaces, each either `key=value`
/// or a bare flag. A value may be double-quoted to hold spaces (`name="a b"`).
/// When a key appears twice, the last one wins, as with most kernels.
///
/// Plain Swift with no kernel imports, so it is also built for the host and
/// unit-tested there.
public struct KernelCommandLine: Sendable {
    /// One word of the command line.
    public struct Option: Equatable, Sendable {
        public var key: String
        /// nil for a bare flag.
        public var value: String?
    }

    /// The words in order, duplicates included.
    public private(set) var options: [Option] = []
    /// Words that could not be read (an empty key, an unterminated quote).
    public private(set) var malformed: [String] = []

    public init(_ text: some StringProtocol) {
        self.init(bytes: Array(text.utf8))
    }

    public init(bytes: some Collection<UInt8>) {
        var index = bytes.startIndex
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        while index != bytes.endIndex {
            if isSpace(bytes[index]) {
                index = bytes.index(after: index)
                continue
            }
            var word: [UInt8] = []
            var quoted = false
            var sawEquals = false
            var keyEnd = -1
            while index != bytes.endIndex {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    quoted.toggle()
                } else if !quoted && isSpace(byte) {
                    break
                } else {
                    if byte == UInt8(ascii: "=") && !sawEquals && !quoted {
                        sawEquals = true
                        keyEnd = word.count
                    }
                    word.append(byte)
                }
                index = bytes.index(after: index)
            }
            let text = String(decoding: word, as: UTF8.self)
            if quoted || keyEnd == 0 {
                malformed.append(text)
            } else if sawEquals {
                let key = String(decoding: word[..<keyEnd], as: UTF8.self)
                let value = String(decoding: word[(keyEnd + 1)...], as: UTF8.self)
                options.append(Option(key: key, value: value))
            } else {
                options.append(Option(key: text, value: nil))
            }
        }
    }

    /// The value of the last `key=value`, or nil if absent (a bare flag has no value).
    public func value(_ key: String) -> String? {
        options.last { $0.key == key }?.value
    }

    /// Whether `key` appears, as a flag or with a value.
    public func contains(_ key: String) -> Bool {
        options.contains { $0.key == key }
    }

    /// The value of `key` as a decimal integer (see ``decimal(_:)``); nil if
    /// absent or not a number.
    public func integer(_ key: String) -> Int? {
        value(key).flatMap { Self.decimal($0) }
    }

    /// A numeric option as read by ``number(_:in:)``.
    public enum Number: Equatable, Sendable {
        /// The key is not on the command line (or is a bare flag).
        case absent
        /// A number within the range asked for.
        case value(Int)
        /// Something else: not a number, or a number outside the range.
        case invalid(String)
    }

    /// The value of `key` as a decimal number within `range`. Callers turn the
    /// result into durations and sizes with plain arithmetic, so the range is
    /// what keeps that arithmetic from overflowing: pick it with that in mind.
    public func number(_ key: String, in range: ClosedRange<Int>) -> Number {
        guard let text = value(key) else { return .absent }
        guard let number = Self.decimal(text), range.contains(number) else { return .invalid(text) }
        return .value(number)
    }

    /// `text` as a non-negative decimal number: ASCII digits only (no sign, no
    /// spaces, no "0x"), at most Int.max. Every step is overflow-checked, so
    /// no command line can make the kernel trap while reading it.
    public static func decimal(_ text: String) -> Int? {
        var value = 0
        var digits = 0
        for byte in text.utf8 {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = shifted.addingReportingOverflow(Int(digit))
            guard !overflowed, !carried else { return nil }
            value = sum
            digits += 1
        }
        return digits > 0 ? value : nil
    }

    /// The value of `key` if it is one of `choices`; `fallback` if absent.
    /// A value outside `choices` is reported through `invalid` and gives `fallback`.
    public func choice(_ key: String, of choices: [String], default fallback: String) -> (value: String, invalid: String?) {
        guard let given = value(key) else { return (fallback, nil) }
        return choices.contains(given) ? (given, nil) : (fallback, given)
    }

    /// Keys that are not in `known`, each once, in order of first appearance.
    public func unknownKeys(known: [String]) -> [String] {
        var unknown: [String] = []
        for option in options where !known.contains(option.key) && !unknown.contains(option.key) {
            unknown.append(option.key)
        }
        return unknown
    }
}
