/*
 * KernelSupport.h: what the Swift kernel cannot say in Swift.
 *
 * Swift has no inline assembly, so every CPU instruction the kernel needs is a
 * `static inline` function here; Swift imports them through module.modulemap
 * and they inline into the Swift code like any other call. The header also
 * brings in the boot contract (boot/toro_boot.h, the one definition shared with
 * the VMM) and declares the few objects that must live at fixed addresses in
 * the image (see KernelStorage.c). No policy lives here.
 */
#ifndef KERNEL_SUPPORT_H
#define KERNEL_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../../../boot/toro_boot.h"

/* Pointers below are non-null unless marked otherwise (Swift imports them so). */
#pragma clang assume_nonnull begin

/* MARK: - Port I/O */

static inline void kernel_outb(uint16_t port, uint8_t value) {
    __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

/* "memory": a write to the console port publishes a descriptor the VMM reads,
 * so every store before it must have happened. */
static inline void kernel_outl(uint16_t port, uint32_t value) {
    __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

static inline uint8_t kernel_inb(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

/* MARK: - Memory-mapped I/O */

/* `volatile` makes the compiler perform every access, once and in order, as
 * written: a device register is not memory, and a load from one must not be
 * answered from a value the program stored there earlier. */
static inline uint8_t kernel_mmio_read8(uintptr_t address) { return *(volatile uint8_t *)address; }
static inline uint16_t kernel_mmio_read16(uintptr_t address) { return *(volatile uint16_t *)address; }
static inline uint32_t kernel_mmio_read32(uintptr_t address) { return *(volatile uint32_t *)address; }
static inline void kernel_mmio_write8(uintptr_t address, uint8_t value) { *(volatile uint8_t *)address = value; }
static inline void kernel_mmio_write16(uintptr_t address, uint16_t value) { *(volatile uint16_t *)address = value; }
static inline void kernel_mmio_write32(uintptr_t address, uint32_t value) { *(volatile uint32_t *)address = value; }

/* MARK: - Processor control */

static inline void kernel_pause(void) { __asm__ volatile("pause" : : : "memory"); }
static inline void kernel_hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
static inline void kernel_cli(void) { __asm__ volatile("cli" : : : "memory"); }
static inline void kernel_sti(void) { __asm__ volatile("sti" : : : "memory"); }

static inline uint64_t kernel_rdtsc(void) {
    uint32_t low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return ((uint64_t)high << 32) | low;
}

struct kernel_cpuid_result {
    uint32_t eax, ebx, ecx, edx;
};

static inline struct kernel_cpuid_result kernel_cpuid(uint32_t leaf, uint32_t subleaf) {
    struct kernel_cpuid_result r;
    __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}

static inline uint64_t kernel_rdmsr(uint32_t msr) {
    uint32_t low, high;
    __asm__ volatile("rdmsr" : "=a"(low), "=d"(high) : "c"(msr));
    return ((uint64_t)high << 32) | low;
}

static inline void kernel_wrmsr(uint32_t msr, uint64_t value) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)) : "memory");
}

/* RDRAND can fail transiently (CF = 0) when the DRBG is drained; the caller retries. */
static inline bool kernel_rdrand64(uint64_t *value) {
    bool ok;
    __asm__ volatile("rdrand %0; setc %1" : "=r"(*value), "=qm"(ok) : : "cc");
    return ok;
}

#define KERNEL_MSR_GS_BASE 0xC0000101u

/* MARK: - Per-CPU storage */

#define KERNEL_LINE_MAX 240u

/*
 * One block per CPU, found through the GS base (set once at entry), so that a
 * CPU reaches its own data with a single load and no lock. Swift's `print`
 * calls putchar one byte at a time; collecting a whole line here before it
 * goes to the shared console keeps lines from different CPUs from interleaving.
 */
struct kernel_cpu_local {
    struct kernel_cpu_local *self_pointer; /* at %gs:0 */
    uint32_t index;
    uint32_t line_length;
    uint8_t line[KERNEL_LINE_MAX];
};

_Static_assert(sizeof(struct kernel_cpu_local) == 256, "kernel_cpu_local layout");

extern struct kernel_cpu_local kernel_cpu_locals[TORO_MAX_CPUS];

static inline struct kernel_cpu_local *kernel_cpu_local_block(uint32_t index) {
    return &kernel_cpu_locals[index];
}

static inline uint8_t *kernel_cpu_local_line(struct kernel_cpu_local *block) {
    return block->line;
}

/* Valid only after the entry code has pointed GS at this CPU's block. */
static inline struct kernel_cpu_local *kernel_cpu_local_current(void) {
    struct kernel_cpu_local *block;
    __asm__ volatile("movq %%gs:0, %0" : "=r"(block));
    return block;
}

/* MARK: - Fixed-address storage */

/* The console buffer and its descriptor: the VMM reads both by guest-physical
 * address, and the descriptor's address must fit the 32-bit port write. */
#define KERNEL_CONSOLE_BUFFER_SIZE 4096u
extern uint8_t kernel_console_buffer[KERNEL_CONSOLE_BUFFER_SIZE];
extern struct toro_console_write kernel_console_descriptor;

/* By pointer, so Swift never copies them: the address is the point. */
static inline uint8_t *kernel_console_buffer_pointer(void) { return kernel_console_buffer; }
static inline struct toro_console_write *kernel_console_descriptor_pointer(void) { return &kernel_console_descriptor; }

/* End of the loaded image (bss included), from boot/kernel.ld. */
static inline uintptr_t kernel_image_end(void) {
    extern char __kernel_end[];
    return (uintptr_t)__kernel_end;
}

/* MARK: - Boot info arrays */

/* Swift sees C arrays as tuples it cannot index; these index them in place. */
static inline const struct toro_memory_region *kernel_boot_memory_region(const struct toro_boot_info *info,
                                                                         uint32_t index) {
    return &info->memory[index];
}

static inline const struct toro_cpu_info *kernel_boot_cpu(const struct toro_boot_info *info, uint32_t index) {
    return &info->cpus[index];
}

static inline const uint8_t *kernel_boot_cmdline(const struct toro_boot_info *info) {
    return (const uint8_t *)info->cmdline;
}

/* MARK: - The application */

/* Emitted by Swift for the application's `@main` type (built with
 * -parse-as-library); the kernel calls it once the machine is up. */
int main(int argc, char *_Nullable *_Nullable argv);

#pragma clang assume_nonnull end

#endif
