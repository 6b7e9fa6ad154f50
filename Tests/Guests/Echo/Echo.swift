import ToroKernel

/// The sockets example of README.md, kept compiling and working: a TCP echo
/// server on port 7 at `ip=` (the part README shows), a UDP echo on port 7,
/// and with `connect=A.B.C.D:PORT` an active open instead: it connects, sends
/// one line, prints the reply line and exits 0. EchoTests drives all three.
@main
struct Echo {
    static func main() {
        guard let driver = VirtioNetDriver.start(), let stack = NetworkStack.start(driver: driver) else {
            Kernel.exit(status: 1)
        }
        if let target = Kernel.commandLine.value("connect") {
            connect(stack, target)
        }
        Thread.spawn(on: driver.core) { echoDatagrams(stack) }
        // What README.md shows:
        guard let listener = try? TCPListener.listen(on: stack, port: 7) else { Kernel.exit(status: 1) }
        print("echo: listening on \(stack.interface.address.dotted):7")
        while let stream = try? listener.accept() {
            Thread.spawn(on: driver.core) {
                while let bytes = try? stream.receive(timeout: 5_000_000_000), !bytes.isEmpty {  // 5 s
                    try? stream.send(bytes)
                }
                stream.close()
            }
        }
    }

    static func echoDatagrams(_ stack: NetworkStack) {
        guard let socket = try? UDPSocket.bind(on: stack, port: 7) else { return }
        while let message = try? socket.receive() {
            try? socket.send(message.payload, to: TCPEndpoint(address: message.source, port: message.sourcePort))
        }
    }

    static func connect(_ stack: NetworkStack, _ target: String) -> Never {
        let parts = target.split(separator: ":")
        guard parts.count == 2, let address = IPv4Address(String(parts[0])), let port = UInt16(String(parts[1])) else {
            print("echo: connect=\(target) is not A.B.C.D:PORT")
            Kernel.exit(status: 2)
        }
        do {
            let stream = try TCPStream.connect(on: stack, to: TCPEndpoint(address: address, port: port), timeout: 10_000_000_000)
            try stream.send(Array("hello from toro\n".utf8))
            var reply: [UInt8] = []
            while !reply.contains(10) {
                let bytes = try stream.receive(timeout: 10_000_000_000)
                if bytes.isEmpty { break }
                reply += bytes
            }
            stream.close()
            print("echo: reply \(String(decoding: reply, as: UTF8.self))", terminator: "")
            Kernel.exit(status: 0)
        } catch {
            let reason = error == .refused ? "refused" : error == .timedOut ? "timed out" : error == .unreachable ? "unreachable" : "error"
            print("echo: connect failed: \(reason)")
            Kernel.exit(status: 3)
        }
    }
}
