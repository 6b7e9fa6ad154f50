import Synchronization
import ToroKernel

/// An HTTP/1.1 server: the service Toro measured its idle work with.
///
/// Brings up the network stack on the virtio-net device (`ip=`, default
/// 10.0.0.2/24, optional `gw=`), listens on `port=` (default 80) and serves
/// the built-in pages of ``Site`` (`/`, `/big`, `/health`) with keep-alive.
///
/// | option | default | meaning |
/// | --- | --- | --- |
/// | `port=` | 80 | the TCP port |
/// | `maxconn=` | 64 | connections served at once; beyond it a client gets 503 and a close |
/// | `keepalive=` | 5 | seconds an idle keep-alive connection is kept open; also the time a request may take to arrive once begun (then 408) |
/// | `workers=` | `local` | `local`: each connection is a thread on the network core; `spread`: round robin over the other cores |
/// | `seconds=` | none | stop after this many seconds, print the counters and exit 0 |
/// | `idleexit=` | none | stop once no connection is open and none has been for this many seconds (scale to zero) |
///
/// The TCP stack's own timeouts (`tcpidle=`, `timewait=`) are NetworkStack's.
@main
struct WebServer {
    static func main() {
        let line = Kernel.commandLine
        let options = Options(line)
        guard let driver = VirtioNetDriver.start() else { fail("no virtio-net device (run toro-vmm with --net tap=NAME)") }
        guard let stack = NetworkStack.start(driver: driver, address: line.value("ip") ?? "10.0.0.2/24") else {
            fail("cannot start the network stack")
        }
        let listener: TCPListener
        do {
            listener = try TCPListener.listen(on: stack, port: options.port, backlog: options.maximumConnections)
        } catch {
            fail("cannot listen on port \(options.port)")
        }
        let server = Server(stack: stack, options: options)
        let interface = stack.interface
        print(
            "webserver: http://\(interface.address.dotted):\(options.port)/ (maxconn \(options.maximumConnections), keep-alive \(options.keepAliveSeconds) s, workers \(options.spread ? "spread" : "local"), \(BootInfo.current.cpuCount) cpus)"
        )
        let acceptor = Thread.spawn(on: driver.core) { server.acceptLoop(listener) }
        if options.seconds == nil && options.idleExitSeconds == nil {
            acceptor.join()  // serves until the VMM stops the machine
            Kernel.exit(status: 0)
        }
        // Sleep until the next moment a stop condition could hold (a sleeping
        // thread costs nothing; a 1 s tick would wake the core every second).
        let start = Clock.now
        let second: UInt64 = 1_000_000_000
        while true {
            let now = Clock.now
            if let seconds = options.seconds, now &- start >= UInt64(seconds) * second { break }
            var wake = options.seconds.map { start &+ UInt64($0) * second } ?? .max
            if let idle = options.idleExitSeconds {
                let quietSince = server.lastActivity.load(ordering: .relaxed)
                if server.active.load(ordering: .relaxed) == 0 && now > quietSince && now - quietSince >= UInt64(idle) * second {
                    print("webserver: idle for \(idle) s, stopping")
                    break
                }
                wake = min(wake, max(quietSince, now) &+ UInt64(idle) * second)
            }
            Thread.sleep(nanoseconds: wake &- now)
        }
        server.report()
        Kernel.exit(status: 0)
    }

    static func fail(_ reason: String) -> Never {
        print("webserver: FAIL: \(reason)")
        Kernel.exit(status: 1)
    }
}

struct Options {
    let port: UInt16
    let maximumConnections: Int
    let keepAliveSeconds: Int
    let spread: Bool
    let seconds: Int?
    let idleExitSeconds: Int?

    init(_ line: KernelCommandLine) {
        port = UInt16(Self.number(line, "port", in: 1...65535) ?? 80)
        maximumConnections = Self.number(line, "maxconn", in: 1...4096) ?? 64
        keepAliveSeconds = Self.number(line, "keepalive", in: 1...3600) ?? 5
        let workers = line.choice("workers", of: ["local", "spread"], default: "local")
        if let invalid = workers.invalid { print("webserver: workers=\(invalid) is not local or spread; using local") }
        spread = workers.value == "spread" && BootInfo.current.cpuCount > 1
        seconds = Self.number(line, "seconds", in: 1...Int(Int32.max))
        idleExitSeconds = Self.number(line, "idleexit", in: 1...Int(Int32.max))
    }

    /// The whole number `key=` gives, if it is in `range`; nil when absent,
    /// and nil with one line on the console when it is not a number in range
    /// (the option's default then applies). The ranges above bound what the
    /// server computes from them (`seconds` times 10^9 fits in a UInt64).
    static func number(_ line: KernelCommandLine, _ key: String, in range: ClosedRange<Int>) -> Int? {
        switch line.number(key, in: range) {
        case .absent:
            return nil
        case .value(let value):
            return value
        case .invalid(let text):
            print("webserver: \(key)=\(text) is not \(range.lowerBound)-\(range.upperBound); using the default")
            return nil
        }
    }
}

