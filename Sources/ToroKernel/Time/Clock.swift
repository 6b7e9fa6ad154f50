import KernelSupport
import Synchronization

/// The kernel's monotonic clock: nanoseconds since CPU 0 started, read from the
/// time-stamp counter.
///
/// KVM gives guests an invariant TSC, the same on every vCPU, so any core can
/// read the clock with one `rdtsc` and no lock. The rate comes from the boot
/// information (the VMM asks KVM_GET_TSC_KHZ); only when it is absent does the
/// kernel fall back to what CPUID says, and it says so on the console.
public enum Clock {
    /// Nanoseconds since boot.
    public static var now: UInt64 {
        conversion.nanoseconds(ticks: CPU.timestamp() &- bootTimestamp.load(ordering: .relaxed))
    }

    /// The TSC value `nanoseconds` from now: a deadline for the core's timer.
    public static func deadline(afterNanoseconds nanoseconds: UInt64) -> UInt64 {
        let (deadline, overflow) = CPU.timestamp().addingReportingOverflow(conversion.ticks(nanoseconds: nanoseconds))
        return overflow ? .max : deadline
    }

    /// The number of TSC ticks in `nanoseconds`, rounded up.
    public static func ticks(nanoseconds: UInt64) -> UInt64 {
        conversion.ticks(nanoseconds: nanoseconds)
    }

    /// The nanoseconds `ticks` TSC ticks last, rounded down: for turning a
    /// difference of two ``CPU/timestamp()`` readings (from any cores: the
    /// TSC is the same on all of them) into time.
    public static func nanoseconds(ticks: UInt64) -> UInt64 {
        conversion.nanoseconds(ticks: ticks)
    }

    /// Nanoseconds from now until the TSC reaches `deadline` (0 if it has).
    public static func nanoseconds(until deadline: UInt64) -> UInt64 {
        let now = CPU.timestamp()
        return deadline > now ? conversion.nanoseconds(ticks: deadline - now) : 0
    }

    /// The TSC rate in kHz in use.
    public static var tscKHz: UInt64 { khz.load(ordering: .relaxed) }

    static var conversion: TSCConversion {
        TSCConversion(khz: khz.load(ordering: .relaxed)) ?? TSCConversion(khz: fallbackKHz)!
    }

    /// On CPU 0, first thing: fixes time zero and the TSC rate.
    static func start(bootInfo: BootInfo) {
        bootTimestamp.store(CPU.timestamp(), ordering: .relaxed)
        var rate = bootInfo.tscKHz
        var source: StaticString = ""
        if rate == 0 {
            (rate, source) = rateFromCPUID()
        }
        if rate == 0 || TSCConversion(khz: rate) == nil {
            (rate, source) = (fallbackKHz, "assumed; CPUID does not say")
        }
        khz.store(rate, ordering: .relaxed)
        if bootInfo.tscKHz == 0 {
            Console.withLockedState { line in
                line.write("clock: the VMM gave no TSC rate; using ")
                line.write(decimal: rate)
                line.write(" kHz (")
                line.write(source)
                line.write(")\n")
                line.flushIfLineEnded()
            }
        }
    }

    /// The TSC rate from CPUID leaf 0x15 (TSC/crystal ratio and crystal clock)
    /// or, failing that, leaf 0x16 (nominal base frequency); 0 if neither says.
    static func rateFromCPUID() -> (UInt64, StaticString) {
        let maxLeaf = CPU.identify(leaf: 0).eax
        if maxLeaf >= 0x15 {
            let leaf = CPU.identify(leaf: 0x15)
            if leaf.eax != 0, leaf.ebx != 0, leaf.ecx != 0 {
                return (UInt64(leaf.ecx) * UInt64(leaf.ebx) / UInt64(leaf.eax) / 1000, "CPUID leaf 0x15")
            }
        }
        if maxLeaf >= 0x16 {
            let megahertz = UInt64(CPU.identify(leaf: 0x16).eax & 0xFFFF)
            if megahertz != 0 { return (megahertz * 1000, "CPUID leaf 0x16") }
        }
        return (0, "")
    }

    /// Used when nothing tells the rate: 3 GHz, the right order of magnitude.
    static let fallbackKHz: UInt64 = 3_000_000
}

private let bootTimestamp = Atomic<UInt64>(0)
private let khz = Atomic<UInt64>(0)
