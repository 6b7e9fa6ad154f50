/*
 * KernelStorage.c: objects that must live at fixed addresses in the image.
 *
 * Swift globals have no guaranteed address, but these are handed to the VMM or
 * to the CPU by address: the console buffer and descriptor (read by the VMM,
 * the descriptor's address must fit 32 bits, which an image at 2 MiB does) and
 * the per-CPU blocks (the GS base points at them). Zero-initialised, so .bss.
 */
#include "KernelSupport.h"

struct kernel_cpu_local kernel_cpu_locals[TORO_MAX_CPUS];

_Alignas(64) uint8_t kernel_console_buffer[KERNEL_CONSOLE_BUFFER_SIZE];
_Alignas(16) struct toro_console_write kernel_console_descriptor;
