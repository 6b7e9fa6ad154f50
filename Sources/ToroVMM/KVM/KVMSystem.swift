import CKVM
import Glibc

/// The `/dev/kvm` file descriptor: the system-wide KVM handle.
///
/// Opening it checks the API version and every capability the VMM relies on, so
/// that a host that cannot run a Toro VM says so before anything is created.
public final class KVMSystem: @unchecked Sendable {
    public let fd: Int32

    /// The capabilities ``open(path:)`` insists on, with what each is for.
    static let requiredCapabilities: [(UInt32, String, String)] = [
        (UInt32(KVM_CAP_IRQCHIP), "KVM_CAP_IRQCHIP", "an in-kernel interrupt controller, so HLT is handled in the host kernel"),
        (UInt32(KVM_CAP_USER_MEMORY), "KVM_CAP_USER_MEMORY", "guest memory from a host mapping"),
        (UInt32(KVM_CAP_EXT_CPUID), "KVM_CAP_EXT_CPUID", "KVM_GET_SUPPORTED_CPUID"),
        (UInt32(KVM_CAP_IMMEDIATE_EXIT), "KVM_CAP_IMMEDIATE_EXIT", "stopping vCPUs without races"),
        (UInt32(KVM_CAP_BINARY_STATS_FD), "KVM_CAP_BINARY_STATS_FD", "per-vCPU statistics (Linux 5.14 or later)"),
        (UInt32(KVM_CAP_GET_TSC_KHZ), "KVM_CAP_GET_TSC_KHZ", "the TSC frequency for the guest clock"),
        (UInt32(KVM_CAP_MP_STATE), "KVM_CAP_MP_STATE", "starting application processors in long mode"),
    ]

    /// Opens `/dev/kvm` and checks that it is usable.
    public init(path: String = "/dev/kvm") throws(VMMError) {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        if fd < 0 {
            let error = errno
            switch error {
            case ENOENT:
                throw .kvmUnavailable("\(path) does not exist: load the kvm module (modprobe kvm_intel or kvm_amd) or enable virtualization")
            case EACCES, EPERM:
                throw .kvmUnavailable("no permission to open \(path): add yourself to the 'kvm' group or run as root")
            default:
                throw .kvmUnavailable("cannot open \(path): \(String(cString: strerror(error)))")
            }
        }
        self.fd = fd
        let version = ckvm_ioctl(fd, CKVM_GET_API_VERSION)
        guard version == KVM_API_VERSION else {
            throw .kvmUnavailable("\(path) speaks KVM API \(version), toro-vmm needs \(KVM_API_VERSION)")
        }
        for (capability, name, purpose) in Self.requiredCapabilities where checkExtension(capability) <= 0 {
            throw .kvmUnavailable("KVM lacks \(name), needed for \(purpose)")
        }
    }

    deinit { close(fd) }

    /// KVM_CHECK_EXTENSION on the system handle: 0 when absent, else a capability-specific value.
    public func checkExtension(_ capability: UInt32) -> Int32 {
        max(0, ckvm_ioctl_arg(fd, CKVM_CHECK_EXTENSION, UInt(capability)))
    }

    /// The size of each vCPU's shared `kvm_run` mapping.
    public func vcpuMapSize() throws(KVMError) -> Int {
        Int(try kvmCall("KVM_GET_VCPU_MMAP_SIZE") { ckvm_ioctl(fd, CKVM_GET_VCPU_MMAP_SIZE) })
    }

    /// The CPUID leaves this host's KVM can offer a guest.
    public func supportedCPUID() throws(KVMError) -> [kvm_cpuid_entry2] {
        var capacity: UInt32 = 128
        while true {
            guard let cpuid = ckvm_cpuid2_alloc(capacity) else { throw KVMError("calloc", errno: ENOMEM) }
            defer { free(cpuid) }
            if ckvm_ioctl_ptr(fd, CKVM_GET_SUPPORTED_CPUID, cpuid) == 0 {
                let entries = ckvm_cpuid2_entries(cpuid)!
                return (0..<Int(cpuid.pointee.nent)).map { entries[$0] }
            }
            guard errno == E2BIG, capacity < 4096 else { throw KVMError("KVM_GET_SUPPORTED_CPUID", errno: errno) }
            capacity *= 2
        }
    }

    /// Creates a VM.
    public func createVM() throws(KVMError) -> Int32 {
        try kvmCall("KVM_CREATE_VM") { ckvm_ioctl_arg(fd, CKVM_CREATE_VM, 0) }
    }
}
