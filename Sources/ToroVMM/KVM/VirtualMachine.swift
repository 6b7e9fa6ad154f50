import CKVM
import Glibc

/// A KVM virtual machine file descriptor, closed when this owner goes away.
public final class VirtualMachine: @unchecked Sendable {
    public let fd: Int32
    public let system: KVMSystem

    /// Where KVM on Intel hosts keeps its three-page real-mode TSS; placed in the
    /// MMIO hole, clear of RAM and of the interrupt controllers.
    static let kvmTSSAddress: UInt = 0xFFFB_D000
    static let kvmIdentityMapAddress: UInt64 = 0xFFFB_C000

    public init(system: KVMSystem) throws(KVMError) {
        self.system = system
        self.fd = try system.createVM()
    }

    deinit { close(fd) }

    /// Creates the in-kernel LAPICs, IOAPIC and PIC, and the places KVM needs for them.
    public func createInterruptController() throws(KVMError) {
        var identityMap = VirtualMachine.kvmIdentityMapAddress
        try kvmCall("KVM_SET_IDENTITY_MAP_ADDR") { ckvm_ioctl_ptr(fd, CKVM_SET_IDENTITY_MAP_ADDR, &identityMap) }
        try kvmCall("KVM_SET_TSS_ADDR") { ckvm_ioctl_arg(fd, CKVM_SET_TSS_ADDR, VirtualMachine.kvmTSSAddress) }
        try kvmCall("KVM_CREATE_IRQCHIP") { ckvm_ioctl(fd, CKVM_CREATE_IRQCHIP) }
    }

    /// Hands every region of `memory` to KVM as one memory slot each.
    public func map(_ memory: GuestMemory) throws(KVMError) {
        for (slot, region) in memory.regions.enumerated() {
            var descriptor = kvm_userspace_memory_region(
                slot: UInt32(slot), flags: 0, guest_phys_addr: region.guestBase, memory_size: region.size,
                userspace_addr: UInt64(UInt(bitPattern: memory.hostBase + Int(region.hostOffset))))
            try kvmCall("KVM_SET_USER_MEMORY_REGION") { ckvm_ioctl_ptr(fd, CKVM_SET_USER_MEMORY_REGION, &descriptor) }
        }
    }

    /// KVM_CHECK_EXTENSION on this VM (some answers depend on the VM).
    public func checkExtension(_ capability: UInt32) -> Int32 {
        max(0, ckvm_ioctl_arg(fd, CKVM_CHECK_EXTENSION, UInt(capability)))
    }

    /// Sets how long the host polls after a guest HLT before it blocks the vCPU thread (KVM_CAP_HALT_POLL).
    public func setHaltPoll(nanoseconds: UInt64) throws(KVMError) {
        var cap = kvm_enable_cap()
        cap.cap = UInt32(KVM_CAP_HALT_POLL)
        cap.args.0 = nanoseconds
        try kvmCall("KVM_ENABLE_CAP(KVM_CAP_HALT_POLL)") { ckvm_ioctl_ptr(fd, CKVM_ENABLE_CAP, &cap) }
    }

    /// Drives input `gsi` of the in-kernel IOAPIC to `level` (KVM_IRQ_LINE).
    public func setInterruptLine(gsi: UInt32, level: Bool) throws(KVMError) {
        try kvmCall("KVM_IRQ_LINE") { ckvm_irq_line(fd, gsi, level ? 1 : 0) }
    }
}
