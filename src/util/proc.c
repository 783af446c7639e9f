#include "util/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PF_EXITING 0x00000004UL /* include/linux/sched.h: in do_exit() */

int proc_stat_death_signal(const char *line)
{
	/* comm (field 2) may hold spaces and parentheses: fields after it
	 * start behind the last ')'. */
	const char *p = strrchr(line, ')');
	unsigned long flags = 0;
	long exit_code = 0;
	int field = 2;

	if (!p)
		return 0;
	p++;
	while (*p && field < 52) {
		while (*p == ' ')
			p++;
		if (!*p || *p == '\n')
			break;
		field++;
		if (field == 9)
			flags = strtoul(p, NULL, 10);
		else if (field == 52)
			exit_code = strtol(p, NULL, 10);
		while (*p && *p != ' ' && *p != '\n')
			p++;
	}
	if (field != 52 || !(flags & PF_EXITING))
		return 0;
	/* waitpid's encoding: 0x7f in the low bits is a stop, not a death. */
	int sig = (int)(exit_code & 0x7f);
	return sig == 0x7f ? 0 : sig;
}

int proc_death_signal(pid_t tid)
{
	char path[48], line[2048];
	ssize_t n;
	int fd;

	if (tid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	do
		n = read(fd, line, sizeof(line) - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	return proc_stat_death_signal(line);
}
