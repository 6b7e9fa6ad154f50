/// The network stack's kernel side: one ``NetStackCore`` behind a lock, and
/// the network thread that drives it on the virtio-net driver's core.
///
/// The network thread is an idle poller (`Thread.pollFoundNothing()`): it
/// runs when the device interrupts (a frame arrived), when an application
/// thread asks it to (``kick()``, after it queued data to send), or when the
/// stack's earliest timer is due (it arms one core timer for that). Between
/// those its core halts. While it finds work it polls the device with its
/// receive interrupts off, and for the poll grace period (`pollgrace=`,
/// 1 ms) after the last work it keeps polling; only then does it turn them
/// on and let the core halt. Under load the network core takes no device
/// interrupts and does not halt. Only this thread touches the driver, so the driver
/// needs no lock; applications on any core call into the engine under the
/// lock and never block while holding it.
///
/// Applications use the blocking sockets in Sockets.swift: a thread waiting
/// on a socket registers itself and parks; the network thread unparks it when
/// the engine reports a change on that socket.
public final class NetworkStack {
    public let driver: VirtioNetDriver
    private let state: SpinLock<State>
    private var thread: Thread?

    /// What a blocked socket waits for.
    enum WaitKey: Equatable {
        case connection(ObjectIdentifier)
        case listener(UInt16)
        case udp(UInt16)
    }

    struct Waiter {
        var key: WaitKey
        var thread: Thread
    }

    struct State {
        let engine: NetStackCore
        var waiters: [Waiter] = []
        var stopping = false
        /// Turns of the network thread, and those that found nothing to do.
        var turns = 0
        var emptyTurns = 0
    }

    /// Frames taken from the device per turn of the network thread.
    static let receiveBatch = 32

    /// Starts the stack on `driver` with the address in `ip=` (`10.77.0.2/24`)
    /// on the kernel command line, or `address` if given, and the gateway in
    /// `gw=` if any; nil (with one line on the console) when there is no
    /// usable address. TCP's timeouts come from `tcpidle=` (seconds without
    /// a segment from the peer before a connection is dropped, default 30;
    /// 0 = never) and `timewait=` (milliseconds in TIME_WAIT, default 1000).
    public static func start(driver: VirtioNetDriver, address: String? = nil) -> NetworkStack? {
        let line = Kernel.commandLine
        guard let text = address ?? line.value("ip") else {
            print("net: no ip= address, stack not started")
            return nil
        }
        guard let interface = IPv4Interface(text) else {
            print("net: cannot read ip=\(text), stack not started")
            return nil
        }
        var gateway: IPv4Address? = nil
        if let value = line.value("gw") {
            guard let address = IPv4Address(value), interface.isOnLink(address) else {
                print("net: gw=\(value) is not an address on \(text), stack not started")
                return nil
            }
            gateway = address
        }
        var configuration = NetStackConfiguration()
        // The ranges keep the conversions to nanoseconds far from overflowing.
        switch line.number("tcpidle", in: 0...86_400) {
        case .absent: break
        case .value(let seconds): configuration.tcp.idleTimeout = UInt64(seconds) * 1_000_000_000
        case .invalid(let text):
            print("net: tcpidle=\(text) is not 0 to 86400 seconds, stack not started")
            return nil
        }
        switch line.number("timewait", in: 0...240_000) {
        case .absent: break
        case .value(let milliseconds): configuration.tcp.timeWait = UInt64(milliseconds) * 1_000_000
        case .invalid(let text):
            print("net: timewait=\(text) is not 0 to 240000 milliseconds, stack not started")
            return nil
        }
        let secret = UInt32(truncatingIfNeeded: RandomSource.next())
        let engine = NetStackCore(
            mac: driver.mac, interface: interface, gateway: gateway, configuration: configuration, secret: secret)
        let stack = NetworkStack(driver: driver, engine: engine)
        stack.thread = Thread.spawn(on: driver.core) { stack.run() }
        return stack
    }

    private init(driver: VirtioNetDriver, engine: NetStackCore) {
        self.driver = driver
        self.state = SpinLock(State(engine: engine))
    }

    public var interface: IPv4Interface { withEngine { $0.interface } }
    /// The link layer's counters (frames, ARP, ICMP, drops).
    public var counters: NetCounters { withEngine { $0.linkCounters } }
    /// TCP and UDP counters.
    public var transportCounters: NetStackCounters { withEngine { $0.counters } }
    /// Turns of the network thread so far, and how many found nothing to do
    /// (a measure of the polling the idle policy allows).
    public var turns: (all: Int, empty: Int) { state.withLock { ($0.turns, $0.emptyTurns) } }
    /// TCP connections in the table (including TIME_WAIT).
    public var connectionCount: Int { withEngine { $0.connectionCount } }

    /// Runs `body` on the engine under the lock, at the current time.
    func withEngine<Result>(_ body: (NetStackCore) -> Result) -> Result {
        state.withLock { body($0.engine) }
    }

    /// Asks the network thread to run the engine's output soon: call it after
    /// anything that may have something to send (data queued, a window opened,
    /// a close).
    func kick() {
        Thread.workArrived(on: driver.core)
    }

