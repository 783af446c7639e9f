/*
 * proc: what /proc says of another task. Used to tell a close that its
 * caller will never see (the kernel closing the files of a process being
 * killed) from one it will.
 */
#ifndef SECRETSFS_UTIL_PROC_H
#define SECRETSFS_UTIL_PROC_H

#include <sys/types.h>

/*
 * The signal killing task tid (a thread id or a process id: FUSE reports
 * the thread), or 0 when it is not dying of one: alive, exiting by exit()
 * or a return from main, gone, in another pid namespace (tid 0), or not
 * ours to see (another user's task, for a daemon without CAP_SYS_PTRACE:
 * the kernel then shows its exit code as 0).
 *
 * Read from /proc/TID/stat: the task is exiting (PF_EXITING in field 9,
 * flags) and field 52, exit_code, holds what waitpid(2) will report, whose
 * low seven bits are the signal that killed it (0 for a normal exit, whose
 * status is in bits 8 to 15). A thread's directory answers to its id,
 * though /proc does not list it; in a process killed whole every thread
 * carries the signal, and in one that calls exit() every thread carries
 * the status, so whichever thread closes the files tells the truth.
 */
int proc_death_signal(pid_t tid);
/* The same from the text of a /proc/PID/stat line; 0 when it does not parse. */
int proc_stat_death_signal(const char *line);

#endif
