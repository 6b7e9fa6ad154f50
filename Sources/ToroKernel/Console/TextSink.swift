/// Something that takes output one byte at a time.
///
/// The formatting here never allocates, so the kernel can still report
/// problems before the heap exists or after it has run out (bad boot info,
/// out of memory, panics).
protocol TextSink {
    mutating func append(_ byte: UInt8)
}

extension TextSink {
    mutating func write(_ text: StaticString) {
        text.withUTF8Buffer { bytes in
            for byte in bytes {
                append(byte)
            }
        }
    }

    mutating func write(_ text: String) {
        for byte in text.utf8 {
            append(byte)
        }
    }

    /// Writes `value` in decimal.
    mutating func write(decimal value: UInt64) {
        var divisor: UInt64 = 1
        while value / divisor >= 10 {
            divisor *= 10
        }
        while divisor > 0 {
            append(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
            divisor /= 10
        }
    }

    /// Writes `value` as `0x` and sixteen hex digits.
    mutating func write(hex value: UInt64) {
        write("0x")
        var shift = 60
        while shift >= 0 {
            let digit = UInt8((value >> UInt64(shift)) & 0xF)
            append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "A") + digit - 10)
            shift -= 4
        }
    }
}

/// Bytes straight to a 16550 UART's transmit register, unbuffered and unlocked.
///
/// For reporting a boot that cannot go on (the boot info is unusable, so not
/// even the console device is known) and nothing else: one VM exit per byte.
struct SerialWriter: TextSink {
    let port: UInt16

    mutating func append(_ byte: UInt8) {
        PortIO.write8(port, byte)
    }
}
