// One TCP connection's state machine (RFC 9293, née 793), with RFC 6298
// retransmission timing, RFC 5681/6582 congestion control (slow start,
// congestion avoidance, fast retransmit and NewReno recovery, RFC 3042 limited
// transmit), delayed ACKs, silly-window avoidance on both sides (RFC 1122
// §4.2.3) and zero-window probing. No I/O and no clock of its own: the caller
// hands it segments and the time, and transmits what `output(now:)` returns.
// Plain Swift, unit-tested on the host (Tests/ToroKernelTests/TCPConnectionTests.swift).
//
// Choices worth knowing:
// - An RTO goes back to SND.UNA (go-back-N with a one-segment congestion
//   window), so the earliest unacknowledged segment is resent first and the
//   rest follow as ACKs come back. No SACK, no window scaling, no timestamps,
//   no urgent data, no Nagle (every `output` sends what the windows allow).
// - RTT samples come from every ACK of data sent only once (as Linux), Karn's
//   rule excluding ACKs that cover retransmitted data; backoff lasts until
//   the next sample. Clock granularity G = 1 ms; minimumRTO 200 ms.
// - A reset is accepted only at exactly RCV.NXT; one elsewhere in the window
//   gets a challenge ACK (RFC 5961 §3.2), and so does a SYN on a synchronized
//   connection (RFC 5961 §4.2, RFC 9293 §3.10.7.4) and an ACK of data never
//   sent (§5.2); the connection stays. Challenge ACKs are rate-limited per
//   connection (RFC 5961 §7). A SYN in the window of SYN-RECEIVED still resets.
// - A half-open passive connection (SYN-RECEIVED) resends its SYN-ACK at most
//   `maximumSYNACKRetransmissions` times (1 s, backing off: 63 s in all by
//   default, Linux's tcp_synack_retries) and then ends without a reset: its
//   peer never answered, and under a SYN flood does not exist.
// - Every value from the peer is treated as hostile: sequence and
//   acknowledgement numbers are compared and moved in wrapping arithmetic
//   (seqDiff/seqAdd), windows and the MSS are widened from UInt16, the MSS
//   it announces is raised to `minimumPeerMSS`, and out-of-order pieces held
//   are bounded in bytes and in number.
// - FIN_WAIT_2's timeout restarts with every segment from the peer, and the
//   idle timeout counts from the last segment received in any synchronized
//   state but TIME_WAIT.
// - An application that closes for good (`close(now:discardingInput: true)`,
//   what a socket's close does) reads nothing more: bytes it left unread are
//   dropped, and data that arrives while our last data and FIN are still
//   unacknowledged is acknowledged and thrown away (RFC 9112 §9.6's staged
//   close: the peer's sends complete, so it reads our answer instead of a
//   reset). Once the peer has acknowledged everything, FIN included
//   (FIN_WAIT_2), more data gets a reset (RFC 1122 §4.2.2.13), and FIN_WAIT_2's
//   timeout no longer restarts. A peer that keeps sending to a closed
//   application can hold neither buffer space nor the connection.
// - Sequence number layout: the SYN at ISS, data byte k at ISS+1+k, the FIN
//   after the last byte. SND.NXT is the highest ever sent; `sendPointer` is
//   where sending resumes (below SND.NXT after an RTO).

/// Tunables of a connection. Times are nanoseconds.
public struct TCPConfiguration {
    /// What we announce; we send min(ours, the peer's MSS, or 536 if it sent none).
    public var maximumSegmentSize: Int = 1460
    /// Bytes of in-order data held for the application: the advertised window
    /// (no window scaling, so advertisements stop at 65535).
    public var receiveBufferSize: Int = 65535
    /// Bytes accepted from the application and not yet acknowledged.
    public var sendBufferSize: Int = 65536
    /// RFC 6298 (2.1).
    public var initialRTO: UInt64 = 1_000_000_000
    /// A documented deviation from RFC 6298's 1 s (as Linux).
    public var minimumRTO: UInt64 = 200_000_000
    public var maximumRTO: UInt64 = 60_000_000_000
    /// Consecutive RTO expiries of the same data (or SYN) tolerated: the next one
    /// gives up (closeReason .timedOut, RST sent).
    public var maximumRetransmissions: Int = 8
    /// SYN-ACK retransmissions of a passive connection before it gives up,
    /// silently: with `initialRTO` 1 s doubling, sent at 0, 1, 3, 7, 15, 31 s
    /// and forgotten at 63 s (Linux's tcp_synack_retries, 5). The listener's
    /// SYN queue bound (NetStackConfiguration) is what protects service
    /// during a flood; this only makes every half-open entry end.
    public var maximumSYNACKRetransmissions: Int = 5
    /// Challenge ACKs (RFC 5961) sent at most this many times per
    /// `challengeACKInterval` and connection; more are not answered (§7), so
    /// a blind attacker cannot make us send as fast as it sends.
    public var challengeACKLimit: Int = 10
    public var challengeACKInterval: UInt64 = 1_000_000_000
    /// The smallest MSS we believe from a peer (Linux's tcp_min_snd_mss): an
    /// MSS of 0 or 1 would make every byte a segment and every segment a
    /// send time kept for the RTT estimate.
    public var minimumPeerMSS: Int = 48
    /// Out-of-order pieces held at most (besides their byte bound,
    /// the receive buffer): tiny pieces must not make the list long.
    public var maximumHeldSegments: Int = 64
    /// How long TIME_WAIT lasts (2*MSL, shortened).
    public var timeWait: UInt64 = 1_000_000_000
    /// In a synchronized state, nothing received from the peer for this long
    /// aborts the connection (RST, .timedOut): the peer vanished. 0 = never.
    public var idleTimeout: UInt64 = 30_000_000_000
    /// FIN_WAIT_2 without the peer's FIN for this long → closed (.timedOut).
    /// Any segment from the peer restarts it: a peer still sending is alive
    /// (the application may still be reading after its close).
    public var finWait2Timeout: UInt64 = 10_000_000_000
    /// How long a pure ACK may wait for data to ride on. ACKs go at once for
    /// every second segment, out-of-order data, a FIN and window updates.
    public var delayedACK: UInt64 = 20_000_000

    public init() {}
}

public enum TCPState: Equatable {
    case synSent, synReceived, established, finWait1, finWait2, closeWait, closing, lastAck, timeWait, closed
}

