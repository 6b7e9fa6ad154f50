import Dispatch
import XCTest

@testable import ToroKernelPortable

/// Per-core heaps and the remote-free protocol, with host threads as cores.
final class CoreHeapTests: XCTestCase {
    /// Heaps for `count` cores, each growing by 2 MiB chunks of host memory.
    final class Machine: @unchecked Sendable {
        let heaps: UnsafeMutablePointer<CoreHeap>
        let count: Int
        /// Chunks handed out, per core (each list touched only by its core's thread).
        let chunkLists: [ChunkList]
        var chunks: [[UnsafeMutableRawPointer]] { chunkLists.map(\.chunks) }

        init(cores: Int) {
            count = cores
            heaps = .allocate(capacity: cores)
            chunkLists = (0..<cores).map { _ in ChunkList() }
            for core in 0..<cores { (heaps + core).initialize(to: CoreHeap(core: core)) }
        }

        deinit {
            heaps.deinitialize(count: count)
            heaps.deallocate()
            for list in chunkLists { for chunk in list.chunks { chunk.deallocate() } }
        }

        func heap(_ core: Int) -> UnsafeMutablePointer<CoreHeap> { heaps + core }

        func allocate(on core: Int, size: Int, alignment: Int = 16) throws -> UnsafeMutableRawPointer {
            let pointer = try heap(core).pointee.allocate(size: size, alignment: alignment) { minimum in
                // Whole chunks, as the kernel takes them when it can.
                let bytes = (minimum + CoreHeap.chunkSize - 1) / CoreHeap.chunkSize * CoreHeap.chunkSize
                let chunk = UnsafeMutableRawPointer.allocate(byteCount: Int(bytes), alignment: Int(CoreHeap.chunkSize))
                self.chunkLists[core].chunks.append(chunk)
                return (UInt(bitPattern: chunk), UInt(bitPattern: chunk) + bytes)
            }
            return try XCTUnwrap(pointer)
        }

        func free(_ pointer: UnsafeMutableRawPointer, on core: Int) throws {
            try CoreHeap.free(pointer, on: heap(core)) { $0 >= 0 && $0 < self.count ? self.heap($0) : nil }
        }
    }

    // MARK: - Headers

    func testHeaderTagsNameTheOwnerAndNeverLookLikeAddresses() {
        for core in [0, 1, 31, 255] {
            XCTAssertEqual(BlockHeader.owner(ofInUse: BlockHeader.inUse(owner: core)), core)
            XCTAssertNil(BlockHeader.owner(ofInUse: BlockHeader.remoteFree(owner: core)))
        }
        // Free-list links are addresses (below 2^52) or 0.
        for link: UInt in [0, 0x20_0000, 0xF_FFFF_FFFF_F000] {
            XCTAssertNil(BlockHeader.owner(ofInUse: link))
        }
    }

    // MARK: - One core

    func testAHeapGrowsByChunksFromItsFirstAllocation() throws {
        let machine = Machine(cores: 1)
        XCTAssertEqual(machine.heap(0).pointee.statistics.capacity, 0, "no memory before the first allocation")
        let small = try machine.allocate(on: 0, size: 100)
        XCTAssertEqual(machine.chunks[0].count, 1)
        XCTAssertEqual(machine.heap(0).pointee.statistics.capacity, Int(CoreHeap.chunkSize))
        // Larger than a chunk: one growth of whole chunks that holds it.
        let large = try machine.allocate(on: 0, size: 5 << 20, alignment: 4096)
        XCTAssertEqual(UInt(bitPattern: large) % 4096, 0)
        XCTAssertGreaterThanOrEqual(CoreHeap.usableSize(of: large), 5 << 20)
        XCTAssertEqual(machine.chunks[0].count, 2)
        try machine.free(large, on: 0)
        try machine.free(small, on: 0)
        XCTAssertEqual(machine.heap(0).pointee.statistics.allocations, 0)
        XCTAssertEqual(machine.heap(0).pointee.statistics.bytesInUse, 0)
    }

