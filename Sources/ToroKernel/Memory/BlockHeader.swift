import Synchronization

/// The 16 bytes in front of every heap block, and what they say.
///
/// ```
/// word 0  size of the block in bytes, header included (a multiple of 16)
/// word 1  free block:        address of the next free block, 0 for none
///         block in use:      inUse tag    | owning core
///         block freed by another core, waiting for its owner to take it back:
///                            remoteFree tag | owning core
/// ```
///
/// The tags are 56-bit patterns no block address can equal (addresses are
/// below 2^52), with the owning core in the low byte. So a block names its
/// owner without any lookup, and the tag also tells whether the block is in
/// use: freeing a block twice, or a pointer the heap never handed out, finds
/// no in-use tag and is refused instead of corrupting the free list.
///
/// Plain Swift over raw addresses: builds for the host and is tested there.
enum BlockHeader {
    static let size: UInt = 16

    static let ownerMask: UInt = 0xFF
    /// "TOROUSE" and the owner.
    static let inUseTag: UInt = 0x544F_524F_5553_4500
    /// "TORORFR" (remote free) and the owner.
    static let remoteFreeTag: UInt = 0x544F_524F_5246_5200

    /// The second word of a block in use owned by core `owner` (0 ..< 256).
    static func inUse(owner: Int) -> UInt { inUseTag | UInt(owner) }

    /// The second word of a block waiting on core `owner`'s remote-free list.
    static func remoteFree(owner: Int) -> UInt { remoteFreeTag | UInt(owner) }

    /// The owner named by an in-use tag; nil for any other word.
    static func owner(ofInUse word: UInt) -> Int? {
        word & ~ownerMask == inUseTag ? Int(word & ownerMask) : nil
    }

    /// The header's first word for the block whose payload is at `payload`.
    static func sizeWord(ofPayload payload: UInt) -> UnsafeMutablePointer<UInt> {
        UnsafeMutablePointer<UInt>(bitPattern: payload - size)!
    }

    /// The header's second word, for atomic access: the one word of a block
    /// in use that a core other than its owner changes (see ``RemoteFreeList``).
    static func tagWord(ofPayload payload: UInt) -> UnsafeMutablePointer<Atomic<UInt>> {
        UnsafeMutablePointer<Atomic<UInt>>(bitPattern: payload - size + 8)!
    }
}