public enum TCPCloseReason: Equatable {
    /// Both FINs exchanged (or closed before the connection came up).
    case normal
    /// The peer reset a synchronized connection.
    case reset
    /// The peer answered our SYN with a reset.
    case refused
    /// Retransmissions exhausted, the peer went silent, or FIN_WAIT_2 lasted too long.
    case timedOut
    /// ``TCPConnection/abort(now:)``.
    case aborted
}

public struct TCPConnectionCounters: Equatable {
    public var segmentsReceived = 0
    public var segmentsSent = 0
    /// Segments sent again (RTO, fast retransmit, go-back after an RTO).
    public var retransmissions = 0
    public var fastRetransmissions = 0
    /// RTO expiries.
    public var timeouts = 0
    public var outOfOrderSegments = 0
    public var duplicateSegments = 0
    /// Ignored as unacceptable.
    public var badSegments = 0
    /// Challenge ACKs sent (RFC 5961), and those the rate limit held back.
    public var challengeACKs = 0
    public var challengeACKsSuppressed = 0

    public init() {}
}

/// When a segment ending at `end` was first sent.
struct TCPSentTime {
    var end: UInt32
    var time: UInt64
}

/// A received segment held until the gap before it fills.
struct TCPHeldSegment {
    var sequence: UInt32
    var data: [UInt8]
    var fin: Bool
    var end: UInt32 { seqAdd(sequence, data.count) }
}

/// A segment as ``TCPConnection/output(now:into:)`` emits it: its payload, if
/// any, is still in the send buffer (`payloadCount` bytes, `payloadOffset`
/// bytes after its front) and `segment.payload` is empty. The stack copies those
/// bytes once, from the buffer straight into the frame
/// (``TCPConnection/writePayload(of:to:)``), before anything else touches
/// the connection; ``TCPConnection/output(now:)`` copies them into `payload`.
struct TCPOutgoing {
    var segment: TCPSegment
    var payloadOffset = 0
    var payloadCount = 0

    /// Payload bytes plus one for SYN and one for FIN.
    var sequenceLength: Int { payloadCount + segment.sequenceLength }
    /// Header (with options) plus payload, in bytes.
    var encodedSize: Int { segment.headerLength + payloadCount }
}

public final class TCPConnection {
    public let local: TCPEndpoint
    public let remote: TCPEndpoint
    public let configuration: TCPConfiguration
    public private(set) var state: TCPState
    /// Set when the state becomes .closed (or .timeWait, with .normal).
    public private(set) var closeReason: TCPCloseReason?
    public private(set) var counters = TCPConnectionCounters()
    /// True once the peer's FIN has been received in sequence: after
    /// ``bytesAvailable`` reaches 0, reads are at end of stream.
    public private(set) var receivedFIN = false
    /// The application closed for good and reads nothing more
    /// (``close(now:discardingInput:)``): received data is thrown away.
    public private(set) var discardsInput = false

    /// Opened by a SYN from the peer (a close of the half-open connection is a reset, not a refusal).
    let passive: Bool

    // MARK: Send sequence space (RFC 793 §3.2)
    let iss: UInt32
    var sndUna: UInt32
    /// One past the highest sequence number ever sent (RFC 793's SND.NXT).
    var sndNxt: UInt32
    /// Where sending continues: SND.NXT, or earlier after an RTO (go-back-N).
    var sendPointer: UInt32
    var sndWnd = 0
    var maxSndWnd = 0
    var sndWl1: UInt32 = 0
    var sndWl2: UInt32 = 0
    var peerMSS = 536
    var congestionWindow = 0
    var slowStartThreshold = 1 << 30
    var duplicateAcks = 0
    /// In fast recovery until SND.UNA reaches this (RFC 6582 "recover").
    var recoveryPoint: UInt32?
    var fastRetransmitDue = false

    // MARK: Send buffer: the bytes from `sendBufferSequence` on.
    let sendBuffer = TCPByteRing()
    var sendBufferSequence: UInt32
    /// close() was called: a FIN follows the queued data, at `finSequence`.
    var finQueued = false

    // MARK: Receive sequence space
    var irs: UInt32 = 0
    var rcvNxt: UInt32 = 0
    /// The right edge of the last window advertised; never moves left.
    var rcvAdvertisedRight: UInt32 = 0
    /// In-order bytes the application has not taken yet.
    let receiveBuffer = TCPByteRing()
    var held: [TCPHeldSegment] = []
    var heldBytes = 0

    // MARK: Acknowledgement
    var ackNow = false
    var delayedAckDeadline: UInt64?
    var segmentsAwaitingAck = 0

    // MARK: Timers
    var rto: UInt64
    var srtt: UInt64?
    var rttvar: UInt64 = 0
    var rtoDeadline: UInt64?
    var retries = 0
    /// When each segment in flight was first sent, oldest first from
    /// `sentTimesHead`: every ACK of data sent only once is an RTT sample (as Linux).
    var sentTimes: [TCPSentTime] = []
    var sentTimesHead = 0
    /// [SND.UNA, retransmittedHigh) went out more than once: an ACK covering
    /// any of it gives no sample (Karn's rule).
    var retransmittedHigh: UInt32
    var lastReceived: UInt64
    var timeWaitDeadline: UInt64?
    var finWait2Deadline: UInt64?
    /// A reset to send at the next output (abort, give-up, answer to a bad ACK).
    var pendingRST: TCPSegment?

    // MARK: The stack's bookkeeping (NetStackCore's, kept here to spare it a
    // search or a hash per segment)
    /// In ``NetStackCore/dirty``: the next poll runs this connection.
    var pollPending = false
    /// ``nextDeadline`` as the stack last read it (.max for none): valid while
    /// the connection is not `pollPending`, since only a segment, an
    /// application call (both touch it) or its own output move it.
    var knownDeadline = UInt64.max
    /// In a listener's SYN queue: a passive connection not yet established.
    var inSYNQueue = false
    /// In the stack's table of connections.
    var inTable = false
    /// The RFC 5961 §7 rate limit: when the current interval began, and the
    /// challenge ACKs sent in it.
    var challengeIntervalStart: UInt64 = 0
    var challengeACKsInInterval = 0

    /// The clock granularity G of RFC 6298 (2.2): 1 ms.
    static let granularity: UInt64 = 1_000_000

