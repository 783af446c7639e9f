/*
 * The process hardening every command that holds a key or a value applies
 * first: no core dump (RLIMIT_CORE 0), and not dumpable (PR_SET_DUMPABLE
 * 0), so neither a crash nor another process of the same user (ptrace,
 * /proc/PID/mem) can read what is in memory.
 */
#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli/cli.h"

void cli_harden_process(void)
{
	struct rlimit no_core = { 0, 0 };
	setrlimit(RLIMIT_CORE, &no_core);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
