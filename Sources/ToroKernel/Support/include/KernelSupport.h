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

/* MARK: - Odd widths and string I/O (for test guests that try the VMM's devices) */

static inline void kernel_outw(uint16_t port, uint16_t value) {
    __asm__ volatile("outw %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

static inline uint16_t kernel_inw(uint16_t port) {
    uint16_t value;
    __asm__ volatile("inw %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

static inline uint32_t kernel_inl(uint16_t port) {
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

/* `rep outsb` / `rep outsl`: `count` bytes / 32-bit words from `data` to `port`. */
static inline void kernel_rep_outsb(uint16_t port, const void *data, size_t count) {
    __asm__ volatile("rep outsb" : "+S"(data), "+c"(count) : "d"(port) : "memory");
}

static inline void kernel_rep_outsl(uint16_t port, const void *data, size_t count) {
    __asm__ volatile("rep outsl" : "+S"(data), "+c"(count) : "d"(port) : "memory");
}

/* `rep insb`: `count` bytes from `port` into `data`. */
static inline void kernel_rep_insb(uint16_t port, void *data, size_t count) {
    __asm__ volatile("rep insb" : "+D"(data), "+c"(count) : "d"(port) : "memory");
}

/* One `mov` of `size` bytes (1, 2, 4 or 8; anything else does nothing and
 * reads 0) at `address`, aligned or not: written in assembly, since an
 * unaligned access through a C pointer is undefined behaviour. */
static inline uint64_t kernel_mmio_read_sized(uintptr_t address, unsigned size) {
    uint64_t value = 0;
    switch (size) {
    case 1: { uint8_t v; __asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(address) : "memory"); value = v; break; }
    case 2: { uint16_t v; __asm__ volatile("movw (%1), %0" : "=r"(v) : "r"(address) : "memory"); value = v; break; }
    case 4: { uint32_t v; __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(address) : "memory"); value = v; break; }
    case 8: __asm__ volatile("movq (%1), %0" : "=r"(value) : "r"(address) : "memory"); break;
    default: break;
    }
    return value;
}

static inline void kernel_mmio_write_sized(uintptr_t address, uint64_t value, unsigned size) {
    switch (size) {
    case 1: __asm__ volatile("movb %0, (%1)" : : "q"((uint8_t)value), "r"(address) : "memory"); break;
    case 2: __asm__ volatile("movw %0, (%1)" : : "r"((uint16_t)value), "r"(address) : "memory"); break;
    case 4: __asm__ volatile("movl %0, (%1)" : : "r"((uint32_t)value), "r"(address) : "memory"); break;
    case 8: __asm__ volatile("movq %0, (%1)" : : "r"(value), "r"(address) : "memory"); break;
    default: break;
    }
}

/* MARK: - Processor control */

static inline void kernel_pause(void) { __asm__ volatile("pause" : : : "memory"); }
static inline void kernel_hlt(void) { __asm__ volatile("hlt" : : : "memory"); }
static inline void kernel_cli(void) { __asm__ volatile("cli" : : : "memory"); }

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
 * Blocks are cache-line aligned (the array is aligned to 64 and the size is
 * a multiple of 64), so one CPU writing its own block never steals the cache
 * line holding another CPU's. Swift does not import over-aligned structs, so
 * the size is kept whole by hand: adjust `reserved` when adding a field.
 */
struct kernel_cpu_local {
    struct kernel_cpu_local *self_pointer; /* at %gs:0 */
    uint32_t index;
    uint32_t line_length;
    /* Arch/: exceptions being reported on this CPU (a second one ends the VM
     * at once), the local APIC timer mode last programmed here, and the TSC
     * deadline of the armed one-shot timer (0 if none). */
    uint32_t exception_depth;
    uint32_t timer_mode;
    uint64_t timer_deadline;
    uint8_t line[KERNEL_LINE_MAX];
    /* Scheduler/: this core's scheduler and the thread running on it, both
     * Swift objects (unretained: the scheduler keeps them alive), so that
     * finding either costs one GS-relative load. NULL until the scheduler starts. */
    void *_Nullable scheduler;
    void *_Nullable current_thread;
    /* Time/: this core's timer queue (a Swift object, unretained), set on
     * its first use. */
    void *_Nullable timers;
    /* Arch/: interrupts this CPU has taken (every entry stub that returns
     * counts), which tells the interrupt windows whether IF is still set. */
    uint64_t interrupts_taken;
    /* Arch/: the TSC when Interrupts.windowIfDue last opened a window here. */
    uint64_t last_window;
    uint8_t reserved[8];
};

_Static_assert(sizeof(struct kernel_cpu_local) % 64 == 0, "kernel_cpu_local fills whole cache lines");
/* Arch/InterruptEntry.S hard-codes this offset. */
_Static_assert(offsetof(struct kernel_cpu_local, interrupts_taken) == 296, "kernel_cpu_local layout");

extern _Alignas(64) struct kernel_cpu_local kernel_cpu_locals[TORO_MAX_CPUS];

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

/* This CPU's scheduler, current thread, timer queue and timer deadline, one
 * GS-relative load each (see above). */
static inline void *_Nullable kernel_cpu_local_scheduler(void) {
    void *scheduler;
    __asm__ volatile("movq %%gs:%c1, %0" : "=r"(scheduler) : "i"(offsetof(struct kernel_cpu_local, scheduler)));
    return scheduler;
}

static inline void *_Nullable kernel_cpu_local_current_thread(void) {
    void *thread;
    __asm__ volatile("movq %%gs:%c1, %0" : "=r"(thread) : "i"(offsetof(struct kernel_cpu_local, current_thread)));
    return thread;
}

static inline void *_Nullable kernel_cpu_local_timers(void) {
    void *timers;
    __asm__ volatile("movq %%gs:%c1, %0" : "=r"(timers) : "i"(offsetof(struct kernel_cpu_local, timers)));
    return timers;
}

/* The TSC deadline of this CPU's armed timer, 0 if none (see Arch/LocalAPIC.swift). */
static inline uint64_t kernel_cpu_local_timer_deadline(void) {
    uint64_t deadline;
    __asm__ volatile("movq %%gs:%c1, %0" : "=r"(deadline) : "i"(offsetof(struct kernel_cpu_local, timer_deadline)));
    return deadline;
}

static inline void kernel_cpu_local_set_current_thread(void *_Nullable thread) {
    __asm__ volatile("movq %0, %%gs:%c1" : : "r"(thread), "i"(offsetof(struct kernel_cpu_local, current_thread)) : "memory");
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

static inline const struct toro_device *kernel_boot_device(const struct toro_boot_info *info, uint32_t index) {
    return &info->devices[index];
}

static inline const uint8_t *kernel_boot_cmdline(const struct toro_boot_info *info) {
    return (const uint8_t *)info->cmdline;
}

/* MARK: - Descriptor tables, interrupt entry (Arch/) */

/*
 * Each CPU's own GDT uses the same slots as the VMM's boot GDT (toro_boot.h),
 * so no selector changes meaning when a CPU switches to its own tables.
 */
#define KERNEL_SELECTOR_CODE TORO_BOOT_SELECTOR_CODE
#define KERNEL_SELECTOR_DATA TORO_BOOT_SELECTOR_DATA
#define KERNEL_SELECTOR_TSS TORO_BOOT_SELECTOR_TSS
#define KERNEL_SELECTOR_NATIVE_DATA TORO_BOOT_SELECTOR_NATIVE_DATA
#define KERNEL_SELECTOR_NATIVE_CODE TORO_BOOT_SELECTOR_NATIVE_CODE
/* null, code, data, TSS (a 16-byte descriptor), native data, native code */
#define KERNEL_GDT_ENTRIES 7u

/* Interrupt stack table slots 1-4 of each TSS (see Arch/CPUTables.swift). */
#define KERNEL_IST_COUNT 4u
#define KERNEL_IST_STACK_SIZE 16384u

/*
 * The 64-bit TSS (Intel SDM vol. 3A, 7.7) is 104 bytes whose 64-bit fields
 * sit at offsets 4 mod 8, so it is kept as 32-bit words and its stack
 * pointers are written through kernel_tss_set_ist.
 */
#define KERNEL_TSS_SIZE 104u

struct kernel_cpu_tables {
    uint64_t gdt[KERNEL_GDT_ENTRIES];
    uint32_t tss[KERNEL_TSS_SIZE / 4];
};

extern struct kernel_cpu_tables kernel_cpu_tables[TORO_MAX_CPUS];
extern uint8_t kernel_interrupt_stacks[TORO_MAX_CPUS][KERNEL_IST_COUNT][KERNEL_IST_STACK_SIZE];

static inline struct kernel_cpu_tables *kernel_cpu_tables_block(uint32_t cpu) { return &kernel_cpu_tables[cpu]; }
static inline uint64_t *kernel_cpu_tables_gdt(struct kernel_cpu_tables *tables) { return tables->gdt; }
static inline uintptr_t kernel_cpu_tables_tss(struct kernel_cpu_tables *tables) { return (uintptr_t)tables->tss; }

/* The top (first byte above) of CPU `cpu`'s stack for IST slot `ist` (1-based). */
static inline uintptr_t kernel_interrupt_stack_top(uint32_t cpu, uint32_t ist) {
    return (uintptr_t)kernel_interrupt_stacks[cpu][ist - 1] + KERNEL_IST_STACK_SIZE;
}

/* TSS.ISTn is at byte 36 + 8 (n - 1) (Intel SDM vol. 3A, figure 7-11). */
static inline void kernel_tss_set_ist(struct kernel_cpu_tables *tables, uint32_t ist, uint64_t top) {
    tables->tss[9 + 2 * (ist - 1)] = (uint32_t)top;
    tables->tss[10 + 2 * (ist - 1)] = (uint32_t)(top >> 32);
}

/* The I/O map base (the upper half of the last word) past the limit: no I/O permission bitmap. */
static inline void kernel_tss_set_no_io_bitmap(struct kernel_cpu_tables *tables) {
    tables->tss[KERNEL_TSS_SIZE / 4 - 1] = KERNEL_TSS_SIZE << 16;
}

/* Arch/CPUTables.S: lgdt, reload CS (far return) with `code` and the data
 * segments with `data`, then ltr unless `tss_selector` is 0. Reloading GS
 * clears the GS base, so this comes before the per-CPU block is installed. */
void kernel_load_cpu_tables(const uint64_t *gdt, uint16_t limit, uint16_t tss_selector, uint16_t code,
                            uint16_t data);

/* One 16-byte gate per vector, shared by all CPUs (each CPU's TSS supplies the stacks). */
struct kernel_idt_gate {
    uint64_t low, high;
};

extern struct kernel_idt_gate kernel_idt[256];

/* The high half first and the low half (which holds the present bit) last, so
 * a CPU taking this vector meanwhile sees a gate that is either absent or whole. */
static inline void kernel_idt_set_gate(uint8_t vector, uint64_t low, uint64_t high) {
    __atomic_store_n(&kernel_idt[vector].low, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&kernel_idt[vector].high, high, __ATOMIC_RELAXED);
    __atomic_store_n(&kernel_idt[vector].low, low, __ATOMIC_RELEASE);
}

static inline void kernel_load_idt(uintptr_t base, uint16_t limit) {
    struct __attribute__((packed)) {
        uint16_t limit;
        uint64_t base;
    } pointer = {limit, base};
    __asm__ volatile("lidt %0" : : "m"(pointer) : "memory");
}

static inline uintptr_t kernel_idt_base(void) { return (uintptr_t)kernel_idt; }

/*
 * What every exception and interrupt entry stub (Arch/InterruptEntry.S)
 * leaves on the stack: the general registers it pushed, the vector and error
 * code (0 where the CPU pushes none), then the CPU's own frame.
 */
struct kernel_interrupt_frame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector;
    uint64_t error_code;
    uint64_t rip, cs, rflags, rsp, ss;
};

/* InterruptEntry.S hard-codes these offsets. */
_Static_assert(offsetof(struct kernel_interrupt_frame, vector) == 120, "interrupt frame layout");
_Static_assert(sizeof(struct kernel_interrupt_frame) == 176, "interrupt frame layout");

/* Entry stub addresses by vector (InterruptEntry.S), for building gates. */
extern const uint64_t kernel_interrupt_stubs[256];

static inline uint64_t kernel_interrupt_stub(uint8_t vector) { return kernel_interrupt_stubs[vector]; }

/* Handlers for vectors 32-254, called by the common interrupt stub; NULL for none. */
typedef void (*kernel_interrupt_handler)(struct kernel_interrupt_frame *frame);
extern kernel_interrupt_handler _Nullable kernel_interrupt_handlers[256];

static inline void kernel_set_interrupt_handler(uint8_t vector, kernel_interrupt_handler _Nullable handler) {
    __atomic_store_n(&kernel_interrupt_handlers[vector], handler, __ATOMIC_RELEASE);
}

/* MARK: - Interrupt windows and fault helpers */

/*
 * The only places where this kernel takes interrupts: out-of-line assembly
 * (Arch/InterruptEntry.S), entered by a call. Everywhere else interrupts are
 * disabled. A caller keeps nothing below its stack pointer across a call (the
 * call itself writes there), so an interrupt delivered on the current stack,
 * as in kvm_pvm's native mode, cannot overwrite a live red zone (see
 * docs/architecture.md, "Interrupts and the red zone").
 *
 * Both return with interrupts disabled. Every interrupt return clears IF in
 * the frame it returns through, so after one was taken no `cli` is needed;
 * they compare this CPU's `interrupts_taken` before and after to know, and
 * leave out the `cli` (a trap to the host in native mode) when one was.
 */

/* `sti; nop` then back off: a window of one instruction in which a pending
 * interrupt (a timer, an IPI, a device) is taken, for code that polls instead
 * of halting. STI's one-instruction shadow covers the NOP; the interrupt is
 * recognised after it (Intel SDM vol. 2B, STI; vol. 3A, 6.8.3). */
void kernel_interrupt_window(void);

/* `sti; hlt` back to back: STI enables interrupts only after the next
 * instruction, so no interrupt arrives between them, and a wake-up sent after
 * the caller's last check ends the HLT instead of being lost (Intel SDM vol.
 * 2B, STI). Should a host deliver one there anyway, the return path steps
 * over the HLT instead of halting with interrupts disabled. */
void kernel_enable_and_halt(void);

#define KERNEL_FLAGS_IF 0x200u

/* The code and data selectors this kernel runs with: the boot selectors, or
 * in kvm_pvm's native mode the DPL-3 ones (toro_boot.h). Written by CPU 0 at
 * entry; the interrupt return path writes them into every frame it returns
 * through, because native delivery records the boot selectors there. */
extern uint64_t kernel_code_selector;
extern uint64_t kernel_data_selector;

static inline uint16_t kernel_running_code_selector(void) { return (uint16_t)kernel_code_selector; }
static inline void kernel_set_running_selectors(uint16_t code, uint16_t data) {
    kernel_code_selector = code;
    kernel_data_selector = data;
}

/* The code segment selector this CPU runs with (`mov %cs`: no trap, even
 * in native mode, where its RPL is 3). */
static inline uint16_t kernel_read_cs(void) {
    uint16_t value;
    __asm__ volatile("movw %%cs, %0" : "=r"(value));
    return value;
}

/* MFENCE: orders the x2APIC LVT write (a WRMSR that is not serializing)
 * before a later IA32_TSC_DEADLINE write (Intel SDM vol. 3A, 10.5.4.1).
 * An integer-unit instruction despite its SSE2 CPUID bit. */
static inline void kernel_memory_fence(void) { __asm__ volatile("mfence" : : : "memory"); }

static inline uint64_t kernel_read_cr2(void) {
    uint64_t value;
    __asm__ volatile("movq %%cr2, %0" : "=r"(value));
    return value;
}

/* An unsigned 64-bit `div`: divisor 0 raises a real #DE (Swift would trap
 * with ud2 before dividing). */
static inline uint64_t kernel_divide(uint64_t dividend, uint64_t divisor) {
    uint64_t quotient, remainder;
    __asm__ volatile("divq %4" : "=a"(quotient), "=d"(remainder) : "a"(dividend), "d"(0), "rm"(divisor));
    return quotient;
}

/* Raises #UD, as a Swift runtime trap does. */
static inline void kernel_invalid_opcode(void) { __asm__ volatile("ud2"); }

/* Makes the compiler assume the memory at `pointer` is read and written here,
 * so that it keeps (for example) a stack frame it would otherwise optimise away. */
static inline void kernel_escape(const void *pointer) { __asm__ volatile("" : : "r"(pointer) : "memory"); }

/* MARK: - Paging (Memory/) */

/* The physical address of the top-level page table (PML4) and its flags.
 * A trap in native mode: Memory/PageTables.swift reads it once. */
static inline uint64_t kernel_read_cr3(void) {
    uint64_t value;
    __asm__ volatile("movq %%cr3, %0" : "=r"(value));
    return value;
}

/* Drops this CPU's TLB entries for the page holding `address`, whatever their
 * size, and its cached paging-structure entries (Intel SDM vol. 3A, 4.10.4.1). */
static inline void kernel_invlpg(uintptr_t address) {
    __asm__ volatile("invlpg (%0)" : : "r"(address) : "memory");
}

/* MARK: - Threads (Scheduler/) */

/* Each CPU's scheduler (a Swift object, retained once for good), by CPU
 * index; filled on CPU 0 before the other CPUs are released. Static, so that
 * finding another core's scheduler is one load and booting allocates no table. */
extern void *_Nullable kernel_schedulers[TORO_MAX_CPUS];

static inline void *_Nullable kernel_scheduler_of(uint32_t cpu) { return kernel_schedulers[cpu]; }
static inline void kernel_set_scheduler_of(uint32_t cpu, void *scheduler) { kernel_schedulers[cpu] = scheduler; }

/*
 * Scheduler/ContextSwitch.S. Pushes the registers the System V ABI makes
 * callee-saved (RBX, RBP, R12-R15) on the current stack, stores RSP in
 * *save_rsp, loads next_rsp and pops the same registers from there. The
 * caller-saved registers are dead across the call by the ABI; there is no
 * vector state (the kernel has no SSE) and RFLAGS.IF is 0 on both sides.
 */
void kernel_context_switch(uint64_t *save_rsp, uint64_t next_rsp);

/* Where a new thread's first switch returns to: calls toro_thread_main with
 * the R12 its initial frame holds (the thread). */
extern const char kernel_thread_trampoline[];

static inline uint64_t kernel_thread_trampoline_address(void) { return (uint64_t)(uintptr_t)kernel_thread_trampoline; }

/* MARK: - The application */

/* Emitted by Swift for the application's `@main` type (built with
 * -parse-as-library); the kernel calls it once the machine is up. */
int main(int argc, char *_Nullable *_Nullable argv);

#pragma clang assume_nonnull end

#endif