    /// Passive open: `syn` is a SYN (no ACK) that arrived for a listening
    /// port. State synReceived; the SYN-ACK (with our MSS) is produced by the
    /// next `output(now:)`.
    public convenience init(
        acceptingSYN syn: TCPSegment, local: TCPEndpoint, remote: TCPEndpoint, initialSequence: UInt32, now: UInt64,
        configuration: TCPConfiguration
    ) {
        self.init(local: local, remote: remote, passive: true, initialSequence: initialSequence, now: now, configuration: configuration)
        counters.segmentsReceived = 1
        irs = syn.sequence
        rcvNxt = syn.sequence &+ 1
        rcvAdvertisedRight = seqAdd(rcvNxt, initialWindow)
        setPeerMSS(syn.maximumSegmentSize)
        sndWnd = Int(syn.window)
        maxSndWnd = sndWnd
        sndWl1 = syn.sequence
        sndWl2 = initialSequence
    }

    /// Active open: state synSent; the SYN comes from the next `output(now:)`.
    public convenience init(
        connectingFrom local: TCPEndpoint, to remote: TCPEndpoint, initialSequence: UInt32, now: UInt64,
        configuration: TCPConfiguration
    ) {
        self.init(local: local, remote: remote, passive: false, initialSequence: initialSequence, now: now, configuration: configuration)
        setPeerMSS(nil)
    }

    /// What both opens share: our side of the sequence space starts at
    /// `initialSequence`, nothing sent yet.
    private init(
        local: TCPEndpoint, remote: TCPEndpoint, passive: Bool, initialSequence: UInt32, now: UInt64,
        configuration: TCPConfiguration
    ) {
        self.local = local
        self.remote = remote
        self.configuration = configuration
        self.passive = passive
        state = passive ? .synReceived : .synSent
        iss = initialSequence
        sndUna = initialSequence
        sndNxt = initialSequence
        sendPointer = initialSequence
        retransmittedHigh = initialSequence
        sendBufferSequence = initialSequence &+ 1
        rto = configuration.initialRTO
        lastReceived = now
    }

    // MARK: - Public state

    /// The smoothed RTT, once measured.
    public var smoothedRTT: UInt64? { srtt }
    /// The current retransmission timeout (backed off after expiries).
    public var retransmissionTimeout: UInt64 { rto }

    /// The segment size we send: min(our MSS, the peer's).
    public var effectiveMSS: Int { max(1, min(configuration.maximumSegmentSize, peerMSS)) }

    /// True in the states where data still flows in at least one direction:
    /// established, finWait1 and finWait2 (the peer may still send, we read),
    /// closeWait (we may still send). False during the handshake and from
    /// closing/lastAck on.
    public var isEstablished: Bool {
        switch state {
        case .established, .finWait1, .finWait2, .closeWait: return true
        default: return false
        }
    }

    /// True when the connection is closed and has nothing more to send: the
    /// owner may forget it. Received bytes not yet taken stay readable.
    public var isFinished: Bool { state == .closed && pendingRST == nil }

    /// Bytes sent (or queued) and not yet acknowledged by the peer.
    public var unacknowledgedBytes: Int { sendBuffer.count }

    /// How many bytes `send` accepts now.
    public var sendSpace: Int {
        guard canQueue else { return 0 }
        return max(0, configuration.sendBufferSize - unacknowledgedBytes)
    }

    /// In-order received bytes not yet taken by `receive`.
    public var bytesAvailable: Int { receiveBuffer.count }

    /// The earliest time `output(now:)` has time-based work (RTO or persist,
    /// delayed ACK, TIME_WAIT end, idle timeout, FIN_WAIT_2 timeout); 0 when
    /// something is due already (an ACK, a reset, a SYN); nil if nothing.
    public var nextDeadline: UInt64? {
        if pendingRST != nil { return 0 }
        if state == .closed { return nil }
        if ackNow || fastRetransmitDue { return 0 }
        if (state == .synSent || state == .synReceived) && sendPointer == iss { return 0 }
        var deadline = Self.earlier(rtoDeadline, delayedAckDeadline)
        deadline = Self.earlier(deadline, timeWaitDeadline)
        deadline = Self.earlier(deadline, finWait2Deadline)
        if isSynchronized && state != .timeWait && configuration.idleTimeout > 0 {
            deadline = Self.earlier(deadline, lastReceived &+ configuration.idleTimeout)
        }
        return deadline
    }

    /// The earlier of two optional times (nil: none). A plain function: a
    /// nested closure here cost calls in every walk of the stack's table.
    @inline(__always)
    static func earlier(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
        guard let a else { return b }
        guard let b else { return a }
        return a < b ? a : b
    }

    // MARK: - Application calls

    /// Copies up to `sendSpace` bytes of `bytes` into the send buffer; returns
    /// how many. 0 once close() was called, when closed or reset, and in
    /// states that cannot send. Data given during synSent/synReceived is
    /// queued and sent after the handshake.
    public func send(_ bytes: ArraySlice<UInt8>) -> Int {
        let count = min(bytes.count, sendSpace)
        guard count > 0 else { return 0 }
        sendBuffer.append(bytes[bytes.startIndex..<(bytes.startIndex + count)])
        return count
    }

    /// Takes up to `maximum` in-order received bytes (empty if none). Reading
    /// opens the window; when it grows by min(MSS, half the buffer) past what
    /// was last advertised, a window update goes with the next output.
    public func receive(maximum: Int) -> [UInt8] {
        let count = min(max(0, maximum), bytesAvailable)
        guard count > 0 else { return [] }
        let bytes = receiveBuffer.bytes(from: 0, count: count)
        receiveBuffer.removeFirst(count)
        if mayReceive && !receivedFIN && advertisedWindow() > currentWindow { ackNow = true }
        return bytes
    }

    /// The application will send no more: a FIN follows the queued data
    /// (established → finWait1, closeWait → lastAck, synReceived → finWait1
    /// once the handshake completes, synSent → closed). Idempotent.
    public func close(now: UInt64) {
        close(now: now, discardingInput: false)
    }

    /// ``close(now:)``, and with `discardingInput` the application will not
    /// read either: the bytes it left unread are dropped, and later data is
    /// thrown away while our own last data and FIN are unacknowledged, and
    /// answered with a reset once they are (see the notes at the top).
    public func close(now: UInt64, discardingInput: Bool) {
        if discardingInput && !discardsInput {
            discardsInput = true
            if receiveBuffer.count > 0 {
                receiveBuffer.removeAll()
                if mayReceive && !receivedFIN && advertisedWindow() > currentWindow { ackNow = true }
            }
            held.removeAll()
            heldBytes = 0
        }
        switch state {
        case .synSent:
            enterClosed(.normal)
        case .synReceived:
            finQueued = true
        case .established:
            finQueued = true
            state = .finWait1
        case .closeWait:
            finQueued = true
            state = .lastAck
        default:
            break
        }
    }

