#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static enum log_target current_target = LOG_TO_STDERR;
static int log_fd = STDERR_FILENO;
static bool log_debug_enabled;
static int log_threshold = LOG_DEBUG;

static const char *priority_name(int priority)
{
	switch (priority) {
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

/*
 * A log file nobody else can read or plant: created 0600, never through a
 * symlink, a regular file of the caller's with no other link, its mode
 * tightened to 0600 if it was looser. Opened without blocking, so that a
 * FIFO put at the path fails at once (ENXIO with no reader) or is refused
 * by the check that follows, instead of holding the daemon (and the mount
 * waiting for it) in open(2); blocking again once it is known to be a file.
 */
static int open_private(const char *path)
{
	struct stat sb;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
				    O_NONBLOCK,
		      0600);
	if (fd < 0)
		return errno == ELOOP || errno == ENXIO ? -EPERM : -errno; /* a symlink, a FIFO */
	int flags = fcntl(fd, F_GETFL);
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    sb.st_nlink != 1 || ((sb.st_mode & 077) && fchmod(fd, 0600) != 0) || flags < 0 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
		close(fd);
		return -EPERM;
	}
	return fd;
}

int log_open(enum log_target target, const char *file_path, bool debug)
{
	log_debug_enabled = debug;
	if (target == LOG_TO_FILE) {
		int fd = open_private(file_path);
		if (fd < 0)
			return fd;
		if (log_fd > STDERR_FILENO)
			close(log_fd);
		log_fd = fd;
	} else if (target == LOG_TO_SYSLOG) {
		openlog("secretsfs", LOG_PID, LOG_DAEMON);
	}
	current_target = target;
	return 0;
}

bool log_have_syslog(void)
{
	struct stat sb;
	return stat("/dev/log", &sb) == 0 && S_ISSOCK(sb.st_mode);
}

int log_open_daemon(const char *fallback, bool debug, const char **file)
{
	*file = NULL;
	if (log_have_syslog())
		return log_open(LOG_TO_SYSLOG, NULL, debug);
	int rc = log_open(LOG_TO_FILE, fallback, debug);
	if (rc == 0)
		*file = fallback;
	return rc;
}

void log_set_threshold(int priority)
{
	log_threshold = priority;
}

void log_close(void)
{
	if (current_target == LOG_TO_FILE && log_fd > STDERR_FILENO)
		close(log_fd);
	if (current_target == LOG_TO_SYSLOG)
		closelog();
	log_fd = STDERR_FILENO;
	current_target = LOG_TO_STDERR;
}

void log_msg(int priority, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	if ((priority == LOG_DEBUG && !log_debug_enabled) || priority > log_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);

	if (current_target == LOG_TO_SYSLOG) {
		syslog(priority, "%s", text);
		return;
	}

	char line[1200];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	int n = snprintf(line, sizeof(line),
			 "%04d-%02d-%02dT%02d:%02d:%02dZ secretsfs[%d] %s: %s\n",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			 tm.tm_min, tm.tm_sec, (int)getpid(),
			 priority_name(priority), text);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	/* One write per line keeps lines whole between threads (O_APPEND). */
	ssize_t ignored = write(log_fd, line, (size_t)n);
	(void)ignored;
}
