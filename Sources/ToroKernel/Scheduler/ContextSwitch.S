/*
 * ContextSwitch.S: switching a core from one thread's stack to another's.
 *
 * Threads switch only by calling kernel_context_switch (cooperatively, from
 * Swift, with interrupts disabled), never from an interrupt, so a thread's
 * whole context is what a function call must preserve under the System V
 * ABI: RBX, RBP, R12-R15 and RSP (and the x87/MXCSR control words and
 * DF = 0, which the integer-only kernel never changes). The caller-saved
 * registers are dead across the call, and there is no vector state: the
 * kernel is built without SSE (see docs/architecture.md). Interrupts are off
 * on both sides, so RFLAGS needs no saving either.
 *
 * A suspended thread's stack holds, from its saved RSP up:
 *
 *     r15 r14 r13 r12 rbx rbp  return address
 *
 * For a thread that has never run, Scheduler/ContextSwitch.swift builds the
 * same seven words by hand: zeroes, the thread in the R12 slot, and
 * kernel_thread_trampoline as the return address.
 *
 * Every instruction here may be emulated by the host at about a microsecond
 * each: the switch is 15 instructions.
 */
    .text

/* void kernel_context_switch(uint64_t *save_rsp, uint64_t next_rsp) */
    .p2align 4
    .globl kernel_context_switch
    .type kernel_context_switch, @function
kernel_context_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size kernel_context_switch, . - kernel_context_switch

/*
 * A new thread's first instructions, reached by the RET above with RSP at
 * the top of its stack (16-byte aligned) and R12 = the thread. The CALL makes
 * toro_thread_main's frame look like any other (RSP = 8 mod 16 at entry);
 * it never returns (it ends the thread), hence the UD2.
 */
    .p2align 4
    .globl kernel_thread_trampoline
    .type kernel_thread_trampoline, @function
kernel_thread_trampoline:
    xorl %ebp, %ebp             /* the end of the frame-pointer chain */
    movq %r12, %rdi
    call toro_thread_main
    ud2
    .size kernel_thread_trampoline, . - kernel_thread_trampoline

    .section .note.GNU-stack, "", @progbits
