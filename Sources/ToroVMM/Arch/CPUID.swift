import CKVM

/// The CPUID a vCPU sees: what KVM supports, with this vCPU's APIC ID filled in.
public enum CPUID {
    /// Leaf 1 ECX bit 31: "running under a hypervisor".
    static let hypervisorBit: UInt32 = 1 << 31

    public static func entries(supported: [kvm_cpuid_entry2], cpu: Int, cpuCount: Int) -> [kvm_cpuid_entry2] {
        supported.map { entry in
            var entry = entry
            switch entry.function {
            case 1:
                // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package.
                entry.ebx = (entry.ebx & 0x0000_FFFF) | (UInt32(cpu) << 24) | (UInt32(min(cpuCount, 255)) << 16)
                entry.ecx |= hypervisorBit
            case 0xB, 0x1F:
                // Extended topology: EDX is the x2APIC ID of this logical processor.
                entry.edx = UInt32(cpu)
            default:
                break
            }
            return entry
        }
    }

    /// Whether the supported leaves advertise x2APIC (leaf 1 ECX bit 21).
    public static func hasX2APIC(_ supported: [kvm_cpuid_entry2]) -> Bool {
        supported.contains { $0.function == 1 && $0.ecx & (1 << 21) != 0 }
    }
}
