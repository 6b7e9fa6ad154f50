/// Blocking sockets over a ``NetworkStack``, for application threads on any
/// core. A call that has to wait parks its thread (it costs no CPU, and a
/// core whose threads all wait halts); the network thread wakes it when the
/// socket changes. Every blocking call takes an optional timeout in
/// nanoseconds (nil waits as long as it takes).

/// Why a socket call did not succeed.
public enum SocketError: Error, Equatable {
    /// The timeout passed first.
    case timedOut
    /// The peer reset the connection.
    case reset
    /// Nobody listens at the address (the connection attempt was reset).
    case refused
    /// The socket was closed (by this side, or the listener stopped).
    case closed
    /// The port is already in use.
    case portInUse
    /// No ephemeral port is free for another connection to that peer.
    case noPorts
    /// No route to the address: not on the interface's network, and no `gw=`.
    case unreachable
    /// A UDP payload that does not fit one packet.
    case tooLarge

    /// The error for a connection that ended for `reason`.
    static func ended(_ reason: TCPCloseReason?) -> SocketError {
        switch reason {
        case .reset: return .reset
        case .refused: return .refused
        case .timedOut: return .timedOut
        case .normal, .aborted, nil: return .closed
        }
    }
}

/// A TSC deadline `nanoseconds` from now, nil for none.
private func deadline(_ nanoseconds: UInt64?) -> UInt64? {
    nanoseconds.map { Clock.deadline(afterNanoseconds: $0) }
}

/// A listening TCP port.
public final class TCPListener {
    public let stack: NetworkStack
    public let port: UInt16
    private var closed = false

    /// Listens on `port`, holding up to `backlog` connections that finished
    /// their handshake until ``accept(timeout:)`` takes them; SYNs beyond
    /// that are dropped, and the peer retries. Connections still in their
    /// handshake wait apart, in a SYN queue of their own
    /// (``NetStackConfiguration/synQueueLimit``), so that half-open
    /// connections never fill the backlog.
    public static func listen(on stack: NetworkStack, port: UInt16, backlog: Int = 32) throws(SocketError) -> TCPListener {
        guard stack.withEngine({ $0.listen(port: port, backlog: backlog) }) else { throw .portInUse }
        return TCPListener(stack: stack, port: port)
    }

    private init(stack: NetworkStack, port: UInt16) {
        self.stack = stack
        self.port = port
    }

    deinit { close() }

    /// The next established connection.
    public func accept(timeout: UInt64? = nil) throws(SocketError) -> TCPStream {
        let port = self.port
        let result = stack.block(on: .listener(port), until: deadline(timeout)) { engine, _ -> NetworkStack.Attempt<TCPConnection> in
            if let connection = engine.accept(port: port) { return .done(connection) }
            return engine.isListening(port: port) ? .wait : .failed(.closed)
        }
        switch result {
        case .success(let connection): return TCPStream(stack: stack, connection: connection)
        case .failure(let error): throw error
        }
    }

    /// Stops listening; connections not yet accepted are reset.
    public func close() {
        guard !closed else { return }
        closed = true
        let port = self.port
        stack.withEngine { $0.stopListening(port: port, now: Clock.now) }
        stack.kick()
    }
}

/// One TCP connection, either end.
public final class TCPStream {
    public let stack: NetworkStack
    let connection: TCPConnection
    private var closed = false

    init(stack: NetworkStack, connection: TCPConnection) {
        self.stack = stack
        self.connection = connection
    }

    deinit { close() }

    /// Opens a connection to `remote` and waits for the handshake.
    public static func connect(on stack: NetworkStack, to remote: TCPEndpoint, timeout: UInt64? = nil) throws(SocketError) -> TCPStream {
        guard stack.withEngine({ $0.nextHop(to: remote.address) }) != nil else { throw .unreachable }
        guard let connection = stack.withEngine({ $0.connect(to: remote, now: Clock.now) }) else { throw .noPorts }
        stack.kick()
        let stream = TCPStream(stack: stack, connection: connection)
        let result = stack.block(on: stream.key, until: deadline(timeout)) { _, _ -> NetworkStack.Attempt<Void> in
            switch connection.state {
            case .synSent, .synReceived: return .wait
            case .closed: return .failed(.ended(connection.closeReason))
            default: return .done(())
            }
        }
        if case .failure(let error) = result {
            stream.abort()
            throw error
        }
        return stream
    }

