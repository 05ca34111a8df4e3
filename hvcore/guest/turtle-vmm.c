/*
 * turtle-vmm: a minimal VMM on the KVM API that runs tiny 16-bit real-mode
 * payloads and counts their exits.  Inside the reference L1 image it is the
 * L1 hypervisor running an L2; on a host it measures the same exits one
 * level down, so the two figures can be compared.
 *
 * It is a static, libc-only program on purpose: it runs inside a busybox
 * initrd that has nothing else.
 *
 * Device mode (--device) hands a PCI function on to the L2 through VFIO and
 * runs an L2 that drives it (edu-payload.S), once with BAR0 mapped into the
 * L2 and once with every BAR access trapped, to show what device assignment
 * saves at this level.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/kvm.h>

#include "edu-payload.h"
#include "vfio-dev.h"

#define KVM_DEVICE "/dev/kvm"

/* Guest physical layout: one 64 KiB slot at 0; everything above is unmapped. */
#define GUEST_MEM_SIZE 0x10000u
#define CODE_ADDR      0x1000u
#define BATCH_ADDR     0x0500u  /* u16 read by the cpuid payload before each batch */
#define MMIO_ADDR      0x10000u /* first byte past the slot: writes become KVM_EXIT_MMIO */
#define TSS_ADDR       0xfffbd000u

#define PORT_PIO       0x10 /* one write = one pio exit */
#define PORT_CPUID_END 0x11 /* written after each batch of cpuid instructions */

/*
 * CPUID exits are handled inside the kernel and never reach us, so the
 * payload runs them in batches whose size we write into guest memory and
 * reports each finished batch on a port.  Large enough to keep the marker
 * exits negligible, small enough to keep a batch short even at L2 speed.
 */
#define CPUID_BATCH_MAX 1000u

#define NS_PER_SEC 1000000000ull

enum kind { KIND_PIO, KIND_CPUID, KIND_HLT, KIND_MMIO, KIND_COUNT };

static const char *const kind_names[KIND_COUNT] = {"pio", "cpuid", "hlt", "mmio"};

/* What one KVM_RUN came back with, after decoding. */
enum event { EV_PIO, EV_CPUID_END, EV_HLT, EV_MMIO, EV_INTR };

struct payload {
    const char *name;
    const uint8_t *code;
    size_t len;
};

/* All payloads start at CS:IP = 0000:1000 with DS = ES = SS = 0. */

static const uint8_t code_pio[] = {
    0xba, 0x10, 0x00, /* 1000: mov dx, 0x10   */
    0xb0, 0x00,       /* 1003: mov al, 0      */
    0xee,             /* 1005: out dx, al     */
    0xfe, 0xc0,       /* 1006: inc al         */
    0xeb, 0xfb,       /* 1008: jmp 0x1005     */
};

static const uint8_t code_cpuid[] = {
    0x8b, 0x36, 0x00, 0x05, /* 1000: mov si, [0x0500] */
    0x66, 0x31, 0xc0,       /* 1004: xor eax, eax     */
    0x0f, 0xa2,             /* 1007: cpuid            */
    0x4e,                   /* 1009: dec si           */
    0x75, 0xf8,             /* 100a: jnz 0x1004       */
    0xe6, 0x11,             /* 100c: out 0x11, al     */
    0xeb, 0xf0,             /* 100e: jmp 0x1000       */
};

static const uint8_t code_hlt[] = {
    0xf4,       /* 1000: hlt          */
    0xeb, 0xfd, /* 1001: jmp 0x1000   */
};

static const uint8_t code_mmio[] = {
    0xb8, 0x00, 0x10, /* 1000: mov ax, 0x1000  */
    0x8e, 0xd8,       /* 1003: mov ds, ax      */
    0x31, 0xdb,       /* 1005: xor bx, bx      */
    0x88, 0x07,       /* 1007: mov [bx], al    ; 1000:0000 = 0x10000 */
    0xfe, 0xc0,       /* 1009: inc al          */
    0xeb, 0xfa,       /* 100b: jmp 0x1007      */
};

