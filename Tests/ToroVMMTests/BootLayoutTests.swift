import CKVM
@testable import ToroVMM
import XCTest

final class BootLayoutTests: XCTestCase {
    func testMemoryMapSplitsBootKernelAndUsable() {
        let regions = GuestMemory.layout(size: 64 << 20)
        let map = BootInfo.memoryMap(regions: regions, kernel: [0x200000..<0x234567, 0x240000..<0x250000])
        XCTAssertEqual(map, [
            .init(base: 0, length: 0x200000, type: TORO_MEMORY_BOOT),
            .init(base: 0x200000, length: 0x35000, type: TORO_MEMORY_KERNEL),
            .init(base: 0x235000, length: 0xB000, type: TORO_MEMORY_USABLE),
            .init(base: 0x240000, length: 0x10000, type: TORO_MEMORY_KERNEL),
            .init(base: 0x250000, length: (64 << 20) - 0x250000, type: TORO_MEMORY_USABLE),
        ])
    }

    func testMemoryAboveTheHoleContinuesAtFourGiB() {
        let regions = GuestMemory.layout(size: 4 << 30)
        XCTAssertEqual(regions.count, 2)
        XCTAssertEqual(regions[0].guestEnd, GuestMemory.mmioHoleBase)
        XCTAssertEqual(regions[1].guestBase, 1 << 32)
        XCTAssertEqual(regions[1].size, (4 << 30) - GuestMemory.mmioHoleBase)
        let map = BootInfo.memoryMap(regions: regions, kernel: [0x200000..<0x300000])
        XCTAssertEqual(map.last, .init(base: 1 << 32, length: regions[1].size, type: TORO_MEMORY_USABLE))
        XCTAssertEqual(map.reduce(0) { $0 + $1.length }, 4 << 30)
    }

    func testBootInfoEncoding() throws {
        let memory = try GuestMemory(size: 32 << 20)
        let info = BootInfo(cpuCount: 2, memory: memory, kernelRanges: [0x200000..<0x210000], tscKHz: 2_400_000, commandLine: "idle=halt ip=10.0.0.2/24")
        let raw = try info.encoded()
        XCTAssertEqual(raw.magic, TORO_BOOT_MAGIC)
        XCTAssertEqual(raw.version, TORO_BOOT_VERSION)
        XCTAssertEqual(raw.size, UInt32(MemoryLayout<toro_boot_info>.size))
        XCTAssertEqual(raw.cpu_count, 2)
        XCTAssertEqual(raw.memory_size, 32 << 20)
        XCTAssertEqual(raw.tsc_khz, 2_400_000)
        XCTAssertEqual(raw.exit_port, UInt16(TORO_PORT_EXIT))
        XCTAssertEqual(raw.flags & TORO_BOOT_FLAG_CONSOLE_PORT, TORO_BOOT_FLAG_CONSOLE_PORT)
        XCTAssertEqual(raw.memory_region_count, 3)
        XCTAssertEqual(raw.cmdline_length, 24)
        var copy = raw
        let command = withUnsafeBytes(of: &copy.cmdline) { String(decoding: $0.prefix(24), as: UTF8.self) }
        XCTAssertEqual(command, "idle=halt ip=10.0.0.2/24")
        let second = withUnsafeBytes(of: &copy.cpus) { $0.bindMemory(to: toro_cpu_info.self)[1] }
        XCTAssertEqual(second.apic_id, 1)
        XCTAssertEqual(second.stack_base, BootLayout.stack(cpu: 1).base)
        try info.write(into: memory)
        XCTAssertEqual(try memory.load(UInt64.self, at: GuestAddress(BootLayout.bootInfo)), TORO_BOOT_MAGIC)
    }

