/*
 * CPUTables.S: switching a CPU to its own GDT and TSS (Arch/CPUTables.swift).
 *
 * A real function rather than inline assembly: it pushes onto the stack, and
 * Swift code keeps data in the red zone below RSP, which pushes inside an
 * inlined asm statement would overwrite. A call is safe, because a function
 * that calls keeps nothing below its RSP.
 *
 * void kernel_load_cpu_tables(const uint64_t *gdt, uint16_t limit, uint16_t tss_selector,
 *                             uint16_t code, uint16_t data)
 */

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
    movzwq %cx, %rcx
    pushq %rcx
    leaq 1f(%rip), %rax
    pushq %rax
    lretq
1:
    /* The data segments' hidden parts are reloaded from the new GDT. Loading
     * GS also zeroes its base, which CPULocal.install sets afterwards. */
    movzwl %r8w, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    movl %eax, %fs
    movl %eax, %gs

    /* ltr marks the TSS descriptor busy; each CPU has its own GDT, so no two
     * share one. Native mode has no use for a TSS (no IST, no privilege
     * change) and passes 0, saving a trap. */
    testw %dx, %dx
    jz 2f
    ltr %dx
2:  ret
    .size kernel_load_cpu_tables, . - kernel_load_cpu_tables

    .section .note.GNU-stack, "", @progbits
