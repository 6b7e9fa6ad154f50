import Foundation
import Glibc
import XCTest

@testable import ToroVMM

/// The TAP backend against the host kernel. Creating a TAP device needs root and
/// /dev/net/tun; each test makes its device inside a network namespace of its own
/// (on a thread of its own, since a network namespace belongs to a thread), so no
/// frame can reach any network outside it.
final class TapBackendTests: XCTestCase {
    func testNameTooLongIsRefusedBeforeOpening() {
        XCTAssertThrowsError(try TapBackend(name: "a-name-of-16-chr")) { error in
            XCTAssertEqual(error as? NetworkBackendError, .nameTooLong("a-name-of-16-chr"))
        }
    }

    func testDownInterfaceDropsAndHasNothingToRead() throws {
        let (name, sent, received) = try inPrivateNetworkNamespace { () throws -> (String, Bool, Int?) in
            let tap = try TapBackend(name: "torotest0")
            var frame = [UInt8](repeating: 0xFF, count: 12) + [0x88, 0xB5] + [UInt8](repeating: 0, count: 46)
            // The interface is down: the kernel refuses the frame (EIO), reported as dropped.
            let sent = try frame.withUnsafeBytes { try tap.send($0) }
            let received = try frame.withUnsafeMutableBytes { try tap.receive(into: $0) }
            return (tap.name, sent, received)
        }
        XCTAssertEqual(name, "torotest0")
        XCTAssertFalse(sent)
        XCTAssertNil(received)
    }

    /// The whole path: the fake driver transmits an ARP request through the virtqueue,
    /// the namespace's kernel answers on the TAP interface, and the answer arrives in
    /// the driver's receive buffer behind a virtio_net_hdr.
    func testARPRequestThroughVirtioNetIsAnsweredInsideTheNamespace() throws {
        let reply = try inPrivateNetworkNamespace { () throws -> [UInt8]? in
            let tap = try TapBackend(name: "torotest1")
            try runInThisNamespace(["ip", "addr", "add", "10.77.0.1/24", "dev", tap.name])
            try runInThisNamespace(["ip", "link", "set", tap.name, "up"])
            let driver = try FakeVirtioDriver(network: tap)
            driver.start()
            let rxBuffer = try driver.buffer([UInt8](repeating: 0, count: 1526))
            try driver.publish(0, try driver.addChain(0, [(rxBuffer, 1526, true)]))
            driver.notify(0)

            let request = arpRequest(from: FakeVirtioDriver.mac, senderIP: [10, 77, 0, 2], targetIP: [10, 77, 0, 1])
            let header = [UInt8](repeating: 0, count: VirtioNet.headerSize)
            let tx = try driver.addChain(1, [(try driver.buffer(header + request), UInt32(12 + request.count), false)])
            try driver.publish(1, tx)
            driver.notify(1)
            guard driver.device.counters.txFrames == 1 else { return nil }

            // Frames the kernel sends on its own (IPv6) may come first: keep reposting the buffer.
            let deadline = Clock.monotonicNanoseconds() + 3_000_000_000
            var usedSeen: UInt16 = 0
            while Clock.monotonicNanoseconds() < deadline {
                var entry = pollfd(fd: tap.readinessFD, events: Int16(POLLIN), revents: 0)
                _ = poll(&entry, 1, 100)
                driver.transport.poll()
                while try driver.usedIndex(0) != usedSeen {
                    let length = try driver.usedElement(0, usedSeen).1
                    usedSeen &+= 1
                    let bytes = try driver.memory.read(at: GuestAddress(rxBuffer), count: UInt64(length))
                    let frame = Array(bytes[VirtioNet.headerSize...])
                    if frame.count >= 42, frame[12] == 0x08, frame[13] == 0x06, frame[21] == 2 { return frame }
                    try driver.publish(0, try driver.addChain(0, [(rxBuffer, 1526, true)]))
                    driver.notify(0)
                }
            }
            return nil
        }
        let frame = try XCTUnwrap(reply, "no ARP reply within 3 s")
        XCTAssertEqual(Array(frame[0..<6]), FakeVirtioDriver.mac)  // to the guest
        XCTAssertEqual(Array(frame[28..<32]), [10, 77, 0, 1])  // from the namespace's address
    }

