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

    // MARK: - Event file descriptors

    /// Whether KVM can signal an eventfd for guest writes (KVM_CAP_IOEVENTFD) and
    /// inject interrupts from one (KVM_CAP_IRQFD).
    public var supportsIoeventfd: Bool { checkExtension(UInt32(KVM_CAP_IOEVENTFD)) > 0 }
    public var supportsIrqfd: Bool { checkExtension(UInt32(KVM_CAP_IRQFD)) > 0 }

    /// KVM_IOEVENTFD: a guest MMIO write of `length` bytes at `address` whose value is
    /// `datamatch` adds 1 to eventfd `eventFD` inside the host kernel, and the vCPU goes
    /// on without exiting to userspace; other values still exit.
    public func assignIoeventfd(_ eventFD: Int32, address: UInt64, length: UInt32, datamatch: UInt64) throws(KVMError) {
        var request = ioeventfdRequest(eventFD, address: address, length: length, datamatch: datamatch)
        try kvmCall("KVM_IOEVENTFD") { ckvm_ioctl_ptr(fd, CKVM_IOEVENTFD, &request) }
    }

    /// Undoes ``assignIoeventfd(_:address:length:datamatch:)`` (the same arguments name it).
    public func deassignIoeventfd(_ eventFD: Int32, address: UInt64, length: UInt32, datamatch: UInt64) throws(KVMError) {
        var request = ioeventfdRequest(eventFD, address: address, length: length, datamatch: datamatch)
        request.flags |= CKVM_IOEVENTFD_FLAG_DEASSIGN
        try kvmCall("KVM_IOEVENTFD (deassign)") { ckvm_ioctl_ptr(fd, CKVM_IOEVENTFD, &request) }
    }

    private func ioeventfdRequest(_ eventFD: Int32, address: UInt64, length: UInt32, datamatch: UInt64) -> kvm_ioeventfd {
        var request = kvm_ioeventfd()
        request.datamatch = datamatch
        request.addr = address
        request.len = length
        request.fd = eventFD
        request.flags = CKVM_IOEVENTFD_FLAG_DATAMATCH  // MMIO: no KVM_IOEVENTFD_FLAG_PIO
        return request
    }

    /// KVM_IRQFD without a resample fd: each write to eventfd `eventFD` drives input `gsi`
    /// of the in-kernel IOAPIC to 1 and back to 0, an edge, without a userspace ioctl.
    public func assignIrqfd(_ eventFD: Int32, gsi: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: eventFD)
        request.gsi = gsi
        try kvmCall("KVM_IRQFD") { ckvm_ioctl_ptr(fd, CKVM_IRQFD, &request) }
    }

    /// Undoes ``assignIrqfd(_:gsi:)``.
    public func deassignIrqfd(_ eventFD: Int32, gsi: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: eventFD)
        request.gsi = gsi
        request.flags = CKVM_IRQFD_FLAG_DEASSIGN
        try kvmCall("KVM_IRQFD (deassign)") { ckvm_ioctl_ptr(fd, CKVM_IRQFD, &request) }
    }
}
