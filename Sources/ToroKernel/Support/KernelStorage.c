/*
 * KernelStorage.c: objects that must live at fixed addresses in the image.
 *
 * Swift globals have no guaranteed address, but these are handed to the VMM or
 * to the CPU by address: the console buffer and descriptor (read by the VMM,
 * the descriptor's address must fit 32 bits, which an image at 2 MiB does) and
 * the per-CPU blocks (the GS base points at them). Zero-initialised, so .bss.
 */
#include "KernelSupport.h"

_Alignas(64) struct kernel_cpu_local kernel_cpu_locals[TORO_MAX_CPUS];

_Alignas(64) uint8_t kernel_console_buffer[KERNEL_CONSOLE_BUFFER_SIZE];
_Alignas(16) struct toro_console_write kernel_console_descriptor;

/* Arch/: each CPU's GDT and TSS, the IDT all CPUs share, the interrupt
 * handler table the entry stubs index, and the interrupt (IST) stacks. The
 * stacks have no guard pages: they are in the image's identity-mapped bss. */
_Alignas(64) struct kernel_cpu_tables kernel_cpu_tables[TORO_MAX_CPUS];
_Alignas(4096) struct kernel_idt_gate kernel_idt[256];
kernel_interrupt_handler _Nullable kernel_interrupt_handlers[256];
_Alignas(4096) uint8_t kernel_interrupt_stacks[TORO_MAX_CPUS][KERNEL_IST_COUNT][KERNEL_IST_STACK_SIZE];

/* Arch/: the selectors this kernel runs with (KernelSupport.h). */
uint64_t kernel_code_selector = KERNEL_SELECTOR_CODE;
uint64_t kernel_data_selector = KERNEL_SELECTOR_DATA;

/* Scheduler/: each CPU's scheduler, filled by Scheduler.start on CPU 0. */
void *_Nullable kernel_schedulers[TORO_MAX_CPUS];
