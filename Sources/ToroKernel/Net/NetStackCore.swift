// The protocol engine of one network interface: frames in, frames out, no I/O
// and no clock of its own. It routes (on-link or through the gateway),
// resolves next hops with ARP (holding packets until the answer comes),
// answers ARP and ping through ``NetEndpoint``, demultiplexes TCP segments to
// ``TCPConnection``s and listeners, and UDP datagrams to bound ports.
//
// The kernel's NetworkStack drives it from one thread under one lock; the
// host tests drive two of them back to back. Times are nanoseconds of any
// monotonic clock the caller chooses.

/// A UDP datagram as an application receives it.
public struct UDPMessage: Equatable {
    public var source: IPv4Address
    public var sourcePort: UInt16
    public var payload: [UInt8]

    public init(source: IPv4Address, sourcePort: UInt16, payload: [UInt8]) {
        self.source = source
        self.sourcePort = sourcePort
        self.payload = payload
    }
}

/// Knobs of the stack above the TCP connection itself.
public struct NetStackConfiguration {
    public var tcp = TCPConfiguration()
    /// Packets held while their next hop's MAC is asked for with ARP. When
    /// it is full the oldest held packet makes room: a flood of SYNs from
    /// spoofed on-link sources (each SYN-ACK waiting for an ARP answer that
    /// never comes) then delays a real peer's packet by at most this many
    /// newer ones, and never keeps it out. The next hops being asked for are
    /// those of the held packets, so they are bounded too, as is the ARP cache
    /// (16 entries, ``ARPCache``).
    public var unresolvedLimit = 64
    /// How often an unanswered ARP request is repeated, and when the packets
    /// waiting for it are dropped.
    public var arpRetry: UInt64 = 1_000_000_000
    public var arpGiveUp: UInt64 = 3_000_000_000
    /// How long a learned MAC address is trusted.
    public var arpLifetime: UInt64 = 60_000_000_000
    /// Datagrams queued per bound UDP port before newer ones are dropped.
    public var udpQueueLimit = 64
    /// Half-open connections (SYN received, SYN-ACK sent, no ACK yet) kept
    /// per listening port, apart from its accept backlog. When it is full,
    /// the oldest half-open connection is forgotten to make room for the new
    /// SYN: a flood of SYNs from spoofed sources then never fills the accept
    /// backlog and never keeps a real client out (its handshake completes
    /// unless this many newer SYNs arrive before its ACK). Each half-open
    /// connection also ends by itself after its SYN-ACK retransmissions
    /// (``TCPConfiguration/maximumSYNACKRetransmissions``).
    public var synQueueLimit = 256

    public init() {}
}

/// What the stack counted above the link layer (``NetCounters`` has the rest).
public struct NetStackCounters: Equatable {
    public var tcpSegmentsReceived = 0
    public var tcpSegmentsSent = 0
    public var tcpResetsSent = 0
    public var tcpConnectionsAccepted = 0
    public var tcpConnectionsOpened = 0
    /// SYNs dropped because the listener's accept backlog was full.
    public var tcpBacklogDrops = 0
    /// Half-open connections forgotten to make room in a full SYN queue.
    public var tcpSYNQueueEvictions = 0
    /// Half-open connections that ended after their SYN-ACK retransmissions.
    public var tcpHalfOpenTimeouts = 0
    public var udpReceived = 0
    public var udpSent = 0
    public var udpNoPort = 0
    public var udpQueueDrops = 0
    public var arpRequestsSent = 0
    /// Packets dropped: no route, or their next hop never answered ARP (or
    /// newer packets waiting for ARP pushed them out).
    public var noRoute = 0
    public var unresolved = 0

    public init() {}
}

/// What changed since the last ``NetStackCore/takeEvents()``: the owner wakes
/// the threads waiting on these.
public struct NetEvents {
    public var connections: [TCPConnection] = []
    public var listeners: [UInt16] = []
    public var udpPorts: [UInt16] = []

    public var isEmpty: Bool { connections.isEmpty && listeners.isEmpty && udpPorts.isEmpty }
}

