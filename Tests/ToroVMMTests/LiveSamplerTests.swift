@testable import ToroVMM
import XCTest

final class LiveSamplerTests: XCTestCase {
    let second: UInt64 = 1_000_000_000

    func reading(cpu: UInt64 = 0, exits: UInt64 = 0, halts: UInt64 = 0, wait: UInt64 = 0, blocking: Bool = false) -> VCPUReading {
        VCPUReading(cpuNanoseconds: cpu, exits: exits, haltExits: halts, haltWaitNanoseconds: wait, blocking: blocking)
    }

    func testRatesAndCPU() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading()])
        let sample = sampler.sample(time: 2 * second, processCPU: second, readings: [reading(cpu: second / 2, exits: 400, halts: 100)])
        XCTAssertEqual(sample.intervalNanoseconds, 2 * second)
        XCTAssertEqual(sample.processCPUPercent, 50, accuracy: 1e-9)
        XCTAssertEqual(sample.vcpus[0].cpuPercent, 25, accuracy: 1e-9)
        XCTAssertEqual(sample.vcpus[0].exitsPerSecond, 200, accuracy: 1e-9)
        XCTAssertEqual(sample.vcpus[0].haltExitsPerSecond, 50, accuracy: 1e-9)
        XCTAssertEqual(sample.vcpus[0].haltedPercent, 0, accuracy: 1e-9)
    }

    func testCompletedHaltsCount() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading()])
        let sample = sampler.sample(time: second, processCPU: 0, readings: [reading(halts: 10, wait: second * 3 / 4)])
        XCTAssertEqual(sample.vcpus[0].haltedPercent, 75, accuracy: 1e-9)
    }

    /// A tickless kernel halts once for seconds; KVM accounts the halt only when it ends.
    func testLongHaltIsCountedWhileItLasts() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading(halts: 1, blocking: true)])
        var halted: [Double] = []
        for t in 1...3 {
            let sample = sampler.sample(time: UInt64(t) * second, processCPU: 0, readings: [reading(halts: 1, blocking: true)])
            halted.append(sample.vcpus[0].haltedPercent)
        }
        XCTAssertEqual(halted, [100, 100, 100])
        // The halt ends at 3.5 s, lasting 3.5 s; only the last half second is new.
        let end = sampler.sample(time: 4 * second, processCPU: 0,
                                 readings: [reading(cpu: second / 2, halts: 1, wait: second * 7 / 2, blocking: false)])
        XCTAssertEqual(end.vcpus[0].haltedPercent, 50, accuracy: 1e-9)
    }

    /// Between samples the vCPU woke (a halt of 0.6 s accounted), ran 0.1 s and
    /// halted again: the new halt counts from when the vCPU stopped running.
    func testNewHaltAfterAWakeCountsFromWhenTheVCPUStoppedRunning() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading(halts: 1, blocking: true)])
        let first = sampler.sample(time: second, processCPU: 0,
                                   readings: [reading(cpu: second / 10, halts: 2, wait: second * 6 / 10, blocking: true)])
        XCTAssertEqual(first.vcpus[0].haltedPercent, 90, accuracy: 1e-9)
        let next = sampler.sample(time: 2 * second, processCPU: 0,
                                  readings: [reading(cpu: second / 10, halts: 2, wait: second * 6 / 10, blocking: true)])
        XCTAssertEqual(next.vcpus[0].haltedPercent, 100, accuracy: 1e-9)
        // It ends at 2.5 s, 1.8 s after it began at 0.7 s: 0.5 s of it is new.
        let end = sampler.sample(time: 3 * second, processCPU: 0,
                                 readings: [reading(cpu: second * 6 / 10, halts: 2, wait: second * 24 / 10, blocking: false)])
        XCTAssertEqual(end.vcpus[0].haltedPercent, 50, accuracy: 1e-9)
        XCTAssertEqual(end.vcpus[0].cpuPercent, 50, accuracy: 1e-9)
    }

    /// An idle guest: the vCPU boots (0.1 s of CPU) and halts for good before
    /// the first sample. The first sample already shows it halted.
    func testFirstSampleShowsAHaltThatBeganInIt() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading()])
        let first = sampler.sample(time: second, processCPU: 0, readings: [reading(cpu: second / 10, halts: 1, blocking: true)])
        XCTAssertEqual(first.vcpus[0].haltedPercent, 90, accuracy: 1e-9)
        let next = sampler.sample(time: 2 * second, processCPU: 0, readings: [reading(cpu: second / 10, halts: 1, blocking: true)])
        XCTAssertEqual(next.vcpus[0].haltedPercent, 100, accuracy: 1e-9)
    }

    /// A halt that began just before a sample and ended just after it belongs
    /// to both intervals, not all to the second: a busy vCPU's CPU% plus
    /// halted% stays within 100%.
    func testAHaltAcrossASampleIsSplitBetweenTheIntervals() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading()])
        // Busy 0.9 s, then halted from 0.9 s on.
        let first = sampler.sample(time: second, processCPU: 0, readings: [reading(cpu: second * 9 / 10, halts: 1, blocking: true)])
        XCTAssertEqual(first.vcpus[0].haltedPercent, 10, accuracy: 1e-9)
        // The halt ends at 1.05 s (0.15 s in all); busy for the rest.
        let next = sampler.sample(time: 2 * second, processCPU: 0,
                                  readings: [reading(cpu: second * 9 / 10 + second * 95 / 100, halts: 1, wait: second * 15 / 100)])
        XCTAssertEqual(next.vcpus[0].haltedPercent, 5, accuracy: 1e-9)
        XCTAssertLessThanOrEqual(next.vcpus[0].haltedPercent + next.vcpus[0].cpuPercent, 100 + 1e-9)
    }

    /// On a loaded host the vCPU thread may wait for a CPU before it halts; that
    /// wait is counted as halted when the halt is first seen, and taken back
    /// from the interval where the halt ends.
    func testAnOverestimatedStartIsTakenBackWhenTheHaltEnds() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading()])
        // 0.1 s of CPU, 0.4 s waiting for a host CPU, halted from 0.5 s: counted as 90%.
        let first = sampler.sample(time: second, processCPU: 0, readings: [reading(cpu: second / 10, halts: 1, blocking: true)])
        XCTAssertEqual(first.vcpus[0].haltedPercent, 90, accuracy: 1e-9)
        // The halt ends at 1.2 s after 0.7 s; then 0.2 s of CPU and 0.6 s halted in a second halt, ended.
        let next = sampler.sample(time: 2 * second, processCPU: 0,
                                  readings: [reading(cpu: second * 3 / 10, halts: 2, wait: second * 13 / 10)])
        // 0.7 + 0.6 s accounted, 0.9 s already reported: 0.4 s of the true 0.8 s.
        XCTAssertEqual(next.vcpus[0].haltedPercent, 40, accuracy: 1e-9)
    }

    /// KVM's `blocking` and the thread's CPU clock are read at slightly different
    /// moments; whatever they say, halted% never exceeds 100% less CPU%.
    func testHaltedNeverExceedsWhatTheCPUTimeLeaves() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading(halts: 1, blocking: true)])
        let sample = sampler.sample(time: second, processCPU: 0,
                                    readings: [reading(cpu: second * 3 / 10, halts: 1, blocking: true)])
        XCTAssertEqual(sample.vcpus[0].haltedPercent, 70, accuracy: 1e-9)
        XCTAssertEqual(sample.vcpus[0].cpuPercent, 30, accuracy: 1e-9)
    }

    func testHaltedShareIsClamped() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading()])
        let sample = sampler.sample(time: second, processCPU: 0, readings: [reading(halts: 1, wait: 5 * second)])
        XCTAssertEqual(sample.vcpus[0].haltedPercent, 100, accuracy: 1e-9)
    }

    func testSampleLineAndJSON() throws {
        let sample = Sample(timeNanoseconds: 2 * second, intervalNanoseconds: second, processCPUPercent: 0.4,
                            vcpus: [VCPUSample(index: 0, cpuPercent: 0.1, exitsPerSecond: 15, haltExitsPerSecond: 12, haltedPercent: 99.8)])
        let line = StatisticsFormat.sampleLine(sample)
        XCTAssertTrue(line.contains("2.0 s"), line)
        XCTAssertTrue(line.contains("vcpu0 cpu   0.1%"), line)
        XCTAssertTrue(line.contains("hlt     12/s"), line)
        XCTAssertTrue(line.contains("halted  99.8%"), line)
    }
}