    // MARK: - Blocking

    /// What one look at the engine found for a blocked call.
    enum Attempt<Value> {
        case done(Value)
        case failed(SocketError)
        case wait
    }

    /// Calls `attempt` under the lock until it is done or fails, parking the
    /// calling thread between looks (woken by the network thread when `key`
    /// changes); `.timedOut` once the TSC passes `deadline`.
    func block<Value>(
        on key: WaitKey, until deadline: UInt64?, _ attempt: (NetStackCore, UInt64) -> Attempt<Value>
    ) -> Result<Value, SocketError> {
        let me = Thread.current
        while true {
            let outcome: Attempt<Value> = state.withLock { state in
                let outcome = attempt(state.engine, Clock.now)
                if case .wait = outcome { state.waiters.append(Waiter(key: key, thread: me)) }
                return outcome
            }
            switch outcome {
            case .done(let value): return .success(value)
            case .failed(let error): return .failure(error)
            case .wait: break
            }
            if let deadline {
                if CPU.timestamp() >= deadline {
                    forget(me, key)
                    return .failure(.timedOut)
                }
                Thread.park(untilDeadline: deadline)
            } else {
                Thread.park()
            }
            forget(me, key)
        }
    }

    private func forget(_ thread: Thread, _ key: WaitKey) {
        state.withLock { state in
            // This runs after every park.
            state.waiters.removeInPlace { $0.key == key && $0.thread === thread }
        }
    }

    // MARK: - The network thread

    private func run() {
        var armedDeadline: UInt64? = nil  // nanoseconds, of the core timer this thread armed
        var timer: TimerQueue<TimerAction>.ID? = nil
        // Kept across turns with their capacity: a turn that finds work would
        // otherwise allocate (and free) each of them, and allocation is a
        // good part of a request's cost.
        var frames: [[UInt8]] = []
        var output: [[UInt8]] = []
        var woken: [Thread] = []
        // Frames the engine builds go straight into the driver's transmit
        // buffers while there is room (one closure for the thread's life:
        // making one per turn would allocate). Only this thread touches the
        // driver, and the engine writes through it only inside its poll.
        let driver = self.driver
        var placed = 0
        let transmit: NetFrameWriter = { size, write in
            guard driver.place(frameOfSize: size, write) else { return false }
            placed += 1
            return true
        }
        while true {
            placed = 0
            driver.receive(into: &frames, maximum: Self.receiveBatch)
            let now = Clock.now
            let (deadline, stopping) = state.withLock { state in
                for frame in frames { state.engine.handle(frame: frame, now: now) }
                let deadline = state.engine.poll(now: now, into: &output, transmit: transmit)
                state.turns += 1
                if frames.isEmpty && output.isEmpty && placed == 0 { state.emptyTurns += 1 }
                if !state.engine.events.isEmpty {
                    if !state.waiters.isEmpty {
                        let events = state.engine.events
                        state.waiters.removeInPlace { waiter in
                            guard Self.matches(waiter.key, events) else { return false }
                            woken.append(waiter.thread)
                            return true
                        }
                    }
                    state.engine.clearEvents()
                }
                return (deadline, state.stopping)
            }
            if !output.isEmpty {
                driver.send(frames: output)  // after the placed ones, and publishes them too
            } else if placed > 0 {
                driver.publishTransmitted()
            }
            for thread in woken { thread.unpark() }
            // Emptied now rather than next turn: nothing (a frame, a thread
            // that may end) stays referenced while this thread waits.
            let foundWork = !frames.isEmpty || !output.isEmpty || placed > 0
            frames.removeAllKeepingCapacity()
            output.removeAllKeepingCapacity()
            woken.removeAllKeepingCapacity()
            if stopping { break }
            // One core timer for the engine's earliest deadline: re-armed only
            // when that is earlier than the armed one, or the armed one passed.
            if let deadline, armedDeadline.map({ deadline < $0 || $0 <= now }) ?? true {
                if let timer { Timers.cancel(timer) }
                timer = Timers.add(deadline: Clock.deadline(afterNanoseconds: deadline > now ? deadline - now : 0), .wake)
                armedDeadline = deadline
            }
            if !foundWork {
                // Before idling, the device may interrupt again (a frame that
                // came before that is taken first, by another turn).
                Thread.pollFoundNothing(beforeIdling: { driver.setReceiveInterrupts(true) })
            } else {
                // Busy: frames are found by polling, without interrupts.
                _ = driver.setReceiveInterrupts(false)
                Thread.pollFoundWork()
                Thread.yield()
            }
        }
        if let timer { Timers.cancel(timer) }
    }

    private static func matches(_ key: WaitKey, _ events: NetEvents) -> Bool {
        switch key {
        case .connection(let id): return events.connections.contains { ObjectIdentifier($0) == id }
        case .listener(let port): return events.listeners.contains(port)
        case .udp(let port): return events.udpPorts.contains(port)
        }
    }

    /// Stops the network thread and waits for it to end.
    public func stop() {
        state.withLock { $0.stopping = true }
        kick()
        thread?.join()
        thread = nil
    }
}
