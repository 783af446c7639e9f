/*
 * `secretsfs status MOUNTPOINT` (cli.h): a mount's daemon writes what it
 * knows of its replica to a file of its own once a second (replaced by
 * rename, so a reader never sees half of it), and the command prints it
 * with the time since etcd's last word worked out at reading. The file is
 * /run/secretsfs/<hash of the mount point>.json for root's mounts, or
 * under $XDG_RUNTIME_DIR/secretsfs for a user's; it names the daemon's pid
 * and mount point, and the command believes it only while both hold. It
 * holds no secret: modes, revisions and endpoints.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "cli/cli.h"
#include "cluster/replica.h"
#include "util/log.h"
#include "util/timeutil.h"

static struct {
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	char path[4200];
	char *mountpoint, *store;
	struct replica *r;
} pub = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

static int status_dir(char *buf, size_t cap, uid_t uid)
{
	const char *runtime = getenv("XDG_RUNTIME_DIR");
	if (uid == 0)
		return snprintf(buf, cap, "/run/secretsfs") < (int)cap ? 0 : -ENAMETOOLONG;
	if (!runtime || runtime[0] != '/')
		return -ENOENT;
	return snprintf(buf, cap, "%s/secretsfs", runtime) < (int)cap ? 0 : -ENAMETOOLONG;
}

/* FNV-1a of the mount point: one file per mount point, whatever its length. */
static int status_path(char *buf, size_t cap, const char *mountpoint_abs, uid_t uid)
{
	char dir[4096];
	uint64_t h = 1469598103934665603ULL;
	int rc = status_dir(dir, sizeof(dir), uid);
	if (rc)
		return rc;
	for (const char *p = mountpoint_abs; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return snprintf(buf, cap, "%s/%016llx.json", dir, (unsigned long long)h) < (int)cap
		       ? 0 : -ENAMETOOLONG;
}

static json_object *status_json(void)
{
	json_object *o = json_object_new_object(), *eps = json_object_new_array();
	struct replica_status s = { .state = REPLICA_SYNCED };
	if (pub.r)
		replica_status(pub.r, &s);
	json_object_object_add(o, "mode", json_object_new_string(pub.r ? "etcd" : "local"));
	json_object_object_add(o, "state", json_object_new_string(replica_state_name(s.state)));
	json_object_object_add(o, "applied_revision",
			       pub.r ? json_object_new_int64(s.applied_revision) : NULL);
	for (size_t i = 0; i < s.n_endpoints; i++)
		json_object_array_add(eps, json_object_new_string(s.endpoints[i]));
	json_object_object_add(o, "endpoints", eps);
	json_object_object_add(o, "endpoint", pub.r && s.endpoint[0]
						      ? json_object_new_string(s.endpoint) : NULL);
	json_object_object_add(o, "last_contact_ms",
			       pub.r && s.last_contact_ms ? json_object_new_int64(s.last_contact_ms)
							  : NULL);
	json_object_object_add(o, "store", json_object_new_string(pub.store));
	json_object_object_add(o, "mountpoint", json_object_new_string(pub.mountpoint));
	json_object_object_add(o, "pid", json_object_new_int64(getpid()));
	json_object_object_add(o, "updated_ms", json_object_new_int64(time_now_ms()));
	return o;
}

static void publish(void)
{
	char tmp[4300];
	json_object *o = status_json();
	const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
	snprintf(tmp, sizeof(tmp), "%s.tmp", pub.path);
	int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644) : -1;
	if (fd >= 0) {
		size_t len = strlen(text);
		bool ok = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1;
		close(fd);
		if (!ok || rename(tmp, pub.path) != 0)
			unlink(tmp);
	}
	json_object_put(o);
}

static void *publisher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&pub.lock);
	while (!pub.stop) {
		pthread_mutex_unlock(&pub.lock);
		publish();
		pthread_mutex_lock(&pub.lock);
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (!pub.stop)
			pthread_cond_timedwait(&pub.cond, &pub.lock, &until);
	}
	pthread_mutex_unlock(&pub.lock);
	return NULL;
}

int cli_status_start(const char *mountpoint_abs, const char *store_path, struct replica *r)
{
	char dir[4096];
	int rc = status_dir(dir, sizeof(dir), getuid());
	if (!rc && mkdir(dir, 0755) != 0 && errno != EEXIST)
		rc = -errno;
	if (!rc)
		rc = status_path(pub.path, sizeof(pub.path), mountpoint_abs, getuid());
	if (rc) {
		log_warn("status: no folder to publish this mount's status in (%s); `secretsfs "
			 "status` will not know it", strerror(-rc));
		return rc;
	}
	if (!(pub.mountpoint = strdup(mountpoint_abs)) || !(pub.store = strdup(store_path)))
		return -ENOMEM;
	pub.r = r;
	pub.stop = false;
	if ((rc = pthread_create(&pub.thread, NULL, publisher, NULL)))
		return -rc;
	pub.running = true;
	return 0;
}

void cli_status_stop(void)
{
	if (pub.running) {
		pthread_mutex_lock(&pub.lock);
		pub.stop = true;
		pthread_cond_signal(&pub.cond);
		pthread_mutex_unlock(&pub.lock);
		pthread_join(pub.thread, NULL);
		pub.running = false;
		unlink(pub.path);
	}
	free(pub.mountpoint);
	free(pub.store);
	pub.mountpoint = pub.store = NULL;
	pub.r = NULL;
}

static const char usage[] =
	"usage: secretsfs status MOUNTPOINT\n"
	"\n"
	"Prints one JSON object about the store mounted at MOUNTPOINT: mode (local,\n"
	"or etcd for a replica), state (synced, degraded, offline, resyncing), the etcd\n"
	"revision applied, the endpoints configured and the one talked to last, and\n"
	"the milliseconds since etcd's last word (since_last_contact_ms).\n";

/* The status file of the daemon of mount, if it is still that daemon's. */
static json_object *read_status(const char *mountpoint_abs, uid_t uid)
{
	char path[4200];
	if (status_path(path, sizeof(path), mountpoint_abs, uid))
		return NULL;
	json_object *o = json_object_from_file(path), *v;
	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "mountpoint", &v) ||
	    strcmp(json_object_get_string(v), mountpoint_abs) != 0 ||
	    !json_object_object_get_ex(o, "pid", &v) || kill((pid_t)json_object_get_int64(v), 0)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

int cmd_status(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(usage, stdout);
		return 0;
	}
	if (argc != 2) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	char *abs = realpath(argv[1], NULL);
	struct mount_entry e;
	if (!abs || mountinfo_at(abs, &e) != 0 || strcmp(e.fstype, "fuse.secretsfs") != 0) {
		cli_error("%s: not a secretsfs mount point", argv[1]);
		free(abs);
		return 1;
	}
	json_object *o = read_status(abs, 0);
	if (!o && getuid() != 0)
		o = read_status(abs, getuid());
	free(abs);
	if (!o) {
		cli_error("%s: its daemon publishes no status (an older secretsfs, or it is "
			  "stopping)", argv[1]);
		return 1;
	}
	json_object *last;
	if (json_object_object_get_ex(o, "last_contact_ms", &last) && last)
		json_object_object_add(o, "since_last_contact_ms",
				       json_object_new_int64(time_now_ms() -
							     json_object_get_int64(last)));
	else
		json_object_object_add(o, "since_last_contact_ms", NULL);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return 0;
}