/// Writes one outgoing frame of `size` bytes straight into the transmit
/// device's memory: calls `write` with room for exactly `size` bytes and
/// returns true, or returns false (without calling it) when there is no
/// room now. See ``NetStackCore/poll(now:into:transmit:)``.
public typealias NetFrameWriter = (_ size: Int, _ write: (UnsafeMutableRawPointer) -> Void) -> Bool

/// A TCP connection's place in the table: the peer and our port (there is one local address).
struct ConnectionKey: Hashable {
    var remote: IPv4Address
    var remotePort: UInt16
    var localPort: UInt16

    /// One word into the hasher instead of three fields: every segment looks
    /// its connection up, and each combine is dear in the guest.
    func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(remote.value) << 32 | UInt64(remotePort) << 16 | UInt64(localPort))
    }
}

public final class NetStackCore {
    /// A listening port: connections still in their handshake (the SYN
    /// queue, at most `synQueueLimit`, oldest first), and those established
    /// and waiting for `accept` (at most `backlog` when a SYN is admitted;
    /// handshakes under way may complete beyond it, so never more than
    /// `backlog + synQueueLimit`).
    final class Listener {
        let backlog: Int
        let synQueueLimit: Int
        var embryonic = FIFO<ConnectionKey>()
        var ready: [TCPConnection] = []
        init(backlog: Int, synQueueLimit: Int) {
            self.backlog = backlog
            self.synQueueLimit = synQueueLimit
        }
    }

    /// A packet waiting for its next hop's MAC: a whole frame whose destination
    /// MAC (bytes 0-5) is filled in when the ARP answer comes.
    struct Unresolved {
        var nextHop: IPv4Address
        var frame: [UInt8]
        var expires: UInt64
    }

    public let mac: [UInt8]
    public let gateway: IPv4Address?
    public let configuration: NetStackConfiguration
    public private(set) var endpoint: NetEndpoint
    public private(set) var counters = NetStackCounters()

    var listeners: [UInt16: Listener] = [:]
    var connections: [ConnectionKey: TCPConnection] = [:]
    var udpPorts: [UInt16: [UDPMessage]] = [:]
    var unresolved = FIFO<Unresolved>()
    /// When each next hop was last asked for with ARP.
    var arpAsked: [IPv4Address: UInt64] = [:]
    /// When ``expireUnresolved(now:)`` next has work: the earliest expiry of a
    /// held packet or ARP retry (.max for none). Kept rather than searched
    /// for at every poll; it may be early (packets released since), never late.
    var arpNextEvent = UInt64.max
    var outbox: [[UInt8]] = []
    /// The earliest deadline of any connection (.max for none), as the last
    /// poll found it. Exact, but for one case: when the SYN queue forgets the
    /// connection that held it (a flood), it stays, early, rather than cost
    /// a walk of the whole table at every SYN; the poll at that time walks
    /// the table and makes it exact again. Never late.
    var connectionsEarliest: UInt64 = 0
    /// Where a frame built while ``directTransmit`` is set goes if it can:
    /// only during ``poll(now:into:transmit:)``, and while ``outbox`` is empty.
    var directTransmit: NetFrameWriter?
    /// Scratch for ``poll(now:into:)``: one connection's output at a time.
    var outputSegments: [TCPOutgoing] = []
    /// Connections changed since the last poll (by a segment or the application).
    var dirty: [TCPConnection] = []
    /// What changed since the last ``takeEvents()`` or ``clearEvents()``.
    public private(set) var events = NetEvents()
    let sequenceSecret: UInt32
    var nextEphemeralPort: UInt16 = NetStackCore.ephemeralPorts.lowerBound

    static let ephemeralPorts: ClosedRange<UInt16> = 49152...65535
    /// Where an Ethernet frame carrying IPv4 has the IP protocol number.
    static let protocolByte = EthernetHeader.size + 9

    /// The engine for an interface with `mac` and `interface`; packets for
    /// other networks go to `gateway` (which must be on link) or are dropped.
    /// `secret` keys the initial sequence numbers (RFC 6528): pass something
    /// unpredictable.
    public init(
        mac: [UInt8], interface: IPv4Interface, gateway: IPv4Address? = nil,
        configuration: NetStackConfiguration = NetStackConfiguration(), secret: UInt32
    ) {
        self.mac = mac
        self.gateway = gateway
        self.configuration = configuration
        self.endpoint = NetEndpoint(mac: mac, interface: interface, arpLifetime: configuration.arpLifetime)
        self.sequenceSecret = secret
    }

