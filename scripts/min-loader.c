/*
 * min-loader.c: the smallest VMM that boots a Toro image on 1 vCPU.
 *
 * A BENCHMARK FLOOR, NOT A PRODUCT. scripts/bench-boot.py times it next to
 * toro-vmm in the same run, to show what booting costs with nothing but the
 * KVM ioctls the boot contract needs. It has no statistics, no threads, no
 * devices beyond the console and the exit port, and one-line errors; use
 * toro-vmm for anything else.
 *
 * It follows the boot contract of boot/toro_boot.h with toro-vmm's layout
 * (Sources/ToroVMM/Arch/BootLayout.swift): VM with an in-kernel irqchip,
 * 128 MiB of guest RAM, the image's PT_LOAD segments, an identity map of RAM
 * and of the 32-bit MMIO hole, the boot GDT and TSS, struct toro_boot_info,
 * CPUID with the APIC ID fields set, long-mode registers, and on a kvm_pvm
 * host with -n the native opt-in (MSR 0x4b564d10 = 1 after the memory slot,
 * before the first KVM_RUN; the PML4 lies in an odd 4 KiB frame and every
 * page-table entry has U = 1). Then KVM_RUN until the guest writes its exit
 * status, copying COM1 and console-port writes to standard output.
 *
 * Usage: min-loader [-n] IMAGE.elf
 *   -n  kvm_pvm's native execution (an error on any other KVM); without it,
 *       whatever this KVM does by default (emulated on kvm_pvm, hardware VMX/SVM
 *       elsewhere). Exits with the guest's status.
 * Build: cc -O2 -I boot -o .build/min-loader scripts/min-loader.c
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "toro_boot.h"

#define MEMORY (128ull << 20)
/* toro-vmm's boot layout (BootLayout.swift). */
#define GDT 0x1000ull
#define TSS 0x1800ull
#define BOOT_INFO 0x2000ull
#define PDPT 0x8000ull
#define PML4 0x9000ull /* odd 4 KiB frame: kvm_pvm runs natively only then */
#define LOW_TABLE 0xA000ull
#define DIRECTORIES 0x10000ull
#define STACK_GUARD 0x100000ull
#define STACK_BASE 0x101000ull
#define STACK_SIZE 0x7000ull
#define KERNEL_BASE 0x200000ull
#define TSS_LIMIT 0x67

#define PTE_P 0x1ull
#define PTE_W 0x2ull
#define PTE_U 0x4ull
#define PTE_PWT 0x8ull
#define PTE_PCD 0x10ull
#define PTE_PS 0x80ull
#define PTE_NX (1ull << 63)

#define PVM_CONTROL_MSR 0x4b564d10u
#define PVM_SIGNATURE_MSR 0x4b564d11u
#define PVM_SIGNATURE 0x4d5650ull

static uint8_t *ram;

static _Noreturn void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("min-loader: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(70);
}

static int ioctl_or_die(int fd, unsigned long request, void *arg, const char *name) {
    int result = ioctl(fd, request, arg);
    if (result < 0) die("%s: %s", name, strerror(errno));
    return result;
}

static void msr(int vcpu, unsigned long request, uint32_t index, uint64_t *value) {
    struct {
        struct kvm_msrs header;
        struct kvm_msr_entry entry;
    } msrs = {.header = {.nmsrs = 1}, .entry = {.index = index, .data = *value}};
    int done = ioctl(vcpu, request, &msrs);
    *value = done == 1 ? msrs.entry.data : ~0ull;
    if (done != 1 && request == KVM_SET_MSRS) die("KVM_SET_MSRS 0x%x refused", index);
}