/* The continuous mode's mix: one exit of each kind per iteration. */
static const uint8_t code_mix[] = {
    0xb8, 0x00, 0x10, /* 1000: mov ax, 0x1000     */
    0x8e, 0xc0,       /* 1003: mov es, ax         */
    0x31, 0xdb,       /* 1005: xor bx, bx         */
    0xe6, 0x10,       /* 1007: out 0x10, al       */
    0x66, 0x31, 0xc0, /* 1009: xor eax, eax       */
    0x0f, 0xa2,       /* 100c: cpuid              */
    0x26, 0x88, 0x07, /* 100e: mov es:[bx], al    ; 0x10000 */
    0xf4,             /* 1011: hlt                */
    0xeb, 0xf3,       /* 1012: jmp 0x1007         */
};

static const struct payload payloads[] = {
    {"pio", code_pio, sizeof(code_pio)}, {"cpuid", code_cpuid, sizeof(code_cpuid)},
    {"hlt", code_hlt, sizeof(code_hlt)}, {"mmio", code_mmio, sizeof(code_mmio)},
    {"mix", code_mix, sizeof(code_mix)},
};

struct vm {
    int kvm_fd;
    int vm_fd;
    int vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mem;
    const struct payload *payload;
    /* The kernel's own exit counter (binary stats), when it has one. */
    int stats_fd;
    off_t stats_exits_off;
};

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("turtle-vmm: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

static int kvm_open(void)
{
    int fd = open(KVM_DEVICE, O_RDWR | O_CLOEXEC);

    if (fd < 0)
        die("cannot open %s: %s", KVM_DEVICE, strerror(errno));
    int version = ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        die("%s speaks KVM API %d, expected %d", KVM_DEVICE, version, KVM_API_VERSION);
    return fd;
}

/* 0 means this level cannot save a nested guest's state (no nested virt). */
static int nested_state_size(int kvm_fd)
{
    int size = ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE);

    return size < 0 ? 0 : size;
}