    public var interface: IPv4Interface { endpoint.interface }
    public var linkCounters: NetCounters { endpoint.counters }
    public var connectionCount: Int { connections.count }

    // MARK: - Frames in

    /// Handles one received Ethernet frame at `now`.
    public func handle(frame: [UInt8], now: UInt64) {
        guard frame.count >= EthernetHeader.size + IPv4Header.minimumSize, readUInt16(frame, 12) == EtherType.ipv4,
            frame[Self.protocolByte] == IPProtocol.tcp || frame[Self.protocolByte] == IPProtocol.udp
        else {
            // ARP, ICMP and everything malformed or foreign: the link layer's.
            let isARP = frame.count >= EthernetHeader.size && readUInt16(frame, 12) == EtherType.arp
            if let reply = endpoint.handle(frame, now: now) { outbox.append(reply) }
            if isARP { releaseResolved(now: now) }
            return
        }
        endpoint.counters.receivedFrames += 1
        guard isAddressedToUs(frame) else {
            endpoint.counters.ignored += 1
            return
        }
        do {
            let offset = EthernetHeader.size
            let header = try IPv4Header.parse(frame, at: offset)
            guard header.destination == interface.address else {
                endpoint.counters.ignored += 1
                return
            }
            let start = offset + header.headerLength
            let count = header.totalLength - header.headerLength
            if header.protocolNumber == IPProtocol.tcp {
                let (segment, payload) = try TCPSegment.parseHeader(
                    frame, at: start, count: count, source: header.source, destination: header.destination)
                handle(segment, payload: frame[payload], from: header.source, now: now)
            } else {
                let datagram = try UDPDatagram.parse(
                    frame, at: start, count: count, source: header.source, destination: header.destination)
                handle(datagram, from: header.source)
            }
        } catch {
            endpoint.counters.count(error)
        }
    }

    private func isAddressedToUs(_ frame: [UInt8]) -> Bool {
        frame[0] == mac[0] && frame[1] == mac[1] && frame[2] == mac[2] && frame[3] == mac[3] && frame[4] == mac[4]
            && frame[5] == mac[5]
    }

    /// A TCP segment whose payload (not copied out of the frame) is `payload`.
    private func handle(_ segment: TCPSegment, payload: ArraySlice<UInt8>, from source: IPv4Address, now: UInt64) {
        counters.tcpSegmentsReceived += 1
        let key = ConnectionKey(remote: source, remotePort: segment.sourcePort, localPort: segment.destinationPort)
        if let connection = connections[key] {
            connection.handle(segment, payload: payload, now: now)
            touch(connection)
            settle(key, connection)
            return
        }
        if segment.flags.contains(.syn), !segment.flags.contains(.ack), !segment.flags.contains(.rst),
            let listener = listeners[segment.destinationPort]
        {
            // Only connections that completed their handshake count against
            // the backlog: half-open ones cannot be told from a flood's.
            guard listener.ready.count < listener.backlog else {
                counters.tcpBacklogDrops += 1  // the peer retransmits its SYN
                return
            }
            if listener.embryonic.count >= listener.synQueueLimit { evictOldestHalfOpen(of: listener) }
            let connection = TCPConnection(
                acceptingSYN: segment,
                local: TCPEndpoint(address: interface.address, port: segment.destinationPort),
                remote: TCPEndpoint(address: source, port: segment.sourcePort),
                initialSequence: initialSequence(for: key, now: now), now: now, configuration: configuration.tcp)
            connections[key] = connection
            connection.inTable = true
            touch(connection)
            connection.inSYNQueue = true
            listener.embryonic.append(key)
            return
        }
        sendReset(answering: segment, payloadCount: payload.count, from: source, now: now)
    }

