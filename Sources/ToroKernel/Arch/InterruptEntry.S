/*
 * InterruptEntry.S: the first instructions of every exception and interrupt.
 *
 * Every gate sends the CPU to an IST stack (Arch/CPUTables.swift says why),
 * except in kvm_pvm's native mode, where none can, so each stub starts on a
 * 16-byte aligned stack (the CPU aligns RSP before it pushes) holding the
 * CPU's frame: SS, RSP, RFLAGS, CS, RIP and, for some exceptions, an error
 * code (Intel SDM vol. 3A, 6.14.2). The stubs complete it into a
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
#define FRAME_RIP 136         /* offsetof(struct kernel_interrupt_frame, rip) */
#define MSR_X2APIC_EOI 0x80B  /* Arch/LocalAPIC.swift */
#define WAKE_VECTOR 0xF0      /* IPI.wakeVector */
#define INTERRUPTS_TAKEN 296  /* offsetof(struct kernel_cpu_local, interrupts_taken) */
#define FLAGS_IF 0x200        /* KERNEL_FLAGS_IF */

/*
 * Readies the CPU's frame at `rip`(%rsp) (RIP, CS, RFLAGS, RSP, SS) for
 * `iretq`, in every mode alike; clobbers RAX.
 *   - CS and SS become the selectors the kernel runs with: kvm_pvm's native
 *     delivery records the boot selectors (0x08, 0x10), and a native `iretq`
 *     with them faults.
 *   - IF is cleared: interrupted code runs with interrupts disabled (they
 *     are taken only in the windows below), so this only makes every mode
 *     agree with native mode, where `iretq` cannot set IF, and spares the
 *     windows their `cli`.
 *   - An interrupt taken at the HLT of kernel_enable_and_halt, which the STI
 *     shadow should have prevented, returns past it: halting with interrupts
 *     disabled would never end.
 *   - This CPU's interrupts_taken counts one more.
 */
.macro PREPARE_RETURN rip
    incq %gs:INTERRUPTS_TAKEN
    movq kernel_code_selector(%rip), %rax
    movq %rax, \rip+8(%rsp)
    movq kernel_data_selector(%rip), %rax
    movq %rax, \rip+32(%rsp)
    andq $~FLAGS_IF, \rip+16(%rsp)
    leaq halt_instruction(%rip), %rax
    cmpq %rax, \rip(%rsp)
    jne .Lreturn_ready\@
    incq \rip(%rsp)            /* HLT is one byte */
.Lreturn_ready\@:
.endm

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
/* A label for each run of stubs, so that a profile names them apart. */
exception_stubs:
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
    PREPARE_RETURN FRAME_RIP
    RESTORE_REGISTERS
    addq $16, %rsp              /* the vector and error code */
    iretq

/* MARK: - Interrupts (vectors 32-254) */

/* The wake-up vector has its own stub (below); the others share interrupt_common. */
interrupt_stubs:
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
 * Interrupt gates leave IF clear, so nothing nests.
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
    PREPARE_RETURN FRAME_RIP
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
    PREPARE_RETURN 24
    popq %rdx
    popq %rcx
    popq %rax
    iretq

/* A spurious interrupt is not in service, so it gets no EOI (Intel SDM vol. 3A, 10.9). */
    .p2align 4
spurious_stub:
    pushq %rax
    PREPARE_RETURN 8
    popq %rax
    iretq

    .pushsection .rodata.kernel_interrupt_stubs
    .quad spurious_stub         /* vector 255, LocalAPIC.spuriousVector */
    .size kernel_interrupt_stubs, . - kernel_interrupt_stubs
    .if . - kernel_interrupt_stubs != 256 * 8
    .error "kernel_interrupt_stubs must have one entry per vector"
    .endif
    .popsection

/* MARK: - Interrupt windows (KernelSupport.h) */

/*
 * The only code that runs with interrupts enabled. Each reads this CPU's
 * interrupts_taken first: if it changed, an interrupt was taken and returned
 * with IF clear (PREPARE_RETURN), and the `cli` is left out, which saves a
 * trap to the host in native mode. An interrupt between the compare and the
 * `cli` makes that `cli` redundant, not wrong.
 */
    .globl kernel_interrupt_window
    .type kernel_interrupt_window, @function
kernel_interrupt_window:
    movq %gs:INTERRUPTS_TAKEN, %rax
    sti
    nop
    cmpq %gs:INTERRUPTS_TAKEN, %rax
    jne 1f
    cli
1:  ret
    .size kernel_interrupt_window, . - kernel_interrupt_window

    .globl kernel_enable_and_halt
    .type kernel_enable_and_halt, @function
kernel_enable_and_halt:
    movq %gs:INTERRUPTS_TAKEN, %rax
    sti
halt_instruction:
    hlt
    cmpq %gs:INTERRUPTS_TAKEN, %rax
    jne 1f
    cli
1:  ret
    .size kernel_enable_and_halt, . - kernel_enable_and_halt

    .section .note.GNU-stack, "", @progbits
