import CKVM
import Glibc

/// Why a network backend could not be opened or used. Each description is one line for the user.
public enum NetworkBackendError: Error, Equatable, CustomStringConvertible {
    /// /dev/net/tun does not exist (no TUN/TAP driver in the host kernel, or not in this container).
    case tunMissing
    /// Opening /dev/net/tun or TUNSETIFF was refused: CAP_NET_ADMIN is needed to create a TAP device.
    case permissionDenied(name: String)
    /// An interface name has at most 15 bytes (IFNAMSIZ - 1).
    case nameTooLong(String)
    /// Another system call failed.
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .tunMissing:
            return "/dev/net/tun is missing: the host has no TUN/TAP support (modprobe tun)"
        case let .permissionDenied(name):
            return "not allowed to create TAP device \(name): needs CAP_NET_ADMIN (run as root or with the capability)"
        case let .nameTooLong(name):
            return "TAP device name \(name) is longer than \(CKVM_IFNAMSIZ - 1) bytes"
        case let .system(call, errno):
            return "\(call) failed: \(String(cString: strerror(errno)))"
        }
    }
}

/// Where a network device's frames go and come from: Ethernet frames without
/// any virtio header.
public protocol NetworkBackend: AnyObject {
    /// Sends one frame. Returns false if the host could not take it now (dropped).
    func send(_ frame: UnsafeRawBufferPointer) throws(NetworkBackendError) -> Bool
    /// Reads one frame into `buffer`: its length, or nil if none is waiting.
    /// A frame longer than `buffer` is truncated to it.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetworkBackendError) -> Int?
    /// A file descriptor that polls readable when a frame waits, or -1 if there is none.
    var readinessFD: Int32 { get }
}

// MARK: - TAP

/// A host TAP interface (`/dev/net/tun`, IFF_TAP | IFF_NO_PI): frames written
/// appear on the host's interface and vice versa. Nonblocking; closed in deinit.
public final class TapBackend: NetworkBackend {
    public let fd: Int32
    /// The interface name the kernel gave the device.
    public let name: String

    /// Opens (creating it if it does not exist) TAP interface `name`.
    public init(name: String) throws(NetworkBackendError) {
        guard name.utf8.count < Int(CKVM_IFNAMSIZ) else { throw .nameTooLong(name) }
        let fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            switch errno {
            case ENOENT, ENODEV, ENXIO: throw .tunMissing
            case EACCES, EPERM: throw .permissionDenied(name: name)
            default: throw .system(call: "open /dev/net/tun", errno: errno)
            }
        }
        var actual = [CChar](repeating: 0, count: Int(CKVM_IFNAMSIZ) + 1)
        if ckvm_tun_set_iff(fd, name, CKVM_IFF_TAP | CKVM_IFF_NO_PI, &actual) < 0 {
            let error = errno
            close(fd)
            switch error {
            case EACCES, EPERM: throw .permissionDenied(name: name)
            default: throw .system(call: "TUNSETIFF \(name)", errno: error)
            }
        }
        self.fd = fd
        self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { close(fd) }

    public var readinessFD: Int32 { fd }

    public func send(_ frame: UnsafeRawBufferPointer) throws(NetworkBackendError) -> Bool {
        while true {
            let written = write(fd, frame.baseAddress, frame.count)
            if written >= 0 { return true }
            switch errno {
            case EINTR: continue
            // The interface is down or its queue is full: a NIC drops the frame too.
            case EAGAIN, EIO, ENOBUFS: return false
            default: throw .system(call: "write \(name)", errno: errno)
            }
        }
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetworkBackendError) -> Int? {
        while true {
            let count = read(fd, buffer.baseAddress, buffer.count)
            if count >= 0 { return count }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            default: throw .system(call: "read \(name)", errno: errno)
            }
        }
    }
}

// MARK: - In memory

/// A backend in memory, for tests: frames sent are kept in ``sent``; frames
/// queued with ``inject(_:)`` are received in order. With `loopback`, every
/// frame sent is also queued to be received.
///
/// Its ``readinessFD`` is the read end of a pipe holding one byte per pending
/// frame, so it polls readable exactly while a frame waits, like a TAP device.
public final class LoopbackBackend: NetworkBackend {
    public private(set) var sent: [[UInt8]] = []
    public private(set) var pending: [[UInt8]] = []
    public var loopback: Bool
    private var pipeEnds: [Int32] = [-1, -1]

    public init(loopback: Bool = false) throws(NetworkBackendError) {
        self.loopback = loopback
        guard pipe(&pipeEnds) == 0 else { throw .system(call: "pipe", errno: errno) }
    }

    deinit {
        close(pipeEnds[0])
        close(pipeEnds[1])
    }

    public var readinessFD: Int32 { pipeEnds[0] }

    /// Queues `frame` to be received by the device.
    public func inject(_ frame: [UInt8]) {
        pending.append(frame)
        var byte: UInt8 = 1
        _ = write(pipeEnds[1], &byte, 1)
    }

    public func send(_ frame: UnsafeRawBufferPointer) throws(NetworkBackendError) -> Bool {
        sent.append([UInt8](frame))
        if loopback { inject([UInt8](frame)) }
        return true
    }

    public func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetworkBackendError) -> Int? {
        guard !pending.isEmpty else { return nil }
        let frame = pending.removeFirst()
        var byte: UInt8 = 0
        _ = read(pipeEnds[0], &byte, 1)
        let count = min(frame.count, buffer.count)
        frame.withUnsafeBytes { source in
            if count > 0 { buffer.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: count) }
        }
        return count
    }
}