    // MARK: - Helpers

    /// Runs `body` on a new thread moved into a new network namespace; skips the test
    /// when the host does not allow it.
    private func inPrivateNetworkNamespace<T>(_ body: @escaping () throws -> T) throws -> T {
        guard access("/dev/net/tun", F_OK) == 0 else { throw XCTSkip("no /dev/net/tun on this host") }
        guard geteuid() == 0 else { throw XCTSkip("creating a TAP device needs root") }
        let box = NamespaceOutcome<T>()
        let unsafeBody = UnsafeSendable(body)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            guard let unshare = libcFunction("unshare", as: (@convention(c) (Int32) -> Int32).self) else {
                box.skipReason = "unshare(2) not found"
                return
            }
            guard unshare(0x4000_0000) == 0 else {  // CLONE_NEWNET
                box.skipReason = "unshare(CLONE_NEWNET) failed: \(String(cString: strerror(errno)))"
                return
            }
            box.outcome = Result { try unsafeBody.value() }
        }
        thread.start()
        guard done.wait(timeout: .now() + 30) == .success else {
            XCTFail("the namespace thread did not finish within 30 s")
            throw CommandFailed(description: "timeout")
        }
        if let reason = box.skipReason { throw XCTSkip(reason) }
        return try XCTUnwrap(box.outcome).get()
    }
}

private final class NamespaceOutcome<T>: @unchecked Sendable {
    var outcome: Result<T, Error>?
    var skipReason: String?
}

private struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

private struct CommandFailed: Error, CustomStringConvertible {
    var description: String
}

/// A libc function Swift's Glibc module does not import (it needs _GNU_SOURCE).
private func libcFunction<F>(_ name: String, as type: F.Type) -> F? {
    guard let symbol = dlsym(nil, name) else { return nil }  // nil: RTLD_DEFAULT
    return unsafeBitCast(symbol, to: type)
}

/// Runs `arguments` in the calling thread's network namespace (through nsenter,
/// since a child process starts in the process's namespace, not the thread's).
private func runInThisNamespace(_ arguments: [String]) throws {
    guard let gettid = libcFunction("gettid", as: (@convention(c) () -> Int32).self) else {
        throw XCTSkip("gettid(2) not found")
    }
    guard access("/usr/bin/nsenter", X_OK) == 0 else { throw XCTSkip("nsenter is not installed") }
    if arguments.first == "ip" {
        guard access("/usr/sbin/ip", X_OK) == 0 || access("/sbin/ip", X_OK) == 0 || access("/usr/bin/ip", X_OK) == 0 else {
            throw XCTSkip("ip (iproute2) is not installed")
        }
    }
    let argv = ["nsenter", "--net=/proc/\(getpid())/task/\(gettid())/ns/net"] + arguments
    var cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
    defer { for pointer in cArguments { free(pointer) } }
    var pid: pid_t = 0
    // posix_spawn, not Foundation's Process: Process hangs when used off the main thread here.
    let spawned = posix_spawn(&pid, "/usr/bin/nsenter", nil, nil, &cArguments, environ)
    guard spawned == 0 else {
        throw CommandFailed(description: "posix_spawn nsenter: \(String(cString: strerror(spawned)))")
    }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else {
        throw CommandFailed(description: "nsenter \(arguments.joined(separator: " ")) failed with wait status \(status)")
    }
}

/// An Ethernet broadcast ARP request (RFC 826) asking who has `targetIP`.
private func arpRequest(from mac: [UInt8], senderIP: [UInt8], targetIP: [UInt8]) -> [UInt8] {
    var frame = [UInt8](repeating: 0xFF, count: 6) + mac + [0x08, 0x06]
    frame += [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01]  // Ethernet, IPv4, request
    frame += mac + senderIP + [UInt8](repeating: 0, count: 6) + targetIP
    return frame + [UInt8](repeating: 0, count: 60 - frame.count)
}
