import Foundation
import XCTest

/// `--profile`: the sampling profiler of the guest, on real images. The reports must
/// name the guest's real functions, halted vCPUs must be counted apart, and profiling
/// must not change how a run ends (exit status, stop reason, console).
final class ProfilerTests: XCTestCase {
    /// A fresh report path; removed after the test.
    func reportPath() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("toro-profile-\(UUID().uuidString).txt").path
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func stop(_ result: VMMHarness.Result) -> [String: Any] {
        result.stats?["stop"] as? [String: Any] ?? [:]
    }

    /// The run's `interrupted` exits: every profile sample is one of them.
    func interruptedExits(_ result: VMMHarness.Result) -> Int {
        let totals = result.stats?["totals"] as? [String: Any]
        return (totals?["vmm_exits_by_reason"] as? [String: Any])?.int("interrupted") ?? 0
    }

    /// The "samples: R running, H halted" counts of the report's second line.
    func counts(_ report: String) -> (running: Int, halted: Int)? {
        guard let line = report.split(separator: "\n").dropFirst().first,
            let colon = line.range(of: "samples: ")
        else { return nil }
        let words = line[colon.upperBound...].split(separator: " ")
        guard words.count >= 3, let running = Int(words[0]), let halted = Int(words[2]) else { return nil }
        return (running, halted)
    }