    var key: NetworkStack.WaitKey { .connection(ObjectIdentifier(connection)) }

    public var local: TCPEndpoint { connection.local }
    public var remote: TCPEndpoint { connection.remote }
    public var state: TCPState { stack.withEngine { _ in connection.state } }

    /// Up to `maximum` received bytes, waiting for at least one; empty at the
    /// end of the stream (the peer closed its side).
    public func receive(maximum: Int = 65536, timeout: UInt64? = nil) throws(SocketError) -> [UInt8] {
        let connection = self.connection
        var openedWindow = false
        let result = stack.block(on: key, until: deadline(timeout)) { engine, _ -> NetworkStack.Attempt<[UInt8]> in
            if connection.bytesAvailable > 0 {
                openedWindow = true
                let bytes = connection.receive(maximum: maximum)
                engine.touch(connection)
                return .done(bytes)
            }
            if connection.receivedFIN { return .done([]) }
            if connection.state == .closed { return .failed(.ended(connection.closeReason)) }
            return .wait
        }
        if openedWindow { stack.kick() }
        switch result {
        case .success(let bytes): return bytes
        case .failure(let error): throw error
        }
    }

    /// Queues all of `bytes` for sending, waiting for room in the send buffer
    /// as the peer acknowledges. Returns once the last byte is queued (not
    /// when it is acknowledged).
    public func send(_ bytes: [UInt8], timeout: UInt64? = nil) throws(SocketError) {
        let connection = self.connection
        var offset = 0
        let stack = self.stack
        let result = stack.block(on: key, until: deadline(timeout)) { engine, _ -> NetworkStack.Attempt<Void> in
            switch connection.state {
            case .closed: return .failed(.ended(connection.closeReason))
            case .finWait1, .finWait2, .closing, .lastAck, .timeWait: return .failed(.closed)
            default: break
            }
            let taken = connection.send(bytes[offset...])
            if taken > 0 {
                offset += taken
                engine.touch(connection)
                stack.kick()
            }
            return offset == bytes.count ? .done(()) : .wait
        }
        if case .failure(let error) = result { throw error }
    }

    /// Closes the stream: the peer receives what was queued, then the end of
    /// the stream. Nothing more is read: bytes not yet received are dropped,
    /// and what the peer still sends is thrown away until it has acknowledged
    /// our last bytes, and reset after (``TCPConnection/close(now:discardingInput:)``).
    /// Does not wait.
    public func close() {
        guard !closed else { return }
        closed = true
        let connection = self.connection
        stack.withEngine { engine in
            connection.close(now: Clock.now, discardingInput: true)
            engine.touch(connection)
        }
        stack.kick()
    }

    /// Drops the connection at once with a reset.
    public func abort() {
        closed = true
        let connection = self.connection
        stack.withEngine { engine in
            connection.abort(now: Clock.now)
            engine.touch(connection)
        }
        stack.kick()
    }
}

/// A bound UDP port.
public final class UDPSocket {
    public let stack: NetworkStack
    public let port: UInt16
    private var closed = false

    public static func bind(on stack: NetworkStack, port: UInt16) throws(SocketError) -> UDPSocket {
        guard stack.withEngine({ $0.bindUDP(port: port) }) else { throw .portInUse }
        return UDPSocket(stack: stack, port: port)
    }

    private init(stack: NetworkStack, port: UInt16) {
        self.stack = stack
        self.port = port
    }

    deinit { close() }

    /// The next datagram for this port.
    public func receive(timeout: UInt64? = nil) throws(SocketError) -> UDPMessage {
        let port = self.port
        let result = stack.block(on: .udp(port), until: deadline(timeout)) { engine, _ -> NetworkStack.Attempt<UDPMessage> in
            if let message = engine.receiveUDP(port: port) { return .done(message) }
            return .wait
        }
        switch result {
        case .success(let message): return message
        case .failure(let error): throw error
        }
    }

    /// Sends `payload` (at most 1472 bytes) to `destination`.
    public func send(_ payload: [UInt8], to destination: TCPEndpoint) throws(SocketError) {
        let port = self.port
        guard stack.withEngine({ $0.sendUDP(payload, from: port, to: destination, now: Clock.now) }) else {
            throw .tooLarge
        }
        stack.kick()
    }

    public func close() {
        guard !closed else { return }
        closed = true
        let port = self.port
        stack.withEngine { $0.unbindUDP(port: port) }
    }
}
