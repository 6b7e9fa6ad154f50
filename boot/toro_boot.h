/*
 * toro_boot.h: the boot contract between toro-vmm and the Toro kernel.
 *
 * This is the only definition of that contract. The VMM includes it through
 * the CKVM module, the kernel through its KernelSupport module. Both sides
 * check the sizes below at compile time, so a change here that one side does
 * not pick up fails the build instead of corrupting a boot.
 *
 * Entry state of every vCPU (set up by the VMM, no firmware involved):
 *   - 64-bit long mode, paging on, CR0.WP, CR4.PAE|OSFXSR|OSXMMEXCPT, EFER.LME|LMA|NXE.
 *     The VMM enables SSE in CR4 so that a guest may use it, but Toro kernels
 *     are built without SSE, MMX and x87 code (soft-float): some KVM back ends
 *     emulate guest instructions and cannot emulate SSE arithmetic, and an
 *     integer-only kernel has no vector state to save when it switches.
 *   - CS = TORO_BOOT_SELECTOR_CODE, DS/ES/SS/FS/GS = TORO_BOOT_SELECTOR_DATA,
 *     TR = TORO_BOOT_SELECTOR_TSS, no IDT (limit 0), interrupts disabled.
 *   - RIP = ELF entry point, RSP = top of this vCPU's boot stack (16-byte aligned),
 *     RDI = guest-physical address of struct toro_boot_info,
 *     RSI = this vCPU's index (0 is the bootstrap processor).
 *   - All guest RAM is identity mapped, as is the 32-bit MMIO hole
 *     [TORO_MMIO_HOLE_BASE, 4 GiB) (uncacheable). Page 0 is not mapped, so a
 *     null pointer dereference faults; each boot stack has an unmapped guard
 *     page below it. The PML4 lies in an odd 4 KiB frame (see below).
 *
 * Native mode. On a kvm_pvm host (a KVM back end without hardware
 * virtualisation) the VMM may opt every vCPU in to native execution
 * (`toro-vmm run --mode native`, the default there). The kernel then starts
 * in the same state but runs at hardware privilege level 3: `mov %cs` reads
 * TORO_BOOT_SELECTOR_NATIVE_CODE (RPL 3), which is how a kernel tells. What
 * the host requires of such a guest, and the VMM of its page tables:
 *   - its GDT holds DPL-3 descriptors at TORO_BOOT_SELECTOR_NATIVE_CODE
 *     (64-bit code) and TORO_BOOT_SELECTOR_NATIVE_DATA; the boot GDT has
 *     both, so loading them before its own GDT exists works;
 *   - IDT gates use TORO_BOOT_SELECTOR_NATIVE_CODE with DPL 3 and no IST
 *     index (a gate with one triple-faults): exceptions and interrupts are
 *     delivered on the interrupted stack;
 *   - the frame an interrupt pushes carries the boot selectors (0x08, 0x10),
 *     and `iretq` needs the native ones written over them first;
 *   - delivery clears the (virtual) interrupt flag, `iretq` cannot set it
 *     again, and `pushf` always reads IF = 1;
 *   - every page-table entry has U = 1 (the VMM sets it), and CR3 must name
 *     an odd 4 KiB frame, or the host falls back to emulation.
 * Privileged instructions (MSRs, cli/sti/hlt, cpuid, CR and descriptor-table
 * loads) each trap to the host; ordinary code runs at hardware speed.
 */
#ifndef TORO_BOOT_H
#define TORO_BOOT_H

#include <stdint.h>

/* "TOROBOOT" read as a little-endian 64-bit integer. */
#define TORO_BOOT_MAGIC 0x544F4F424F524F54ULL
#define TORO_BOOT_VERSION 2u

#define TORO_MAX_CPUS 32u
#define TORO_MAX_MEMORY_REGIONS 16u
#define TORO_MAX_DEVICES 16u
#define TORO_CMDLINE_MAX 1024u

#define TORO_BOOT_SELECTOR_CODE 0x08u
#define TORO_BOOT_SELECTOR_DATA 0x10u
#define TORO_BOOT_SELECTOR_TSS 0x18u
/* Native mode (above): DPL-3 data and 64-bit code descriptors, RPL 3. */
#define TORO_BOOT_SELECTOR_NATIVE_DATA 0x2Bu
#define TORO_BOOT_SELECTOR_NATIVE_CODE 0x33u

/* Guest-physical addresses at or above this are not RAM below 4 GiB. */
#define TORO_MMIO_HOLE_BASE 0xC0000000ULL