    /// The functions table: (samples, name) rows, most first.
    func functions(_ report: String) -> [(Int, String)] {
        let lines = report.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("top ") && $0.contains("functions") }) else { return [] }
        var rows: [(Int, String)] = []
        for line in lines[(start + 2)...] {
            guard !line.isEmpty else { break }
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let samples = Int(words[0]), let nameStart = line.range(of: "  ", options: .backwards) else { continue }
            rows.append((samples, String(line[nameStart.upperBound...])))
        }
        return rows
    }

    /// A polling idle loop (IdleCases with idle=poll) spends its time in the kernel's
    /// `Scheduler.waitForWork()` and the interrupt window it opens each turn (the
    /// window's `sti` and `cli` are traps to the host in native mode, so there it
    /// comes first); profiled and unprofiled runs end the same way.
    func testPollingGuestIsMostlyInTheSchedulersIdleLoop() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("IdleCases")
        let arguments = [image, "--cpus", "2", "--cmdline", "phase=1 idle=poll"]
        let path = reportPath()
        let profiled = try VMMHarness.run(arguments + ["--profile", path], limit: 60)
        let plain = try VMMHarness.run(arguments, limit: 60)

        XCTAssertEqual(profiled.status, 0, profiled.stderr)
        XCTAssertEqual(profiled.status, plain.status)
        XCTAssertEqual(stop(profiled)["reason"] as? String, stop(plain)["reason"] as? String)
        XCTAssertEqual(stop(profiled)["guest_status"] as? Int, stop(plain)["guest_status"] as? Int)
        XCTAssertEqual(profiled.vcpus.count, plain.vcpus.count)
        XCTAssertTrue(profiled.stdout.contains("phases done"), profiled.stdout)
        // The statistics document is the same one, plus `profile`.
        XCTAssertEqual(Set(profiled.stats?.keys.map { $0 } ?? []), Set(plain.stats?.keys.map { $0 } ?? []).union(["profile"]))
        XCTAssertNil(plain.stats?["profile"])

        let report = try String(contentsOfFile: path, encoding: .utf8)
        let (running, halted) = try XCTUnwrap(counts(report), report)
        // How many kicks the profiler thread gets out depends on how often the
        // host runs it; what each sample is does not. Every sample is one
        // `interrupted` exit that found a sample asked for, and a polling guest
        // is running, not halted, when a sample comes.
        XCTAssertGreaterThan(running, 0, report)
        XCTAssertLessThanOrEqual(running + halted, interruptedExits(profiled), report)
        XCTAssertLessThan(halted, running / 10, "idle=poll hardly halts\n\(report)")
        let rows = functions(report)
        let idleLoop = ["Scheduler.waitForWork()", "kernel_interrupt_window"]
        XCTAssertTrue(idleLoop.contains(rows.first?.1 ?? ""), report)
        XCTAssertTrue(rows.contains { $0.1.contains("IdleCases.main()") }, report)
        XCTAssertFalse(rows.contains { $0.1.hasPrefix("$e") }, "names are demangled\n\(report)")

        let summary = try XCTUnwrap(profiled.stats?["profile"] as? [String: Any])
        XCTAssertEqual(summary.int("interval_us"), 1000)
        XCTAssertEqual(summary.int("running_samples"), running)
        let top = try XCTUnwrap(summary["top_functions"] as? [[String: Any]])
        XCTAssertTrue(idleLoop.contains(top.first?["name"] as? String ?? ""), "\(top)")
    }

    /// A spinning guest is stopped by --timeout as without profiling (124), and every
    /// running sample lands in its spin loop.
    func testSpinningGuestUnderTimeout() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let path = reportPath()
        let profiled = try VMMHarness.run([image, "--cmdline", "mode=spin", "--timeout", "1", "--profile", path, "--profile-interval", "500"])
        let plain = try VMMHarness.run([image, "--cmdline", "mode=spin", "--timeout", "1"])
        XCTAssertEqual(profiled.status, 124, profiled.stderr)
        XCTAssertEqual(plain.status, 124, plain.stderr)
        XCTAssertEqual(stop(profiled)["reason"] as? String, "timeout")

        let report = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(report.contains("interval 500 us"), report)
        let (running, halted) = try XCTUnwrap(counts(report), report)
        XCTAssertGreaterThan(running, 0, report)
        XCTAssertLessThanOrEqual(running, interruptedExits(profiled), report)
        XCTAssertEqual(halted, 0, report)
        let rows = functions(report)
        // Most samples are in the loop; the rest are the boot, whose share of the
        // run grows when the host is busy.
        XCTAssertEqual(rows.first?.1, "static Misbehave.main()", report)
        XCTAssertGreaterThan(Double(rows.first?.0 ?? 0), 0.5 * Double(running), report)
        // The hot addresses name the loop inside main.
        XCTAssertTrue(report.contains("static Misbehave.main()+0x"), report)
    }

    /// vCPUs halted with interrupts off give halted samples, not the RIP after their HLT;
    /// SIGINT still stops the profiled VM (130).
    func testHaltedGuestIsCountedApartAndSIGINTStillStops() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("Misbehave")
        let path = reportPath()
        // SIGINT 1 s after the guest has booted and halted: both vCPUs stay halted from then on.
        let result = try VMMHarness.run([image, "--cpus", "2", "--cmdline", "mode=halt", "--profile", path],
                                        signal: .init(signal: SIGINT, text: "misbehave: halt", delay: 1))
        XCTAssertEqual(result.status, 130, result.stderr)
        XCTAssertEqual(stop(result)["reason"] as? String, "signal")
        let report = try String(contentsOfFile: path, encoding: .utf8)
        let (running, halted) = try XCTUnwrap(counts(report), report)
        XCTAssertGreaterThan(halted, 0, report)
        XCTAssertGreaterThan(halted, running, "only the boot runs\n\(report)")
        // Halted samples are not taken for code: the HLT loop in main gets (almost) none.
        let mainSamples = functions(report).first { $0.1 == "static Misbehave.main()" }?.0 ?? 0
        XCTAssertLessThan(mainSamples, max(running / 2, 5), report)
    }

    func testProfileToStderrAndBadInterval() throws {
        try VMMHarness.requireKVM()
        let image = try VMMHarness.requireImage("HelloWorld")
        let result = try VMMHarness.run([image, "--profile", "-", "--profile-interval", "100"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("toro-vmm guest profile of"), result.stderr)
        XCTAssertTrue(result.stderr.contains("interval 100 us"), result.stderr)

        let bad = try VMMHarness.run([image, "--profile", "-", "--profile-interval", "50"], stats: false)
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--profile-interval must be between 100 and 1000000 microseconds, got 50"), bad.stderr)
    }
}
