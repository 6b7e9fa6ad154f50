import CKVM
import Glibc

/// A KVM vCPU: its file descriptor, its shared `kvm_run` page and its statistics descriptor.
public final class VCPU: @unchecked Sendable {
    public let index: Int
    public let fd: Int32
    /// The page KVM fills on every exit.
    public let run: UnsafeMutablePointer<kvm_run>
    private let runMapSize: Int
    /// KVM's binary statistics for this vCPU.
    public let stats: KVMStatsReader

    public init(vm: VirtualMachine, index: Int) throws(KVMError) {
        self.index = index
        let fd = try kvmCall("KVM_CREATE_VCPU") { ckvm_ioctl_arg(vm.fd, CKVM_CREATE_VCPU, UInt(index)) }
        self.fd = fd
        let size: Int
        do { size = try vm.system.vcpuMapSize() } catch {
            close(fd)
            throw error
        }
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let pointer, pointer != MAP_FAILED else {
            let error = KVMError("mmap kvm_run", errno: errno)
            close(fd)
            throw error
        }
        self.run = pointer.assumingMemoryBound(to: kvm_run.self)
        self.runMapSize = size
        do {
            let statsFD = try kvmCall("KVM_GET_STATS_FD") { ckvm_ioctl(fd, CKVM_GET_STATS_FD) }
            self.stats = try KVMStatsReader(fd: statsFD)
        } catch {
            munmap(pointer, size)
            close(fd)
            throw error
        }
    }

    deinit {
        munmap(run, runMapSize)
        close(fd)
    }

    // MARK: - State

    public func registers() throws(KVMError) -> kvm_regs {
        var regs = kvm_regs()
        try kvmCall("KVM_GET_REGS") { ckvm_ioctl_ptr(fd, CKVM_GET_REGS, &regs) }
        return regs
    }

    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var regs = regs
        try kvmCall("KVM_SET_REGS") { ckvm_ioctl_ptr(fd, CKVM_SET_REGS, &regs) }
    }

    public func specialRegisters() throws(KVMError) -> kvm_sregs {
        var sregs = kvm_sregs()
        try kvmCall("KVM_GET_SREGS") { ckvm_ioctl_ptr(fd, CKVM_GET_SREGS, &sregs) }
        return sregs
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var sregs = sregs
        try kvmCall("KVM_SET_SREGS") { ckvm_ioctl_ptr(fd, CKVM_SET_SREGS, &sregs) }
    }

    public func setFPU(_ fpu: kvm_fpu) throws(KVMError) {
        var fpu = fpu
        try kvmCall("KVM_SET_FPU") { ckvm_ioctl_ptr(fd, CKVM_SET_FPU, &fpu) }
    }

    public func setCPUID(_ entries: [kvm_cpuid_entry2]) throws(KVMError) {
        guard let cpuid = ckvm_cpuid2_alloc(UInt32(entries.count)) else { throw KVMError("calloc", errno: ENOMEM) }
        defer { free(cpuid) }
        let slots = ckvm_cpuid2_entries(cpuid)!
        for (i, entry) in entries.enumerated() { slots[i] = entry }
        try kvmCall("KVM_SET_CPUID2") { ckvm_ioctl_ptr(fd, CKVM_SET_CPUID2, cpuid) }
    }

    /// The value of model-specific register `index` as KVM keeps it for the
    /// vCPU, or nil if KVM has no such MSR.
    public func readMSR(_ index: UInt32) -> UInt64? {
        var value: UInt64 = 0
        return ckvm_get_msr(fd, index, &value) == 1 ? value : nil
    }

    /// Sets model-specific register `index`; KVM refusing it is an error.
    public func writeMSR(_ index: UInt32, _ value: UInt64) throws(KVMError) {
        let written = ckvm_set_msr(fd, index, value)
        guard written == 1 else { throw KVMError("KVM_SET_MSRS 0x\(String(index, radix: 16))", errno: written < 0 ? errno : EINVAL) }
    }

    /// Marks the vCPU runnable; application processors otherwise wait for INIT/SIPI.
    public func setRunnable() throws(KVMError) {
        var state = kvm_mp_state(mp_state: UInt32(KVM_MP_STATE_RUNNABLE))
        try kvmCall("KVM_SET_MP_STATE") { ckvm_ioctl_ptr(fd, CKVM_SET_MP_STATE, &state) }
    }

    /// Whether the vCPU is halted (KVM_MP_STATE_HALTED): in HLT, waiting in the host
    /// kernel for an interrupt. KVM_GET_MP_STATE is a vCPU ioctl: call it on the vCPU's thread.
    public func isHalted() throws(KVMError) -> Bool {
        var state = kvm_mp_state(mp_state: 0)
        try kvmCall("KVM_GET_MP_STATE") { ckvm_ioctl_ptr(fd, CKVM_GET_MP_STATE, &state) }
        return state.mp_state == UInt32(KVM_MP_STATE_HALTED)
    }

    /// The guest TSC frequency in kHz, or nil when KVM cannot tell.
    public func tscKHz() -> UInt64? {
        let khz = ckvm_ioctl(fd, CKVM_GET_TSC_KHZ)
        return khz > 0 ? UInt64(khz) : nil
    }

    // MARK: - Running

    /// Enters the guest until the next exit to userspace; EINTR (a kick) is reported as `.interrupted`.
    public func enter() throws(KVMError) -> VMExit {
        if ckvm_ioctl(fd, CKVM_RUN) < 0 {
            let error = errno
            if error == EINTR || error == EAGAIN { return .interrupted }
            throw KVMError("KVM_RUN", errno: error)
        }
        return VMExit(run)
    }
}

extension VCPU {
    /// Fills the data of a pending `in` exit (KVM copies it into the guest register on re-entry).
    public func completeIn(_ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        let io = ckvm_run_io(run)
        let start = UnsafeMutableRawPointer(run) + Int(io.data_offset)
        fill(UnsafeMutableRawBufferPointer(start: start, count: Int(io.size) * Int(io.count)))
    }

    /// Fills the data of a pending MMIO read exit.
    public func completeMMIORead(_ fill: (UnsafeMutableRawBufferPointer) -> Void) {
        let mmio = ckvm_run_mmio(run)
        fill(UnsafeMutableRawBufferPointer(start: ckvm_run_mmio_data(run), count: min(Int(mmio.len), 8)))
    }

    /// Makes the next (or current) KVM_RUN return at once; used to stop the vCPU.
    public func requestImmediateExit() {
        run.pointee.immediate_exit = 1
    }
}
