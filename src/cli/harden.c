/*
 * The process hardening every command that holds a key or a value applies
 * first: no core dump (RLIMIT_CORE 0), and not dumpable (PR_SET_DUMPABLE
 * 0), so neither a crash nor another process of the same user (ptrace,
 * /proc/PID/mem) can read what is in memory; and for a daemon (mount,
 * serve), the locked pool its plaintext lives in.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

/* Locked memory for plaintext: up to 256 concurrent 64 KiB writers. */
#define SECMEM_WANTED (16u << 20)
#define SECMEM_MIN (256u << 10)

/* Room to lock the secure pool; returns the pool size to ask for. */
static size_t prepare_memlock(void)
{
	struct rlimit lim;
	getrlimit(RLIMIT_MEMLOCK, &lim);
	if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < 2 * SECMEM_WANTED) {
		struct rlimit want = { 2 * SECMEM_WANTED, lim.rlim_max };
		if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want.rlim_cur)
			want.rlim_max = want.rlim_cur;
		if (setrlimit(RLIMIT_MEMLOCK, &want) == 0)
			return SECMEM_WANTED;
		/* Not privileged: make do with what may be locked, minus some slack. */
		if (lim.rlim_cur <= SECMEM_MIN + (64u << 10))
			return SECMEM_MIN;
		size_t avail = (size_t)lim.rlim_cur - (64u << 10);
		return avail < SECMEM_WANTED ? avail : SECMEM_WANTED;
	}
	return SECMEM_WANTED;
}

/* libgcrypt carries on unlocked when mlock fails; we do not. */
static int memory_is_locked(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	long locked_kb = -1;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &locked_kb) == 1)
			break;
	fclose(f);
	return locked_kb > 0;
}

int cli_lock_memory(void)
{
	return crypto_init(prepare_memlock()) || !memory_is_locked() ? -ENOMEM : 0;
}

void cli_harden_process(void)
{
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