    /// Makes room in a full SYN queue: the oldest half-open connection is
    /// forgotten, without a reset (its source is most likely spoofed; a real
    /// peer whose ACK comes later gets the reset of a segment no connection
    /// wants, and connects again).
    private func evictOldestHalfOpen(of listener: Listener) {
        guard !listener.embryonic.isEmpty else { return }
        let key = listener.embryonic.removeFirst()
        if let connection = connections.removeValue(forKey: key) {
            connection.inSYNQueue = false
            connection.inTable = false
        }
        counters.tcpSYNQueueEvictions += 1
    }

    /// After a connection changed: its waiters are told, and a connection a
    /// listener was waiting for moves to the accept queue (or out, if it died).
    private func settle(_ key: ConnectionKey, _ connection: TCPConnection) {
        events.connections.append(connection)
        guard connection.inSYNQueue else { return }
        let state = connection.state
        guard state != .synReceived else { return }
        connection.inSYNQueue = false
        if state == .closed && connection.closeReason == .timedOut { counters.tcpHalfOpenTimeouts += 1 }
        let port = key.localPort  // a passive connection's local port is its listener's
        guard let listener = listeners[port] else { return }
        listener.embryonic.removeInPlace { $0 == key }
        if state != .closed {
            listener.ready.append(connection)
            counters.tcpConnectionsAccepted += 1
            events.listeners.append(port)
        }
    }

    /// RFC 793 "Reset Generation" for a segment no connection or listener wants.
    private func sendReset(answering segment: TCPSegment, payloadCount: Int, from source: IPv4Address, now: UInt64) {
        guard !segment.flags.contains(.rst) else { return }
        var reset = TCPSegment(
            sourcePort: segment.destinationPort, destinationPort: segment.sourcePort, sequence: 0,
            acknowledgement: 0, flags: [.rst], window: 0)
        if segment.flags.contains(.ack) {
            reset.sequence = segment.acknowledgement
        } else {
            reset.acknowledgement = segment.sequence &+ UInt32(truncatingIfNeeded: segment.sequenceLength + payloadCount)
            reset.flags.insert(.ack)
        }
        counters.tcpResetsSent += 1
        transmit(reset, to: source, now: now)
    }

    private func handle(_ datagram: UDPDatagram, from source: IPv4Address) {
        guard var queue = udpPorts[datagram.destinationPort] else {
            counters.udpNoPort += 1
            return
        }
        guard queue.count < configuration.udpQueueLimit else {
            counters.udpQueueDrops += 1
            return
        }
        counters.udpReceived += 1
        queue.append(UDPMessage(source: source, sourcePort: datagram.sourcePort, payload: datagram.payload))
        udpPorts[datagram.destinationPort] = queue
        events.udpPorts.append(datagram.destinationPort)
    }

    // MARK: - Frames out

    /// Runs the output and timers of every connection that has something to
    /// do at `now` (one that changed since the last poll, or whose deadline
    /// has come) and returns the frames to transmit, in order. Call it after
    /// ``handle(frame:now:)``, after an application call (and ``touch(_:)``),
    /// and when ``nextDeadline`` passes. An idle connection costs one look
    /// at its deadline.
    public func poll(now: UInt64) -> [[UInt8]] {
        var frames: [[UInt8]] = []
        poll(now: now, into: &frames)
        return frames
    }

    /// ``poll(now:)``, appending the frames to `frames`: a caller that keeps
    /// its array across turns (the network thread) allocates none per turn.
    /// Returns what ``nextDeadline`` would return now, found in the same pass
    /// (earlier only after a SYN-queue eviction, see ``connectionsEarliest``).
    ///
    /// A poll walks the whole table only when a connection deadline has come
    /// or a touched connection held the earliest one (whose successor only a
    /// walk can find); otherwise it runs only the connections touched since
    /// the last poll (none: nothing to do): no other connection can have
    /// work, and their deadlines are the ones already known. (This relies on
    /// the contract of ``touch(_:)``.) So a turn costs what changed, not the
    /// size of the table, which a SYN flood fills with half-open connections.
    ///
    /// With `transmit` (the driver's transmit buffers), the frames it builds
    /// are written there instead of allocated, for as long as `transmit` has
    /// room; the rest, and frames queued before this poll, go to `frames` as
    /// usual, after the written ones. Order is kept: once one frame goes to
    /// `frames`, all later ones do too.
    @discardableResult
    public func poll(now: UInt64, into frames: inout [[UInt8]], transmit: NetFrameWriter? = nil) -> UInt64? {
        directTransmit = outbox.isEmpty ? transmit : nil
        defer { directTransmit = nil }
        if now >= connectionsEarliest || heldEarliestTouched {
            walkConnections(now: now, wholeTable: true)
        } else if !dirty.isEmpty {
            walkConnections(now: now, wholeTable: false)
        }
        expireUnresolved(now: now)
        if frames.isEmpty {
            // Trade buffers: the caller's empty one becomes the next outbox.
            swap(&frames, &outbox)
        } else {
            frames.append(contentsOf: outbox)
            outbox.removeAllKeepingCapacity()
        }
        var earliest = connectionsEarliest == .max ? nil : connectionsEarliest
        if let arp = arpDeadline, arp < (earliest ?? .max) { earliest = arp }
        return earliest
    }

