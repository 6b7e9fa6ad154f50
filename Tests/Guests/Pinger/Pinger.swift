import ToroKernel

/// Brings up the network stack (`ip=`, default 10.77.0.2/24) on the virtio-net
/// device and serves ARP and ICMP echo for `seconds=` seconds (default 5),
/// then prints its counters and exits 0 (1 with a `net: FAIL` line).
@main
struct Pinger {
    static func main() {
        let line = Kernel.commandLine
        let address = line.value("ip") ?? "10.77.0.2/24"
        let seconds = UInt64(min(line.integer("seconds") ?? 5, 1_000_000))  // bounded: it becomes nanoseconds
        guard let net = VirtioNetDriver.start() else { fail("no virtio-net device") }
        guard let stack = NetworkStack.start(driver: net, address: address) else { fail("cannot start the stack") }
        print("net: serving \(stack.interface.address.dotted)/\(stack.interface.prefixLength) for \(seconds) s")
        Thread.sleep(milliseconds: seconds * 1000)
        stack.stop()
        let c = stack.counters
        print("net: counters rx=\(c.receivedFrames) tx=\(c.sentFrames) arp_answered=\(c.arpRequestsAnswered) echo_requests=\(c.echoRequests) echo_replies=\(c.echoReplies) dropped=\(c.dropped) ignored=\(c.ignored)")
        Kernel.exit(status: 0)
    }

    static func fail(_ reason: String) -> Never {
        print("net: FAIL: \(reason)")
        Kernel.exit(status: 1)
    }
}
