import Builtin
import KernelSupport
import Synchronization

/// A lock that busy-waits, holding the value it protects.
///
/// The value lives inside the lock and is reachable only through
/// ``withLock(_:)``, so it cannot be touched without holding the lock. Meant
/// for short critical sections shared between CPUs (the console, the heap).
/// Each turn of the wait is a ``SpinWait/hint()`` (`pause`, idle case 1).
///
/// The lock does not disable interrupts: the kernel takes them only while a
/// CPU waits in `Interrupts.enableAndHalt()`, holding no lock. Code that runs
/// with interrupts enabled must hold locks that handlers also take inside
/// `Interrupts.withDisabled`, or a handler would deadlock against its own CPU.
/// For the same reason (threads are not preempted), a thread must not block
/// while holding a lock another thread of its own core may take.
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

    /// Runs `body` with the protected value, holding the lock if it comes free
    /// before `deadline` and without it after that.
    ///
    /// Only for code that ends the machine (the crash report): the CPU that
    /// crashed may itself hold the lock, and the report must still come out.
    /// Without the lock the output may mix with another CPU's; that beats silence.
    borrowing func withLockOrForce<Result>(until deadline: Deadline, _ body: (inout Value) -> Result) -> Result {
        var acquired = false
        while !deadline.hasPassed {
            if locked.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
                acquired = true
                break
            }
            SpinWait.hint()
        }
        defer {
            if acquired { release() }
        }
        return body(&cell.address.pointee)
    }

    private borrowing func acquire() {
        // Test-and-test-and-set: spin on a plain load, which keeps the cache
        // line shared, and only try the locked cmpxchg when it looks free.
        while !locked.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            while locked.load(ordering: .relaxed) {
                SpinWait.hint()  // `pause`: tells the CPU (and the hypervisor) that this is a spin loop
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