    /// Whether a touched connection's deadline was the earliest: then only a
    /// walk of the whole table finds the next one.
    private var heldEarliestTouched: Bool {
        connectionsEarliest != .max && dirty.contains { $0.knownDeadline == connectionsEarliest }
    }

    /// Runs every connection that is due or touched (`wholeTable`), or only
    /// the touched ones (no deadline has come), forgets the finished ones,
    /// and notes the earliest deadline: exact after a whole walk, else the
    /// earlier of the one known and those of the connections it ran.
    private func walkConnections(now: UInt64, wholeTable: Bool) {
        var finished: [ConnectionKey] = []
        var earliest = wholeTable ? UInt64.max : connectionsEarliest
        // The segments list is kept across polls (taken out of the property
        // while in use, so that it stays uniquely referenced and grows in place).
        var segments = outputSegments
        outputSegments = []
        if wholeTable {
            for (key, connection) in connections {
                // An untouched connection's deadline is the one read last time.
                if !connection.pollPending {
                    let deadline = connection.knownDeadline
                    if deadline > now {
                        if deadline < earliest { earliest = deadline }
                        continue
                    }
                }
                let next = run(connection, key, now: now, segments: &segments, finished: &finished)
                if next < earliest { earliest = next }
            }
        } else {
            // A touched connection may have left the table since (forgotten
            // to make room in the SYN queue, or finished and then touched by
            // its application): only those still in it run.
            for connection in dirty where connection.inTable {
                let key = ConnectionKey(
                    remote: connection.remote.address, remotePort: connection.remote.port, localPort: connection.local.port)
                let next = run(connection, key, now: now, segments: &segments, finished: &finished)
                if next < earliest { earliest = next }
            }
        }
        outputSegments = segments
        for connection in dirty { connection.pollPending = false }
        dirty.removeAllKeepingCapacity()
        for key in finished {
            if let connection = connections.removeValue(forKey: key) {
                connection.inTable = false
                settle(key, connection)
            }
        }
        connectionsEarliest = earliest
    }

    /// One connection's output and timers at `now`: its segments transmitted,
    /// its listener told, `key` noted in `finished` when it is done. Returns
    /// its next deadline (.max for none), which it also keeps.
    private func run(
        _ connection: TCPConnection, _ key: ConnectionKey, now: UInt64, segments: inout [TCPOutgoing],
        finished: inout [ConnectionKey]
    ) -> UInt64 {
        let before = connection.state
        connection.output(now: now, into: &segments)
        for item in segments {
            transmit(item, of: connection, to: key.remote, now: now)
        }
        segments.removeAllKeepingCapacity()
        if connection.state != before { settle(key, connection) }
        if connection.isFinished {
            finished.append(key)
            connection.knownDeadline = .max
            return .max
        }
        let next = connection.nextDeadline ?? .max
        connection.knownDeadline = next
        return next
    }

    /// Marks `connection` for the next ``poll(now:)``: call it after giving it
    /// data, reading from it (its window may open), closing or aborting it.
    public func touch(_ connection: TCPConnection) {
        // A flag on the connection rather than a search of `dirty`: under a
        // SYN flood both the table and this list are long.
        if !connection.pollPending {
            connection.pollPending = true
            dirty.append(connection)
        }
    }