/// The accept loop and the connection threads.
final class Server {
    let stack: NetworkStack
    let options: Options
    let site = Site.standard()
    let active = Atomic<Int>(0)
    let accepted = Atomic<Int>(0)
    let refused = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let timedOut = Atomic<Int>(0)
    /// Timeouts of a request under way, answered 408 (also in `timedOut`).
    let requestTimeouts = Atomic<Int>(0)
    /// Clock.now of the last accept or request.
    let lastActivity = Atomic<UInt64>(Clock.now)
    private var nextCore = 0

    /// Idle keep-alive connections, requests that do not arrive whole (see
    /// HTTPDeadline) and stalled sends give up after this.
    var keepAlive: UInt64 { UInt64(options.keepAliveSeconds) * 1_000_000_000 }

    init(stack: NetworkStack, options: Options) {
        self.stack = stack
        self.options = options
    }

    func acceptLoop(_ listener: TCPListener) {
        while true {
            let stream: TCPStream
            do { stream = try listener.accept() } catch { return }
            accepted.wrappingAdd(1, ordering: .relaxed)
            lastActivity.store(Clock.now, ordering: .relaxed)
            if active.load(ordering: .relaxed) >= options.maximumConnections {
                // Beyond the bound: a clear answer, not a silent drop.
                refused.wrappingAdd(1, ordering: .relaxed)
                try? stream.send(site.serviceUnavailableResponse, timeout: keepAlive)
                stream.close()
                continue
            }
            active.wrappingAdd(1, ordering: .relaxed)
            Thread.spawn(on: core()) { self.serve(stream) }
        }
    }

    /// The core for the next connection: the network core, or round robin over the others.
    private func core() -> Int {
        let cpus = BootInfo.current.cpuCount
        guard options.spread else { return stack.driver.core }
        nextCore = nextCore % (cpus - 1) + 1
        return (stack.driver.core + nextCore) % cpus
    }

    private func serve(_ stream: TCPStream) {
        var session = HTTPSession(site: site)
        // One deadline for an idle connection and for a request under way: a
        // client that trickles a head byte by byte (slowloris) cannot renew it.
        var deadline = HTTPDeadline(now: Clock.now, limit: keepAlive)
        serving: while true {
            var bytes: [UInt8] = []
            var expired = false
            let wait = deadline.remaining(now: Clock.now)
            if wait == 0 {
                expired = true
            } else {
                do {
                    bytes = try stream.receive(maximum: 16384, timeout: wait)
                } catch {
                    guard error == .timedOut else { break }
                    expired = true
                }
            }
            if expired {
                // A request under way gets its 408; an idle connection just closes.
                timedOut.wrappingAdd(1, ordering: .relaxed)
                let output = session.timeOut()
                requestTimeouts.wrappingAdd(output.responses.count, ordering: .relaxed)
                for response in output.responses { try? stream.send(response, timeout: keepAlive) }
                requests.wrappingAdd(output.responses.count, ordering: .relaxed)
                break
            }
            if bytes.isEmpty { break }  // the client closed its side
            let output = session.receive(bytes)
            for response in output.responses {
                do { try stream.send(response, timeout: keepAlive) } catch { break serving }
            }
            requests.wrappingAdd(output.responses.count, ordering: .relaxed)
            let now = Clock.now
            lastActivity.store(now, ordering: .relaxed)
            if output.close { break }
            deadline.update(now: now, answered: output.responses.count, midRequest: session.isMidRequest)
        }
        stream.close()
        lastActivity.store(Clock.now, ordering: .relaxed)
        active.wrappingSubtract(1, ordering: .relaxed)
    }

    func report() {
        let link = stack.counters
        let transport = stack.transportCounters
        print(
            "webserver: requests=\(requests.load(ordering: .relaxed)) accepted=\(accepted.load(ordering: .relaxed)) refused=\(refused.load(ordering: .relaxed)) active=\(active.load(ordering: .relaxed)) keepalive_timeouts=\(timedOut.load(ordering: .relaxed)) request_timeouts=\(requestTimeouts.load(ordering: .relaxed))"
        )
        print(
            "net: rx=\(link.receivedFrames) tx=\(link.sentFrames) dropped=\(link.dropped) dropped_truncated=\(link.droppedTruncated) dropped_checksum=\(link.droppedBadChecksum) dropped_length=\(link.droppedBadLength) dropped_fragments=\(link.droppedFragments) dropped_unsupported=\(link.droppedUnsupported) tcp_in=\(transport.tcpSegmentsReceived) tcp_out=\(transport.tcpSegmentsSent) resets=\(transport.tcpResetsSent) backlog_drops=\(transport.tcpBacklogDrops) syn_evictions=\(transport.tcpSYNQueueEvictions) halfopen_timeouts=\(transport.tcpHalfOpenTimeouts) arp_unresolved=\(transport.unresolved) connections=\(stack.connectionCount) turns=\(stack.turns.all) empty_turns=\(stack.turns.empty)"
        )
    }
}