/* Copies the PT_LOAD segments to their physical addresses; returns the entry point. */
static uint64_t load_elf(const char *path, struct toro_boot_info *info) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) die("%s: %s", path, strerror(errno));
    const uint8_t *file = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (file == MAP_FAILED) die("%s: %s", path, strerror(errno));
    close(fd);
    const Elf64_Ehdr *header = (const void *)file;
    if (st.st_size < (off_t)sizeof *header || memcmp(header->e_ident, ELFMAG, SELFMAG) != 0 ||
        header->e_ident[EI_CLASS] != ELFCLASS64 || header->e_machine != EM_X86_64)
        die("%s: not an x86-64 ELF image", path);
    /* The memory map: the boot region, then kernel pages and free RAM in address order. */
    info->memory[0] = (struct toro_memory_region){.base = 0, .length = KERNEL_BASE, .type = TORO_MEMORY_BOOT};
    uint32_t regions = 1;
    uint64_t cursor = KERNEL_BASE;
    for (int i = 0; i < header->e_phnum; i++) {
        const Elf64_Phdr *segment = (const void *)(file + header->e_phoff + (uint64_t)i * header->e_phentsize);
        if (segment->p_type != PT_LOAD || segment->p_memsz == 0) continue;
        uint64_t start = segment->p_paddr, end = start + segment->p_memsz;
        if (start < cursor || end > MEMORY || segment->p_filesz > segment->p_memsz ||
            segment->p_offset + segment->p_filesz > (uint64_t)st.st_size)
            die("%s: segment %d does not fit (segments must be in address order above 2 MiB)", path, i);
        /* Guest RAM is fresh anonymous memory, already zero past p_filesz. */
        memcpy(ram + start, file + segment->p_offset, segment->p_filesz);
        uint64_t page_start = start & ~0xFFFull, page_end = (end + 0xFFF) & ~0xFFFull;
        struct toro_memory_region *last = &info->memory[regions - 1];
        if (page_start > cursor)
            info->memory[regions++] = (struct toro_memory_region){.base = cursor, .length = page_start - cursor, .type = TORO_MEMORY_USABLE};
        last = &info->memory[regions - 1];
        if (last->type == TORO_MEMORY_KERNEL && last->base + last->length >= page_start)
            last->length = page_end - last->base;
        else
            info->memory[regions++] = (struct toro_memory_region){.base = page_start, .length = page_end - page_start, .type = TORO_MEMORY_KERNEL};
        cursor = page_end;
        if (regions >= TORO_MAX_MEMORY_REGIONS) die("%s: too many segments", path);
    }
    if (cursor < MEMORY)
        info->memory[regions++] = (struct toro_memory_region){.base = cursor, .length = MEMORY - cursor, .type = TORO_MEMORY_USABLE};
    info->memory_region_count = regions;
    return header->e_entry;
}

/* RAM and [3 GiB, 4 GiB) identity mapped with 2 MiB pages; the first 2 MiB in
 * 4 KiB pages without page 0 and the boot stack's guard page. */
static void write_page_tables(uint64_t user) {
    uint64_t table = PTE_P | PTE_W | user;
    uint64_t *pml4 = (void *)(ram + PML4), *pdpt = (void *)(ram + PDPT), *low = (void *)(ram + LOW_TABLE);
    pml4[0] = PDPT | table;
    for (uint64_t gib = 0; gib < 4; gib++) {
        uint64_t *directory = (void *)(ram + DIRECTORIES + gib * 4096);
        pdpt[gib] = (DIRECTORIES + gib * 4096) | table;
        for (uint64_t slot = 0; slot < 512; slot++) {
            uint64_t address = (gib << 30) + (slot << 21);
            if (address == 0)
                directory[slot] = LOW_TABLE | table;
            else if (address + (2ull << 20) <= MEMORY)
                directory[slot] = address | table | PTE_PS;
            else if (address >= TORO_MMIO_HOLE_BASE)
                directory[slot] = address | table | PTE_PS | PTE_PCD | PTE_PWT | PTE_NX;
        }
    }
    for (uint64_t page = 1; page < 512; page++)
        if (page * 4096 != STACK_GUARD) low[page] = (page * 4096) | table;
}

static void write_gdt_and_tss(void) {
    uint64_t *gdt = (void *)(ram + GDT);
    gdt[0] = 0;
    gdt[1] = 0x00AF9A000000FFFFull; /* TORO_BOOT_SELECTOR_CODE: 64-bit code, DPL 0 */
    gdt[2] = 0x00CF92000000FFFFull; /* TORO_BOOT_SELECTOR_DATA */
    gdt[3] = TSS_LIMIT | ((TSS & 0xFFFFFF) << 16) | (0x89ull << 40) | (((TSS >> 24) & 0xFF) << 56);
    gdt[4] = TSS >> 32;
    gdt[5] = 0x00CFF2000000FFFFull; /* TORO_BOOT_SELECTOR_NATIVE_DATA: DPL 3 */
    gdt[6] = 0x00AFFA000000FFFFull; /* TORO_BOOT_SELECTOR_NATIVE_CODE: DPL 3 */
    *(uint16_t *)(ram + TSS + 0x66) = TSS_LIMIT + 1; /* no I/O permission bitmap */
}