static void stats_init(struct vm *vm)
{
    struct kvm_stats_header hdr;

    vm->stats_fd = -1;
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_BINARY_STATS_FD) <= 0)
        return;
    int fd = ioctl(vm->vcpu_fd, KVM_GET_STATS_FD, 0);
    if (fd < 0)
        return;
    if (pread(fd, &hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
        goto out;

    size_t desc_size = sizeof(struct kvm_stats_desc) + hdr.name_size;
    struct kvm_stats_desc *desc = malloc(desc_size);
    if (!desc)
        goto out;
    for (uint32_t i = 0; i < hdr.num_desc; i++) {
        off_t off = (off_t)hdr.desc_offset + (off_t)i * (off_t)desc_size;
        if (pread(fd, desc, desc_size, off) != (ssize_t)desc_size)
            break;
        desc->name[hdr.name_size - 1] = '\0';
        if (strcmp(desc->name, "exits") == 0 && desc->size == 1) {
            vm->stats_fd = fd;
            vm->stats_exits_off = (off_t)hdr.data_offset + desc->offset;
            free(desc);
            return;
        }
    }
    free(desc);
out:
    close(fd);
}

/* Returns false when the kernel does not expose the counter. */
static bool stats_exits(const struct vm *vm, uint64_t *value)
{
    if (vm->stats_fd < 0)
        return false;
    return pread(vm->stats_fd, value, sizeof(*value), vm->stats_exits_off) ==
           (ssize_t)sizeof(*value);
}

static void vm_create(struct vm *vm, const struct payload *payload)
{
    memset(vm, 0, sizeof(*vm));
    vm->payload = payload;
    vm->kvm_fd = kvm_open();

    vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
    if (vm->vm_fd < 0)
        die("KVM_CREATE_VM: %s", strerror(errno));

    /*
     * Real mode without unrestricted guest needs a TSS region on Intel; the
     * other backends do not, and a refusal there is harmless.
     */
    if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0)
        (void)ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)TSS_ADDR);

    vm->mem = mmap(NULL, GUEST_MEM_SIZE, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (vm->mem == MAP_FAILED)
        die("mmap guest memory: %s", strerror(errno));
    memcpy(vm->mem + CODE_ADDR, payload->code, payload->len);

    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = GUEST_MEM_SIZE,
        .userspace_addr = (uintptr_t)vm->mem,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

    vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
    if (vm->vcpu_fd < 0)
        die("KVM_CREATE_VCPU: %s", strerror(errno));

    int mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (mmap_size < (int)sizeof(struct kvm_run))
        die("KVM_GET_VCPU_MMAP_SIZE: %s", mmap_size < 0 ? strerror(errno) : "too small");
    vm->run_size = (size_t)mmap_size;
    vm->run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
    if (vm->run == MAP_FAILED)
        die("mmap kvm_run: %s", strerror(errno));

    struct kvm_sregs sregs;
    if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        die("KVM_GET_SREGS: %s", strerror(errno));
    struct kvm_segment *segs[] = {&sregs.cs, &sregs.ds, &sregs.es, &sregs.fs, &sregs.gs, &sregs.ss};
    for (size_t i = 0; i < sizeof(segs) / sizeof(segs[0]); i++) {
        segs[i]->base = 0;
        segs[i]->selector = 0;
    }
    if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        die("KVM_SET_SREGS: %s", strerror(errno));

    struct kvm_regs regs = {
        .rip = CODE_ADDR,
        .rsp = CODE_ADDR, /* the stack grows down below the code; unused */
        .rflags = 0x2,    /* bit 1 is reserved and must be set */
    };
    if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs) < 0)
        die("KVM_SET_REGS: %s", strerror(errno));

    stats_init(vm);
}

static void vm_destroy(struct vm *vm)
{
    if (vm->stats_fd >= 0)
        close(vm->stats_fd);
    munmap(vm->run, vm->run_size);
    munmap(vm->mem, GUEST_MEM_SIZE);
    close(vm->vcpu_fd);
    close(vm->vm_fd);
    close(vm->kvm_fd);
}

static void set_cpuid_batch(struct vm *vm, uint16_t batch)
{
    /* Guest memory is ours too; the payload reads this before each batch. */
    memcpy(vm->mem + BATCH_ADDR, &batch, sizeof(batch));
}

static const char *exit_reason_name(uint32_t reason)
{
    switch (reason) {
    case KVM_EXIT_UNKNOWN:
        return "unknown";
    case KVM_EXIT_EXCEPTION:
        return "exception";
    case KVM_EXIT_SHUTDOWN:
        return "shutdown (triple fault)";
    case KVM_EXIT_FAIL_ENTRY:
        return "entry failed";
    case KVM_EXIT_INTERNAL_ERROR:
        return "internal error";
    default:
        return "unexpected";
    }
}

/* One KVM_RUN; anything the payload cannot produce is fatal. */
static enum event vm_run_once(struct vm *vm)
{
    struct kvm_run *run = vm->run;

    if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN)
            return EV_INTR;
        die("KVM_RUN failed: %s", strerror(errno));
    }

    switch (run->exit_reason) {
    case KVM_EXIT_IO:
        if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == PORT_PIO)
            return EV_PIO;
        if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == PORT_CPUID_END)
            return EV_CPUID_END;
        die("unexpected port I/O: %s port 0x%x size %u",
            run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.port, run->io.size);
    case KVM_EXIT_MMIO:
        if (run->mmio.is_write && run->mmio.phys_addr == MMIO_ADDR)
            return EV_MMIO;
        die("unexpected MMIO: %s 0x%" PRIx64, run->mmio.is_write ? "write" : "read",
            (uint64_t)run->mmio.phys_addr);
    case KVM_EXIT_HLT:
        /* RIP is already past the hlt, so running again resumes the loop. */
        return EV_HLT;
    case KVM_EXIT_INTR:
        return EV_INTR;
    case KVM_EXIT_FAIL_ENTRY:
        die("KVM_RUN: entry failed, hardware reason 0x%" PRIx64,
            (uint64_t)run->fail_entry.hardware_entry_failure_reason);
    case KVM_EXIT_INTERNAL_ERROR:
        die("KVM_RUN: internal error, suberror %u", run->internal.suberror);
    default:
        die("KVM_RUN: %s exit (reason %u) in payload %s", exit_reason_name(run->exit_reason),
            run->exit_reason, vm->payload->name);
    }
}

