import KernelSupport

/// Physical pages for the whole machine: heap chunks, stacks, page tables.
///
/// A ``PageRunAllocator`` over the usable RAM of the boot memory map, behind
/// one spin lock. The lock is shared by every CPU, which is fine because
/// nothing takes pages on a hot path: each CPU's heap comes back here only for
/// another 2 MiB chunk, a thread for its stack once.
public enum PageAllocator {
    /// Bytes per page.
    public static let pageSize = Int(PageRun.pageSize)

    /// Pages free now.
    public static var freePages: Int {
        pageAllocator.withLock { Int($0.freePages) }
    }

    /// Pages of usable RAM the allocator manages, free or not.
    public static var totalPages: Int {
        pageAllocator.withLock { Int($0.totalPages) }
    }

    /// The longest run of free pages, in pages.
    public static var largestFreeRun: Int {
        pageAllocator.withLock { Int($0.largestFreeRun) }
    }

    /// The address of `pages` contiguous pages aligned to `alignment` bytes (a
    /// power of two; the default is a page), or nil when no free run can hold
    /// them. Their contents are whatever was there: nothing is zeroed.
    public static func allocate(pages: Int, alignment: Int = pageSize) -> UInt? {
        guard pages > 0, alignment > 0 else { return nil }
        return pageAllocator.withLock { $0.allocate(pages: UInt(pages), alignment: UInt(alignment)) }
    }

    /// Gives back `pages` pages at `address`, from an earlier ``allocate(pages:alignment:)``.
    /// Panics on pages that were never handed out or are free already.
    public static func free(_ address: UInt, pages: Int) {
        let result = pageAllocator.withLock { allocator -> PageRunAllocator.Failure? in
            do throws(PageRunAllocator.Failure) {
                try allocator.free(start: address, pages: UInt(max(pages, 0)))
                return nil
            } catch {
                return error
            }
        }
        guard let failure = result else { return }
        Kernel.panic { message in
            message.write("free of ")
            message.write(decimal: UInt64(max(pages, 0)))
            message.write(" pages at ")
            message.write(hex: UInt64(address))
            switch failure {
            case .notAllocated: message.write(", which are free already (double free)")
            case .notManaged: message.write(", which are not usable RAM")
            case .tableFull: message.write(": no memory left to track free pages")
            default: message.write(", which is not a whole number of pages")
            }
        }
    }

    /// Hands the allocator every usable region of the memory map, minus the
    /// kernel image. Runs on CPU 0 before anything allocates; costs a few
    /// instructions per region, whatever the size of RAM.
    static func start(bootInfo: BootInfo) {
        withUnsafeTemporaryAllocation(of: PageRun.self, capacity: Int(TORO_MAX_MEMORY_REGIONS)) { runs in
            var count = 0
            for index in 0..<min(bootInfo.memoryRegionCount, runs.count) {
                let region = bootInfo.memoryRegion(index)
                guard region.type == TORO_MEMORY_USABLE,
                    let run = PageRun.usable(base: region.base, length: region.length, floor: kernel_image_end())
                else { continue }
                runs.initializeElement(at: count, to: run)
                count += 1
            }
            // Regions overlapping another would be a VMM bug; they are left out.
            var rejected = 0
            let allocator = PageRunAllocator(runs: UnsafeBufferPointer(rebasing: runs[0..<count]), rejected: &rejected)
            pageAllocator.withLock { $0 = allocator }
        }
    }
}

/// The machine's free pages; empty until ``PageAllocator/start(bootInfo:)``.
let pageAllocator = SpinLock(PageRunAllocator())