static struct kvm_segment segment(uint16_t selector, uint8_t type, int code) {
    return (struct kvm_segment){.base = 0, .limit = 0xFFFFFFFF, .selector = selector, .type = type, .present = 1,
                                .dpl = 0, .db = !code, .s = 1, .l = code, .g = 1};
}

static void set_long_mode(int vcpu, uint64_t entry) {
    struct kvm_sregs sregs;
    ioctl_or_die(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
    sregs.cs = segment(TORO_BOOT_SELECTOR_CODE, 0xB, 1);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(TORO_BOOT_SELECTOR_DATA, 0x3, 0);
    sregs.tr = (struct kvm_segment){.base = TSS, .limit = TSS_LIMIT, .selector = TORO_BOOT_SELECTOR_TSS, .type = 0xB, .present = 1};
    sregs.ldt = (struct kvm_segment){.unusable = 1};
    sregs.gdt.base = GDT;
    sregs.gdt.limit = 7 * 8 - 1;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cr0 = 0x80050033;              /* PE MP ET NE WP AM PG */
    sregs.cr3 = PML4;
    sregs.cr4 = 0x6A0;                   /* PAE PGE OSFXSR OSXMMEXCPT */
    sregs.efer = 0xD01;                  /* SCE LME LMA NXE */
    ioctl_or_die(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = entry, .rsp = STACK_BASE + STACK_SIZE, .rdi = BOOT_INFO, .rsi = 0, .rflags = 0x2};
    ioctl_or_die(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
    struct kvm_fpu fpu = {.fcw = 0x37F, .mxcsr = 0x1F80};
    ioctl_or_die(vcpu, KVM_SET_FPU, &fpu, "KVM_SET_FPU");
}

/* KVM's supported CPUID with vCPU 0's APIC ID fields, as toro-vmm sets them (CPUID.swift). */
static void set_cpuid(int kvm, int vcpu) {
    for (uint32_t capacity = 128;; capacity *= 2) {
        struct kvm_cpuid2 *cpuid = calloc(1, sizeof *cpuid + capacity * sizeof(struct kvm_cpuid_entry2));
        cpuid->nent = capacity;
        if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) {
            if (errno == E2BIG && capacity < 4096) {
                free(cpuid);
                continue;
            }
            die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
        }
        for (uint32_t i = 0; i < cpuid->nent; i++) {
            struct kvm_cpuid_entry2 *entry = &cpuid->entries[i];
            if (entry->function == 1) {
                entry->ebx = (entry->ebx & 0xFFFF) | (0u << 24) | (1u << 16); /* APIC ID 0, 1 logical CPU */
                entry->ecx |= 1u << 31;                                     /* hypervisor */
            } else if (entry->function == 0xB || entry->function == 0x1F) {
                entry->edx = 0; /* x2APIC ID */
            }
        }
        ioctl_or_die(vcpu, KVM_SET_CPUID2, cpuid, "KVM_SET_CPUID2");
        free(cpuid);
        return;
    }
}

static void console_write(uint32_t descriptor) {
    if (descriptor > MEMORY - sizeof(struct toro_console_write)) return;
    const struct toro_console_write *request = (const void *)(ram + descriptor);
    if (request->length > TORO_CONSOLE_WRITE_MAX || request->address > MEMORY || request->length > MEMORY - request->address) return;
    for (uint32_t done = 0; done < request->length;) {
        ssize_t written = write(STDOUT_FILENO, ram + request->address + done, request->length - done);
        if (written <= 0) return;
        done += written;
    }
}

int main(int argc, char **argv) {
    int native = argc == 3 && strcmp(argv[1], "-n") == 0;
    if (argc != 2 + native) {
        fputs("usage: min-loader [-n] IMAGE.elf\n", stderr);
        return 64;
    }
    const char *image = argv[1 + native];

    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) die("/dev/kvm: %s", strerror(errno));
    int vm = ioctl_or_die(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
    /* As toro-vmm does (VirtualMachine.createInterruptController). */
    uint64_t identity_map = 0xFFFBC000;
    ioctl_or_die(vm, KVM_SET_IDENTITY_MAP_ADDR, &identity_map, "KVM_SET_IDENTITY_MAP_ADDR");
    if (ioctl(vm, KVM_SET_TSS_ADDR, 0xFFFBD000ul) < 0) die("KVM_SET_TSS_ADDR: %s", strerror(errno));
    ioctl_or_die(vm, KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP");

    ram = mmap(NULL, MEMORY, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) die("mmap of guest RAM: %s", strerror(errno));
    struct kvm_userspace_memory_region slot = {.slot = 0, .guest_phys_addr = 0, .memory_size = MEMORY, .userspace_addr = (uint64_t)ram};
    ioctl_or_die(vm, KVM_SET_USER_MEMORY_REGION, &slot, "KVM_SET_USER_MEMORY_REGION");

    struct toro_boot_info *info = (void *)(ram + BOOT_INFO);
    uint64_t entry = load_elf(image, info);
    int vcpu = ioctl_or_die(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
    int run_size = ioctl_or_die(kvm, KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
    struct kvm_run *run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) die("mmap of kvm_run: %s", strerror(errno));

    uint64_t signature = 0;
    msr(vcpu, KVM_GET_MSRS, PVM_SIGNATURE_MSR, &signature);
    if (native && signature != PVM_SIGNATURE) die("-n: this KVM is not the kvm_pvm back end");

    write_page_tables(native ? PTE_U : 0);
    write_gdt_and_tss();
    int tsc_khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
    info->magic = TORO_BOOT_MAGIC;
    info->version = TORO_BOOT_VERSION;
    info->size = sizeof *info;
    info->flags = TORO_BOOT_FLAG_CONSOLE_PORT;
    info->cpu_count = 1;
    info->memory_size = MEMORY;
    info->tsc_khz = tsc_khz > 0 ? (uint64_t)tsc_khz : 0;
    info->exit_port = TORO_PORT_EXIT;
    info->console_port = TORO_PORT_CONSOLE;
    info->serial_port = TORO_PORT_COM1;
    info->cpus[0] = (struct toro_cpu_info){.apic_id = 0, .stack_base = STACK_BASE, .stack_size = STACK_SIZE};
    /* device_count, cmdline_length and cmdline stay 0: no devices, empty command line. */

    set_cpuid(kvm, vcpu);
    set_long_mode(vcpu, entry);
    if (native) {
        uint64_t on = 1;
        msr(vcpu, KVM_SET_MSRS, PVM_CONTROL_MSR, &on);
    }

    for (;;) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            die("KVM_RUN: %s", strerror(errno));
        }
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            uint8_t *data = (uint8_t *)run + run->io.data_offset;
            if (run->io.direction == KVM_EXIT_IO_IN) {
                /* COM1's line status says "ready to send"; other ports read as nothing there. */
                uint8_t value = run->io.port == TORO_PORT_COM1 + 5 ? 0x60 : run->io.port > TORO_PORT_COM1 && run->io.port < TORO_PORT_COM1 + 8 ? 0 : 0xFF;
                memset(data, value, (size_t)run->io.size * run->io.count);
                break;
            }
            uint32_t value = 0;
            memcpy(&value, data, run->io.size < 4 ? run->io.size : 4);
            if (run->io.port == TORO_PORT_EXIT) {
                if (value > 255) die("guest wrote exit status %u, outside 0-255", value);
                return (int)value;
            } else if (run->io.port == TORO_PORT_CONSOLE && run->io.size == 4) {
                console_write(value);
            } else if (run->io.port == TORO_PORT_COM1) {
                if (write(STDOUT_FILENO, data, (size_t)run->io.size * run->io.count) < 0) { /* stdout gone: keep going */ }
            }
            break;
        }
        case KVM_EXIT_MMIO:
            if (!run->mmio.is_write) memset(run->mmio.data, 0xFF, sizeof run->mmio.data);
            break;
        case KVM_EXIT_HLT:
        case KVM_EXIT_INTR:
            break;
        case KVM_EXIT_SHUTDOWN:
            die("guest triple-faulted (KVM_EXIT_SHUTDOWN)");
        default:
            die("unexpected KVM exit reason %u", run->exit_reason);
        }
    }
}
