#define _GNU_SOURCE
#include "CKVM.h"

#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>

const unsigned long CKVM_GET_API_VERSION = KVM_GET_API_VERSION;
const unsigned long CKVM_CREATE_VM = KVM_CREATE_VM;
const unsigned long CKVM_CHECK_EXTENSION = KVM_CHECK_EXTENSION;
const unsigned long CKVM_GET_VCPU_MMAP_SIZE = KVM_GET_VCPU_MMAP_SIZE;
const unsigned long CKVM_GET_SUPPORTED_CPUID = KVM_GET_SUPPORTED_CPUID;

const unsigned long CKVM_CREATE_VCPU = KVM_CREATE_VCPU;
const unsigned long CKVM_SET_USER_MEMORY_REGION = KVM_SET_USER_MEMORY_REGION;
const unsigned long CKVM_CREATE_IRQCHIP = KVM_CREATE_IRQCHIP;
const unsigned long CKVM_SET_TSS_ADDR = KVM_SET_TSS_ADDR;
const unsigned long CKVM_SET_IDENTITY_MAP_ADDR = KVM_SET_IDENTITY_MAP_ADDR;
const unsigned long CKVM_ENABLE_CAP = KVM_ENABLE_CAP;
const unsigned long CKVM_IRQ_LINE = KVM_IRQ_LINE;

int ckvm_irq_line(int vm_fd, uint32_t gsi, uint32_t level) {
    struct kvm_irq_level request;
    memset(&request, 0, sizeof request);
    request.irq = gsi;
    request.level = level;
    return ioctl(vm_fd, KVM_IRQ_LINE, &request);
}

const unsigned long CKVM_IOEVENTFD = KVM_IOEVENTFD;
const uint32_t CKVM_IOEVENTFD_FLAG_DATAMATCH = KVM_IOEVENTFD_FLAG_DATAMATCH;
const uint32_t CKVM_IOEVENTFD_FLAG_DEASSIGN = KVM_IOEVENTFD_FLAG_DEASSIGN;
const unsigned long CKVM_IRQFD = KVM_IRQFD;
const uint32_t CKVM_IRQFD_FLAG_DEASSIGN = KVM_IRQFD_FLAG_DEASSIGN;

const unsigned long CKVM_RUN = KVM_RUN;
const unsigned long CKVM_GET_REGS = KVM_GET_REGS;
const unsigned long CKVM_SET_REGS = KVM_SET_REGS;
const unsigned long CKVM_GET_SREGS = KVM_GET_SREGS;
const unsigned long CKVM_SET_SREGS = KVM_SET_SREGS;
const unsigned long CKVM_SET_FPU = KVM_SET_FPU;
const unsigned long CKVM_SET_CPUID2 = KVM_SET_CPUID2;
const unsigned long CKVM_SET_MP_STATE = KVM_SET_MP_STATE;
const unsigned long CKVM_GET_MP_STATE = KVM_GET_MP_STATE;
const unsigned long CKVM_GET_TSC_KHZ = KVM_GET_TSC_KHZ;
const unsigned long CKVM_GET_STATS_FD = KVM_GET_STATS_FD;
const unsigned long CKVM_GET_MSRS = KVM_GET_MSRS;
const unsigned long CKVM_SET_MSRS = KVM_SET_MSRS;

struct ckvm_one_msr {
    struct kvm_msrs header;
    struct kvm_msr_entry entry;
};

int ckvm_get_msr(int vcpu_fd, uint32_t index, uint64_t *value) {
    struct ckvm_one_msr request;
    memset(&request, 0, sizeof request);
    request.header.nmsrs = 1;
    request.entry.index = index;
    int result = ioctl(vcpu_fd, KVM_GET_MSRS, &request);
    if (result == 1) *value = request.entry.data;
    return result;
}

int ckvm_set_msr(int vcpu_fd, uint32_t index, uint64_t value) {
    struct ckvm_one_msr request;
    memset(&request, 0, sizeof request);
    request.header.nmsrs = 1;
    request.entry.index = index;
    request.entry.data = value;
    return ioctl(vcpu_fd, KVM_SET_MSRS, &request);
}

_Static_assert(sizeof(struct kvm_regs) == 144, "kvm_regs layout");
_Static_assert(sizeof(struct kvm_stats_header) == 24, "kvm_stats_header layout");
_Static_assert(sizeof(struct kvm_stats_desc) == 16, "kvm_stats_desc layout (without name)");
_Static_assert(sizeof(struct kvm_ioeventfd) == 64, "kvm_ioeventfd layout");
_Static_assert(sizeof(struct kvm_irqfd) == 32, "kvm_irqfd layout");

int ckvm_ioctl(int fd, unsigned long request) { return ioctl(fd, request, 0); }
int ckvm_ioctl_arg(int fd, unsigned long request, unsigned long argument) { return ioctl(fd, request, argument); }
int ckvm_ioctl_ptr(int fd, unsigned long request, void *argument) { return ioctl(fd, request, argument); }

struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t capacity) {
    struct kvm_cpuid2 *cpuid = calloc(1, sizeof(struct kvm_cpuid2) + capacity * sizeof(struct kvm_cpuid_entry2));
    if (cpuid) cpuid->nent = capacity;
    return cpuid;
}

static void ckvm_kick(int signal_number) { (void)signal_number; }

int ckvm_install_kick_handler(int signal_number) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ckvm_kick;
    sigemptyset(&action.sa_mask);
    return sigaction(signal_number, &action, NULL);
}

int ckvm_set_thread_name(pthread_t thread, const char *name) { return pthread_setname_np(thread, name); }

const unsigned long CKVM_TUNSETIFF = TUNSETIFF;
const int CKVM_IFF_TAP = IFF_TAP;
const int CKVM_IFF_NO_PI = IFF_NO_PI;
const int CKVM_IFNAMSIZ = IFNAMSIZ;

int ckvm_tun_set_iff(int fd, const char *name, int flags, char *actual) {
    struct ifreq request;
    memset(&request, 0, sizeof request);
    strncpy(request.ifr_name, name, IFNAMSIZ - 1);
    request.ifr_flags = (short)flags;
    int result = ioctl(fd, TUNSETIFF, &request);
    if (result >= 0 && actual) memcpy(actual, request.ifr_name, IFNAMSIZ);
    return result;
}