struct tally {
    uint64_t by_kind[KIND_COUNT];
    uint64_t total;
    uint16_t cpuid_batch; /* size of the cpuid batch in flight */
};

/* Credits one exit event to the tally.  Returns false for non-exits. */
static bool tally_event(struct tally *t, enum event ev)
{
    switch (ev) {
    case EV_PIO:
        t->by_kind[KIND_PIO]++;
        t->total++;
        return true;
    case EV_CPUID_END:
        /* The batch's cpuid exits plus the marker's own pio exit. */
        t->by_kind[KIND_CPUID] += t->cpuid_batch;
        t->by_kind[KIND_PIO]++;
        t->total += t->cpuid_batch + 1u;
        return true;
    case EV_HLT:
        t->by_kind[KIND_HLT]++;
        t->total++;
        return true;
    case EV_MMIO:
        t->by_kind[KIND_MMIO]++;
        t->total++;
        return true;
    case EV_INTR:
        return false;
    }
    return false;
}

static const struct payload *payload_find(const char *name)
{
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        if (strcmp(payloads[i].name, name) == 0)
            return &payloads[i];
    }
    return NULL;
}

static int kind_find(const char *name)
{
    for (int i = 0; i < KIND_COUNT; i++) {
        if (strcmp(kind_names[i], name) == 0)
            return i;
    }
    return -1;
}

static int run_count(const char *kind_name, uint64_t count, bool json)
{
    int kind = kind_find(kind_name);
    struct vm vm;
    struct tally t = {0};

    vm_create(&vm, payload_find(kind_name));
    int nested_state = nested_state_size(vm.kvm_fd);
    int api_version = ioctl(vm.kvm_fd, KVM_GET_API_VERSION, 0);
    if (kind == KIND_CPUID) {
        t.cpuid_batch = (uint16_t)(count < CPUID_BATCH_MAX ? count : CPUID_BATCH_MAX);
        set_cpuid_batch(&vm, t.cpuid_batch);
    }

    uint64_t kexits0 = 0, kexits1 = 0;
    bool have_kexits = stats_exits(&vm, &kexits0);
    uint64_t t0 = now_ns();
    while (t.by_kind[kind] < count) {
        enum event ev = vm_run_once(&vm);
        tally_event(&t, ev);
        if (ev == EV_CPUID_END) {
            uint64_t left = count - t.by_kind[KIND_CPUID];
            t.cpuid_batch = (uint16_t)(left < CPUID_BATCH_MAX ? left : CPUID_BATCH_MAX);
            if (t.cpuid_batch > 0)
                set_cpuid_batch(&vm, t.cpuid_batch);
        }
    }
    uint64_t elapsed = now_ns() - t0;
    have_kexits = have_kexits && stats_exits(&vm, &kexits1);
    vm_destroy(&vm);

    double ns_per_exit = t.total ? (double)elapsed / (double)t.total : 0.0;
    char kexits[32] = "null";
    if (have_kexits)
        snprintf(kexits, sizeof(kexits), "%" PRIu64, kexits1 - kexits0);

    if (json) {
        printf("{\"payload\":\"%s\",\"count\":%" PRIu64 ",\"exits\":{\"pio\":%" PRIu64
               ",\"cpuid\":%" PRIu64 ",\"hlt\":%" PRIu64 ",\"mmio\":%" PRIu64 ",\"total\":%" PRIu64
               "},\"kvm_exits\":%s,\"elapsed_ns\":%" PRIu64
               ",\"ns_per_exit\":%.1f,\"nested_state_size\":%d,\"api_version\":%d}\n",
               kind_name, count, t.by_kind[KIND_PIO], t.by_kind[KIND_CPUID], t.by_kind[KIND_HLT],
               t.by_kind[KIND_MMIO], t.total, kexits, elapsed, ns_per_exit, nested_state,
               api_version);
    } else {
        printf("payload:           %s (%" PRIu64 " %s exits)\n", kind_name, count, kind_name);
        printf("exits:             total=%" PRIu64 " pio=%" PRIu64 " cpuid=%" PRIu64 " hlt=%" PRIu64
               " mmio=%" PRIu64 "\n",
               t.total, t.by_kind[KIND_PIO], t.by_kind[KIND_CPUID], t.by_kind[KIND_HLT],
               t.by_kind[KIND_MMIO]);
        printf("kvm_exits:         %s\n", have_kexits ? kexits : "n/a (no binary stats)");
        printf("elapsed:           %.3f s\n", (double)elapsed / (double)NS_PER_SEC);
        printf("ns_per_exit:       %.1f\n", ns_per_exit);
        printf("nested_state_size: %d\n", nested_state);
        printf("api_version:       %d\n", api_version);
    }
    fflush(stdout);
    return 0;
}