    /// Drops the connection at once: an RST is produced by the next output
    /// (unless in synSent/closed/timeWait), state closed, reason .aborted.
    public func abort(now: UInt64) {
        switch state {
        case .closed:
            return
        case .synSent, .timeWait:
            break
        default:
            queueReset()
        }
        enterClosed(.aborted)
    }

    // MARK: - Segment arrives (RFC 793 §3.9, RFC 9293 §3.10.7)

    /// A segment addressed to this connection (the caller demultiplexed by 4-tuple).
    public func handle(_ segment: TCPSegment, now: UInt64) {
        handle(segment, payload: segment.payload[...], now: now)
    }

    /// ``handle(_:now:)`` with the payload given apart (`segment.payload` is
    /// ignored): the stack passes the bytes where they lie in the received
    /// frame, and they are copied once, into the receive buffer.
    func handle(_ segment: TCPSegment, payload: ArraySlice<UInt8>, now: UInt64) {
        guard state != .closed else { return }
        counters.segmentsReceived += 1
        lastReceived = now
        // A peer still sending (even retransmissions) is alive: FIN_WAIT_2's
        // timeout counts from the last segment it sent.
        if state == .finWait2 && !discardsInput { finWait2Deadline = now &+ configuration.finWait2Timeout }
        if state == .synSent {
            handleInSynSent(segment, payload: payload, now: now)
            return
        }
        var sequence = segment.sequence
        var flags = segment.flags
        let ack = segment.acknowledgement

        if state == .synReceived && flags.contains(.syn) && !flags.contains(.rst) && sequence == irs {
            if flags.contains(.ack) && seqLT(sndUna, ack) && seqLEQ(ack, sndNxt) {
                // Simultaneous open: the peer's SYN-ACK; its SYN is ours already.
                flags.remove(.syn)
                sequence = sequence &+ 1
            } else {
                // The peer did not get our SYN-ACK: send it again now.
                counters.duplicateSegments += 1
                sendPointer = iss
                return
            }
        }

        // Sequence acceptability (RFC 793 p. 69).
        let length = payload.count + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
        let window = currentWindow
        let acceptable: Bool
        if window == 0 {
            // A zero window accepts only the next sequence number; a probe's
            // data is dropped below but its ACK and RST still count.
            acceptable = sequence == rcvNxt
        } else if length == 0 {
            // The right edge itself is allowed (as Linux): a pure ACK sent after
            // data that exactly filled the window carries it.
            acceptable = seqGEQ(sequence, rcvNxt) && seqLEQ(sequence, rcvAdvertisedRight)
        } else {
            let last = seqAdd(sequence, length - 1)
            acceptable =
                (seqGEQ(sequence, rcvNxt) && seqLT(sequence, rcvAdvertisedRight))
                || (seqGEQ(last, rcvNxt) && seqLT(last, rcvAdvertisedRight))
        }
        guard acceptable else {
            if flags.contains(.syn) && !flags.contains(.rst) && isSynchronized {
                // RFC 9293 §3.10.7.4: a SYN gets a challenge ACK whatever its
                // sequence number, under the same rate limit.
                counters.badSegments += 1
                challengeACK(now: now)
                return
            }
            if !flags.contains(.rst) {
                ackNow = true
                // A retransmitted FIN: our last ACK was lost; TIME_WAIT starts over.
                if state == .timeWait && flags.contains(.fin) { timeWaitDeadline = now &+ configuration.timeWait }
            }
            if length > 0 && seqLEQ(seqAdd(sequence, length), rcvNxt) {
                counters.duplicateSegments += 1
            } else {
                counters.badSegments += 1
            }
            return
        }

        if flags.contains(.rst) {
            // RFC 5961 §3.2: only an exact RST resets; one merely in the window gets a challenge ACK.
            guard sequence == rcvNxt else {
                counters.badSegments += 1
                challengeACK(now: now)
                return
            }
            switch state {
            case .synReceived: enterClosed(passive ? .reset : .refused)
            case .timeWait: enterClosed(.normal)
            default: enterClosed(.reset)
            }
            return
        }

        if flags.contains(.syn) {
            counters.badSegments += 1
            guard isSynchronized else {
                // SYN-RECEIVED: a second SYN, not the one we answered; the
                // half-open connection is given up (RFC 793).
                queueReset()
                enterClosed(.reset)
                return
            }
            // RFC 5961 §4.2 (RFC 9293 §3.10.7.4): a SYN on a synchronized
            // connection may be a blind attacker's; resetting would hand it the
            // connection. A challenge ACK tells a real peer that restarted where
            // we are (it answers with an exact RST), and the connection stays.
            challengeACK(now: now)
            return
        }

        guard flags.contains(.ack) else {
            counters.badSegments += 1
            return
        }

        if state == .synReceived {
            guard seqLT(sndUna, ack) && seqLEQ(ack, sndNxt) else {
                counters.badSegments += 1
                pendingRST = TCPSegment(
                    sourcePort: local.port, destinationPort: remote.port, sequence: ack, acknowledgement: 0,
                    flags: [.rst], window: 0)
                return
            }
            state = finQueued ? .finWait1 : .established
            sndWnd = Int(segment.window)
            maxSndWnd = max(maxSndWnd, sndWnd)
            sndWl1 = sequence
            sndWl2 = ack
            startCongestionControl()
        }

        if seqGT(ack, sndNxt) {
            // Acknowledges something never sent (RFC 5961 §5.2: a challenge ACK).
            counters.badSegments += 1
            challengeACK(now: now)
            return
        }
        let windowBefore = sndWnd
        if seqGT(ack, sndUna) {
            acknowledge(ack, now: now)
            if state == .closed { return }
        } else if ack == sndUna && payload.isEmpty && !flags.contains(.fin)
            && Int(segment.window) == windowBefore && windowBefore > 0 && seqLT(sndUna, sndNxt)
        {
            duplicateAck()
        }
        // Window update (RFC 793 p. 72: SND.WL1/WL2 keep old segments from reopening it).
        if seqGEQ(ack, sndUna) && (seqLT(sndWl1, sequence) || (sndWl1 == sequence && seqLEQ(sndWl2, ack))) {
            sndWnd = Int(segment.window)
            sndWl1 = sequence
            sndWl2 = ack
            maxSndWnd = max(maxSndWnd, sndWnd)
            // A window opened with nothing in flight ends persisting.
            if sndWnd > 0 && sndUna == sndNxt { rtoDeadline = nil }
        }

        switch state {
        case .established, .finWait1, .finWait2:
            receiveText(sequence: sequence, payload: payload, fin: flags.contains(.fin), now: now)
        default:
            // closeWait, closing, lastAck, timeWait: the peer's FIN came already.
            break
        }
    }