    /// The earliest time ``poll(now:)`` has timed work, nil if none.
    public var nextDeadline: UInt64? {
        var earliest: UInt64? = nil
        for connection in connections.values {
            if let deadline = connection.nextDeadline, deadline < (earliest ?? .max) { earliest = deadline }
        }
        if let arp = arpDeadline, arp < (earliest ?? .max) { earliest = arp }
        return earliest
    }

    /// The earliest expiry or ARP retry of the packets held for ARP, nil if none.
    private var arpDeadline: UInt64? {
        unresolved.isEmpty || arpNextEvent == .max ? nil : arpNextEvent
    }

    /// Takes what changed since the last call.
    public func takeEvents() -> NetEvents {
        let taken = events
        events = NetEvents()
        return taken
    }

    /// Forgets the events (``events`` read in place), keeping the arrays'
    /// memory for the next ones: what the network thread does every turn,
    /// without allocating.
    public func clearEvents() {
        events.connections.removeAllKeepingCapacity()
        events.listeners.removeAllKeepingCapacity()
        events.udpPorts.removeAllKeepingCapacity()
    }

    /// Sends a segment of `connection`'s latest output, its payload copied
    /// from the connection's send buffer straight into the frame.
    private func transmit(_ item: TCPOutgoing, of connection: TCPConnection, to destination: IPv4Address, now: UInt64) {
        counters.tcpSegmentsSent += 1
        let source = interface.address
        let size = item.encodedSize
        send(protocolNumber: IPProtocol.tcp, to: destination, transportSize: size, now: now) { writer in
            item.segment.write(
                into: writer.claim(size), source: source, destination: destination, payloadCount: item.payloadCount
            ) { connection.writePayload(of: item, to: $0) }
        }
    }

    private func transmit(_ segment: TCPSegment, to destination: IPv4Address, now: UInt64) {
        counters.tcpSegmentsSent += 1
        let source = interface.address
        send(protocolNumber: IPProtocol.tcp, to: destination, transportSize: segment.encodedSize, now: now) { writer in
            segment.write(into: writer.claim(segment.encodedSize), source: source, destination: destination)
        }
    }

    /// Builds an IPv4 frame to `destination` around a transport message of
    /// `transportSize` bytes that `body` writes, in one block, and sends it to
    /// the next hop (or holds it until ARP finds the next hop).
    private func send(
        protocolNumber: UInt8, to destination: IPv4Address, transportSize: Int, now: UInt64,
        body: (inout ByteWriter) -> Void
    ) {
        guard let nextHop = nextHop(to: destination) else {
            counters.noRoute += 1
            return
        }
        let totalLength = IPv4Header.minimumSize + transportSize
        let known = endpoint.arpCache.lookup(nextHop, now: now)
        var ip = IPv4Header(
            totalLength: totalLength, protocolNumber: protocolNumber, source: interface.address, destination: destination)
        ip.identification = endpoint.takeIdentification()
        let size = EthernetHeader.size + totalLength
        if let known, outbox.isEmpty, let transmit = directTransmit {
            let total = max(size, EthernetHeader.minimumFrame)
            let written = transmit(total) { base in
                var writer = ByteWriter(base.assumingMemoryBound(to: UInt8.self), capacity: total)
                EthernetHeader(destination: known, source: mac, etherType: EtherType.ipv4).write(to: &writer)
                ip.write(to: &writer)
                body(&writer)
                if writer.offset < total {
                    (base + writer.offset).initializeMemory(as: UInt8.self, repeating: 0, count: total - writer.offset)
                }
            }
            if written {
                endpoint.counters.sentFrames += 1
                return
            }
        }
        let frame = [UInt8].frame(size: size, minimum: EthernetHeader.minimumFrame) { writer in
            EthernetHeader(destination: known ?? EthernetHeader.broadcast, source: mac, etherType: EtherType.ipv4)
                .write(to: &writer)
            ip.write(to: &writer)
            body(&writer)
        }
        if known != nil {
            endpoint.counters.sentFrames += 1
            outbox.append(frame)
            return
        }
        if unresolved.count >= max(configuration.unresolvedLimit, 1) {
            // The oldest held packet makes room (see unresolvedLimit); its next
            // hop stops being asked for unless another packet waits for it, so
            // that `arpAsked` never holds more than the packets' next hops.
            let evicted = unresolved.removeFirst()
            counters.unresolved += 1
            if evicted.nextHop != nextHop && !unresolved.contains(where: { $0.nextHop == evicted.nextHop }) {
                arpAsked[evicted.nextHop] = nil
            }
        }
        let expires = now &+ configuration.arpGiveUp
        unresolved.append(Unresolved(nextHop: nextHop, frame: frame, expires: expires))
        if expires < arpNextEvent { arpNextEvent = expires }
        askARP(for: nextHop, now: now, force: false)
    }