/* Never returns: the image's L2 runs until the machine stops. */
__attribute__((noreturn)) static void run_continuous(void)
{
    struct vm vm;
    struct tally t = {0};
    uint64_t hb = 0;

    setvbuf(stdout, NULL, _IOLBF, 0);
    vm_create(&vm, payload_find("mix"));

    uint64_t last = now_ns();
    uint64_t last_total = 0;
    for (;;) {
        enum event ev = vm_run_once(&vm);
        /* In the mix the cpuid between the pio and the mmio has run by now. */
        if (ev == EV_MMIO) {
            t.by_kind[KIND_CPUID]++;
            t.total++;
        }
        tally_event(&t, ev);

        uint64_t now = now_ns();
        if (now - last >= NS_PER_SEC) {
            uint64_t delta = t.total - last_total;
            double ns = delta ? (double)(now - last) / (double)delta : 0.0;
            printf("TURTLES-L2 HB %" PRIu64 " exits=%" PRIu64 " ns_per_exit=%.0f\n", ++hb, t.total,
                   ns);
            fflush(stdout);
            last = now;
            last_total = t.total;
        }
    }
}

/* ---- device mode ---------------------------------------------------------- */

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_ID     0x010000edu
#define EDU_READS  1000u /* ID reads per run unless --count says otherwise */
#define EDU_FACT_N 10u
#define EDU_FACT   3628800u /* 10! */
/* QEMU 7.2's edu aborts the whole QEMU on a DMA of its full 4096-byte buffer. */
#define EDU_DMA_LEN        2048u
#define EDU_MARKS          (EDU_MARK_DONE + 1)
#define DEV_BAR_SLOT       1
#define DEV_RUN_TIMEOUT_NS (120 * NS_PER_SEC)

/* Linked in from edu-payload.S. */
extern const uint8_t edu_payload[], edu_payload_end[];

/* What one L2 run of the edu payload did. */
struct dev_run {
    uint32_t id, live, fact;
    uint32_t accesses;  /* BAR accesses, as counted by the payload */
    uint64_t bar_exits; /* exits to us caused by BAR accesses */
    uint64_t reads_ns;  /* time of the ID-read phase */
    bool dma_ok;
};

__attribute__((format(printf, 2, 3))) static bool dev_fail(char err[VFIO_DEV_ERR_LEN],
                                                           const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, VFIO_DEV_ERR_LEN, fmt, ap);
    va_end(ap);
    return false;
}

