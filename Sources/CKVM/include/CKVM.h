/*
 * CKVM: the C shim under toro-vmm.
 *
 * It only exposes what Swift cannot import by itself: the KVM ioctl request
 * numbers (built by the _IO*() macros), non-variadic wrappers for ioctl(2),
 * and accessors for the unions inside struct kvm_run. No policy lives here.
 * It also brings in <sys/epoll.h> and <sys/eventfd.h>, which Swift's Glibc
 * module leaves out.
 */
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/types.h>

/* The boot contract shared with the kernel: one definition, two users. */
#include "../../../boot/toro_boot.h"

/* MARK: - ioctl request numbers */

/* /dev/kvm */
extern const unsigned long CKVM_GET_API_VERSION;
extern const unsigned long CKVM_CREATE_VM;
extern const unsigned long CKVM_CHECK_EXTENSION;
extern const unsigned long CKVM_GET_VCPU_MMAP_SIZE;
extern const unsigned long CKVM_GET_SUPPORTED_CPUID;

/* VM */
extern const unsigned long CKVM_CREATE_VCPU;
extern const unsigned long CKVM_SET_USER_MEMORY_REGION;
extern const unsigned long CKVM_CREATE_IRQCHIP;
extern const unsigned long CKVM_SET_TSS_ADDR;
extern const unsigned long CKVM_SET_IDENTITY_MAP_ADDR;
extern const unsigned long CKVM_ENABLE_CAP;
extern const unsigned long CKVM_IRQ_LINE;

/* KVM_IRQ_LINE: drives input `gsi` of the in-kernel interrupt controllers to `level`
 * (0 or 1). struct kvm_irq_level's anonymous union stays on the C side.
 * Returns ioctl's result; errno is left as ioctl set it. */
int ckvm_irq_line(int vm_fd, uint32_t gsi, uint32_t level);

/* KVM_IOEVENTFD: a guest write to an address signals an eventfd inside the host
 * kernel instead of exiting to userspace. struct kvm_ioeventfd is imported as is;
 * its flags are built from an enum in <linux/kvm.h>, which Swift cannot import. */
extern const unsigned long CKVM_IOEVENTFD;
extern const uint32_t CKVM_IOEVENTFD_FLAG_DATAMATCH;
extern const uint32_t CKVM_IOEVENTFD_FLAG_DEASSIGN;

/* KVM_IRQFD: a write to an eventfd injects interrupt `gsi` (struct kvm_irqfd). */
extern const unsigned long CKVM_IRQFD;
extern const uint32_t CKVM_IRQFD_FLAG_DEASSIGN;

/* vCPU */
extern const unsigned long CKVM_RUN;
extern const unsigned long CKVM_GET_REGS;
extern const unsigned long CKVM_SET_REGS;
extern const unsigned long CKVM_GET_SREGS;
extern const unsigned long CKVM_SET_SREGS;
extern const unsigned long CKVM_SET_FPU;
extern const unsigned long CKVM_SET_CPUID2;
extern const unsigned long CKVM_SET_MP_STATE;
extern const unsigned long CKVM_GET_MP_STATE;
extern const unsigned long CKVM_GET_TSC_KHZ;
extern const unsigned long CKVM_GET_STATS_FD;
extern const unsigned long CKVM_GET_MSRS;
extern const unsigned long CKVM_SET_MSRS;

/* KVM_GET_MSRS / KVM_SET_MSRS for one MSR: struct kvm_msrs ends in a flexible
 * array, which Swift cannot build. Return ioctl's result (the number of MSRs
 * read or written, so 1 on success); errno is left as ioctl set it. */
int ckvm_get_msr(int vcpu_fd, uint32_t index, uint64_t *value);
int ckvm_set_msr(int vcpu_fd, uint32_t index, uint64_t value);

/* MARK: - ioctl(2) without varargs */

/* Swift cannot call a variadic C function; these forward to ioctl(2). */
int ckvm_ioctl(int fd, unsigned long request);
int ckvm_ioctl_arg(int fd, unsigned long request, unsigned long argument);
int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument);

/* MARK: - struct kvm_run accessors */

/* kvm_run's exit payload is an anonymous union; these name its members. */
static inline struct kvm_run_io_view {
    uint8_t direction;
    uint8_t size;
    uint16_t port;
    uint32_t count;
    uint64_t data_offset;
} ckvm_run_io(const struct kvm_run *run) {
    struct kvm_run_io_view view = {run->io.direction, run->io.size, run->io.port, run->io.count, run->io.data_offset};
    return view;
}

static inline struct kvm_run_mmio_view {
    uint64_t phys_addr;
    uint32_t len;
    uint8_t is_write;
} ckvm_run_mmio(const struct kvm_run *run) {
    struct kvm_run_mmio_view view = {run->mmio.phys_addr, run->mmio.len, run->mmio.is_write};
    return view;
}

static inline uint8_t *ckvm_run_mmio_data(struct kvm_run *run) { return run->mmio.data; }
static inline uint64_t ckvm_run_fail_entry_reason(const struct kvm_run *run) {
    return run->fail_entry.hardware_entry_failure_reason;
}
static inline uint32_t ckvm_run_internal_suberror(const struct kvm_run *run) { return run->internal.suberror; }
static inline uint32_t ckvm_run_system_event_type(const struct kvm_run *run) { return run->system_event.type; }

/* A kvm_cpuid2 with room for `capacity` entries, allocated with calloc; free() it. */
struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t capacity);
static inline struct kvm_cpuid_entry2 *ckvm_cpuid2_entries(struct kvm_cpuid2 *cpuid) { return cpuid->entries; }

/* MARK: - Signals */

/* A handler that does nothing: it exists so that a signal interrupts KVM_RUN. */
int ckvm_install_kick_handler(int signal_number);

/* pthread_setname_np needs _GNU_SOURCE, which Swift's Glibc module does not set. */
int ckvm_set_thread_name(pthread_t thread, const char *name);

/* MARK: - TAP devices */

/* TUNSETIFF and the flags it takes, from <linux/if_tun.h>. The kernel's networking
 * headers stay in CKVM.c, out of what Swift imports next to Glibc's <net/if.h>. */
extern const unsigned long CKVM_TUNSETIFF;
extern const int CKVM_IFF_TAP;
extern const int CKVM_IFF_NO_PI;
extern const int CKVM_IFNAMSIZ;

/* TUNSETIFF on `fd` with interface `name` (may be "" for a kernel-chosen name) and
 * `flags`; the name the kernel used is copied to `actual` (CKVM_IFNAMSIZ bytes).
 * Returns ioctl's result; errno is left as ioctl set it. */
int ckvm_tun_set_iff(int fd, const char *name, int flags, char *actual);

#endif
