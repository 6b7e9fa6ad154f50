/*
 * entry.S: the first instructions every vCPU runs.
 *
 * The VMM starts each vCPU here in 64-bit long mode with RSP at the top of its
 * own boot stack, RDI = guest-physical address of struct toro_boot_info and
 * RSI = CPU index (see boot/toro_boot.h). Both arguments are already where the
 * System V ABI wants them, so this stub only makes the stack look like a fresh
 * call frame and enters Swift.
 */
    .section .text.entry, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    xorl %ebp, %ebp          /* end of the frame-pointer chain, for backtraces */
    andq $-16, %rsp          /* the ABI wants RSP 16-byte aligned at each call */
    call toro_kernel_entry   /* (bootInfo: RDI, cpuIndex: RSI); does not return */
1:  cli                      /* if it ever does, park this CPU for good */
    hlt
    jmp 1b
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