/* Only there so that SIGALRM interrupts KVM_RUN instead of killing us. */
static void dev_on_alarm(int sig)
{
    (void)sig;
}

/* A tick a second makes KVM_RUN return even while the L2 never exits. */
static void dev_ticks(bool on)
{
    struct sigaction sa = {.sa_handler = dev_on_alarm}; /* no SA_RESTART */
    struct itimerval tick = {{on ? 1 : 0, 0}, {on ? 1 : 0, 0}};

    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &tick, NULL);
}

static void dev_put32(struct vm *vm, uint32_t gpa, uint32_t value)
{
    memcpy(vm->mem + gpa, &value, sizeof(value));
}

static uint32_t dev_get32(const struct vm *vm, uint32_t gpa)
{
    uint32_t value;

    memcpy(&value, vm->mem + gpa, sizeof(value));
    return value;
}

static void dev_fill_inputs(struct vm *vm, uint32_t reads)
{
    dev_put32(vm, EDU_IN_READS, reads);
    dev_put32(vm, EDU_IN_FACT, EDU_FACT_N);
    dev_put32(vm, EDU_IN_DMA_LEN, EDU_DMA_LEN);
    for (uint32_t i = 0; i < EDU_DMA_LEN; i++)
        vm->mem[EDU_DMA_SRC + i] = (uint8_t)(i * 13 + 5);
}

/* Direct mode: BAR0's mapping becomes L2 memory, so accesses never leave the L2. */
static bool dev_map_bar(struct vm *vm, const struct vfio_dev *dev, char err[VFIO_DEV_ERR_LEN])
{
    struct kvm_userspace_memory_region region = {
        .slot = DEV_BAR_SLOT,
        .guest_phys_addr = EDU_BAR_GPA,
        .memory_size = dev->bar_size,
        .userspace_addr = (uintptr_t)dev->bar,
    };
    if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return dev_fail(err, "KVM_SET_USER_MEMORY_REGION for BAR0: %s", strerror(errno));
    return true;
}

/* Handles one exit.  1: run on, 0: the payload is done, -1: error in err. */
static int dev_exit(struct vm *vm, const struct vfio_dev *dev, struct dev_run *r,
                    uint64_t marks[EDU_MARKS], char err[VFIO_DEV_ERR_LEN])
{
    struct kvm_run *run = vm->run;

    switch (run->exit_reason) {
    case KVM_EXIT_HLT:
        return 0;
    case KVM_EXIT_IO:
        if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == EDU_PORT_MARK) {
            uint8_t mark = *((uint8_t *)run + run->io.data_offset);
            if (mark < EDU_MARKS)
                marks[mark] = now_ns();
            return 1;
        }
        dev_fail(err, "unexpected port I/O on port 0x%x from the L2", run->io.port);
        return -1;
    case KVM_EXIT_MMIO: {
        uint64_t gpa = run->mmio.phys_addr;
        /* Trapped mode: forward the access to the device, as an emulating VMM would. */
        if (gpa >= EDU_BAR_GPA && vfio_dev_bar_rw(dev, gpa - EDU_BAR_GPA, run->mmio.data,
                                                  run->mmio.len, run->mmio.is_write)) {
            r->bar_exits++;
            return 1;
        }
        dev_fail(err, "L2 %s of %u bytes at 0x%" PRIx64 " could not be forwarded to BAR0",
                 run->mmio.is_write ? "write" : "read", run->mmio.len, gpa);
        return -1;
    }
    default:
        dev_fail(err, "L2 stopped: %s exit (reason %u)", exit_reason_name(run->exit_reason),
                 run->exit_reason);
        return -1;
    }
}

