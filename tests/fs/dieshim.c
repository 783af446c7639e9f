/*
 * dieshim: an LD_PRELOAD library for the crash tests (T12 in
 * shared/reference/perf-reliability.md, after tdb's own
 * test/run-die-during-transaction.c). Built by the tests with cc.
 *
 * It watches one file, the store named by DIESHIM_PATH, and counts every
 * call that writes to it or syncs it: pwrite, write, ftruncate,
 * posix_fallocate, fallocate, fsync, fdatasync on a descriptor opened on
 * that path, and msync on a mapping of it. At the call numbered
 * DIESHIM_DIE_AT (1, 2, ...) the process dies with _exit(DIESHIM_STATUS)
 * before doing it: no cleanup, no atexit, like kill -9 at that point.
 *
 *   DIESHIM_PATH=FILE      the file to watch (required, else the shim is idle)
 *   DIESHIM_DIE_AT=N       die at the Nth counted call (0 or unset: never)
 *   DIESHIM_TRACE=FILE     append "N op fd offset len" for every counted call
 *   DIESHIM_NOMMAP=1       refuse to mmap the file (tdb then falls back to
 *                          pread/pwrite, so every page it writes is a call)
 *
 * Only the process (and the children it forks) that has the variables set
 * is affected; nothing else is wrapped.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FDS 4096
#define MAX_MAPS 64

static char watched[PATH_MAX];
static int have_path = -1; /* -1: not looked yet */
static long die_at;
static int nommap;
static int exit_status = 99;
static char trace_path[PATH_MAX];
static unsigned char tracked[MAX_FDS];
static long counter;

static struct { uintptr_t start, end; } maps[MAX_MAPS];

static void init(void)
{
	if (have_path != -1)
		return;
	const char *p = getenv("DIESHIM_PATH");
	const char *d = getenv("DIESHIM_DIE_AT");
	const char *t = getenv("DIESHIM_TRACE");
	const char *n = getenv("DIESHIM_NOMMAP");
	const char *s = getenv("DIESHIM_STATUS");
	die_at = d ? atol(d) : 0;
	nommap = n && *n == '1';
	if (s)
		exit_status = atoi(s);
	if (t)
		snprintf(trace_path, sizeof(trace_path), "%s", t);
	if (p && *p) {
		if (!realpath(p, watched))
			snprintf(watched, sizeof(watched), "%s", p);
		have_path = 1;
	} else {
		have_path = 0;
	}
}

__attribute__((constructor)) static void shim_ctor(void)
{
	init();
}

static int is_watched_path(const char *path)
{
	char buf[PATH_MAX];
	init();
	if (have_path != 1 || !path)
		return 0;
	if (strcmp(path, watched) == 0)
		return 1;
	if (realpath(path, buf) && strcmp(buf, watched) == 0)
		return 1;
	return 0;
}

static int fd_tracked(int fd)
{
	return fd >= 0 && fd < MAX_FDS && tracked[fd];
}

static void trace(long n, const char *op, int fd, long long off, long long len)
{
	if (!trace_path[0])
		return;
	char line[160];
	int k = snprintf(line, sizeof(line), "%ld %s %d %lld %lld\n", n, op, fd, off, len);
	int tfd = (int)syscall(SYS_openat, AT_FDCWD, trace_path,
			       O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (tfd < 0)
		return;
	if (syscall(SYS_write, tfd, line, (size_t)k) < 0) {
		/* nothing to do: tracing is best effort */
	}
	syscall(SYS_close, tfd);
}

/* Counts one write or sync point; dies at the chosen one. */
static void point(const char *op, int fd, long long off, long long len)
{
	long n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);
	if (die_at > 0 && n == die_at) {
		trace(n, "DIE", fd, off, len);
		trace(n, op, fd, off, len);
		_exit(exit_status);
	}
	trace(n, op, fd, off, len);
}

