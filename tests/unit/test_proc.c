/* Unit tests of util/proc: telling a task killed by a signal from one that
 * exits normally, from lines and from real tasks of this kernel. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <signal.h>
#include <sys/wait.h>

#include "testutil.h"
#include "util/proc.h"

/* A /proc/PID/stat line with comm, flags (field 9) and exit_code (52). */
static void stat_line(char *buf, size_t len, const char *comm, unsigned long flags, long exit_code)
{
	snprintf(buf, len,
		 "10947 (%s) D 10942 10942 18739 0 -1 %lu 98 0 0 0 0 0 0 0 20 0 1 0 179550 "
		 "3133440 360 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 "
		 "0 0 0 0 0 0 0 %ld\n", comm, flags, exit_code);
}

static void test_lines(void **state)
{
	char line[1024];
	(void)state;
	/* Exiting (PF_EXITING 0x4) with a signal in the low bits: killed. */
	stat_line(line, sizeof(line), "writer", 0x40050c, 9);
	assert_int_equal(proc_stat_death_signal(line), 9);
	stat_line(line, sizeof(line), "writer", 0x40044c, 15);
	assert_int_equal(proc_stat_death_signal(line), 15);
	/* A core dump sets 0x80: still the signal. */
	stat_line(line, sizeof(line), "writer", 0x40050c, 0x80 | 11);
	assert_int_equal(proc_stat_death_signal(line), 11);
	/* exit(0), return 3 from main: a status in bits 8..15, no signal. */
	stat_line(line, sizeof(line), "writer", 0x40010c, 0);
	assert_int_equal(proc_stat_death_signal(line), 0);
	stat_line(line, sizeof(line), "writer", 0x40010c, 3 << 8);
	assert_int_equal(proc_stat_death_signal(line), 0);
	/* Not exiting: whatever exit_code holds (a ptrace stop), alive. */
	stat_line(line, sizeof(line), "writer", 0x400100, 9);
	assert_int_equal(proc_stat_death_signal(line), 0);
	/* waitpid's "stopped" pattern is not a death. */
	stat_line(line, sizeof(line), "writer", 0x40050c, 0x137f);
	assert_int_equal(proc_stat_death_signal(line), 0);
	/* comm with spaces and parentheses: fields count from the last ')'. */
	stat_line(line, sizeof(line), "a) (b c) 1 2", 0x40050c, 9);
	assert_int_equal(proc_stat_death_signal(line), 9);
	/* Short or odd lines. */
	assert_int_equal(proc_stat_death_signal(""), 0);
	assert_int_equal(proc_stat_death_signal("1 (x) R 1 2 3"), 0);
	assert_int_equal(proc_stat_death_signal("no parenthesis"), 0);
}

/* A child left unreaped (a zombie keeps PF_EXITING and its exit code). */
static pid_t zombie(int how)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (how > 0)
			raise(how);
		_exit(-how);
	}
	/* Wait until it is a zombie without reaping it. */
	siginfo_t si;
	waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT);
	return pid;
}

static void test_real_tasks(void **state)
{
	(void)state;
	assert_int_equal(proc_death_signal(getpid()), 0);
	assert_int_equal(proc_death_signal(0), 0);
	int cases[][2] = { { SIGKILL, SIGKILL }, { SIGTERM, SIGTERM }, { -3, 0 }, { 0, 0 } };
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		pid_t pid = zombie(cases[i][0]);
		assert_true(pid > 0);
		int sig = proc_death_signal(pid);
		waitpid(pid, NULL, 0);
		assert_int_equal(sig, cases[i][1]);
		/* Gone: nothing to tell. */
		assert_int_equal(proc_death_signal(pid), 0);
	}
	/* Stopped is not dying. */
	pid_t pid = fork();
	if (pid == 0) {
		raise(SIGSTOP);
		_exit(0);
	}
	waitpid(pid, NULL, WUNTRACED);
	assert_int_equal(proc_death_signal(pid), 0);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_real_tasks),
	};
	return tu_run_group("proc", tests, NULL, NULL);
}