static bool dev_loop(struct vm *vm, const struct vfio_dev *dev, struct dev_run *r,
                     char err[VFIO_DEV_ERR_LEN])
{
    uint64_t marks[EDU_MARKS] = {0};
    uint64_t deadline = now_ns() + DEV_RUN_TIMEOUT_NS;
    int step = 1;

    dev_ticks(true);
    while (step > 0) {
        if (ioctl(vm->vcpu_fd, KVM_RUN, 0) == 0) {
            step = dev_exit(vm, dev, r, marks, err);
        } else if (errno != EINTR && errno != EAGAIN) {
            dev_fail(err, "KVM_RUN: %s", strerror(errno));
            step = -1;
        } else if (now_ns() > deadline) {
            dev_fail(err, "the L2 did not finish within %llu s", DEV_RUN_TIMEOUT_NS / NS_PER_SEC);
            step = -1;
        }
    }
    dev_ticks(false);
    if (step < 0)
        return false;
    if (!marks[EDU_MARK_READS] || !marks[EDU_MARK_READS_DONE] || !marks[EDU_MARK_DONE])
        return dev_fail(err, "the L2 halted before the end of its payload");
    r->reads_ns = marks[EDU_MARK_READS_DONE] - marks[EDU_MARK_READS];
    return true;
}

static void dev_collect(const struct vm *vm, struct dev_run *r)
{
    r->id = dev_get32(vm, EDU_OUT_ID);
    r->live = dev_get32(vm, EDU_OUT_LIVE);
    r->fact = dev_get32(vm, EDU_OUT_FACT);
    r->accesses = dev_get32(vm, EDU_OUT_ACCESSES);
    r->dma_ok = memcmp(vm->mem + EDU_DMA_SRC, vm->mem + EDU_DMA_DST, EDU_DMA_LEN) == 0;
}

/*
 * One L2 run.  L2 RAM is mapped for the device at IOVA = L2-physical address,
 * so the addresses the payload programs into the device are its own.
 */
static bool dev_run(const struct vfio_dev *dev, bool direct, uint32_t reads, struct dev_run *r,
                    char err[VFIO_DEV_ERR_LEN])
{
    const struct payload payload = {"edu", edu_payload, (size_t)(edu_payload_end - edu_payload)};
    struct vm vm;

    memset(r, 0, sizeof(*r));
    vm_create(&vm, &payload);
    dev_fill_inputs(&vm, reads);
    bool ok = (!direct || dev_map_bar(&vm, dev, err)) &&
              vfio_dev_dma_map(dev, vm.mem, 0, GUEST_MEM_SIZE, err);
    if (ok) {
        ok = dev_loop(&vm, dev, r, err);
        vfio_dev_dma_unmap(dev, 0, GUEST_MEM_SIZE);
    }
    if (ok)
        dev_collect(&vm, r);
    vm_destroy(&vm);
    return ok;
}

static int dev_error(const char *err)
{
    printf("TURTLES-L2 DEV error=%s\n", err);
    return 1;
}

static int dev_report(const struct dev_run *d, const struct dev_run *t, uint32_t reads)
{
    char err[VFIO_DEV_ERR_LEN];

    printf("TURTLES-L2 BAR reads=%" PRIu32 " ns_direct=%.0f ns_trapped=%.0f\n", reads,
           (double)d->reads_ns / reads, (double)t->reads_ns / reads);
    if (d->live != ~(uint32_t)EDU_LIVE_VALUE || t->live != ~(uint32_t)EDU_LIVE_VALUE) {
        dev_fail(err, "liveness check read 0x%08" PRIx32 " direct, 0x%08" PRIx32 " trapped",
                 d->live, t->live);
        return dev_error(err);
    }
    if (d->id != t->id || d->fact != t->fact) {
        dev_fail(err, "runs disagree: id 0x%08" PRIx32 "/0x%08" PRIx32 " fact %" PRIu32 "/%" PRIu32,
                 d->id, t->id, d->fact, t->fact);
        return dev_error(err);
    }
    bool dma_ok = d->dma_ok && t->dma_ok;
    printf("TURTLES-L2 DEV id=0x%08" PRIx32 " fact=%" PRIu32 " dma=%s exits_direct=%" PRIu64
           " exits_trapped=%" PRIu64 " accesses=%" PRIu32 "\n",
           d->id, d->fact, dma_ok ? "ok" : "bad", d->bar_exits, t->bar_exits, t->accesses);
    bool good = d->id == EDU_ID && d->fact == EDU_FACT && dma_ok && d->bar_exits == 0 &&
                t->bar_exits == t->accesses;
    return good ? 0 : 1;
}

