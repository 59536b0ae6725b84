/* diskfault.c - test-only LD_PRELOAD library that makes the disk of one
 * meridian process full or slow, as the process sees it through real system
 * calls (RocksDB's WAL and table files, the catalog, the clock bound).
 *
 * The environment variable MERIDIAN_DISKFAULT names a control file of
 * sizeof(diskfault_ctl) bytes that the fault-injection runner rewrites while
 * the process runs (it is mapped shared, so a change is seen at the next
 * call). Writers must rewrite it in place, never truncate it (harness.py
 * DiskFault): a read of the mapping past the end of the file is SIGBUS.
 * Only regular files whose path starts with ctl.prefix are affected, so the
 * process's own log (stderr) and sockets never are.
 *
 *   enospc        write/pwrite/writev/fallocate fail with ENOSPC and
 *                 fsync/fdatasync fail with ENOSPC (a full disk)
 *   write_delay_us / sync_delay_us
 *                 each write / each fsync first sleeps that long (a slow disk)
 *
 * Without the variable, or with a zeroed control file, every call goes
 * straight to libc. Never linked into meridian itself. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef struct diskfault_ctl {
    uint32_t enospc;
    uint32_t write_delay_us;
    uint32_t sync_delay_us;
    uint32_t reserved;
    char prefix[240];
} diskfault_ctl;

static volatile diskfault_ctl *ctl;
static int ctl_state; /* 0 not tried, 1 mapped, -1 unavailable */

static const volatile diskfault_ctl *control(void)
{
    if (__atomic_load_n(&ctl_state, __ATOMIC_ACQUIRE) == 0) {
        const char *path = getenv("MERIDIAN_DISKFAULT");
        void *m = MAP_FAILED;
        if (path && *path) {
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd >= 0) {
                m = mmap(NULL, sizeof(diskfault_ctl), PROT_READ, MAP_SHARED, fd, 0);
                close(fd);
            }
        }
        int expected = 0;
        if (m != MAP_FAILED) {
            if (__atomic_compare_exchange_n(&ctl_state, &expected, 1, false, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE))
                ctl = m;
            else
                munmap(m, sizeof(diskfault_ctl));
        } else {
            __atomic_compare_exchange_n(&ctl_state, &expected, -1, false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE);
        }
    }
    return __atomic_load_n(&ctl_state, __ATOMIC_ACQUIRE) == 1 ? ctl : NULL;
}

/* True if fd is a regular file under the control file's prefix. */
static int targeted(const volatile diskfault_ctl *c, int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) return 0;
    char link[64], path[512];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0) return 0;
    path[n] = '\0';
    char prefix[sizeof(c->prefix)];
    for (size_t i = 0; i < sizeof(prefix); i++)
        prefix[i] = c->prefix[i];
    prefix[sizeof(prefix) - 1] = '\0';
    return prefix[0] && strncmp(path, prefix, strlen(prefix)) == 0;
}

static void pause_us(uint32_t us)
{
    if (!us) return;
    struct timespec t = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};
    while (nanosleep(&t, &t) < 0 && errno == EINTR) {
    }
}

/* 1 if the call must fail with ENOSPC; sleeps first for a slow disk. */
static int fault(int fd, int is_sync)
{
    const volatile diskfault_ctl *c = control();
    if (!c) return 0;
    uint32_t enospc = c->enospc;
    uint32_t delay = is_sync ? c->sync_delay_us : c->write_delay_us;
    if (!enospc && !delay) return 0;
    if (!targeted(c, fd)) return 0;
    pause_us(delay);
    if (enospc) {
        errno = ENOSPC;
        return 1;
    }
    return 0;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*writev_fn)(int, const struct iovec *, int);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
typedef int (*fallocate_fn)(int, int, off_t, off_t);
typedef int (*sync_fn)(int);

/* The libc function this one wraps, looked up once. */
#define REAL(name, type)                                                                           \
    static type real_##name;                                                                       \
    if (!real_##name) real_##name = (type)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *p, size_t n)
{
    REAL(write, write_fn);
    if (fault(fd, 0)) return -1;
    return real_write(fd, p, n);
}

ssize_t pwrite(int fd, const void *p, size_t n, off_t off)
{
    REAL(pwrite, pwrite_fn);
    if (fault(fd, 0)) return -1;
    return real_pwrite(fd, p, n, off);
}

ssize_t pwrite64(int fd, const void *p, size_t n, off_t off)
{
    REAL(pwrite64, pwrite_fn);
    if (fault(fd, 0)) return -1;
    return real_pwrite64(fd, p, n, off);
}

ssize_t writev(int fd, const struct iovec *v, int n)
{
    REAL(writev, writev_fn);
    if (fault(fd, 0)) return -1;
    return real_writev(fd, v, n);
}

ssize_t pwritev(int fd, const struct iovec *v, int n, off_t off)
{
    REAL(pwritev, pwritev_fn);
    if (fault(fd, 0)) return -1;
    return real_pwritev(fd, v, n, off);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate, fallocate_fn);
    if (fault(fd, 0)) return -1;
    return real_fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate64, fallocate_fn);
    if (fault(fd, 0)) return -1;
    return real_fallocate64(fd, mode, off, len);
}

int fsync(int fd)
{
    REAL(fsync, sync_fn);
    if (fault(fd, 1)) return -1;
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync, sync_fn);
    if (fault(fd, 1)) return -1;
    return real_fdatasync(fd);
}
