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

    func testNewHaltAfterAWakeStartsCountingWhenSeen() {
        var sampler = LiveSampler(time: 0, processCPU: 0, readings: [reading(halts: 1, blocking: true)])
        // Between samples the vCPU woke (halt of 0.6 s accounted) and halted again.
        let first = sampler.sample(time: second, processCPU: 0, readings: [reading(halts: 2, wait: second * 6 / 10, blocking: true)])
        XCTAssertEqual(first.vcpus[0].haltedPercent, 60, accuracy: 1e-9)
        let second = sampler.sample(time: 2 * self.second, processCPU: 0, readings: [reading(halts: 2, wait: self.second * 6 / 10, blocking: true)])
        XCTAssertEqual(second.vcpus[0].haltedPercent, 100, accuracy: 1e-9)
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