/* Prints exactly one TURTLES-L2 DEV line, whatever happens short of a crash. */
static int run_device(const char *which, uint32_t reads)
{
    char addr[VFIO_DEV_ADDR_LEN] = "", err[VFIO_DEV_ERR_LEN];
    struct vfio_dev dev;
    struct dev_run direct, trapped;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(which, "auto") == 0) {
        if (!vfio_dev_find(EDU_VENDOR, EDU_DEVICE, addr, err))
            return dev_error(err);
    } else if (strlen(which) < sizeof(addr)) {
        snprintf(addr, sizeof(addr), "%s", which);
    }
    bool ok = vfio_dev_open(&dev, addr[0] ? addr : which, err) &&
              dev_run(&dev, true, reads, &direct, err) &&
              dev_run(&dev, false, reads, &trapped, err);
    vfio_dev_close(&dev);
    return ok ? dev_report(&direct, &trapped, reads) : dev_error(err);
}

static void usage(FILE *out)
{
    fputs("usage: turtle-vmm                      run the L2 mix forever, one heartbeat a second\n"
          "       turtle-vmm --payload P --count N [--json]\n"
          "                                       run payload P until N exits of its kind\n"
          "       turtle-vmm --device ADDR|auto [--count N]\n"
          "                                       bind PCI function ADDR (auto: the first QEMU\n"
          "                                       edu) to vfio-pci and run an L2 that drives it,\n"
          "                                       BAR0 direct then trapped; N ID reads per run\n"
          "       turtle-vmm --nested-state       print KVM_CAP_NESTED_STATE's size\n"
          "       turtle-vmm --help\n"
          "payloads: pio (out), cpuid, hlt, mmio (write to unmapped memory)\n",
          out);
}

static __attribute__((noreturn)) void bad_usage(const char *why)
{
    fprintf(stderr, "turtle-vmm: %s\n", why);
    usage(stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    enum { OPT_NESTED_STATE = 256, OPT_DEVICE };
    static const struct option opts[] = {
        {"payload", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"nested-state", no_argument, NULL, OPT_NESTED_STATE},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *payload = NULL, *device = NULL;
    uint64_t count = 0;
    bool have_count = false, json = false, want_nested_state = false;
    int opt;

    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'p':
            if (kind_find(optarg) < 0)
                bad_usage("unknown payload (expected pio, cpuid, hlt or mmio)");
            payload = optarg;
            break;
        case 'c': {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-' || v == 0)
                bad_usage("--count needs a positive integer");
            count = v;
            have_count = true;
            break;
        }
        case 'j':
            json = true;
            break;
        case OPT_NESTED_STATE:
            want_nested_state = true;
            break;
        case OPT_DEVICE:
            device = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            bad_usage("unknown option or missing argument");
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument");

    if (device) {
        if (payload || json || want_nested_state)
            bad_usage("--device takes only --count");
        if (count > UINT32_MAX)
            bad_usage("--count is too large for --device");
        return run_device(device, have_count ? (uint32_t)count : EDU_READS);
    }
    if (want_nested_state) {
        if (payload || have_count || json)
            bad_usage("--nested-state takes no other option");
        int fd = kvm_open();
        printf("%d\n", nested_state_size(fd));
        close(fd);
        return 0;
    }
    if (payload || have_count || json) {
        if (!payload || !have_count)
            bad_usage("count mode needs both --payload and --count");
        return run_count(payload, count, json);
    }
    run_continuous();
}