    func handleInSynSent(_ segment: TCPSegment, payload: ArraySlice<UInt8>, now: UInt64) {
        let flags = segment.flags
        let ack = segment.acknowledgement
        let hasACK = flags.contains(.ack)
        if hasACK && (seqLEQ(ack, iss) || seqGT(ack, sndNxt)) {
            counters.badSegments += 1
            if !flags.contains(.rst) {
                pendingRST = TCPSegment(
                    sourcePort: local.port, destinationPort: remote.port, sequence: ack, acknowledgement: 0,
                    flags: [.rst], window: 0)
            }
            return
        }
        if flags.contains(.rst) {
            if hasACK { enterClosed(.refused) } else { counters.badSegments += 1 }
            return
        }
        guard flags.contains(.syn) else {
            counters.badSegments += 1
            return
        }
        irs = segment.sequence
        rcvNxt = segment.sequence &+ 1
        rcvAdvertisedRight = seqAdd(rcvNxt, initialWindow)
        setPeerMSS(segment.maximumSegmentSize)
        sndWnd = Int(segment.window)
        maxSndWnd = sndWnd
        sndWl1 = segment.sequence
        sndWl2 = ack
        if hasACK {
            state = .established
            startCongestionControl()
            acknowledge(ack, now: now)
            ackNow = true
            receiveText(sequence: rcvNxt, payload: payload, fin: flags.contains(.fin), now: now)
        } else {
            // Simultaneous open (RFC 793 fig. 8): answer with a SYN-ACK.
            state = .synReceived
            sendPointer = iss
        }
    }

    /// ACK processing for an ACK in (SND.UNA, SND.NXT].
    func acknowledge(_ ack: UInt32, now: UInt64) {
        let acked = seqDiff(ack, sndUna)
        let ambiguous = seqGT(retransmittedHigh, sndUna)
        sndUna = ack
        if seqLT(retransmittedHigh, ack) { retransmittedHigh = ack }
        if seqLT(sendPointer, ack) { sendPointer = ack }
        let dataAcked = min(max(0, seqDiff(ack, sendBufferSequence)), unacknowledgedBytes)
        if dataAcked > 0 {
            sendBuffer.removeFirst(dataAcked)
            sendBufferSequence = seqAdd(sendBufferSequence, dataAcked)
        }
        // RFC 6298 (2): a sample from the oldest segment this ACK covers, unless
        // it covers retransmitted data (Karn); the sample also ends any backoff.
        var firstSent: UInt64? = nil
        while sentTimesHead < sentTimes.count && seqLEQ(sentTimes[sentTimesHead].end, ack) {
            if firstSent == nil { firstSent = sentTimes[sentTimesHead].time }
            sentTimesHead += 1
        }
        if sentTimesHead == sentTimes.count {
            sentTimes.removeAllKeepingCapacity()  // not removeAll(keepingCapacity:): see there
            sentTimesHead = 0
        } else if sentTimesHead >= 64 {
            sentTimes.removeFirst(sentTimesHead)
            sentTimesHead = 0
        }
        if !ambiguous, let sentAt = firstSent { sampleRTT(now >= sentAt ? now - sentAt : 0) }
        retries = 0
        if isSynchronized {
            let mss = effectiveMSS
            if let recover = recoveryPoint {
                if seqGEQ(ack, recover) {
                    congestionWindow = slowStartThreshold
                    recoveryPoint = nil
                    duplicateAcks = 0
                } else {
                    // A partial ACK (RFC 6582 §3.2 step 3): the next hole is lost too.
                    fastRetransmitDue = true
                    congestionWindow = max(congestionWindow - acked + mss, mss)
                }
            } else {
                duplicateAcks = 0
                if congestionWindow < slowStartThreshold {
                    congestionWindow += min(acked, mss)
                } else {
                    congestionWindow += max(1, mss * mss / max(congestionWindow, 1))
                }
                congestionWindow = min(congestionWindow, 1 << 30)
            }
        }
        // RFC 6298 (5.2, 5.3).
        rtoDeadline = sndUna == sndNxt ? nil : now &+ rto
        if finQueued && ack == finSequence &+ 1 {
            switch state {
            case .finWait1:
                state = .finWait2
                finWait2Deadline = now &+ configuration.finWait2Timeout
            case .closing:
                enterTimeWait(now: now)
            case .lastAck:
                enterClosed(.normal)
            default:
                break
            }
        }
    }

    /// RFC 5681 §3.2: the third duplicate ACK retransmits, later ones inflate the window.
    func duplicateAck() {
        guard isSynchronized else { return }
        duplicateAcks += 1
        let mss = effectiveMSS
        if duplicateAcks == 3 && recoveryPoint == nil {
            slowStartThreshold = max(seqDiff(sndNxt, sndUna) / 2, 2 * mss)
            congestionWindow = slowStartThreshold + 3 * mss
            recoveryPoint = sndNxt
            fastRetransmitDue = true
        } else if duplicateAcks > 3 && recoveryPoint != nil {
            congestionWindow = min(congestionWindow + mss, 1 << 30)
        }
    }