    func testBootInfoListsDevices() throws {
        let memory = try GuestMemory(size: 16 << 20)
        var info = BootInfo(cpuCount: 1, memory: memory, kernelRanges: [], tscKHz: 0, commandLine: "")
        XCTAssertEqual(try info.encoded().device_count, 0)
        info.devices = [BootInfo.Device(type: TORO_DEVICE_VIRTIO_MMIO, irq: 5, base: 0xD100_0000, size: 0x200)]
        var raw = try info.encoded()
        XCTAssertEqual(raw.device_count, 1)
        let first = withUnsafeBytes(of: &raw.devices) { $0.bindMemory(to: toro_device.self)[0] }
        XCTAssertEqual(first.type, TORO_DEVICE_VIRTIO_MMIO)
        XCTAssertEqual(first.irq, 5)
        XCTAssertEqual(first.base, 0xD100_0000)
        XCTAssertEqual(first.size, 0x200)
        info.devices = Array(repeating: info.devices[0], count: Int(TORO_MAX_DEVICES) + 1)
        XCTAssertThrowsError(try info.encoded()) {
            XCTAssertEqual($0 as? BootInfo.Problem, .tooManyDevices(Int(TORO_MAX_DEVICES) + 1))
        }
    }

    func testBootInfoRejectsOversizedCommandLine() throws {
        let memory = try GuestMemory(size: 16 << 20)
        let info = BootInfo(cpuCount: 1, memory: memory, kernelRanges: [], tscKHz: 0, commandLine: String(repeating: "x", count: 1024))
        XCTAssertThrowsError(try info.encoded()) { XCTAssertEqual($0 as? BootInfo.Problem, .commandLineTooLong(1024)) }
    }

    func testBootStacksStayInsideTheBootRegion() {
        for cpu in 0..<BootLayout.maxCPUs {
            let stack = BootLayout.stack(cpu: cpu)
            XCTAssertGreaterThanOrEqual(stack.base - BootLayout.guardSize, BootLayout.stacks)
            XCTAssertLessThanOrEqual(stack.base + stack.size, BootLayout.kernelBase)
        }
    }

    func testIdentityMapLeavesPageZeroAndGuardsUnmapped() throws {
        let memory = try GuestMemory(size: 64 << 20)
        try PageTables.write(into: memory, cpus: 2)
        func entry(_ address: UInt64) throws -> UInt64 { try memory.load(UInt64.self, at: GuestAddress(address)) }
        XCTAssertEqual(try entry(BootLayout.pml4) & ~0xFFF, BootLayout.pdpt)
        // Page 0 and the guard below each stack are not present; the stack pages are.
        XCTAssertEqual(try entry(BootLayout.lowPageTable), 0)
        for cpu in 0..<2 {
            let guardPage = BootLayout.stack(cpu: cpu).base - BootLayout.guardSize
            XCTAssertEqual(try entry(BootLayout.lowPageTable + guardPage / 4096 * 8), 0)
            let stackPage = BootLayout.stack(cpu: cpu).base
            XCTAssertEqual(try entry(BootLayout.lowPageTable + stackPage / 4096 * 8), stackPage | 3)
        }
        // The kernel's 2 MiB page is mapped large; RAM's end is the end of the map below the hole.
        let firstDirectory = BootLayout.pageDirectories
        XCTAssertEqual(try entry(firstDirectory + 8), 0x200000 | 0x83)
        XCTAssertEqual(try entry(firstDirectory + 31 * 8), (31 * 0x200000) | 0x83)
        XCTAssertEqual(try entry(firstDirectory + 32 * 8), 0, "64 MiB of RAM ends at entry 32")
        // The MMIO hole is mapped, uncacheable and not executable.
        let hole = try entry(BootLayout.pageDirectories + 3 * 4096 + 511 * 8)
        XCTAssertEqual(hole & 0x000F_FFFF_FFFF_F000, 0xFFE0_0000)
        XCTAssertEqual(hole & PageTables.cacheDisable, PageTables.cacheDisable)
        XCTAssertEqual(hole & PageTables.noExecute, PageTables.noExecute)
    }

    func testGDTHasLongModeCode() {
        let gdt = LongMode.gdtEntries()
        XCTAssertEqual(gdt[Int(TORO_BOOT_SELECTOR_CODE) / 8] >> 53 & 1, 1, "L bit")
        XCTAssertEqual(gdt[Int(TORO_BOOT_SELECTOR_TSS) / 8] >> 40 & 0xF, 0x9, "available 64-bit TSS")
    }

