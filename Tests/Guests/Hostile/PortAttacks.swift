import KernelSupport
import ToroKernel

/// The VMM's own ports: the console (port 0x502) with descriptors it must
/// refuse, COM1 at odd widths, and the exit port's neighbourhood.
extension Run {
    // MARK: console

    /// Each refused write is counted in the VMM's `rejected_requests` (the test
    /// checks the exact number) and warned about once; the guest goes on.
    func attackConsole() {
        family = "console"
        Console.flush()
        let port = UInt16(TORO_PORT_CONSOLE)
        // A page below 4 GiB for the descriptors and their bytes.
        let page = buffer(48)
        let descriptor = UnsafeMutablePointer<toro_console_write>(bitPattern: page)!
        let text = page + 0x800

        func send(_ address: UInt64, _ length: UInt32) {
            descriptor.pointee = toro_console_write(address: address, length: length, reserved: 0)
            kernel_outl(port, UInt32(truncatingIfNeeded: UInt64(page)))
        }
        kernel_outb(port, 0x12)
        kernel_outw(port, 0x1234)
        kernel_outl(port, 0xFFFF_FFF0)  // the descriptor outside RAM
        kernel_outl(port, UInt32(truncatingIfNeeded: ramEnd - 8))  // across the end of RAM
        send(ramEnd - 4, 16)  // bytes across the end of RAM
        send(0xD100_0000, 4)  // bytes in the device's window
        send(0xFFFF_FFFF_FFFF_FFF0, 32)  // an address and length that wrap
        send(UInt64(text), TORO_CONSOLE_WRITE_MAX + 1)
        send(UInt64(text), 0xFFFF_FFFF)
        expectedRejected += 9
        send(UInt64(text), 0)  // nothing to print: fine
        check("nine malformed writes", true, "refused by the VMM, counted in rejected_requests")

        // `rep outsl` with two descriptors: two writes, in order.
        let pair = UnsafeMutablePointer<toro_console_write>(bitPattern: page + 0x100)!
        store(Array("hostile: console rep outsl one\n".utf8), at: text)
        store(Array("hostile: console rep outsl two\n".utf8), at: text + 0x100)
        pair[0] = toro_console_write(address: UInt64(text), length: 31, reserved: 0)
        pair[1] = toro_console_write(address: UInt64(text + 0x100), length: 31, reserved: 0)
        let addresses = UnsafeMutablePointer<UInt32>(bitPattern: page + 0x200)!
        addresses[0] = UInt32(truncatingIfNeeded: UInt64(page + 0x100))
        addresses[1] = UInt32(truncatingIfNeeded: UInt64(page + 0x110))
        kernel_memory_fence()
        kernel_rep_outsl(port, UnsafeRawPointer(addresses), 2)

        let consoleIn = kernel_inl(port)
        let exitIn = kernel_inb(UInt16(TORO_PORT_EXIT))
        check("reads of the console and exit ports", consoleIn == 0xFFFF_FFFF && exitIn == 0xFF,
              "\(hex(consoleIn)), \(hex(exitIn))")
    }

    // MARK: com1

    /// COM1 at every width: a UART's transmit register takes the low byte of each
    /// write; the line status says "ready" at any width.
    func attackCOM1() {
        family = "com1"
        Console.flush()
        let port = UInt16(TORO_PORT_COM1)
        func bytes(_ text: String) { for byte in text.utf8 { kernel_outb(port, byte) } }
        bytes("hostile: com1 byte by byte\n")
        bytes("hostile: com1 wide ")
        kernel_outw(port, 0x0041)
        kernel_outl(port, 0x0000_0042)
        bytes("\n")
        let line = Array("hostile: com1 rep outsb\n".utf8)
        store(line, at: buffer(49))
        kernel_rep_outsb(port, UnsafeRawPointer(bitPattern: buffer(49))!, line.count)

        // Every other register of the UART: writes ignored; reads 0, the line status "ready".
        for offset: UInt16 in 1...7 {
            kernel_outb(port + offset, 0xFF)
            kernel_outw(port + offset, 0xFFFF)
            kernel_outl(port + offset, 0xFFFF_FFFF)
        }
        let status8 = kernel_inb(port + 5)
        let status16 = kernel_inw(port + 5)
        let status32 = kernel_inl(port + 5)
        let others = kernel_inb(port + 1) | kernel_inb(port + 2) | kernel_inb(port + 3) | kernel_inb(port + 7)
        kernel_rep_insb(port + 5, UnsafeMutableRawPointer(bitPattern: buffer(50))!, 16)
        let repeated = load(16, at: buffer(50)).allSatisfy { $0 == 0x60 }
        let absent = kernel_inb(0x3F7) == 0xFF && kernel_inb(0x400) == 0xFF && kernel_inl(0x2F8) == 0xFFFF_FFFF
        check("the other registers, at every width", status8 == 0x60 && status16 == 0x6060 && status32 == 0x6060_6060
                && others == 0 && repeated && absent,
              "line status \(hex(status8)) \(hex(status16)) \(hex(status32))")
    }

    // MARK: exit

    /// The exit port's neighbours and odd reads, then a status too large for a
    /// byte at 16 bits: the VMM stops the VM (status 125) and says why.
    func attackExit() {
        family = "exit"
        let port = UInt16(TORO_PORT_EXIT)
        let read = kernel_inb(port)
        kernel_outb(port - 1, 1)
        kernel_outw(port - 1, 0x0101)
        kernel_outb(port + 2, 1)
        kernel_outl(port + 3, 7)
        check("neighbours and reads", read == 0xFF, "still running")
        Console.flush()
        kernel_outw(port, 0x1234)
        check("a 16-bit status of 4660", false, "the VM should have stopped")
    }
}