    /// The text and FIN of an acceptable segment (RFC 793 p. 74-75).
    func receiveText(sequence: UInt32, payload: ArraySlice<UInt8>, fin segmentFIN: Bool, now: UInt64) {
        guard !receivedFIN, !payload.isEmpty || segmentFIN else { return }
        if discardsInput && state == .finWait2 && !payload.isEmpty {
            // Data for an application that closed, after the peer acknowledged
            // all we sent: nothing of ours can be lost now; reset (RFC 1122 §4.2.2.13).
            counters.badSegments += 1
            queueReset()
            enterClosed(.aborted)
            return
        }
        var fin = segmentFIN
        var start = 0
        var first = sequence
        if seqLT(sequence, rcvNxt) {
            start = min(seqDiff(rcvNxt, sequence), payload.count)
            first = rcvNxt
        }
        var end = payload.count
        let room = max(0, seqDiff(rcvAdvertisedRight, first))
        var trimmed = false
        if end - start > room {
            end = start + room
            fin = false
            trimmed = true
        }
        if trimmed { ackNow = true }  // tell the peer at once where the window ends
        if start >= end && !fin {
            // Nothing new: a duplicate (or a probe of a closed window).
            if !trimmed { counters.duplicateSegments += 1 }
            ackNow = true
            return
        }
        guard first == rcvNxt else {
            counters.outOfOrderSegments += 1
            ackNow = true  // a duplicate ACK for the sender's fast retransmit
            if discardsInput { return }  // nothing is kept for an application that will not read
            let base = payload.startIndex
            hold(sequence: first, data: [UInt8](copying: payload[(base + start)..<(base + end)]), fin: fin)
            return
        }
        if end > start {
            let base = payload.startIndex
            if !discardsInput { receiveBuffer.append(payload[(base + start)..<(base + end)]) }
            rcvNxt = seqAdd(rcvNxt, end - start)
        }
        if fin {
            receiveFIN(now: now)
            return
        }
        if !held.isEmpty {
            // Filling a gap: acknowledge at once (RFC 5681 §4.2).
            ackNow = true
            drainHeld(now: now)
            return
        }
        segmentsAwaitingAck += 1
        if segmentsAwaitingAck >= 2 {
            ackNow = true
        } else if delayedAckDeadline == nil {
            delayedAckDeadline = now &+ configuration.delayedACK
        }
    }

    /// Keeps an out-of-order piece (already trimmed to the window).
    func hold(sequence: UInt32, data: [UInt8], fin: Bool) {
        let end = seqAdd(sequence, data.count)
        for piece in held where seqLEQ(piece.sequence, sequence) && seqGEQ(piece.end, end) && (piece.fin || !fin) {
            counters.duplicateSegments += 1
            return
        }
        // Bounded in bytes (the window) and in pieces: a peer sending single
        // bytes out of order must not make a list of thousands (memory, and an
        // insertion that walks it). What is not held is sent again.
        guard heldBytes + data.count <= configuration.receiveBufferSize, held.count < configuration.maximumHeldSegments
        else { return }
        var removed = 0
        held.removeAll { piece in
            let covered = seqGEQ(piece.sequence, sequence) && seqLEQ(piece.end, end) && (!piece.fin || fin)
            if covered { removed += piece.data.count }
            return covered
        }
        heldBytes -= removed
        var index = held.count
        while index > 0 && seqGT(held[index - 1].sequence, sequence) { index -= 1 }
        held.insert(TCPHeldSegment(sequence: sequence, data: data, fin: fin), at: index)
        heldBytes += data.count
    }

    /// Moves the held pieces that now follow RCV.NXT into the receive buffer.
    func drainHeld(now: UInt64) {
        while let piece = held.first, seqLEQ(piece.sequence, rcvNxt) {
            held.removeFirst()
            heldBytes -= piece.data.count
            let end = piece.end
            if seqGT(end, rcvNxt) {
                receiveBuffer.append(piece.data[seqDiff(rcvNxt, piece.sequence)...])
                rcvNxt = end
            }
            if piece.fin && end == rcvNxt {
                receiveFIN(now: now)
                return
            }
        }
    }

    func receiveFIN(now: UInt64) {
        rcvNxt = rcvNxt &+ 1
        receivedFIN = true
        ackNow = true
        held.removeAll()
        heldBytes = 0
        switch state {
        case .synReceived, .established:
            state = .closeWait
        case .finWait1:
            state = .closing  // our FIN is not acknowledged yet (else we would be in finWait2)
        case .finWait2:
            enterTimeWait(now: now)
        default:
            break
        }
    }

    // MARK: - Output

    /// Everything to transmit at `now`, after applying the timers.
    public func output(now: UInt64) -> [TCPSegment] {
        var outgoing: [TCPOutgoing] = []
        output(now: now, into: &outgoing)
        return outgoing.map { item in
            var segment = item.segment
            if item.payloadCount > 0 {
                segment.payload = sendBuffer.bytes(from: item.payloadOffset, count: item.payloadCount)
            }
            return segment
        }
    }

    /// Copies the payload of `item`, from the latest output, to `destination`.
    /// Valid until the connection next changes (an ACK moves the send buffer).
    func writePayload(of item: TCPOutgoing, to destination: UnsafeMutableRawPointer) {
        sendBuffer.copy(from: item.payloadOffset, count: item.payloadCount, to: destination)
    }

    /// ``output(now:)``, appending to `segments` with the payloads left in
    /// the send buffer: the stack passes one array it keeps, so that an
    /// output allocates neither a list nor payload arrays.
    func output(now: UInt64, into segments: inout [TCPOutgoing]) {
        if state != .closed { applyTimers(now: now, into: &segments) }
        if let reset = pendingRST {
            pendingRST = nil
            emit(reset, into: &segments)
        }
        guard state != .closed else { return }
        var carriedACK = false
        switch state {
        case .synSent, .synReceived:
            if sendPointer == iss {
                var syn = TCPSegment(
                    sourcePort: local.port, destinationPort: remote.port, sequence: iss, acknowledgement: 0,
                    flags: [.syn], window: UInt16(clamping: initialWindow),
                    maximumSegmentSize: UInt16(clamping: max(configuration.maximumSegmentSize, 1)))
                if state == .synReceived {
                    syn.flags.insert(.ack)
                    stampACK(&syn)
                    carriedACK = true
                }
                sent(from: iss, to: iss &+ 1, now: now)
                emit(syn, into: &segments)
            }
        case .established, .closeWait, .finWait1, .closing, .lastAck:
            if fastRetransmitDue {
                fastRetransmitDue = false
                if seqLT(sndUna, sndNxt) {
                    var segment = makeSegment(at: sndUna, count: effectiveMSS, finAllowed: true)
                    counters.fastRetransmissions += 1
                    counters.retransmissions += 1
                    noteRetransmitted(upTo: seqAdd(segment.segment.sequence, segment.sequenceLength))
                    if rtoDeadline == nil { rtoDeadline = now &+ rto }
                    stampACK(&segment.segment)
                    emit(segment, into: &segments)
                    carriedACK = true
                }
            }
            if sendData(now: now, into: &segments) { carriedACK = true }
            if sndWnd == 0 && rtoDeadline == nil && unsentBytes > 0 {
                rtoDeadline = now &+ rto  // the persist timer
            }
        default:
            break
        }
        let delayedDue = delayedAckDeadline.map { now >= $0 } ?? false
        if state == .synSent {
            // Nothing to acknowledge before the peer's SYN.
            ackNow = false
            delayedAckDeadline = nil
        } else if !carriedACK && (ackNow || delayedDue) {
            var ack = TCPSegment(
                sourcePort: local.port, destinationPort: remote.port, sequence: acceptableSequence,
                acknowledgement: 0, flags: [.ack], window: 0)
            stampACK(&ack)
            emit(ack, into: &segments)
        }
    }