    private func askARP(for address: IPv4Address, now: UInt64, force: Bool) {
        if !force, let asked = arpAsked[address], now &- asked < configuration.arpRetry { return }
        arpAsked[address] = now
        let retry = now &+ configuration.arpRetry
        if retry < arpNextEvent { arpNextEvent = retry }
        counters.arpRequestsSent += 1
        endpoint.counters.sentFrames += 1
        outbox.append(
            ARPPacket(
                operation: ARPPacket.request, senderMAC: mac, senderIP: interface.address,
                targetMAC: [0, 0, 0, 0, 0, 0], targetIP: address
            ).frame(from: mac, to: EthernetHeader.broadcast))
    }

    /// Sends the held packets whose next hop ARP has now found.
    private func releaseResolved(now: UInt64) {
        guard !unresolved.isEmpty else { return }
        var waiting = FIFO<Unresolved>()
        for var packet in unresolved {
            if let found = endpoint.arpCache.lookup(packet.nextHop, now: now) {
                packet.frame.replaceSubrange(0..<6, with: found)
                arpAsked[packet.nextHop] = nil
                endpoint.counters.sentFrames += 1
                outbox.append(packet.frame)
            } else {
                waiting.append(packet)
            }
        }
        unresolved = waiting
    }

    /// Drops held packets whose next hop never answered; asks again for the
    /// rest. `arpAsked` holds exactly the next hops of the held packets
    /// (``send`` adds them, eviction and ``releaseResolved(now:)`` take them
    /// out), so a poll with nothing expired and no retry due changes nothing
    /// and builds nothing.
    private func expireUnresolved(now: UInt64) {
        guard !unresolved.isEmpty else {
            if !arpAsked.isEmpty { arpAsked.removeAll() }
            arpNextEvent = .max
            return
        }
        guard now >= arpNextEvent else { return }
        defer {
            // Found again only here, when something happened.
            var next = UInt64.max
            for packet in unresolved where packet.expires < next { next = packet.expires }
            for asked in arpAsked.values where asked &+ configuration.arpRetry < next { next = asked &+ configuration.arpRetry }
            arpNextEvent = next
        }
        if unresolved.contains(where: { now >= $0.expires }) {
            let before = unresolved.count
            unresolved.removeInPlace { now >= $0.expires }
            counters.unresolved += before - unresolved.count
            var forgotten: [IPv4Address] = []
            for address in arpAsked.keys where !unresolved.contains(where: { $0.nextHop == address }) {
                forgotten.append(address)
            }
            for address in forgotten { arpAsked[address] = nil }
        }
        guard arpAsked.values.contains(where: { now &- $0 >= configuration.arpRetry }) else { return }
        var due: [IPv4Address] = []
        for (address, asked) in arpAsked where now &- asked >= configuration.arpRetry { due.append(address) }
        for address in due { askARP(for: address, now: now, force: true) }
    }

    /// Where a packet to `destination` goes first: itself when on link, else
    /// the gateway; nil when there is no route.
    public func nextHop(to destination: IPv4Address) -> IPv4Address? {
        if interface.isOnLink(destination) { return destination }
        return gateway
    }

    // MARK: - TCP for applications

