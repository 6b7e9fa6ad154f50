/// Telling a stack overflow from any other page fault: was the faulting
/// address in the unmapped guard page just below some stack?
///
/// The boot stacks' guard pages are known from the boot info (the VMM leaves
/// the page below each `stack_base` unmapped). Other stacks (threads, once
/// the memory subsystem hands out guarded stacks) are found through a lookup
/// function that subsystem registers with ``setStackLookup(_:)``.
public enum StackGuards {
    /// Given an address, returns the lowest usable byte of the stack whose
    /// guard page holds it, or 0 if it is in no guard page. Called from the
    /// crash report, with interrupts disabled, possibly with a lock held by
    /// the faulting CPU: it must not allocate, block or take locks.
    public typealias Lookup = @convention(c) (_ address: UInt64) -> UInt64

    /// Makes the crash report ask `lookup` about page faults outside the
    /// boot stacks' guard pages (nil to stop asking).
    public static func setStackLookup(_ lookup: Lookup?) {
        stackLookup = lookup
    }

    /// Whose guard page an address is in.
    enum Owner {
        /// The boot stack of this CPU.
        case bootStack(cpu: Int)
        /// A stack the registered lookup knows, by its lowest usable byte.
        case stack(base: UInt64)
    }

    static let guardSize: UInt64 = 4096

    /// The stack whose guard page holds `address`, if any.
    static func owner(ofGuardPageHolding address: UInt64) -> Owner? {
        if let bootInfo = BootInfo.publishedIfAny {
            for cpu in 0..<bootInfo.cpuCount {
                let base = UInt64(bootInfo.bootStack(ofCPU: cpu).base)
                if base >= guardSize && address >= base - guardSize && address < base {
                    return .bootStack(cpu: cpu)
                }
            }
        }
        if let lookup = stackLookup {
            let base = lookup(address)
            if base != 0 { return .stack(base: base) }
        }
        return nil
    }

    /// Set once by the memory subsystem; read by the crash report.
    nonisolated(unsafe) private static var stackLookup: Lookup?
}