    /// Time-based work: end of TIME_WAIT, FIN_WAIT_2 and idle timeouts, RTO and persist.
    func applyTimers(now: UInt64, into segments: inout [TCPOutgoing]) {
        if let deadline = timeWaitDeadline, now >= deadline {
            enterClosed(.normal)
            return
        }
        if state == .finWait2, let deadline = finWait2Deadline, now >= deadline {
            enterClosed(.timedOut)
            return
        }
        if isSynchronized && state != .timeWait && configuration.idleTimeout > 0
            && now &- lastReceived >= configuration.idleTimeout && now >= lastReceived
        {
            queueReset()
            enterClosed(.timedOut)
            return
        }
        guard let deadline = rtoDeadline, now >= deadline else { return }
        if isSynchronized && sndWnd == 0 && (seqLT(sndUna, sndNxt) || unsentBytes > 0) {
            persist(now: now, into: &segments)
            return
        }
        guard seqLT(sndUna, sndNxt) else {
            rtoDeadline = nil
            return
        }
        // RFC 6298 (5.4-5.7).
        let halfOpen = state == .synReceived && passive
        guard retries < (halfOpen ? configuration.maximumSYNACKRetransmissions : configuration.maximumRetransmissions) else {
            // No reset from synSent (nothing to reset) nor from a half-open
            // passive connection (its peer never spoke again; a flood's
            // spoofed sources would only get more traffic).
            if state != .synSent && !halfOpen { queueReset() }
            enterClosed(.timedOut)
            return
        }
        retries += 1
        counters.timeouts += 1
        backOff()
        if isSynchronized {
            let mss = effectiveMSS
            slowStartThreshold = max(seqDiff(sndNxt, sndUna) / 2, 2 * mss)
            congestionWindow = mss
            recoveryPoint = nil
            duplicateAcks = 0
            fastRetransmitDue = false
        }
        sendPointer = sndUna  // go back: resend from the earliest unacknowledged byte (or the SYN)
        rtoDeadline = now &+ rto
    }

    /// The peer's window is closed and data waits: one byte, on the backed-off
    /// timer, not counted toward giving up (RFC 9293 §3.8.6.1).
    func persist(now: UInt64, into segments: inout [TCPOutgoing]) {
        let start = sndUna
        let isNew = sendPointer == sndNxt && sndUna == sndNxt
        var probe = makeSegment(at: isNew ? sendPointer : start, count: 1, finAllowed: !isNew)
        if isNew {
            if probe.payloadCount == 0 { probe = makeSegment(at: sendPointer, count: 1, finAllowed: true) }
            // Not timed: the probe is acknowledged only when the window opens.
            sent(from: probe.segment.sequence, to: seqAdd(probe.segment.sequence, probe.sequenceLength), now: now, timed: false)
        } else {
            counters.retransmissions += 1
        }
        noteRetransmitted(upTo: seqAdd(probe.segment.sequence, probe.sequenceLength))
        backOff()
        rtoDeadline = now &+ rto
        guard probe.sequenceLength > 0 else { return }
        stampACK(&probe.segment)
        emit(probe, into: &segments)
    }

    /// New data (and the FIN) within the peer's and the congestion window,
    /// from `sendPointer`. True if anything was emitted.
    func sendData(now: UInt64, into segments: inout [TCPOutgoing]) -> Bool {
        let mss = effectiveMSS
        var emitted = false
        while true {
            let inFlight = seqDiff(sendPointer, sndUna)
            let dataEnd = seqAdd(sendBufferSequence, unacknowledgedBytes)
            let unsent = max(0, seqDiff(dataEnd, sendPointer))
            let finPending = finQueued && seqLEQ(sendPointer, dataEnd)
            // Limited transmit (RFC 3042): each of the first two duplicate ACKs
            // lets one more segment out, so that small windows still get the
            // three duplicates fast retransmit needs.
            let limited = recoveryPoint == nil ? min(duplicateAcks, 2) * mss : 0
            let usable = max(0, min(sndWnd, congestionWindow + limited) - inFlight)
            let count = min(unsent, usable, mss)
            let fin = finPending && count == unsent
            if count == 0 && !fin { break }
            // Sender silly-window avoidance (RFC 1122 §4.2.3.4): no small
            // segment while more data waits, unless nothing is in flight.
            if count < unsent && count < mss && inFlight > 0 && count < maxSndWnd / 2 { break }
            var segment = makeSegment(at: sendPointer, count: count, finAllowed: fin)
            let from = sendPointer
            let to = seqAdd(from, segment.sequenceLength)
            sendPointer = to
            sent(from: from, to: to, now: now)
            stampACK(&segment.segment)
            emit(segment, into: &segments)
            emitted = true
            if fin { break }
        }
        // PSH on the last data segment of the burst.
        if emitted, let last = segments.indices.last, segments[last].payloadCount > 0 {
            segments[last].segment.flags.insert(.psh)
        }
        return emitted
    }

    /// Bookkeeping for sequence numbers [from, to) going out: retransmission
    /// count, send times for RTT samples (Karn), SND.NXT, the timer.
    func sent(from: UInt32, to: UInt32, now: UInt64, timed: Bool = true) {
        if seqLT(from, sndNxt) {
            counters.retransmissions += 1
            noteRetransmitted(upTo: to)
        } else if timed && from != to {
            sentTimes.append(TCPSentTime(end: to, time: now))
        }
        if seqGT(to, sndNxt) { sndNxt = to }
        if seqGT(to, sendPointer) { sendPointer = to }
        if rtoDeadline == nil { rtoDeadline = now &+ rto }
    }

    func noteRetransmitted(upTo end: UInt32) {
        if seqGT(end, retransmittedHigh) { retransmittedHigh = end }
    }