/*
 * I/O ports of the VMM's own paravirtual devices.
 *
 * Exit: `out` a 32-bit status to TORO_PORT_EXIT; the VM stops and toro-vmm
 * exits with that status (0-255; anything larger is reported as a bad status).
 *
 * Console: `out` to TORO_PORT_CONSOLE a 32-bit guest-physical address of a
 * struct toro_console_write. The VMM validates the descriptor and the buffer it
 * names and copies the bytes to its standard output: one VM exit per write,
 * instead of one per byte through COM1. The descriptor must lie below 4 GiB.
 */
#define TORO_PORT_EXIT 0x0501u
#define TORO_PORT_CONSOLE 0x0502u
#define TORO_PORT_COM1 0x03F8u
#define TORO_CONSOLE_WRITE_MAX 65536u

struct toro_console_write {
    uint64_t address; /* guest-physical address of the bytes */
    uint32_t length;  /* at most TORO_CONSOLE_WRITE_MAX */
    uint32_t reserved;
};

/* Types of struct toro_memory_region. */
#define TORO_MEMORY_USABLE 1u   /* free RAM */
#define TORO_MEMORY_BOOT 2u     /* the VMM's page tables, GDT, boot info and boot stacks */
#define TORO_MEMORY_KERNEL 3u   /* loaded from the kernel image */

struct toro_memory_region {
    uint64_t base;
    uint64_t length;
    uint32_t type;
    uint32_t reserved;
};

struct toro_cpu_info {
    uint32_t apic_id;
    uint32_t reserved;
    uint64_t stack_base; /* lowest usable byte of the boot stack */
    uint64_t stack_size;
};

/* Types of struct toro_device: toro-vmm lists a virtio-mmio device here for --net. */
#define TORO_DEVICE_NONE 0u
#define TORO_DEVICE_VIRTIO_MMIO 1u

/* Bits of toro_device.flags. */
/* The device pulses its line once per event (an edge, through an irqfd or
 * KVM_IRQ_LINE up then down): the next event interrupts whether or not the
 * driver acknowledged the last one. A virtio-mmio driver then need not read
 * InterruptStatus nor write InterruptACK in its handler, two VM exits it
 * would otherwise pay per interrupt; both registers still work. */
#define TORO_DEVICE_FLAG_PULSED_INTERRUPT 0x1u

struct toro_device {
    uint32_t type;
    uint32_t irq;  /* GSI on the IOAPIC */
    uint64_t base; /* guest-physical MMIO base */
    uint64_t size;
    uint32_t flags;
    uint32_t reserved;
};

/* Bits of toro_boot_info.flags. */
#define TORO_BOOT_FLAG_CONSOLE_PORT 0x1u /* TORO_PORT_CONSOLE is available */

struct toro_boot_info {
    uint64_t magic;   /* TORO_BOOT_MAGIC */
    uint32_t version; /* TORO_BOOT_VERSION */
    uint32_t size;    /* sizeof(struct toro_boot_info) */
    uint32_t flags;
    uint32_t cpu_count;
    uint64_t memory_size; /* bytes of guest RAM */
    uint64_t tsc_khz;     /* from KVM_GET_TSC_KHZ; 0 if unknown */
    uint16_t exit_port;
    uint16_t console_port;
    uint16_t serial_port;
    uint16_t reserved0;
    uint32_t memory_region_count;
    uint32_t device_count;
    uint32_t cmdline_length; /* bytes, without the terminating NUL */
    uint32_t reserved1;
    struct toro_memory_region memory[TORO_MAX_MEMORY_REGIONS];
    struct toro_cpu_info cpus[TORO_MAX_CPUS];
    struct toro_device devices[TORO_MAX_DEVICES];
    char cmdline[TORO_CMDLINE_MAX]; /* NUL-terminated */
};

_Static_assert(sizeof(struct toro_console_write) == 16, "toro_console_write layout");
_Static_assert(sizeof(struct toro_memory_region) == 24, "toro_memory_region layout");
_Static_assert(sizeof(struct toro_cpu_info) == 24, "toro_cpu_info layout");
_Static_assert(sizeof(struct toro_device) == 32, "toro_device layout");
_Static_assert(sizeof(struct toro_boot_info) ==
                   64 + 24 * TORO_MAX_MEMORY_REGIONS + 24 * TORO_MAX_CPUS + 32 * TORO_MAX_DEVICES + TORO_CMDLINE_MAX,
               "toro_boot_info layout");
_Static_assert(sizeof(struct toro_boot_info) <= 8192, "toro_boot_info must fit its two pages");

#endif
