import ToroKernel

/// The sockets example of README.md, kept compiling and working: a TCP echo
/// server on port 7 at `ip=`. EchoTests talks to it.
@main
struct Echo {
    static func main() {
        guard let driver = VirtioNetDriver.start(), let stack = NetworkStack.start(driver: driver),
            let listener = try? TCPListener.listen(on: stack, port: 7)
        else { Kernel.exit(status: 1) }
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
}