    /// A segment at `sequence` with up to `count` bytes of the send buffer,
    /// and the FIN if it ends where the FIN goes and `finAllowed`.
    func makeSegment(at sequence: UInt32, count: Int, finAllowed: Bool) -> TCPOutgoing {
        let offset = max(0, seqDiff(sequence, sendBufferSequence))
        let available = max(0, unacknowledgedBytes - offset)
        let length = min(max(0, count), available)
        var segment = TCPSegment(
            sourcePort: local.port, destinationPort: remote.port, sequence: sequence, acknowledgement: 0,
            flags: [.ack], window: 0)
        if finAllowed && finQueued && seqAdd(sequence, length) == finSequence { segment.flags.insert(.fin) }
        return TCPOutgoing(segment: segment, payloadOffset: offset, payloadCount: length)
    }

    /// Fills in ACK and window, and notes that whatever ACK was owed is sent.
    func stampACK(_ segment: inout TCPSegment) {
        let window = advertisedWindow()
        segment.acknowledgement = rcvNxt
        segment.window = UInt16(clamping: window)
        rcvAdvertisedRight = seqAdd(rcvNxt, window)
        ackNow = false
        delayedAckDeadline = nil
        segmentsAwaitingAck = 0
    }

    func emit(_ segment: TCPSegment, into segments: inout [TCPOutgoing]) {
        emit(TCPOutgoing(segment: segment), into: &segments)
    }

    func emit(_ segment: TCPOutgoing, into segments: inout [TCPOutgoing]) {
        counters.segmentsSent += 1
        segments.append(segment)
    }

    // MARK: - Helpers

    var isSynchronized: Bool {
        switch state {
        case .established, .finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait: return true
        default: return false
        }
    }

    /// The application can still queue data.
    var canQueue: Bool {
        guard !finQueued else { return false }
        switch state {
        case .synSent, .synReceived, .established, .closeWait: return true
        default: return false
        }
    }

    /// The peer may still send us data.
    var mayReceive: Bool {
        switch state {
        case .synReceived, .established, .finWait1, .finWait2: return true
        default: return false
        }
    }

    var finSequence: UInt32 { seqAdd(sendBufferSequence, unacknowledgedBytes) }

    var unsentBytes: Int {
        max(0, seqDiff(seqAdd(sendBufferSequence, unacknowledgedBytes), sendPointer))
    }

    /// The window in a SYN: the buffer, at most 65535.
    var initialWindow: Int { min(max(0, configuration.receiveBufferSize), 65535) }

    /// What remains of the last advertised window.
    var currentWindow: Int { max(0, seqDiff(rcvAdvertisedRight, rcvNxt)) }

    /// The window to advertise: the free buffer space, but the right edge moves
    /// only by min(MSS, half the buffer) at a time (receiver SWS avoidance,
    /// RFC 1122 §4.2.3.3) and never left.
    func advertisedWindow() -> Int {
        let space = min(max(0, configuration.receiveBufferSize - bytesAvailable), 65535)
        let current = currentWindow
        let step = max(1, min(effectiveMSS, configuration.receiveBufferSize / 2))
        return space >= current + step ? space : min(current, 65535)
    }

    /// The sequence number of a pure ACK or a reset: SND.NXT, unless beyond the
    /// peer's window (as Linux's tcp_acceptable_seq).
    var acceptableSequence: UInt32 {
        let windowEnd = seqAdd(sndUna, sndWnd)
        return seqLEQ(sndNxt, windowEnd) ? sndNxt : windowEnd
    }

    /// The peer's MSS option (536 without one, RFC 9293 §3.7.1), raised to
    /// `minimumPeerMSS`.
    func setPeerMSS(_ mss: UInt16?) {
        peerMSS = max(mss.map { Int($0) } ?? 536, configuration.minimumPeerMSS)
    }

    /// Sends an ACK now (RFC 5961's challenge ACK: SND.NXT, RCV.NXT), unless
    /// `challengeACKLimit` of them went out in the current interval (§7).
    func challengeACK(now: UInt64) {
        if now &- challengeIntervalStart >= configuration.challengeACKInterval || now < challengeIntervalStart {
            challengeIntervalStart = now
            challengeACKsInInterval = 0
        }
        guard challengeACKsInInterval < configuration.challengeACKLimit else {
            counters.challengeACKsSuppressed += 1
            return
        }
        challengeACKsInInterval += 1
        counters.challengeACKs += 1
        ackNow = true
    }

    /// RFC 5681 §3.1: the initial window once the MSS is known.
    func startCongestionControl() {
        let mss = effectiveMSS
        congestionWindow = min(4 * mss, max(2 * mss, 4380))
    }

    /// RFC 6298 (2.2, 2.3).
    func sampleRTT(_ measured: UInt64) {
        let sample = min(measured, 1 << 40)
        if let smoothed = srtt {
            let delta = smoothed > sample ? smoothed - sample : sample - smoothed
            rttvar = (3 * rttvar + delta) / 4
            srtt = (7 * smoothed + sample) / 8
        } else {
            srtt = sample
            rttvar = sample / 2
        }
        let candidate = srtt! + max(Self.granularity, 4 * rttvar)
        rto = min(max(candidate, configuration.minimumRTO), configuration.maximumRTO)
    }

    /// RFC 6298 (5.5): double, up to the maximum.
    func backOff() {
        rto = rto > configuration.maximumRTO / 2 ? configuration.maximumRTO : rto * 2
    }

    func queueReset() {
        var reset = TCPSegment(
            sourcePort: local.port, destinationPort: remote.port, sequence: sndNxt, acknowledgement: 0,
            flags: [.rst], window: 0)
        if state != .synSent {
            reset.flags.insert(.ack)
            reset.acknowledgement = rcvNxt
        }
        pendingRST = reset
    }

    func enterTimeWait(now: UInt64) {
        state = .timeWait
        closeReason = .normal
        timeWaitDeadline = now &+ configuration.timeWait
        finWait2Deadline = nil
        rtoDeadline = nil
    }

    func enterClosed(_ reason: TCPCloseReason) {
        if state == .timeWait && reason == .normal {
            closeReason = .normal
        } else {
            closeReason = reason
        }
        state = .closed
        rtoDeadline = nil
        delayedAckDeadline = nil
        timeWaitDeadline = nil
        finWait2Deadline = nil
        ackNow = false
        fastRetransmitDue = false
        held.removeAll()
        heldBytes = 0
        sendBuffer.removeAll()
    }
}
