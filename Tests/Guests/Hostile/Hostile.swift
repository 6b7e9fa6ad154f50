import KernelSupport
import ToroKernel

/// A guest that attacks the VMM's devices on purpose (Tests/IntegrationTests/
/// HostileGuestTests.swift): every register of the virtio-mmio virtio-net
/// device at every width and alignment, bad feature negotiation, bad queue
/// set-ups, bad descriptor chains, available-index jumps, notification storms,
/// resets under I/O, writes after DEVICE_NEEDS_RESET; and the console, COM1 and
/// exit ports with garbage.
///
/// `attack=` on the command line picks the families, comma-separated, or `all`
/// (the default: every family but `exit`, in this order): `registers`,
/// `features`, `queues`, `descriptors`, `avail`, `storm`, `reset`,
/// `needsreset`, `console`, `com1`, and `exit` (which ends the VM through the
/// exit port, with a status the VMM must refuse).
///
/// Every step prints `hostile: FAMILY STEP: ok: ...` or `... UNEXPECTED: ...`,
/// and each device family ends by resetting the device and exchanging frames
/// with the host (`works after reset`: an ARP request to 10.77.0.1, its reply).
/// Last, the kernel's own driver starts on the device and does the same. The
/// guest then prints what the VMM's statistics must show and exits 0 if every
/// step went as expected, 1 if not.
@main
struct Hostile {
    static let families = ["registers", "features", "queues", "descriptors", "avail", "storm", "reset", "needsreset",
                           "console", "com1"]
    static let portFamilies = ["console", "com1", "exit"]

    static func main() {
        let line = Kernel.commandLine
        let asked = line.value("attack") ?? "all"
        var chosen: [String] = []
        for word in asked.split(separator: ",") {
            let name = String(word)
            if name == "all" {
                chosen += families
            } else if families.contains(name) || name == "exit" {
                chosen.append(name)
            } else {
                print("hostile: unknown attack \(name) (\(families.joined(separator: ", ")), exit, all)")
                Kernel.exit(status: 2)
            }
        }
        let device = BootInfo.current.devices.first { $0.type == TORO_DEVICE_VIRTIO_MMIO }
        let needsDevice = chosen.contains { !portFamilies.contains($0) }
        if needsDevice && device == nil {
            print("hostile: FAIL: no virtio-mmio device (boot with --net)")
            Kernel.exit(status: 1)
        }
        guard let arena = PageAllocator.allocate(pages: Run.arenaPages) else {
            print("hostile: FAIL: no memory")
            Kernel.exit(status: 1)
        }
        let run = Run(base: device?.base ?? 0, ramEnd: BootInfo.current.memorySize, arena: arena)
        print("hostile: attacks \(chosen.joined(separator: ","))" + (device.map { " on the device at \(hex($0.base))" } ?? ""))

        for family in chosen {
            switch family {
            case "registers": run.attackRegisters()
            case "features": run.attackFeatures()
            case "queues": run.attackQueues()
            case "descriptors": run.attackDescriptors()
            case "avail": run.attackAvailable()
            case "storm": run.attackStorm()
            case "reset": run.attackReset()
            case "needsreset": run.attackAfterNeedsReset()
            case "console": run.attackConsole()
            case "com1": run.attackCOM1()
            case "exit": run.attackExit()
            default: break
            }
        }

        var recovered = true
        if device != nil {
            recovered = recoverWithTheKernelsDriver()
        }
        print("hostile: done: \(run.steps) steps, \(run.unexpected) unexpected; "
              + "the VMM must count errors >= \(run.expectedErrors), ignored_accesses >= \(run.expectedIgnored), "
              + "rejected_requests == \(run.expectedRejected)")
        Kernel.exit(status: run.unexpected == 0 && recovered ? 0 : 1)
    }

    /// The kernel's virtio-net driver starts on the device the attacks left (it
    /// resets it first) and gets an ARP reply from the host: a device that
    /// survived everything above serves a normal driver normally.
    static func recoverWithTheKernelsDriver() -> Bool {
        guard let net = VirtioNetDriver.start() else {
            print("hostile: recovery UNEXPECTED: the kernel's driver could not start the device")
            return false
        }
        var frame: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] + net.mac + [0x08, 0x06]
        frame += [0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01] + net.mac + Run.guestIP + [0, 0, 0, 0, 0, 0] + Run.hostIP
        while frame.count < 60 { frame.append(0) }
        for _ in 0..<5 {
            net.send(frame: frame)
            let deadline = Clock.deadline(afterNanoseconds: 1_000_000_000)
            Timers.add(deadline: deadline, .wake)
            while CPU.timestamp() < deadline {
                guard let reply = net.receive() else {
                    Thread.pollFoundNothing()
                    continue
                }
                Thread.pollFoundWork()
                if reply.count >= 42, reply[12] == 0x08, reply[13] == 0x06, reply[20] == 0, reply[21] == 2,
                    Array(reply[28..<32]) == Run.hostIP
                {
                    print("hostile: recovered: the kernel's driver got an arp reply from 10.77.0.1 at \(macText(Array(reply[22..<28])))")
                    return true
                }
            }
        }
        print("hostile: recovery UNEXPECTED: no arp reply from 10.77.0.1 through the kernel's driver")
        return false
    }

    static func macText(_ bytes: [UInt8]) -> String {
        var parts: [String] = []
        for byte in bytes { parts.append((byte < 16 ? "0" : "") + String(byte, radix: 16)) }
        return parts.joined(separator: ":")
    }
}