    /// Starts listening on `port`, with an accept backlog of `backlog`
    /// established connections and a SYN queue of
    /// ``NetStackConfiguration/synQueueLimit`` half-open ones; false if
    /// something already listens there.
    public func listen(port: UInt16, backlog: Int) -> Bool {
        guard listeners[port] == nil else { return false }
        listeners[port] = Listener(backlog: max(backlog, 1), synQueueLimit: max(configuration.synQueueLimit, 1))
        return true
    }

    /// Stops listening: connections not yet accepted are reset.
    public func stopListening(port: UInt16, now: UInt64) {
        guard let listener = listeners.removeValue(forKey: port) else { return }
        for connection in listener.ready {
            connection.abort(now: now)
            touch(connection)
        }
        for key in listener.embryonic {
            if let connection = connections[key] {
                connection.inSYNQueue = false
                connection.abort(now: now)
                touch(connection)
            }
        }
        events.listeners.append(port)
    }

    public func isListening(port: UInt16) -> Bool { listeners[port] != nil }

    /// The oldest established connection waiting on `port`, if any.
    public func accept(port: UInt16) -> TCPConnection? {
        guard let listener = listeners[port], !listener.ready.isEmpty else { return nil }
        return listener.ready.removeFirst()
    }

    /// Opens a connection to `remote` from an ephemeral port; nil when every
    /// ephemeral port to that peer is taken. The SYN goes at the next ``poll(now:)``.
    public func connect(to remote: TCPEndpoint, now: UInt64) -> TCPConnection? {
        let range = Self.ephemeralPorts
        let span = Int(range.upperBound - range.lowerBound) + 1
        for _ in 0..<span {
            let port = nextEphemeralPort
            nextEphemeralPort = port == range.upperBound ? range.lowerBound : port + 1
            let key = ConnectionKey(remote: remote.address, remotePort: remote.port, localPort: port)
            guard connections[key] == nil, listeners[port] == nil else { continue }
            let connection = TCPConnection(
                connectingFrom: TCPEndpoint(address: interface.address, port: port), to: remote,
                initialSequence: initialSequence(for: key, now: now), now: now, configuration: configuration.tcp)
            connections[key] = connection
            connection.inTable = true
            touch(connection)
            counters.tcpConnectionsOpened += 1
            return connection
        }
        return nil
    }

    /// RFC 6528: a clock that ticks every 4 µs plus a keyed hash of the connection.
    func initialSequence(for key: ConnectionKey, now: UInt64) -> UInt32 {
        var hash = sequenceSecret ^ key.remote.value
        hash = hash &* 0x9E37_79B1
        hash ^= UInt32(key.remotePort) << 16 | UInt32(key.localPort)
        hash = hash &* 0x85EB_CA6B
        hash ^= hash >> 13
        hash = hash &* 0xC2B2_AE35
        hash ^= hash >> 16
        return UInt32(truncatingIfNeeded: now / 4000) &+ hash
    }

    // MARK: - UDP for applications

    /// Binds `port` for receiving; false if it is taken.
    public func bindUDP(port: UInt16) -> Bool {
        guard udpPorts[port] == nil else { return false }
        udpPorts[port] = []
        return true
    }

    public func unbindUDP(port: UInt16) {
        udpPorts[port] = nil
        events.udpPorts.append(port)
    }

    /// The oldest datagram received on `port`, if any.
    public func receiveUDP(port: UInt16) -> UDPMessage? {
        guard var queue = udpPorts[port], !queue.isEmpty else { return nil }
        let message = queue.removeFirst()
        udpPorts[port] = queue
        return message
    }

    /// Sends `payload` from our `port` to `destination`; false if it cannot
    /// fit one unfragmented packet (1472 bytes of payload on Ethernet).
    public func sendUDP(_ payload: [UInt8], from port: UInt16, to destination: TCPEndpoint, now: UInt64) -> Bool {
        let datagram = UDPDatagram(sourcePort: port, destinationPort: destination.port, payload: payload)
        guard IPv4Header.minimumSize + datagram.encodedSize <= 1500 else { return false }
        counters.udpSent += 1
        let source = interface.address
        send(protocolNumber: IPProtocol.udp, to: destination.address, transportSize: datagram.encodedSize, now: now) {
            writer in
            datagram.write(to: &writer, source: source, destination: destination.address)
        }
        return true
    }
}
