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
    // First, before anything that might print: the mode (kvm_pvm native or
    // not: it decides the selectors), this CPU's own GDT and TSS (reloading
    // the segment registers clears the GS base), then its per-CPU block,
    // which putchar needs.
    if cpuIndex == 0 { NativeMode.detect() }
    CPUTables.install(cpu: Int(cpuIndex))
    CPULocal.install(index: Int(cpuIndex))
    if cpuIndex != 0 {
        ApplicationProcessors.run(index: Int(cpuIndex))
    }
    // The IDT and the local APIC next, so that every fault of the boot is reported.
    Interrupts.startOnBootstrapProcessor()
    bootstrap(bootInfoAddress: bootInfoAddress)
}

/// CPU 0's boot: check the boot info, bring up the heap, the console, the
/// schedulers and the other CPUs, then run the application as thread 1.
///
/// Interrupts stay disabled throughout, and while `main` runs: the kernel
/// takes them only where a CPU waits in `Interrupts.enableAndHalt()`.
private func bootstrap(bootInfoAddress: UInt) -> Never {
    guard let bootInfo = BootInfo.validated(address: bootInfoAddress) else {
        Kernel.exit(status: Kernel.badBootInfoStatus)
    }
    Kernel.exitPort.store(bootInfo.exitPort, ordering: .relaxed)
    Clock.start(bootInfo: bootInfo)
    Interrupts.startWindows()
    // Memory before anything allocates: free pages, guard pages known to
    // fault reports, then one heap per CPU (each takes memory at its CPU's
    // first allocation, so the APs need no set-up of their own).
    PageAllocator.start(bootInfo: bootInfo)
    Stacks.start()
    Heap.start(cpuCount: bootInfo.cpuCount)
    Console.start(bootInfo: bootInfo)
    bootInfo.publish()

    printBanner(bootInfo)
    Kernel.reportCommandLine()
    Kernel.applyCommandLine()
    // Shared tables the APs use, built here while only CPU 0 runs.
    Timers.start()
    _ = Mailbox.all
    // One scheduler per CPU; this boot context becomes thread 1, which runs `main`.
    Scheduler.start(cpuCount: bootInfo.cpuCount)
    ApplicationProcessors.release(bootInfo: bootInfo)

    let status = main(0, nil)
    Kernel.exit(status: Int(status))
}

/// `Toro for Swift: 2 CPUs, 128 MiB, TSC 2445406 kHz, cmdline "..."`, written
/// straight into the console buffer: no String is built on the boot path, where
/// every instruction may be emulated by the host.
private func printBanner(_ bootInfo: BootInfo) {
    Console.withLockedState { line in
        line.write("Toro for Swift: ")
        line.write(decimal: UInt64(bootInfo.cpuCount))
        line.write(bootInfo.cpuCount == 1 ? " CPU, " : " CPUs, ")
        line.write(decimal: bootInfo.memorySize >> 20)
        line.write(" MiB, TSC ")
        line.write(decimal: bootInfo.tscKHz)
        line.write(" kHz, cmdline \"")
        for byte in bootInfo.commandLineBytes { line.append(byte) }
        line.write("\"\n")
        line.flushIfLineEnded()
    }
}
