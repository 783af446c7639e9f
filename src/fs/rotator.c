#include "fs/rotator.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

struct job {
	struct job *next;
	char *name;
	char token[SM_VERSION_ID_MAX + 1];
	char *command;
};

struct rotator {
	struct sm *sm;
	char *mountpoint;
	char *rotation_dir; /* rotation_dir=: commands only from below it; NULL: anywhere */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job *head, *tail;
	bool stopping;
	pid_t child; /* the step running now, killed on stop */
};

/*
 * Which commands may run. The daemon runs them with its own rights (root's,
 * for a system mount), so nobody but root and the mounting user may be able
 * to change what runs: the file, resolved, is an executable regular file,
 * and it and every folder above it up to / are owned by root or the
 * mounting user and writable by no one else. A sticky folder (/tmp) is the
 * one exception: there nobody may rename or remove an entry they do not
 * own, and every entry below it is checked. The one check, made when a
 * command is set and again right before each step: a command from a store
 * edited offline, or a file or folder made writable since, does not run.
 * resolved is the path checked, so the path to store and to run.
 */
static int check_command(const char *path, const char *dir, char resolved[PATH_MAX], char *why,
			 size_t cap)
{
	uid_t owner = getuid();
	char walk[PATH_MAX];
	struct stat st;

	if (path[0] != '/') {
		snprintf(why, cap, "%s: a rotation command is the absolute path of an executable", path);
		return -EINVAL;
	}
	if (!realpath(path, resolved)) {
		snprintf(why, cap, "%s: %s", path, strerror(errno));
		return -EINVAL;
	}
	size_t n = dir ? strlen(dir) : 0;
	if (dir && strcmp(dir, "/") != 0 && (strncmp(resolved, dir, n) != 0 || resolved[n] != '/')) {
		snprintf(why, cap, "%s is outside rotation_dir=%s", resolved, dir);
		return -EINVAL;
	}
	if (stat(resolved, &st) != 0 || !S_ISREG(st.st_mode) || access(resolved, X_OK) != 0) {
		snprintf(why, cap, "%s is not an executable file", resolved);
		return -EINVAL;
	}
	snprintf(walk, sizeof(walk), "%s", resolved);
	for (;;) {
		if (stat(walk, &st) != 0) {
			snprintf(why, cap, "%s: %s", walk, strerror(errno));
			return -EINVAL;
		}
		if (st.st_uid != 0 && st.st_uid != owner) {
			snprintf(why, cap, "%s is owned by uid %u, not by root or the mounting user", walk,
				 (unsigned)st.st_uid);
			return -EINVAL;
		}
		bool sticky = S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX);
		if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !sticky) {
			snprintf(why, cap, "%s is writable by its group or others", walk);
			return -EINVAL;
		}
		if (strcmp(walk, "/") == 0)
			return 0;
		char *slash = strrchr(walk, '/');
		slash[slash == walk ? 1 : 0] = '\0';
	}
}

int rotator_check_command(const struct rotator *r, const char *name, const char *path,
			  char resolved[PATH_MAX])
{
	char why[PATH_MAX + 160];
	int rc = check_command(path, r->rotation_dir, resolved, why, sizeof(why));
	if (rc)
		log_warn("%s: refused: user.sm.rotation_command: %s", name, why);
	return rc;
}

static const char *const steps[] = { "createSecret", "setSecret", "testSecret", "finishSecret" };

/* Logs each line the command printed; never more than a line at a time. */
static void log_output(const char *name, const char *step, char *buf, size_t *len, bool flush)
{
	char *start = buf, *nl;
	while ((nl = memchr(start, '\n', *len - (size_t)(start - buf)))) {
		*nl = '\0';
		log_info("%s: rotation %s: %s", name, step, start);
		start = nl + 1;
	}
	size_t rest = *len - (size_t)(start - buf);
	if (flush && rest) {
		start[rest] = '\0';
		log_info("%s: rotation %s: %s", name, step, start);
		rest = 0;
	}
	memmove(buf, start, rest);
	*len = rest;
}

static int env_add(char **env, int *n, const char *key, const char *value)
{
	if (asprintf(&env[*n], "%s=%s", key, value) < 0)
		return -ENOMEM;
	(*n)++;
	return 0;
}