    func testOutOfMemoryIsNilNotACrash() throws {
        var heap = CoreHeap(core: 0)
        XCTAssertNil(try heap.allocate(size: 64, alignment: 16) { _ in nil })
        XCTAssertNil(CoreHeap.growth(size: Int.max, alignment: 16), "absurd sizes are refused before any sum overflows")
        XCTAssertNil(CoreHeap.growth(size: -1, alignment: 16))
        XCTAssertEqual(CoreHeap.growth(size: 100, alignment: 16), 4096)
        XCTAssertEqual(CoreHeap.growth(size: 1, alignment: 4096), 8192, "room for the worst alignment gap")
        XCTAssertEqual(CoreHeap.growth(size: 2 << 20, alignment: 16), (2 << 20) + 4096)
        // Growth by exactly the minimum always fits the block.
        for (size, alignment) in [(1, 16), (4000, 16), (4096, 4096), (100, 2048), (5000, 64)] {
            var small = CoreHeap(core: 0)
            let minimum = try XCTUnwrap(CoreHeap.growth(size: size, alignment: alignment))
            let memory = UnsafeMutableRawPointer.allocate(byteCount: Int(minimum) + 16, alignment: 16)
            defer { memory.deallocate() }
            // Deliberately misaligned by 16, the worst a page-aligned grant can be from the block's view.
            let start = UInt(bitPattern: memory) + 16
            let block = try small.allocate(size: size, alignment: alignment) { _ in (start, start + minimum) }
            XCTAssertNotNil(block, "\(size) bytes aligned to \(alignment)")
        }
    }

    // MARK: - Frees from other cores

    func testAForeignFreeWaitsForTheOwner() throws {
        let machine = Machine(cores: 2)
        let baseline = try machine.allocate(on: 0, size: 8)  // the chunk is taken
        let statistics = machine.heap(0).pointee.statistics
        let block = try machine.allocate(on: 0, size: 200)
        try machine.free(block, on: 1)
        // Still counted on core 0 until core 0 takes it back.
        XCTAssertEqual(machine.heap(0).pointee.statistics.allocations, statistics.allocations + 1)
        XCTAssertEqual(machine.heap(1).pointee.statistics.allocations, 0, "core 1 never owned it")
        try machine.heap(0).pointee.reclaimRemoteFrees()
        XCTAssertEqual(machine.heap(0).pointee.statistics.bytesInUse, statistics.bytesInUse)
        XCTAssertEqual(machine.heap(0).pointee.statistics.remoteFreesReceived, 1)
        // An allocation takes remote frees back by itself.
        let other = try machine.allocate(on: 0, size: 48)
        try machine.free(other, on: 1)
        let again = try machine.allocate(on: 0, size: 48)
        XCTAssertEqual(again, other, "the block freed remotely is reused")
        XCTAssertEqual(machine.heap(0).pointee.statistics.remoteFreesReceived, 2)
        try machine.free(again, on: 0)
        try machine.free(baseline, on: 0)
    }

    func testDoubleFreesAreCaughtOnEveryCore() throws {
        let machine = Machine(cores: 3)
        func refuses(_ pointer: UnsafeMutableRawPointer, on core: Int, _ expected: CoreHeap.FreeError, line: UInt = #line) {
            XCTAssertThrowsError(try machine.free(pointer, on: core), line: line) {
                XCTAssertEqual($0 as? CoreHeap.FreeError, expected, line: line)
            }
        }
        let block = try machine.allocate(on: 0, size: 64)
        try machine.free(block, on: 1)
        refuses(block, on: 2, .notInUse)  // a second remote free, before the owner took it back
        refuses(block, on: 0, .notInUse)  // the owner freeing what waits on its remote list
        try machine.heap(0).pointee.reclaimRemoteFrees()
        refuses(block, on: 1, .notInUse)  // after it went back

        let local = try machine.allocate(on: 1, size: 64)
        try machine.free(local, on: 1)
        refuses(local, on: 1, .notInUse)
        refuses(local, on: 0, .notInUse)

        var onTheStack = [UInt](repeating: 0, count: 4)
        onTheStack.withUnsafeMutableBytes { refuses($0.baseAddress! + 16, on: 0, .notInUse) }
        refuses(UnsafeMutableRawPointer(bitPattern: 0x10)!, on: 0, .notInHeap)
        refuses(block + 8, on: 0, .notInHeap)

        // A header naming a core that has no heap.
        let forged = try machine.allocate(on: 2, size: 32)
        BlockHeader.tagWord(ofPayload: UInt(bitPattern: forged)).pointee.store(BlockHeader.inUse(owner: 9), ordering: .relaxed)
        refuses(forged, on: 0, .unknownOwner(9))
    }

