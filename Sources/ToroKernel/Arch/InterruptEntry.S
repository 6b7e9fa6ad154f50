/*
 * InterruptEntry.S: the first instructions of every exception and interrupt.
 *
 * Every gate sends the CPU to an IST stack (Arch/CPUTables.swift says why),
 * so each stub starts on a fresh, 16-byte aligned stack holding the CPU's
 * frame: SS, RSP, RFLAGS, CS, RIP and, for some exceptions, an error code
 * (Intel SDM vol. 3A, 6.14.2). The stubs complete it into a
 * struct kernel_interrupt_frame (KernelSupport.h): an error code of 0 where
 * the CPU pushed none, the vector, then all fifteen general registers.
 *
 * After the CPU's 5 words, the error code, the vector and 15 registers, RSP
 * is 16-byte aligned again, as the System V ABI wants at a call.
 *
 * Every instruction here may be emulated by the host at about a microsecond
 * each, so the interrupt path is kept short: the handler table is indexed
 * here rather than in Swift, and the wake-up vector has a stub of its own
 * that only acknowledges the interrupt.
 */
#define FRAME_VECTOR 120      /* offsetof(struct kernel_interrupt_frame, vector) */
#define MSR_X2APIC_EOI 0x80B  /* Arch/LocalAPIC.swift */
#define WAKE_VECTOR 0xF0      /* IPI.wakeVector */

.macro SAVE_REGISTERS
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
.endm

.macro RESTORE_REGISTERS
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
.endm

    .text

/* MARK: - Exceptions (vectors 0-31) */

/*
 * kernel_interrupt_stubs[vector] is where the gate for each vector points.
 * Each stub below appends its own address to it as it is assembled, so the
 * table follows the stubs in vector order whatever their sizes.
 */
    .pushsection .rodata.kernel_interrupt_stubs, "a", @progbits
    .p2align 3
    .globl kernel_interrupt_stubs
    .type kernel_interrupt_stubs, @object
kernel_interrupt_stubs:
    .popsection

/*
 * The CPU pushes an error code for #DF (8), #TS (10), #NP (11), #SS (12),
 * #GP (13), #PF (14), #AC (17), #CP (21), #VC (29) and #SX (30) (Intel SDM
 * vol. 3A, 6.15); the other stubs push a 0 in its place so that every frame
 * has the same layout.
 */
    .set vector, 0
    .rept 32
    .pushsection .rodata.kernel_interrupt_stubs
    .quad 1f
    .popsection
1:
    .if vector != 8 && vector != 10 && vector != 11 && vector != 12 && vector != 13 && vector != 14 && vector != 17 && vector != 21 && vector != 29 && vector != 30
    pushq $0
    .endif
    pushq $vector
    jmp exception_common
    .set vector, vector + 1
    .endr

/*
 * Calls kernel_exception_entry (Arch/Exceptions.swift) with the frame. It
 * reports the exception and ends the VM, so it does not return today; the
 * path back is kept for handlers that will (a page fault served on demand).
 */
exception_common:
    SAVE_REGISTERS
    cld                         /* the ABI wants DF clear at every call */
    movq %rsp, %rdi
    call kernel_exception_entry
    RESTORE_REGISTERS
    addq $16, %rsp              /* the vector and error code */
    iretq

/* MARK: - Interrupts (vectors 32-254) */

/* The wake-up vector has its own stub (below); the others share interrupt_common. */
    .set vector, 32
    .rept 223
    .if vector == WAKE_VECTOR
    .pushsection .rodata.kernel_interrupt_stubs
    .quad wake_stub
    .popsection
    .else
    .pushsection .rodata.kernel_interrupt_stubs
    .quad 1f
    .popsection
1:
    pushq $0
    pushq $vector
    jmp interrupt_common
    .endif
    .set vector, vector + 1
    .endr

/*
 * Calls the handler registered for the vector (kernel_interrupt_handlers,
 * filled by Interrupts.register), then signals end of interrupt to the local
 * APIC (x2APIC EOI register: write 0, Intel SDM vol. 3A, 10.8.5 and 10.12.1).
 * Interrupt gates leave IF clear, so nothing nests on this IST stack.
 */
interrupt_common:
    SAVE_REGISTERS
    cld
    movq FRAME_VECTOR(%rsp), %rax
    movq kernel_interrupt_handlers(, %rax, 8), %rax
    testq %rax, %rax
    jz 1f
    movq %rsp, %rdi
    call *%rax
1:
    xorl %eax, %eax
    xorl %edx, %edx
    movl $MSR_X2APIC_EOI, %ecx
    wrmsr
    RESTORE_REGISTERS
    addq $16, %rsp
    iretq

/* The wake-up IPI (IPI.wake) exists only to end a HLT: acknowledge it and go back. */
    .p2align 4
wake_stub:
    pushq %rax
    pushq %rcx
    pushq %rdx
    xorl %eax, %eax
    xorl %edx, %edx
    movl $MSR_X2APIC_EOI, %ecx
    wrmsr
    popq %rdx
    popq %rcx
    popq %rax
    iretq

/* A spurious interrupt is not in service, so it gets no EOI (Intel SDM vol. 3A, 10.9). */
    .p2align 4
spurious_stub:
    iretq

    .pushsection .rodata.kernel_interrupt_stubs
    .quad spurious_stub         /* vector 255, LocalAPIC.spuriousVector */
    .size kernel_interrupt_stubs, . - kernel_interrupt_stubs
    .if . - kernel_interrupt_stubs != 256 * 8
    .error "kernel_interrupt_stubs must have one entry per vector"
    .endif
    .popsection

    .section .note.GNU-stack, "", @progbits
