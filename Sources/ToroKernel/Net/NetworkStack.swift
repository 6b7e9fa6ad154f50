/// The network stack's kernel side: a thread on the virtio-net driver's core
/// that polls the driver as an idle poller (the device's interrupt wakes the
/// core), hands each frame to a ``NetEndpoint`` (ARP for its address, ICMP
/// echo) and sends the answers. Started by an application with the driver and
/// the `ip=` option.
public final class NetworkStack {
    public let driver: VirtioNetDriver
    /// Written only by the network thread; read it after ``stop()``.
    public private(set) var endpoint: NetEndpoint
    private var stopping = false
    private var thread: Thread?

    /// ARP entries live for 60 s of the TSC clock.
    static let arpLifetimeNanoseconds: UInt64 = 60_000_000_000

    /// Starts the stack on `driver` with the address in `ip=` (`10.77.0.2/24`)
    /// on the kernel command line, or `address` if given; nil (with one line
    /// on the console) when there is no usable address.
    public static func start(driver: VirtioNetDriver, address: String? = nil) -> NetworkStack? {
        guard let text = address ?? Kernel.commandLine.value("ip") else {
            print("net: no ip= address, stack not started")
            return nil
        }
        guard let interface = IPv4Interface(text) else {
            print("net: cannot read ip=\(text), stack not started")
            return nil
        }
        let lifetime = Clock.deadline(afterNanoseconds: arpLifetimeNanoseconds) &- CPU.timestamp()
        let stack = NetworkStack(driver: driver, endpoint: NetEndpoint(mac: driver.mac, interface: interface, arpLifetime: lifetime))
        stack.thread = Thread.spawn(on: driver.core) { stack.run() }
        return stack
    }

    private init(driver: VirtioNetDriver, endpoint: NetEndpoint) {
        self.driver = driver
        self.endpoint = endpoint
    }

    public var interface: IPv4Interface { endpoint.interface }
    public var counters: NetCounters { endpoint.counters }

    private func run() {
        while !stopping {
            if let frame = driver.receive() {
                Thread.pollFoundWork()
                if let reply = endpoint.handle(frame, now: CPU.timestamp()) {
                    driver.send(frame: reply)
                }
                continue
            }
            Thread.pollFoundNothing()
        }
    }

    /// Stops the network thread and waits for it to end.
    public func stop() {
        stopping = true
        Thread.workArrived(on: driver.core)
        thread?.join()
        thread = nil
    }
}
