import Foundation
import XCTest

/// The README's sockets example (Tests/Guests/Echo) echoes what a client sends.
final class EchoTests: XCTestCase {
    func testTheSocketsExampleEchoes() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Echo")
        guard let bash = TestNetworkNamespace.executable(["/usr/bin/bash", "/bin/bash"]) else {
            return try TestNetworkNamespace.skip("bash is missing")
        }
        let namespace = try TestNetworkNamespace.open(prefix: "echo", tap: "torotape")
        defer { namespace.delete() }
        let vm = try BackgroundVMM(
            in: namespace, [image, "--cpus", "2", "--cmdline", "ip=10.77.0.2/24", "--net", "tap=torotape", "--timeout", "60"])
        XCTAssertTrue(vm.waitFor("echo: listening on 10.77.0.2:7"), vm.output)
        let script = "exec 3<>/dev/tcp/10.77.0.2/7; printf 'hello, toro\\n' >&3; timeout 10 head -n 1 <&3"
        let (status, output) = try namespace.exec(bash, ["-c", script])
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(output, "hello, toro\n")
        let udp = "exec 3<>/dev/udp/10.77.0.2/7; printf 'datagram\\n' >&3; timeout 10 head -n 1 <&3"
        let (udpStatus, udpOutput) = try namespace.exec(bash, ["-c", udp])
        XCTAssertEqual(udpStatus, 0, udpOutput)
        XCTAssertEqual(udpOutput, "datagram\n")
        XCTAssertEqual(vm.finish(signal: SIGINT), 130, vm.output)
    }

    /// Active open: the guest connects to a server inside the namespace, and
    /// to a port nobody listens on (refused).
    func testTheGuestConnectsOut() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Echo")
        let python = try TestNetworkNamespace.requirePython("the test's TCP server is a Python script")
        let namespace = try TestNetworkNamespace.open(prefix: "conn", tap: "torotapc")
        defer { namespace.delete() }
        let ready = readyFile()
        let server = try namespace.start(python, ["-c", Self.oneShotServer(at: "10.77.0.1", ready: ready)])
        defer { if server.isRunning { server.terminate() } }
        XCTAssertTrue(TestNetworkNamespace.waitForFile(ready), "the test's server never listened")
        let result = try namespace.runVMM(
            [image, "--cmdline", "ip=10.77.0.2/24 connect=10.77.0.1:9000", "--net", "tap=torotapc", "--timeout", "40"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("echo: reply got: hello from toro"), result.stdout)
        let refused = try namespace.runVMM(
            [image, "--cmdline", "ip=10.77.0.2/24 connect=10.77.0.1:9001", "--net", "tap=torotapc", "--timeout", "40"])
        XCTAssertEqual(refused.status, 3, refused.stdout)
        XCTAssertTrue(refused.stdout.contains("echo: connect failed: refused"), refused.stdout)
    }

    /// A path for a helper to create once it is ready; removed after the test.
    func readyFile() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("toro-ready-\(UUID().uuidString)").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// A one-shot TCP server at `address`:9000 that answers a line with "got: LINE";
    /// it creates `ready` once it listens.
    static func oneShotServer(at address: String, ready: String) -> String {
        """
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("\(address)", 9000)); s.listen(1); s.settimeout(30)
        open("\(ready)", "w").close()
        c, _ = s.accept(); c.settimeout(10)
        line = c.makefile("rb").readline()
        c.sendall(b"got: " + line); c.close()
        """
    }

    /// `gw=`: a server on another network (10.88.0.1, an address of the
    /// namespace's loopback) is reached through the namespace's TAP address as
    /// the gateway; without `gw=` the guest has no route to it.
    func testTheGatewayReachesAnotherNetwork() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Echo")
        let python = try TestNetworkNamespace.requirePython("the test's TCP server is a Python script")
        let namespace = try TestNetworkNamespace.open(prefix: "gw", tap: "torotapg")
        defer { namespace.delete() }
        for arguments in [["link", "set", "lo", "up"], ["addr", "add", "10.88.0.1/32", "dev", "lo"]] {
            let (status, output) = try namespace.ip(arguments)
            guard status == 0 else { return try TestNetworkNamespace.skip("ip \(arguments.joined(separator: " ")): \(output)") }
        }
        let ready = readyFile()
        let server = try namespace.start(python, ["-c", Self.oneShotServer(at: "10.88.0.1", ready: ready)])
        defer { if server.isRunning { server.terminate() } }
        XCTAssertTrue(TestNetworkNamespace.waitForFile(ready), "the test's server never listened")
        let routed = try namespace.runVMM(
            [image, "--cmdline", "ip=10.77.0.2/24 gw=10.77.0.1 connect=10.88.0.1:9000", "--net", "tap=torotapg",
             "--timeout", "40"])
        XCTAssertEqual(routed.status, 0, routed.stdout + routed.stderr)
        XCTAssertTrue(routed.stdout.contains("echo: reply got: hello from toro"), routed.stdout)
        let unrouted = try namespace.runVMM(
            [image, "--cmdline", "ip=10.77.0.2/24 connect=10.88.0.1:9000", "--net", "tap=torotapg", "--timeout", "40"])
        XCTAssertEqual(unrouted.status, 3, "no gateway, no route: the connect fails at once\n" + unrouted.stdout)
        XCTAssertTrue(unrouted.stdout.contains("echo: connect failed: unreachable"), unrouted.stdout)
    }
}
