import Glibc

/// A failed call into KVM or the host kernel: which call, and the errno it left.
public struct KVMError: Error, Equatable, CustomStringConvertible {
    /// The call that failed, e.g. `KVM_CREATE_VM` or `open /dev/kvm`.
    public var call: String
    public var errno: Int32
    /// What the user can do about it, when there is something to say.
    public var hint: String?

    public init(_ call: String, errno: Int32, hint: String? = nil) {
        self.call = call
        self.errno = errno
        self.hint = hint
    }

    public var description: String {
        var text = "\(call) failed: \(String(cString: strerror(errno)))"
        if let hint { text += " (\(hint))" }
        return text
    }
}

/// Something KVM lacks that the VMM needs.
public struct KVMMissingFeature: Error, Equatable, CustomStringConvertible {
    public var feature: String
    public var hint: String
    public var description: String { "KVM lacks \(feature): \(hint)" }
}

/// Calls `ioctl(fd, request, argument)` and turns -1 into a ``KVMError`` naming `name`.
@discardableResult
func kvmCall(_ name: String, _ body: () -> Int32) throws(KVMError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        if errno == EINTR { continue }
        throw KVMError(name, errno: errno)
    }
}
