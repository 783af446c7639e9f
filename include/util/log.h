/*
 * log: the one place diagnostics go.
 *
 * Messages name secrets, rules and errors; they never carry values or key
 * material (callers pass names only). Output goes to stderr, to a file
 * (mount option log_file=), or, for a background daemon, to syslog, or on
 * a host without syslog (no /dev/log: containers, minimal hosts) to a file
 * beside the store, so that the reason for a refusal is always somewhere.
 */
#ifndef SECRETSFS_UTIL_LOG_H
#define SECRETSFS_UTIL_LOG_H

#include <stdbool.h>
#include <syslog.h>

enum log_target { LOG_TO_STDERR, LOG_TO_FILE, LOG_TO_SYSLOG };

/* 0 or -errno. A file (LOG_TO_FILE) is opened private, appended to: made
 * mode 0600 (an existing one tightened to it), never through a symlink,
 * never waiting on a FIFO, and refused (-EPERM) if it is not a regular file
 * of the caller's with one link. */
int log_open(enum log_target target, const char *file_path, bool debug);
void log_close(void);
/* Whether this host has a syslog to send to (/dev/log is a socket). */
bool log_have_syslog(void);
/* A background daemon's log when no file was named: syslog when the host has
 * one (*file = NULL), else the file fallback as log_open opens one
 * (*file = fallback). 0 or -errno. */
int log_open_daemon(const char *fallback, bool debug, const char **file);
/* Drops messages less urgent than priority (LOG_WARNING for commands). */
void log_set_threshold(int priority);
void log_msg(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