/* Runs one step; 0, or the reason it failed in why. */
static int run_step(struct rotator *r, const struct job *j, const char *step, char *why, size_t cap)
{
	char arn[SM_NAME_MAX + 128], current[4096], pending[4096], previous[4096], event[1024];
	char exe[PATH_MAX], rule[PATH_MAX + 160];
	char *env[16] = { 0 }, *argv[] = { exe, (char *)step, NULL };
	int n = 0, rc = -ENOMEM, pipefd[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	pid_t pid = -1;

	/* Checked again now: what runs is what passed, resolved a moment ago. */
	if (check_command(j->command, r->rotation_dir, exe, rule, sizeof(rule))) {
		log_warn("%s: rotation refused before %s: user.sm.rotation_command: %s", j->name, step,
			 rule);
		snprintf(why, cap, "%s: the rotation command is refused: %s", step, rule);
		return -EPERM;
	}
	if (sm_arn_of(r->sm, j->name, arn, sizeof(arn)))
		snprintf(arn, sizeof(arn), "%s", j->name);
	snprintf(current, sizeof(current), "%s/%s", r->mountpoint, j->name);
	snprintf(pending, sizeof(pending), "%s/.stages/AWSPENDING/%s", r->mountpoint, j->name);
	snprintf(previous, sizeof(previous), "%s/.stages/AWSPREVIOUS/%s", r->mountpoint, j->name);
	snprintf(event, sizeof(event), "{\"Step\":\"%s\",\"SecretId\":\"%s\",\"ClientRequestToken\":\"%s\"}",
		 step, arn, j->token);
	/* A clean environment: nothing of the daemon's leaks into the command. */
	if (env_add(env, &n, "PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") ||
	    env_add(env, &n, "LANG", "C.UTF-8") || env_add(env, &n, "HOME", "/") ||
	    env_add(env, &n, "SECRETSFS_STEP", step) || env_add(env, &n, "SECRETSFS_SECRET_ID", arn) ||
	    env_add(env, &n, "SECRETSFS_SECRET_NAME", j->name) ||
	    env_add(env, &n, "SECRETSFS_TOKEN", j->token) ||
	    env_add(env, &n, "SECRETSFS_MOUNT", r->mountpoint) ||
	    env_add(env, &n, "SECRETSFS_CURRENT", current) ||
	    env_add(env, &n, "SECRETSFS_PENDING", pending) ||
	    env_add(env, &n, "SECRETSFS_PREVIOUS", previous) ||
	    env_add(env, &n, "SECRETSFS_EVENT", event))
		goto out;
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		rc = -errno;
		goto out;
	}
	/* posix_spawn (vfork underneath): the child never holds a copy of the
	 * daemon's memory, where keys live. */
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, pipefd[1], STDERR_FILENO);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	/* Its own process group, so a timeout ends the command's children too. */
	posix_spawnattr_t attr;
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
	posix_spawnattr_setpgroup(&attr, 0);
	rc = posix_spawn(&pid, exe, &fa, &attr, argv, env);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(pipefd[1]);
	pipefd[1] = -1;
	if (rc) {
		snprintf(why, cap, "%s: cannot run the rotation command: %s", step, strerror(rc));
		rc = -rc;
		goto out;
	}
	pthread_mutex_lock(&r->lock);
	r->child = pid;
	pthread_mutex_unlock(&r->lock);

	char buf[4097];
	size_t len = 0;
	time_t deadline = time(NULL) + ROTATION_STEP_TIMEOUT_S;
	bool timed_out = false;
	for (;;) {
		struct pollfd p = { pipefd[0], POLLIN, 0 };
		int left = (int)(deadline - time(NULL));
		if (left <= 0) {
			/* TERM lets the command clean up; KILL follows shortly. */
			timed_out = true;
			kill(-pid, SIGTERM);
			struct timespec grace = { 5, 0 };
			nanosleep(&grace, NULL);
			kill(-pid, SIGKILL);
			break;
		}
		int pr = poll(&p, 1, left * 1000);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			continue;
		ssize_t got = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);
		if (got <= 0)
			break;
		len += (size_t)got;
		log_output(j->name, step, buf, &len, len == sizeof(buf) - 1);
	}
	log_output(j->name, step, buf, &len, true);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&r->lock);
	r->child = 0;
	pthread_mutex_unlock(&r->lock);
	if (timed_out)
		snprintf(why, cap, "%s: ran over %d seconds", step, ROTATION_STEP_TIMEOUT_S);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		rc = 0;
	else if (WIFEXITED(status))
		snprintf(why, cap, "%s: exit status %d", step, WEXITSTATUS(status));
	else
		snprintf(why, cap, "%s: killed by signal %d", step, WTERMSIG(status));
	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = -EIO;
out:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	for (int i = 0; i < n; i++)
		free(env[i]);
	if (rc == -ENOMEM && !why[0])
		snprintf(why, cap, "%s: out of memory", step);
	return rc;
}

static void run_job(struct rotator *r, struct job *j)
{
	char why[PATH_MAX + 256] = "";
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		pthread_mutex_lock(&r->lock);
		bool stopping = r->stopping;
		pthread_mutex_unlock(&r->lock);
		if (stopping) {
			snprintf(why, sizeof(why), "%s: the daemon stopped", steps[i]);
			break;
		}
		sm_rotation_step(r->sm, j->name, steps[i]);
		log_info("%s: rotation step %s", j->name, steps[i]);
		if (run_step(r, j, steps[i], why, sizeof(why)))
			break;
		why[0] = '\0';
	}
	sm_rotation_end(r->sm, j->name, j->token, why[0] ? why : NULL);
}

static void *worker(void *arg)
{
	struct rotator *r = arg;
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->head && !r->stopping)
			pthread_cond_wait(&r->wake, &r->lock);
		if (r->stopping)
			break;
		struct job *j = r->head;
		r->head = j->next;
		if (!r->head)
			r->tail = NULL;
		pthread_mutex_unlock(&r->lock);
		run_job(r, j);
		free(j->name);
		free(j->command);
		free(j);
		pthread_mutex_lock(&r->lock);
	}
	/* Rotations never started: their status says why. */
	while (r->head) {
		struct job *j = r->head;
		r->head = j->next;
		sm_rotation_end(r->sm, j->name, j->token, "createSecret: the daemon stopped");
		free(j->name);
		free(j->command);
		free(j);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int rotator_start(struct sm *sm, const char *mountpoint, const char *rotation_dir,
		  struct rotator **out)
{
	struct rotator *r = calloc(1, sizeof(*r));
	if (!r || !(r->mountpoint = strdup(mountpoint)) ||
	    (rotation_dir && !(r->rotation_dir = strdup(rotation_dir)))) {
		if (r)
			free(r->mountpoint);
		free(r);
		return -ENOMEM;
	}
	r->sm = sm;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->wake, NULL);
	int rc = pthread_create(&r->thread, NULL, worker, r);
	if (rc) {
		free(r->mountpoint);
		free(r->rotation_dir);
		free(r);
		return -rc;
	}
	*out = r;
	return 0;
}

void rotator_stop(struct rotator *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	if (r->child > 0)
		kill(-r->child, SIGKILL);
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->wake);
	pthread_mutex_destroy(&r->lock);
	free(r->mountpoint);
	free(r->rotation_dir);
	free(r);
}

int rotator_rotate(struct rotator *r, const char *name, const char *token)
{
	char command[4096];
	struct job *j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	int rc = token ? sm_rotation_start_as(r->sm, name, token, command, sizeof(command))
		       : sm_rotation_start(r->sm, name, j->token, command, sizeof(command));
	if (!rc && token)
		snprintf(j->token, sizeof(j->token), "%s", token);
	if (rc) {
		free(j);
		return rc;
	}
	j->name = strdup(name);
	j->command = strdup(command);
	if (!j->name || !j->command) {
		sm_rotation_end(r->sm, name, j->token, "createSecret: out of memory");
		free(j->name);
		free(j->command);
		free(j);
		return -ENOMEM;
	}
	pthread_mutex_lock(&r->lock);
	if (r->tail)
		r->tail->next = j;
	else
		r->head = j;
	r->tail = j;
	pthread_cond_signal(&r->wake);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

void rotator_run_due(struct rotator *r)
{
	struct sm_listing due;
	if (sm_rotations_due(r->sm, &due))
		return;
	for (size_t i = 0; i < due.count; i++) {
		int rc = rotator_rotate(r, due.entries[i].name, NULL);
		if (rc)
			log_warn("%s: scheduled rotation not started: %s", due.entries[i].name,
				 strerror(-rc));
	}
	sm_listing_free(&due);
}
