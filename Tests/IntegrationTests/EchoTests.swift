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
        XCTAssertEqual(vm.finish(signal: SIGINT), 130, vm.output)
    }
}
