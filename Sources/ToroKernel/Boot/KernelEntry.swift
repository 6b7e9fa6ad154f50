import KernelSupport
import Synchronization

/// Where every CPU enters Swift, called by `_start` in boot/entry.S with the
/// boot info's guest-physical address and the CPU's index (0 is the bootstrap
/// processor).
@_cdecl("toro_kernel_entry")
public func kernelEntry(_ bootInfoAddress: UInt, _ cpuIndex: UInt) -> Never {
    guard cpuIndex < UInt(TORO_MAX_CPUS) else {
        CPU.haltForever()  // no per-CPU block to run on; cannot even print
    }
    // First, before anything that might print: putchar needs this CPU's block.
    CPULocal.install(index: Int(cpuIndex))
    if cpuIndex != 0 {
        ApplicationProcessors.run(index: Int(cpuIndex))
    }
    bootstrap(bootInfoAddress: bootInfoAddress)
}

/// CPU 0's boot: check the boot info, bring up the heap, the console and the
/// other CPUs, then run the application.
///
/// Interrupts stay disabled throughout (there is no IDT yet). When they come,
/// their handlers must run on IST stacks: Swift cannot be told to avoid the
/// red zone below RSP, which an interrupt on the same stack would overwrite.
private func bootstrap(bootInfoAddress: UInt) -> Never {
    guard let bootInfo = BootInfo.validated(address: bootInfoAddress) else {
        Kernel.exit(status: Kernel.badBootInfoStatus)
    }
    Kernel.exitPort.store(bootInfo.exitPort, ordering: .relaxed)
    Heap.start(bootInfo: bootInfo)
    Console.start(bootInfo: bootInfo)
    bootInfo.publish()

    let cpus = bootInfo.cpuCount
    Console.print(
        "Toro for Swift: \(cpus) CPU\(cpus == 1 ? "" : "s"), \(bootInfo.memorySize >> 20) MiB, "
            + "TSC \(bootInfo.tscKHz) kHz, cmdline \"\(bootInfo.commandLine)\"")
    ApplicationProcessors.release(bootInfo: bootInfo)

    let status = main(0, nil)
    Kernel.exit(status: Int(status))
}
