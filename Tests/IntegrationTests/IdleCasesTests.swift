import Foundation
import XCTest

/// Boots Examples/IdleCases twice, `idle=halt` (the default) and `idle=poll`,
/// and compares them in the same test: the four idle cases of Toro's notes,
/// one phase each, seen in the live statistics.
final class IdleCasesTests: XCTestCase {
    static let phaseSeconds = 2
    static let markers = [
        "phase 1: spinlock", "phase 2: no ready thread", "phase 3: no thread", "phase 4: polling threads", "phases done",
    ]

    struct Phase {
        var number: Int
        /// From toro-vmm's start, like the samples' `t_ns`.
        var startNanoseconds: Double
        var endNanoseconds: Double
        /// Halts by case (2, 3, 4) per CPU, as the guest counted them.
        var halts: [[Int]]
    }

    func run(_ cmdline: String, file: StaticString = #filePath, line: UInt = #line) throws -> (VMMHarness.Result, [Phase]) {
        let image = try VMMHarness.requireImage("IdleCases")
        let result = try VMMHarness.run(
            [
                image, "--cpus", "2", "--cmdline", "phase=\(Self.phaseSeconds) \(cmdline)",
                "--stats-interval", "0.25",
            ], limit: 60)
        XCTAssertEqual(result.status, 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)", file: file, line: line)
        // The markers, exactly, in order.
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { Self.markers.contains($0) }, Self.markers, result.stdout, file: file, line: line)
        // "phase N took T ms (from S ms); halts by case 2/3/4: cpu 0 a/b/c cpu 1 a/b/c"
        let guestStart = Double(result.stats?.int("guest_start_ns") ?? 0)
        var phases: [Phase] = []
        for summary in lines where summary.contains(" took ") {
            let words = summary.split(separator: " ")
            guard let number = Int(words[1]), let took = Double(words[3]),
                let from = Double(words[6]), let casesAt = words.firstIndex(of: "2/3/4:")
            else { continue }
            // After "2/3/4:": "cpu" N "a/b/c" for each CPU.
            var halts: [[Int]] = []
            var index = casesAt + 3
            while index < words.count {
                let counts = words[index].split(separator: "/").map { $0.filter(\.isNumber) }
                halts.append(counts.compactMap { Int($0) })
                index += 3
            }
            // The guest clock starts within a few ms of the first guest instruction.
            let start = guestStart + from * 1e6
            phases.append(Phase(number: number, startNanoseconds: start, endNanoseconds: start + took * 1e6, halts: halts))
        }
        XCTAssertEqual(phases.map(\.number), [1, 2, 3, 4], result.stdout, file: file, line: line)
        return (result, phases)
    }

    /// The vCPU 1 samples well inside `phase` (the first 0.5 s and last 0.25 s left out).
    func samples(_ result: VMMHarness.Result, in phase: Phase) -> [[String: Any]] {
        let all = result.stats?["samples"] as? [[String: Any]] ?? []
        return all.filter {
            let t = Double($0.int("t_ns") ?? 0)
            return t > phase.startNanoseconds + 0.5e9 && t < phase.endNanoseconds - 0.25e9
        }.compactMap { ($0["vcpus"] as? [[String: Any]])?[1] }
    }

    func testHaltingVersusPollingInEveryPhase() throws {
        try VMMHarness.requireKVM()
        let (halted, haltedPhases) = try run("")
        let (polled, polledPhases) = try run("idle=poll")
        guard haltedPhases.count == 4, polledPhases.count == 4 else { return }
        XCTAssertTrue(halted.stdout.contains("idle=halt, spin=pause"), halted.stdout)
        XCTAssertTrue(polled.stdout.contains("idle=poll, spin=pause"), polled.stdout)

        // HLT exits on every vCPU when halting; (near) none when polling.
        for vcpu in halted.vcpus {
            XCTAssertGreaterThan(vcpu.int("hlt_exits") ?? 0, 0, "\(vcpu)")
        }
        for vcpu in polled.vcpus {
            XCTAssertLessThanOrEqual(vcpu.int("hlt_exits") ?? .max, 2, "\(vcpu)")
        }
        // What each run cost the host is printed, not asserted: CPU% depends on
        // what else the host runs. Time halted does not: over the whole run the
        // halting VM spends most of its vCPU time halted (vCPU 0 sleeps in
        // every phase, vCPU 1 in three of four), the polling one almost none.
        let haltedCPU = halted.stats?["process_cpu_percent"] as? Double ?? 0
        let polledCPU = polled.stats?["process_cpu_percent"] as? Double ?? 0
        print("idle cases: idle=halt used \(haltedCPU)% of one host CPU, idle=poll \(polledCPU)%")
        for vcpu in halted.vcpus {
            XCTAssertGreaterThan(vcpu["halted_percent"] as? Double ?? 0, 50, "idle=halt: \(vcpu)")
        }
        for vcpu in polled.vcpus {
            XCTAssertLessThan(vcpu["halted_percent"] as? Double ?? 100, 5, "idle=poll: \(vcpu)")
        }

        // The guest's own count of halts begun, by case (2, 3, 4): in phase 2
        // cpu 1 halts with its thread asleep, then with no thread once it has
        // ended, and stays so through phase 3; in phase 4 it halts on pollers.
        XCTAssertGreaterThanOrEqual(haltedPhases[1].halts[0][0], 1, "phase 2: cpu 0 halts with no ready thread")
        XCTAssertGreaterThanOrEqual(haltedPhases[1].halts[1][0], 1, "phase 2: cpu 1 halts with no ready thread")
        XCTAssertGreaterThanOrEqual(haltedPhases[1].halts[1][1], 1, "phase 2: then with no thread")
        XCTAssertEqual(haltedPhases[2].halts[1], [0, 0, 0], "phase 3: cpu 1 stays halted, with no thread")
        XCTAssertGreaterThanOrEqual(haltedPhases[3].halts[1][2], 1, "phase 4: cpu 1 halts with only pollers")
        for phase in polledPhases {
            XCTAssertEqual(phase.halts.flatMap { $0 }.reduce(0, +), 0, "idle=poll never halts (phase \(phase.number))")
        }

        // Phase by phase, vCPU 1 (where the cases are): phase 1 spins in both
        // runs; phases 2-4 are halted with idle=halt and busy with idle=poll.
        // Judged by the share of the phase vCPU 1 spent halted, summed over the
        // phase's samples: a halted vCPU is halted however loaded the host is,
        // and a spinning one never is, whereas its CPU% is whatever share of a
        // host CPU it was given.
        for (run, phases, halting) in [(halted, haltedPhases, true), (polled, polledPhases, false)] {
            for phase in phases {
                let window = samples(run, in: phase)
                XCTAssertFalse(window.isEmpty, "no samples in phase \(phase.number)")
                let haltedShare = window.reduce(0.0) { $0 + ($1["halted_percent"] as? Double ?? 0) } / Double(max(window.count, 1))
                let expectBusy = phase.number == 1 || !halting
                if expectBusy {
                    XCTAssertLessThan(haltedShare, 10, "idle=\(halting ? "halt" : "poll") phase \(phase.number): vcpu 1 \(window)")
                } else {
                    XCTAssertGreaterThan(haltedShare, 90, "idle=halt phase \(phase.number): vcpu 1 \(window)")
                }
            }
        }
    }
}