    /// kvm_pvm's native mode: DPL-3 64-bit code and data at the selectors the contract names (RPL 3).
    func testGDTHasTheNativeModeDescriptors() {
        let gdt = LongMode.gdtEntries()
        XCTAssertEqual(TORO_BOOT_SELECTOR_NATIVE_CODE & 3, 3)
        XCTAssertEqual(TORO_BOOT_SELECTOR_NATIVE_DATA & 3, 3)
        let code = gdt[Int(TORO_BOOT_SELECTOR_NATIVE_CODE) / 8]
        let data = gdt[Int(TORO_BOOT_SELECTOR_NATIVE_DATA) / 8]
        XCTAssertEqual(code >> 45 & 3, 3, "code DPL")
        XCTAssertEqual(code >> 53 & 1, 1, "code L bit")
        XCTAssertEqual(code >> 43 & 1, 1, "executable")
        XCTAssertEqual(data >> 45 & 3, 3, "data DPL")
        XCTAssertEqual(data >> 43 & 1, 0, "data is not executable")
        XCTAssertEqual(data >> 47 & 1, 1, "present")
    }

    /// The PML4 sits in an odd frame (kvm_pvm runs a vCPU natively only then), and
    /// `userAccessible` sets U in every entry (native mode runs the kernel at CPL 3).
    func testPML4IsInAnOddFrameAndNativeTablesAreUserAccessible() throws {
        XCTAssertEqual(BootLayout.pml4 >> 12 & 1, 1)
        XCTAssertEqual(LongMode.configure(kvm_sregs()).cr3, BootLayout.pml4)
        let memory = try GuestMemory(size: 64 << 20)
        for user in [false, true] {
            for entry in PageTables.entries(for: memory, cpus: 2, userAccessible: user) {
                XCTAssertEqual(entry.value & PageTables.user != 0, user, "entry at 0x\(String(entry.address, radix: 16))")
            }
        }
    }

    /// The walk the VMM uses to explain a crash agrees with the map it wrote.
    func testPageWalkFindsWhatTheIdentityMapMaps() throws {
        let memory = try GuestMemory(size: 64 << 20)
        try PageTables.write(into: memory, cpus: 2)
        let guardPage = BootLayout.stack(cpu: 1).base - BootLayout.guardSize
        XCTAssertEqual(PageTables.maps(0, cr3: BootLayout.pml4, in: memory), false, "page 0")
        XCTAssertEqual(PageTables.maps(guardPage + 8, cr3: BootLayout.pml4, in: memory), false, "a stack guard")
        XCTAssertEqual(PageTables.maps(BootLayout.stack(cpu: 1).base, cr3: BootLayout.pml4, in: memory), true)
        XCTAssertEqual(PageTables.maps(0x20_0000 + 0x1234, cr3: BootLayout.pml4, in: memory), true, "a 2 MiB page")
        XCTAssertEqual(PageTables.maps(64 << 20, cr3: BootLayout.pml4, in: memory), false, "past RAM")
        XCTAssertEqual(PageTables.maps(0x4000_0000_0000, cr3: BootLayout.pml4, in: memory), false, "outside the map")
        XCTAssertNil(PageTables.maps(0x1000, cr3: 1 << 40, in: memory), "tables outside RAM")
    }

    func testModeRequestResolvesAgainstTheHost() {
        XCTAssertEqual(ModeRequest.auto.resolve(pvm: true), .native)
        XCTAssertEqual(ModeRequest.auto.resolve(pvm: false), .hardware)
        XCTAssertEqual(ModeRequest.native.resolve(pvm: true), .native)
        XCTAssertEqual(ModeRequest.emulated.resolve(pvm: true), .emulated)
        XCTAssertNil(ModeRequest.native.resolve(pvm: false))
        XCTAssertNil(ModeRequest.emulated.resolve(pvm: false))
    }

    func testCPUIDCarriesAPICID() {
        var leaf1 = kvm_cpuid_entry2()
        leaf1.function = 1
        leaf1.ebx = 0xFF00_1234
        var leafB = kvm_cpuid_entry2()
        leafB.function = 0xB
        let entries = CPUID.entries(supported: [leaf1, leafB], cpu: 3, cpuCount: 4)
        XCTAssertEqual(entries[0].ebx >> 24, 3)
        XCTAssertEqual(entries[0].ebx & 0xFFFF, 0x1234)
        XCTAssertEqual(entries[1].edx, 3)
    }
}
