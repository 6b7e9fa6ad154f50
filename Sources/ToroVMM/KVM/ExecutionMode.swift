import CKVM
import Glibc

/// How the host's KVM executes the guest, as detected at start-up.
public enum ExecutionMode: String, Sendable, Equatable {
    /// Hardware virtualisation (VMX or SVM): the guest runs natively at CPL 0.
    case hardware
    /// kvm_pvm without the native opt-in: KVM's instruction emulator runs
    /// every guest instruction (its `insn_emulation` counts them).
    case emulated
    /// kvm_pvm with the native opt-in: the guest runs natively at hardware
    /// CPL 3, and each privileged instruction traps to the host (counted in
    /// `insn_emulation`). See boot/toro_boot.h for what the kernel must do.
    case native
}

/// `--mode`: what the user asked for.
public enum ModeRequest: String, Sendable, Equatable, CaseIterable {
    /// Native where the host offers the opt-in, otherwise whatever KVM does.
    case auto
    /// The native opt-in; an error where the host has none.
    case native
    /// kvm_pvm's instruction emulator; an error on any other KVM.
    case emulated

    /// The mode to run in on a host that does (`pvm`) or does not offer
    /// kvm_pvm's modes; nil when the request cannot be met there.
    public func resolve(pvm: Bool) -> ExecutionMode? {
        switch (self, pvm) {
        case (.auto, true), (.native, true): .native
        case (.emulated, true): .emulated
        case (.auto, false): .hardware
        case (.native, false), (.emulated, false): nil
        }
    }
}

/// The kvm_pvm back end's host-side MSRs, reached with KVM_GET_MSRS and
/// KVM_SET_MSRS on a vCPU. On any other KVM they do not exist: reading the
/// signature fails, and that is the detection.
enum PVMHost {
    /// Reads `signatureValue` ("PVM") on kvm_pvm.
    static let signatureMSR: UInt32 = 0x4B56_4D11
    static let signatureValue: UInt64 = 0x4D_5650
    /// Bit 0 opts the vCPU in to native execution; writable only once a
    /// memory slot exists, and to be written before the vCPU first runs.
    static let controlMSR: UInt32 = 0x4B56_4D10
    static let nativeExecution: UInt64 = 1

    /// Whether `vcpu` belongs to a kvm_pvm VM.
    static func isPresent(_ vcpu: VCPU) -> Bool {
        vcpu.readMSR(signatureMSR) == signatureValue
    }

    /// Opts `vcpu` in to native execution.
    static func enableNativeExecution(_ vcpu: VCPU) throws(KVMError) {
        try vcpu.writeMSR(controlMSR, nativeExecution)
    }
}