    func testABlockWrittenAfterARemoteFreeIsReportedDamaged() throws {
        let machine = Machine(cores: 2)
        let block = try machine.allocate(on: 0, size: 64)
        try machine.free(block, on: 1)
        // A use after free that hits the header.
        BlockHeader.tagWord(ofPayload: UInt(bitPattern: block)).pointee.store(0x1234, ordering: .relaxed)
        XCTAssertThrowsError(try machine.heap(0).pointee.reclaimRemoteFrees()) {
            XCTAssertEqual($0 as? CoreHeap.DamagedBlock, CoreHeap.DamagedBlock(payload: UInt(bitPattern: block)))
        }
    }

    // MARK: - Threads as cores

    func testTheRemoteFreeListTakesConcurrentPushes() {
        nonisolated(unsafe) let list = UnsafeMutablePointer<RemoteFreeList>.allocate(capacity: 1)
        list.initialize(to: RemoteFreeList())
        defer { list.deinitialize(count: 1); list.deallocate() }
        let threads = 4, perThread = 20_000
        let blocks = UnsafeMutableRawPointer.allocate(byteCount: threads * perThread * 16, alignment: 16)
        defer { blocks.deallocate() }
        let base = UInt(bitPattern: blocks)
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in 0..<perThread {
                list.pointee.push(base + UInt((thread * perThread + index) * 16))
            }
        }
        var seen = Set<UInt>()
        var payload = list.pointee.takeAll()
        while payload != 0 {
            XCTAssertTrue(seen.insert(payload).inserted, "a block twice in the list")
            payload = RemoteFreeList.next(after: payload)
        }
        XCTAssertEqual(seen.count, threads * perThread)
        XCTAssertTrue(list.pointee.isEmpty)
    }

    /// Every core allocates blocks and hands each to another core to free,
    /// while the owners keep allocating (and so taking remote frees back) at
    /// the same time. In the end every heap is back where it started.
    func testCoresFreeEachOthersBlocksConcurrently() throws {
        let cores = 4, rounds = 4000
        let machine = Machine(cores: cores)
        // Mailboxes: blocks waiting for core n to free them.
        let mailboxes = (0..<cores).map { _ in Mailbox() }
        let failures = Mailbox()
        DispatchQueue.concurrentPerform(iterations: cores) { core in
            do {
                var generator = SystemRandomNumberGenerator()
                for round in 0..<rounds {
                    let size = Int.random(in: 1...300, using: &generator)
                    let block = try machine.allocate(on: core, size: size)
                    // Stamp the block, so that a block handed out twice shows.
                    block.storeBytes(of: UInt32(core << 24 | round), as: UInt32.self)
                    let target = (core + 1 + round % (cores - 1)) % cores
                    mailboxes[target].put(UInt(bitPattern: block), stamp: UInt(core << 24 | round))
                    for (address, stamp) in mailboxes[core].takeAll() {
                        let pointer = UnsafeMutableRawPointer(bitPattern: address)!
                        if pointer.load(as: UInt32.self) != UInt32(stamp) { failures.put(address, stamp: stamp) }
                        try machine.free(pointer, on: core)
                    }
                }
            } catch {
                failures.put(0, stamp: 0)
            }
        }
        // The blocks still in mailboxes, freed by their recipients now.
        for core in 0..<cores {
            for (address, _) in mailboxes[core].takeAll() {
                try machine.free(UnsafeMutableRawPointer(bitPattern: address)!, on: core)
            }
        }
        XCTAssertTrue(failures.takeAll().isEmpty, "a block was corrupted or a free refused")
        var received = 0
        for core in 0..<cores {
            try machine.heap(core).pointee.reclaimRemoteFrees()
            let statistics = machine.heap(core).pointee.statistics
            XCTAssertEqual(statistics.allocations, 0, "core \(core)")
            XCTAssertEqual(statistics.bytesInUse, 0, "core \(core)")
            received += statistics.remoteFreesReceived
        }
        XCTAssertEqual(received, cores * rounds, "every block went back to its owner through its remote list")
    }
}

/// The chunks one core's heap took.
final class ChunkList: @unchecked Sendable {
    var chunks: [UnsafeMutableRawPointer] = []
}

/// A locked list of (address, stamp) pairs passed between test threads.
final class Mailbox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [(UInt, UInt)] = []

    func put(_ address: UInt, stamp: UInt) {
        lock.lock()
        items.append((address, stamp))
        lock.unlock()
    }

    func takeAll() -> [(UInt, UInt)] {
        lock.lock()
        defer { lock.unlock() }
        let taken = items
        items = []
        return taken
    }
}
