import Builtin
import KernelSupport
import Synchronization

/// A lock that busy-waits, holding the value it protects.
///
/// The value lives inside the lock and is reachable only through
/// ``withLock(_:)``, so it cannot be touched without holding the lock. Meant
/// for short critical sections shared between CPUs (the console, the heap).
///
/// Interrupts are still disabled for the whole life of the kernel; once they
/// are enabled, `withLock` must also disable them on this CPU while held, or an
/// interrupt handler taking the same lock would deadlock against itself.
public struct SpinLock<Value: ~Copyable>: ~Copyable, @unchecked Sendable {
    private let locked = Atomic<Bool>(false)
    private let cell: LockedCell<Value>

    /// Creates a lock protecting `initialValue`.
    public init(_ initialValue: consuming Value) {
        cell = LockedCell(initialValue)
    }

    /// Runs `body` with exclusive access to the protected value.
    public borrowing func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout Value) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        acquire()
        defer { release() }
        return try body(&cell.address.pointee)
    }

    private borrowing func acquire() {
        // Test-and-test-and-set: spin on a plain load, which keeps the cache
        // line shared, and only try the locked cmpxchg when it looks free.
        while !locked.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            while locked.load(ordering: .relaxed) {
                kernel_pause()  // tells the CPU (and the hypervisor) that this is a spin loop
            }
        }
    }

    private borrowing func release() {
        locked.store(false, ordering: .releasing)
    }
}

/// Storage for a value at a stable address inside a non-copyable owner.
///
/// `withLock` hands out mutable access through a borrow of the lock, which an
/// ordinary stored `var` cannot give; this is the raw-layout cell the standard
/// library's `Mutex` is built on, spelled out here because its own is internal.
@_rawLayout(like: Value, movesAsLike)
struct LockedCell<Value: ~Copyable>: ~Copyable {
    init(_ value: consuming Value) {
        address.initialize(to: value)
    }

    var address: UnsafeMutablePointer<Value> {
        UnsafeMutablePointer<Value>(Builtin.addressOfRawLayout(self))
    }

    deinit {
        address.deinitialize(count: 1)
    }
}
