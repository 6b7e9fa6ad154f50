import KernelSupport

/// Stacks with an unmapped guard page below them, so that an overflow faults
/// at once instead of silently overwriting the memory underneath.
///
/// A stack of `n` pages is a run of `n + 1` pages from the ``PageAllocator``;
/// the lowest becomes the guard (``PageTables/makeGuard(page:core:stackPages:)``),
/// and its page-table entry records the stack's size and the core that
/// allocated it, so a fault address alone tells which stack overflowed
/// (``guardedStack(at:)``), without a registry, a lock or an allocation.
///
/// ## Guard pages and other CPUs' TLBs
///
/// Making the guard costs an `invlpg` on the allocating CPU. Every other CPU
/// may still hold a translation covering the guard page: a 2 MiB TLB entry
/// from before the split (any access to another page of those 2 MiB caches
/// one) or, if the page was part of an earlier stack or heap chunk, a 4 KiB
/// one. A shootdown IPI would not help much: CPUs take interrupts only while
/// idle, so the allocating CPU could not wait for a busy one to flush. None is
/// needed, because of what a stale entry can and cannot do:
///
/// - It maps the guard exactly as the identity map did: a stale entry never
///   sends an access to the wrong memory, it only lets an access to the guard
///   page through without faulting, on that CPU.
/// - The guard page belongs to no one, so the only code that ever touches it is
///   code overflowing the stack above it, and that code runs on whichever CPU
///   runs the stack's thread.
/// - So it is enough that the CPU which will run on a stack has no stale entry
///   for its guard when it starts: ``allocate(pages:)`` flushes the allocating
///   CPU, and a CPU that runs a stack allocated elsewhere calls
///   ``adopt(base:)`` once before switching to it (one `invlpg` of the guard).
///   The stack's address reaches that CPU through whatever hands the thread
///   over (a queue, a lock), which orders it after the guard was made. After
///   the flush that CPU can only cache the guard by walking the tables, which
///   now say "not present", and x86 never caches a not-present translation.
///
/// Freeing a stack makes its guard present again, which needs no flush: no
/// TLB holds a not-present page. (If CPUs ever take interrupts while busy, a
/// synchronous shootdown in ``allocate(pages:)`` could replace ``adopt(base:)``.)
public enum Stacks {
    /// A stack whose guard page holds an address, as ``guardedStack(at:)`` reports it.
    public struct GuardedStack: Equatable {
        /// Lowest usable byte; the guard page is the page below.
        public let base: UInt
        /// One past the highest byte: the initial stack pointer.
        public let top: UInt
        /// For a boot stack, the CPU it belongs to; otherwise the core that allocated it.
        public let core: Int
        /// Whether this is a CPU's boot stack (guarded by the VMM) rather than one from ``allocate(pages:)``.
        public let isBootStack: Bool
    }

    private static let pageSize = PageRun.pageSize

    /// A stack of `pages` pages (at least 1) with an unmapped guard page below
    /// `base`; `top` is the initial stack pointer (page-aligned). Its memory is
    /// not zeroed. Panics when memory runs out.
    ///
    /// The guard is in force on this CPU at once; another CPU that will run on
    /// the stack calls ``adopt(base:)`` first (see "Guard pages and other CPUs' TLBs").
    public static func allocate(pages: Int) -> (base: UInt, top: UInt) {
        guard pages > 0, pages < 1 << 30 else {
            Kernel.panic { message in
                message.write("cannot allocate a stack of ")
                message.write(decimal: UInt64(bitPattern: Int64(pages)))
                message.write(" pages")
            }
        }
        guard let run = PageAllocator.allocate(pages: pages + 1) else {
            Kernel.panic { message in
                message.write("out of memory: cannot allocate a stack of ")
                message.write(decimal: UInt64(pages) * UInt64(pageSize))
                message.write(" bytes (")
                message.write(decimal: UInt64(PageAllocator.freePages))
                message.write(" pages free, the longest run ")
                message.write(decimal: UInt64(PageAllocator.largestFreeRun))
                message.write(")")
            }
        }
        guard PageTables.makeGuard(page: run, core: CPULocal.index, stackPages: UInt(pages)) else {
            Kernel.panic { message in
                message.write("cannot unmap the guard page at ")
                message.write(hex: UInt64(run))
                message.write(": no page left for a page table")
            }
        }
        let base = run + pageSize
        return (base, base + UInt(pages) * pageSize)
    }

    /// Frees a stack from ``allocate(pages:)``; its guard page is mapped again
    /// and all its pages go back to the page allocator. Panics if `base` and
    /// `top` are not such a stack (or it was freed already).
    public static func free(base: UInt, top: UInt) {
        let pages = top > base ? (top - base) / pageSize : 0
        guard base % pageSize == 0, top % pageSize == 0, base > pageSize, pages > 0,
            PageTables.removeGuard(page: base - pageSize, stackPages: pages)
        else {
            Kernel.panic { message in
                message.write("free of a stack from ")
                message.write(hex: UInt64(base))
                message.write(" to ")
                message.write(hex: UInt64(top))
                message.write(", which is not an allocated stack (freed already?)")
            }
        }
        PageAllocator.free(base - pageSize, pages: Int(pages) + 1)
    }

    /// Pages taken for page tables so far: one each time a guard falls in a
    /// 2 MiB page not split before. They are never given back (see ``PageTables``).
    public static var pageTablePages: Int {
        PageTables.splitCount
    }

    /// Drops this CPU's TLB entries for the guard of the stack at `base`. A
    /// CPU calls it once before it first runs on a stack another CPU allocated.
    public static func adopt(base: UInt) {
        kernel_invlpg(base - pageSize)
    }

    /// The core that allocated the stack whose guard page holds `address` (for
    /// a boot stack, its CPU), or nil if `address` is in no guard page.
    public static func guardOwner(of address: UInt) -> Int? {
        guardedStack(at: address)?.core
    }

    /// The stack whose guard page holds `address`, or nil if none does: for
    /// a page fault at `address`, whether it was a stack overflow and whose.
    /// Takes no lock and allocates nothing, so a fault handler may call it.
    public static func guardedStack(at address: UInt) -> GuardedStack? {
        let page = address & ~(pageSize - 1)
        if let bootInfo = BootInfo.publishedIfAny {
            for cpu in 0..<bootInfo.cpuCount {
                let stack = bootInfo.bootStack(ofCPU: cpu)
                if stack.base >= pageSize, page == stack.base - pageSize {
                    return GuardedStack(base: stack.base, top: stack.base + stack.size, core: cpu, isBootStack: true)
                }
            }
        }
        guard let info = PageTables.guardInfo(at: page) else { return nil }
        let base = page + pageSize
        return GuardedStack(base: base, top: base + info.stackPages * pageSize, core: info.core, isBootStack: false)
    }

    /// Tells the crash report (`StackGuards`, in Arch/) how to recognise a
    /// fault in the guard page of a stack from ``allocate(pages:)``; it knows
    /// the boot stacks' guards itself. On CPU 0 at boot.
    static func start() {
        StackGuards.setStackLookup { address in
            guard let stack = Stacks.guardedStack(at: UInt(address)), !stack.isBootStack else { return 0 }
            return UInt64(stack.base)
        }
    }
}