#define REAL(name) \
	static __typeof__(name) *real_##name; \
	if (!real_##name) \
		real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

static void track_open(int fd, const char *path, int flags)
{
	if (fd >= 0 && fd < MAX_FDS) {
		tracked[fd] = 0;
		if ((flags & O_ACCMODE) != O_RDONLY && is_watched_path(path))
			tracked[fd] = 1;
	}
}

int open(const char *path, int flags, ...)
{
	REAL(open);
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	int fd = real_open(path, flags, mode);
	track_open(fd, path, flags);
	return fd;
}

int open64(const char *path, int flags, ...)
{
	REAL(open64);
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	int fd = real_open64(path, flags, mode);
	track_open(fd, path, flags);
	return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
	REAL(openat);
	mode_t mode = 0;
	if (flags & (O_CREAT | O_TMPFILE)) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	int fd = real_openat(dirfd, path, flags, mode);
	if (dirfd == AT_FDCWD || path[0] == '/')
		track_open(fd, path, flags);
	else if (fd >= 0 && fd < MAX_FDS)
		tracked[fd] = 0;
	return fd;
}

int close(int fd)
{
	REAL(close);
	if (fd >= 0 && fd < MAX_FDS)
		tracked[fd] = 0;
	return real_close(fd);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
	REAL(pwrite);
	if (fd_tracked(fd))
		point("pwrite", fd, (long long)off, (long long)count);
	return real_pwrite(fd, buf, count, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t off)
{
	REAL(pwrite64);
	if (fd_tracked(fd))
		point("pwrite", fd, (long long)off, (long long)count);
	return real_pwrite64(fd, buf, count, off);
}

ssize_t write(int fd, const void *buf, size_t count)
{
	REAL(write);
	if (fd_tracked(fd))
		point("write", fd, -1, (long long)count);
	return real_write(fd, buf, count);
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate);
	if (fd_tracked(fd))
		point("ftruncate", fd, -1, (long long)len);
	return real_ftruncate(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
	REAL(ftruncate64);
	if (fd_tracked(fd))
		point("ftruncate", fd, -1, (long long)len);
	return real_ftruncate64(fd, len);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
	REAL(posix_fallocate);
	if (fd_tracked(fd))
		point("posix_fallocate", fd, (long long)off, (long long)len);
	return real_posix_fallocate(fd, off, len);
}

int posix_fallocate64(int fd, off64_t off, off64_t len)
{
	REAL(posix_fallocate64);
	if (fd_tracked(fd))
		point("posix_fallocate", fd, (long long)off, (long long)len);
	return real_posix_fallocate64(fd, off, len);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
	REAL(fallocate);
	if (fd_tracked(fd))
		point("fallocate", fd, (long long)off, (long long)len);
	return real_fallocate(fd, mode, off, len);
}

int fsync(int fd)
{
	REAL(fsync);
	if (fd_tracked(fd))
		point("fsync", fd, -1, -1);
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(fdatasync);
	if (fd_tracked(fd))
		point("fdatasync", fd, -1, -1);
	return real_fdatasync(fd);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	REAL(mmap);
	if (fd_tracked(fd) && nommap) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	void *p = real_mmap(addr, len, prot, flags, fd, off);
	if (p != MAP_FAILED && fd_tracked(fd)) {
		for (int i = 0; i < MAX_MAPS; i++) {
			if (maps[i].start == 0) {
				maps[i].start = (uintptr_t)p;
				maps[i].end = (uintptr_t)p + len;
				break;
			}
		}
	}
	return p;
}

int munmap(void *addr, size_t len)
{
	REAL(munmap);
	for (int i = 0; i < MAX_MAPS; i++)
		if (maps[i].start == (uintptr_t)addr)
			maps[i].start = maps[i].end = 0;
	return real_munmap(addr, len);
}

int msync(void *addr, size_t len, int flags)
{
	REAL(msync);
	uintptr_t a = (uintptr_t)addr;
	for (int i = 0; i < MAX_MAPS; i++) {
		if (maps[i].start && a >= maps[i].start && a < maps[i].end) {
			point("msync", -1, (long long)(a - maps[i].start), (long long)len);
			break;
		}
	}
	return real_msync(addr, len, flags);
}
