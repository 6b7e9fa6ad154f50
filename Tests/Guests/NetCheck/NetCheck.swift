import ToroKernel

/// Brings up the virtio-net driver, prints the MAC address, sends one ARP
/// request (`sender=` and `target=` IPv4 addresses on the command line,
/// defaults 10.77.0.2 and 10.77.0.1) and waits, as an idle poller, at most
/// `wait=` milliseconds (default 3000) for the reply. Exits 0 with
/// `net: arp reply from T is at MAC`, 1 with a `net: FAIL` line otherwise.
@main
struct NetCheck {
    static func main() {
        let line = KernelCommandLine(BootInfo.current.commandLine)
        guard let sender = ipv4(line.value("sender") ?? "10.77.0.2"),
            let target = ipv4(line.value("target") ?? "10.77.0.1")
        else { fail("bad sender= or target= address") }
        let waitMilliseconds = UInt64(min(line.integer("wait") ?? 3000, 86_400_000))  // bounded: it becomes nanoseconds

        guard let net = VirtioNetDriver.start() else { fail("no virtio-net device") }
        print("net: mac \(hex(net.mac))")

        // RFC 826 request, padded to the 60-byte Ethernet minimum.
        var frame: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + net.mac + [0x08, 0x06]
        frame += [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]
        frame += net.mac + sender + [0, 0, 0, 0, 0, 0] + target
        while frame.count < 60 { frame.append(0) }
        net.send(frame: frame)
        print("net: arp request for \(dotted(target)) sent")

        let deadline = Clock.deadline(afterNanoseconds: waitMilliseconds * 1_000_000)
        // The timer's interrupt ends the core's halt, so the poller sees the deadline.
        Timers.add(deadline: deadline, .wake)
        while true {
            if let reply = net.receive() {
                Thread.pollFoundWork()
                if reply.count >= 42, reply[12] == 0x08, reply[13] == 0x06, reply[20] == 0, reply[21] == 2,
                    Array(reply[28..<32]) == target
                {
                    print("net: arp reply from \(dotted(target)) is at \(hex(Array(reply[22..<28])))")
                    Kernel.exit(status: 0)
                }
                continue
            }
            if CPU.timestamp() >= deadline {
                fail("no arp reply from \(dotted(target)) within \(waitMilliseconds) ms")
            }
            Thread.pollFoundNothing()
        }
    }

    static func fail(_ reason: String) -> Never {
        print("net: FAIL: \(reason)")
        Kernel.exit(status: 1)
    }

    static func ipv4(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        for part in text.split(separator: ".") {
            guard let value = Int(part), value >= 0, value <= 255 else { return nil }
            bytes.append(UInt8(value))
        }
        return bytes.count == 4 ? bytes : nil
    }

    static func dotted(_ address: [UInt8]) -> String {
        var text = ""
        for (index, byte) in address.enumerated() {
            if index > 0 { text += "." }
            text += String(Int(byte))
        }
        return text
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits: [Character] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "a", "b", "c", "d", "e", "f"]
        var text = ""
        for (index, byte) in bytes.enumerated() {
            if index > 0 { text += ":" }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return text
    }
}
