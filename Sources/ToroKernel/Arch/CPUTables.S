/*
 * CPUTables.S: switching a CPU to its own GDT and TSS (Arch/CPUTables.swift).
 *
 * A real function rather than inline assembly: it pushes onto the stack, and
 * Swift code keeps data in the red zone below RSP, which pushes inside an
 * inlined asm statement would overwrite. A call is safe, because a function
 * that calls keeps nothing below its RSP.
 *
 * void kernel_load_cpu_tables(const uint64_t *gdt, uint16_t limit, uint16_t tss_selector)
 */
#define SELECTOR_CODE 0x08 /* KERNEL_SELECTOR_CODE */
#define SELECTOR_DATA 0x10 /* KERNEL_SELECTOR_DATA */

    .text
    .globl kernel_load_cpu_tables
    .type kernel_load_cpu_tables, @function
kernel_load_cpu_tables:
    /* lgdt takes a 10-byte pointer: 16-bit limit, then the 64-bit base. */
    subq $16, %rsp
    movw %si, 6(%rsp)
    movq %rdi, 8(%rsp)
    lgdt 6(%rsp)
    addq $16, %rsp

    /* A mov cannot load CS; a far return pops the new CS:RIP (Intel SDM vol. 3A, 3.4.3). */
    pushq $SELECTOR_CODE
    leaq 1f(%rip), %rax
    pushq %rax
    lretq
1:
    /* The data segments' hidden parts are reloaded from the new GDT. Loading
     * GS also zeroes its base, which CPULocal.install sets afterwards. */
    movl $SELECTOR_DATA, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs

    /* ltr marks the TSS descriptor busy; each CPU has its own GDT, so no two share one. */
    ltr %dx
    ret
    .size kernel_load_cpu_tables, . - kernel_load_cpu_tables

    .section .note.GNU-stack, "", @progbits
