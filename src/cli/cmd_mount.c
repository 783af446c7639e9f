#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312
#include <fuse_opt.h>

#include "api/api.h"
#include "cli/cli.h"
#include "crypto/crypto.h"
#include "fs/fs.h"
#include "secrets/keyring.h"
#include "secrets/secrets.h"
#include "store/store.h"
#include "util/log.h"

static const char usage[] =
	"usage: secretsfs mount STORE MOUNTPOINT [-f] [-o OPT[,OPT...]]\n"
	"\n"
	"Mounts STORE at MOUNTPOINT. Runs in the background once the store is\n"
	"unlocked and mounted, unless -f is given. Unmount with fusermount3 -u.\n"
	"\n"
	"  -f                     stay in the foreground, log to stderr\n"
	"  -o key_file=FILE       unlock with this key file\n"
	"  -o passphrase_file=F   unlock with the first line of F\n"
	"                         (neither: the passphrase is asked on the terminal)\n"
	"  -o allow_other         let other users in (the kernel still checks modes)\n"
	"  -o ro                  read-only\n"
	"  -o recovery_window=D   days a deleted secret can be restored: 0 (delete at\n"
	"                         once) or 7 to 30 (default 30)\n"
	"  -o log_file=FILE       log here (default: stderr with -f, syslog otherwise)\n"
	"  -o audit_log=FILE      one JSON line per operation, CloudTrail-shaped\n"
	"  -o audit_required      refuse operations the audit log cannot record\n"
	"  -o policy=FILE         an IAM-like access policy on top of file modes\n"
	"                         (docs/policy.md)\n"
	"  -o rotation_dir=DIR    rotation commands only from below DIR\n"
	"                         (docs/rotation.md)\n"
	"  -o threads=N           at most N threads serving requests (default 16)\n"
	"  -o max_read=BYTES      largest READ the kernel sends, 4096 to 131072\n"
	"                         (default 8192; docs/performance.md)\n"
	"  -o uid=N,gid=N         owner of new secrets and folders (default: the caller)\n"
	"  -o umask=M             new secrets get 0666 & ~M, folders 0777 & ~M\n"
	"                         (default: secrets 0600 less the caller's umask)\n"
	"  -o nosuid,nodev,noexec,noatime   passed to the kernel; rw and fstab's\n"
	"                         auto, noauto, nofail, _netdev, x-* are accepted\n"
	"  -o skip_damaged        mount, read-only, a store whose records fail their\n"
	"                         checks: the damaged secrets give EIO\n"
	"  -o nonempty            mount on a folder that is not empty (hiding\n"
	"                         its files until unmounted)\n"
	"  -o debug               trace every FUSE request (with -f)\n"
	"  -o api=ADDR:PORT       serve the Secrets Manager API too (docs/api.md), with\n"
	"  -o api_credentials=F   its access keys (secretsfs serve --help), or\n"
	"  -o api_auth=none       no signatures, on loopback only (tests)\n"
	"  -o api_tls_cert=F,api_tls_key=F   HTTPS\n"
	"  -o api_agent_listen=ADDR:PORT     the Agent's endpoint on its own listener\n"
	"  -o api_agent_token_file=F         the Agent's SSRF token (default $AWS_TOKEN)\n";

struct mount_opts {
	char *key_file;
	char *passphrase_file;
	char *log_file;
	char *audit_log;
	char *policy;
	char *rotation_dir;
	int allow_other;
	int readonly;
	int recovery_window;
	int threads;
	int max_read;
	int debug;
	int uid, gid, umask; /* -1: unset */
	int audit_required;
	int skip_damaged;
	int nonempty;
	char kernel_flags[128]; /* nosuid, nodev, noexec, noatime as given */
	char *api, *api_credentials, *api_auth, *api_tls_cert, *api_tls_key;
	char *api_agent_listen, *api_agent_token_file;
};

#define OPT(t, p) { t, offsetof(struct mount_opts, p), 1 }
static const struct fuse_opt opt_spec[] = {
	OPT("key_file=%s", key_file),
	OPT("passphrase_file=%s", passphrase_file),
	OPT("log_file=%s", log_file),
	OPT("audit_log=%s", audit_log),
	OPT("audit_required", audit_required),
	OPT("skip_damaged", skip_damaged),
	OPT("policy=%s", policy),
	OPT("rotation_dir=%s", rotation_dir),
	OPT("allow_other", allow_other),
	OPT("ro", readonly),
	OPT("recovery_window=%d", recovery_window),
	OPT("threads=%d", threads),
	OPT("max_read=%d", max_read),
	OPT("debug", debug),
	OPT("uid=%d", uid),
	OPT("gid=%d", gid),
	OPT("umask=%o", umask),
	OPT("nonempty", nonempty),
	OPT("api=%s", api),
	OPT("api_credentials=%s", api_credentials),
	OPT("api_auth=%s", api_auth),
	OPT("api_tls_cert=%s", api_tls_cert),
	OPT("api_tls_key=%s", api_tls_key),
	OPT("api_agent_listen=%s", api_agent_listen),
	OPT("api_agent_token_file=%s", api_agent_token_file),
	FUSE_OPT_KEY("nosuid", 1),
	FUSE_OPT_KEY("nodev", 1),
	FUSE_OPT_KEY("noexec", 1),
	FUSE_OPT_KEY("noatime", 1),
	FUSE_OPT_KEY("nodiratime", 1),
	/* What mount(8) and fstab add, harmless here. */
	FUSE_OPT_KEY("rw", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("suid", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("dev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("exec", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("atime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("relatime", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("async", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END,
};

static int unknown_option(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct mount_opts *mo = data;
	(void)outargs;
	if (key == 1) {
		size_t used = strlen(mo->kernel_flags);
		snprintf(mo->kernel_flags + used, sizeof(mo->kernel_flags) - used, ",%s", arg);
		return 0;
	}
	/* systemd's and fstab's own options (x-systemd.automount, comment=...). */
	if (key == FUSE_OPT_KEY_OPT && (strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0 ||
					!arg[0]))
		return 0; /* an empty option (a trailing comma) is no option */
	if (key == FUSE_OPT_KEY_OPT) {
		cli_error("unknown mount option '%s' (see secretsfs mount --help)", arg);
		return -1;
	}
	return 1;
}

static int parse_o(const char *optstr, struct mount_opts *mo)
{
	char *argv[] = { "secretsfs", "-o", (char *)optstr, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int rc = fuse_opt_parse(&args, mo, opt_spec, unknown_option);
	fuse_opt_free_args(&args);
	return rc;
}

/* --- upkeep once a minute: expired deletions, access dates --- */

static pthread_mutex_t purge_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t purge_cond = PTHREAD_COND_INITIALIZER;
static int purge_stop;

struct upkeep {
	struct sm *sm;
	struct fs *fs;
};

static void *purge_loop(void *arg)
{
	struct upkeep *u = arg;
	struct sm *sm = u->sm;
	pthread_mutex_lock(&purge_lock);
	while (!purge_stop) {
		struct timespec when;
		clock_gettime(CLOCK_REALTIME, &when);
		when.tv_sec += 60;
		pthread_cond_timedwait(&purge_cond, &purge_lock, &when);
		if (purge_stop)
			break;
		pthread_mutex_unlock(&purge_lock);
		sm_purge_expired(sm);
		sm_flush_access(sm);
		fs_tick(u->fs);
		pthread_mutex_lock(&purge_lock);
	}
	pthread_mutex_unlock(&purge_lock);
	return NULL;
}

/*
 * Without log_file=, the daemon logs to syslog, or on a host without one to
 * STORE.log beside the store (mode 0600, names only, never values), said
 * once on stderr while it is still the caller's: the reason for a refused
 * write must always be somewhere (docs/secretsfs.1, FILES).
 */
/* Why a log file was not opened (log_open's -EPERM is its checks). */
static const char *log_refusal(int rc)
{
	return rc == -EPERM ? "not a private regular file of yours (a symlink, a FIFO, a second "
			      "link or another user's file)"
			    : strerror(-rc);
}

static void open_daemon_log(const char *store_path, bool debug)
{
	char *fallback = NULL;
	const char *file = NULL;
	int rc = asprintf(&fallback, "%s.log", store_path) < 0
			 ? -ENOMEM
			 : log_open_daemon(fallback, debug, &file);
	if (rc)
		cli_error("%s: cannot open the daemon's log: %s; it is lost (give -o log_file=FILE)",
			  fallback ? fallback : store_path, log_refusal(rc));
	else if (file)
		fprintf(stderr, "secretsfs: no syslog on this host: the daemon logs to %s\n", file);
	free(fallback);
}

static void report(int fd, char status)
{
	if (fd >= 0) {
		ssize_t ignored = write(fd, &status, 1);
		(void)ignored;
		close(fd);
	}
}

/* The API of this daemon (-o api=), serving the domain the mount does. */
static struct api *api;

/* RotateSecret through the API: the mount's rotator runs the steps. */
static int mount_rotate(void *ctx, const char *name, const char *token)
{
	return fs_rotate(ctx, name, token);
}

static int start_api(struct sm *sm, struct fs *fs, const struct mount_opts *mo,
		     const struct policy *policy, const char *audit_abs, int foreground)
{
	struct cli_api ca = {
		.listen = mo->api,
		.agent_listen = mo->api_agent_listen,
		.credentials = mo->api_credentials,
		.auth_none = mo->api_auth && strcmp(mo->api_auth, "none") == 0,
		.tls_cert = mo->api_tls_cert,
		.tls_key = mo->api_tls_key,
		.agent_token_file = mo->api_agent_token_file,
		.audit_log = audit_abs,
		.audit_required = mo->audit_required,
		.debug = mo->debug,
		.policy = policy,
		.new_uid = mo->uid >= 0 ? (uint32_t)mo->uid : getuid(),
		.new_gid = mo->gid >= 0 ? (uint32_t)mo->gid : getgid(),
		.new_mode = mo->umask >= 0 ? 0666 & ~(uint32_t)mo->umask : 0600,
		.rotate = mount_rotate,
		.rotate_ctx = fs,
	};
	/* Its info lines belong in the daemon's log, not on the terminal of
	 * the mount command that is about to return; warnings go there too. */
	if (!foreground && !mo->log_file)
		log_set_threshold(LOG_WARNING);
	int rc = cli_api_start(sm, &ca, &api);
	log_set_threshold(LOG_INFO);
	return rc;
}

/* A refusal that a replica made again from etcd would cure: its file torn
 * or damaged, not a wrong key, a busy store or a missing file. */
static bool replica_unreadable(int rc, const struct cli_open *how)
{
	return how->damage.count || rc == -EUCLEAN || rc == -EIO || rc == -EBADMSG;
}

static int run_mount(const char *store_path, const char *mountpoint, struct mount_opts *mo,
		     int foreground, int status_fd)
{
	struct sm *sm = NULL;
	struct replica *replica = NULL;
	struct fs *fs = NULL;
	struct policy *policy = NULL;
	pthread_t purger;
	int purger_started = 0, rc, status = 1;

	cli_harden_process();
	if (cli_lock_memory()) {
		cli_error("cannot lock memory for secrets (raise RLIMIT_MEMLOCK)");
		goto out;
	}
	if (mo->log_file && (rc = log_open(LOG_TO_FILE, mo->log_file, mo->debug))) {
		cli_error("%s: cannot open log file: %s", mo->log_file, log_refusal(rc));
		goto out;
	}
	if (mo->policy) {
		char why[160];
		if (!(policy = policy_load(mo->policy, why, sizeof(why)))) {
			cli_error("%s: %s", mo->policy, why);
			goto out;
		}
	}
	struct sm_options so = {
		.recovery_window_days = mo->recovery_window,
		.readonly = mo->readonly,
		.root_uid = mo->uid >= 0 ? (uint32_t)mo->uid : getuid(),
		.root_gid = mo->gid >= 0 ? (uint32_t)mo->gid : getgid(),
		.root_mode = 0755,
	};
	struct unlock_input secret = { 0 };
	struct cli_open how = { .key_file = mo->key_file, .passphrase_file = mo->passphrase_file,
				.skip_damaged = mo->skip_damaged, .options = &so,
				.consequence = "; nothing mounted",
				.damage_advice = "; -o skip_damaged serves the rest",
				.input = &secret };
	rc = cli_open_domain(store_path, &how, &sm);
	if (rc && !mo->readonly && replica_unreadable(rc, &how) &&
	    cli_cluster_has_note(store_path) &&
	    (secret.secret.bytes ||
	     !unlock_input_read(&secret, mo->key_file, mo->passphrase_file, 0)) &&
	    !cli_cluster_rebuild(store_path, &secret.secret)) {
		unlock_input_free(&secret);
		rc = cli_open_domain(store_path, &how, &sm);
	}
	unlock_input_free(&secret);
	if (rc)
		goto out;
	if (cli_cluster_attach(sm, &replica))
		goto out;
	if (sm_readonly(sm) && !mo->readonly)
		fprintf(stderr, "secretsfs: %s: %s; mounted read-only, the damaged secrets "
			"give EIO (secretsfs check lists every problem)\n", store_path,
			how.damage.first);
	/* The audit log by absolute path: a background daemon changes folder. */
	char *audit_abs = NULL;
	if (mo->audit_log) {
		char cwd[4096];
		if (mo->audit_log[0] == '/' ? !(audit_abs = strdup(mo->audit_log))
					    : (!getcwd(cwd, sizeof(cwd)) ||
					       asprintf(&audit_abs, "%s/%s", cwd, mo->audit_log) < 0)) {
			cli_error("%s: cannot resolve the audit log's path", mo->audit_log);
			goto out;
		}
	}
	char *mountpoint_abs = realpath(mountpoint, NULL);
	if (!mountpoint_abs) {
		cli_error("%s: %s", mountpoint, strerror(errno));
		goto out;
	}
	/* Resolved once: each command's resolved path must lie below it. */
	char *rotation_dir_abs = NULL;
	struct stat rd;
	if (mo->rotation_dir && (!(rotation_dir_abs = realpath(mo->rotation_dir, NULL)) ||
				 stat(rotation_dir_abs, &rd) != 0 || !S_ISDIR(rd.st_mode))) {
		cli_error("rotation_dir=%s: %s", mo->rotation_dir,
			  rotation_dir_abs ? "not a folder" : strerror(errno));
		free(rotation_dir_abs);
		free(mountpoint_abs);
		goto out;
	}
	struct fs_options fo = {
		.allow_other = mo->allow_other,
		.readonly = sm_readonly(sm),
		.debug = mo->debug && foreground,
		.fsname = store_path,
		.max_threads = mo->threads > 0 ? (unsigned)mo->threads : 0,
		.max_read = mo->max_read > 0 ? (unsigned)mo->max_read : 0,
		.kernel_flags = mo->kernel_flags,
		.new_uid = mo->uid,
		.new_gid = mo->gid,
		.new_umask = mo->umask,
		.mountpoint = mountpoint_abs,
		.rotation_dir = rotation_dir_abs,
		.audit_log = audit_abs,
		.audit_required = mo->audit_required,
		.policy = policy,
	};
	rc = fs_mount(sm, mountpoint, &fo, &fs);
	if (!rc)
		cli_status_start(mountpoint_abs, store_path, replica);
	free(mountpoint_abs);
	free(rotation_dir_abs);
	int api_rc = 0;
	if (!rc && mo->api && (rc = api_rc = start_api(sm, fs, mo, policy, audit_abs, foreground)))
		cli_error("%s: cannot serve the API at %s (the log says why); nothing mounted",
			  store_path, mo->api);
	free(audit_abs);
	if (rc) {
		if (!api_rc)
			cli_error("%s: cannot mount (see the log)", mountpoint);
		goto out;
	}
	if (!foreground) {
		/* Detach: the parent exits 0 now that the mount is up. */
		setsid();
		if (chdir("/") != 0) {
			/* keep going: the working folder is not needed */
		}
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (!mo->log_file)
			open_daemon_log(store_path, mo->debug);
		if (null >= 0) {
			dup2(null, STDIN_FILENO);
			dup2(null, STDOUT_FILENO);
			dup2(null, STDERR_FILENO);
			close(null);
		}
	}
	report(status_fd, 0);
	status_fd = -1;
	log_info("%s mounted at %s", store_path, mountpoint);
	struct upkeep upkeep = { sm, fs };
	if (pthread_create(&purger, NULL, purge_loop, &upkeep) == 0)
		purger_started = 1;
	rc = fs_serve(fs);
	status = rc ? 1 : 0;
	log_info("%s unmounted from %s", store_path, mountpoint);
out:
	if (purger_started) {
		pthread_mutex_lock(&purge_lock);
		purge_stop = 1;
		pthread_cond_signal(&purge_cond);
		pthread_mutex_unlock(&purge_lock);
		pthread_join(purger, NULL);
	}
	cli_status_stop();
	api_stop(api);
	api = NULL;
	/* The replica's thread calls into the domain, and so into fs's hook. */
	cli_cluster_detach(sm, replica);
	fs_destroy(fs);
	policy_free(policy);
	sm_close(sm);
	report(status_fd, (char)status);
	crypto_shutdown();
	log_close();
	return status;
}

/*
 * A daemon that died leaves its mount behind, answering ENOTCONN. Mounting
 * again over it is the recovery, so clear it first (lazily: processes still
 * inside keep their error, never an empty folder).
 */
static void clean_dead_mount(const char *mountpoint)
{
	struct statfs sfs;
	/* statfs always reaches the daemon; stat may be answered from the
	 * kernel's attribute cache for a second after the daemon died. */
	if (statfs(mountpoint, &sfs) == 0 || (errno != ENOTCONN && errno != ECONNABORTED))
		return;
	if (umount2(mountpoint, MNT_DETACH) != 0) {
		pid_t pid = fork();
		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", "-z", mountpoint, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
	}
	if (statfs(mountpoint, &sfs) == 0)
		fprintf(stderr, "secretsfs: %s: cleaned up the mount of a daemon that had died\n",
			mountpoint);
}

static int is_fuse(const char *fstype)
{
	return strcmp(fstype, "fuse") == 0 || strcmp(fstype, "fuseblk") == 0 ||
	       strncmp(fstype, "fuse.", 5) == 0;
}

/*
 * Refuses, before anything goes to the background, a mount point that is
 * not a folder (the mount would answer EIO to everything), one where a FUSE
 * filesystem is mounted (a second store would hide the first, its daemon
 * still running), and a folder with files in it, or that the caller cannot
 * list, unless nonempty is given.
 * Another kind of mount point (a tmpfs, a bind mount) is mounted over as
 * usual; what it shows must be empty. An autofs trigger (systemd's
 * automount) is what an automounted store is mounted on: not looked into.
 */
static int check_mountpoint(const char *mountpoint, int nonempty)
{
	struct stat sb;
	struct mount_entry on;
	int rc = 1;
	if (stat(mountpoint, &sb) != 0) {
		cli_error("%s: %s", mountpoint, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(sb.st_mode)) {
		cli_error("%s: not a folder: a store is mounted on an empty folder", mountpoint);
		return 1;
	}
	char *abs = realpath(mountpoint, NULL);
	int is_mount = abs && mountinfo_at(abs, &on) == 0;
	if (is_mount && mountinfo_is_store(&on)) {
		cli_error("%s: the store %s is mounted here already; unmount it first "
			  "(fusermount3 -u %s)", mountpoint, on.source, mountpoint);
		goto out;
	}
	if (is_mount && is_fuse(on.fstype)) {
		cli_error("%s: a FUSE filesystem (%s, %s) is mounted here already; unmount it first",
			  mountpoint, on.fstype, on.source);
		goto out;
	}
	if (!nonempty && !(is_mount && strcmp(on.fstype, "autofs") == 0)) {
		/* A folder that cannot be listed might hide anything: refused
		 * like one with files, not mounted over on trust. */
		DIR *d = opendir(mountpoint);
		if (!d) {
			cli_error("%s: cannot look into it to see that it is empty: %s (-o nonempty "
				  "to mount anyway)", mountpoint, strerror(errno));
			goto out;
		}
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
				break;
		closedir(d);
		if (e) {
			cli_error("%s: not empty: the mount would hide its files (-o nonempty to "
				  "mount anyway)", mountpoint);
			goto out;
		}
	}
	rc = 0;
out:
	free(abs);
	return rc;
}

int cmd_mount(int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	struct mount_opts mo = { .recovery_window = SM_DEFAULT_RECOVERY_DAYS, .threads = -1,
				 .max_read = INT_MIN, .uid = -1, .gid = -1, .umask = -1 };
	int foreground = 0, c;

	unlock_input_mount_style();
	while ((c = getopt_long(argc, argv, "hfo:d", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': foreground = 1; break;
		case 'd': mo.debug = 1; break;
		case 'o':
			if (parse_o(optarg, &mo) != 0)
				return EXIT_MISUSE;
			break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return EXIT_MISUSE;
		}
	}
	if (optind != argc - 2) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	if (mo.recovery_window != 0 && (mo.recovery_window < 7 || mo.recovery_window > 30)) {
		cli_error("recovery_window=%d: Secrets Manager allows 7 to 30 days, or 0 to delete at once",
			  mo.recovery_window);
		return EXIT_MISUSE;
	}
	if (mo.threads != -1 && (mo.threads < 1 || mo.threads > 256)) {
		cli_error("threads=%d: give 1 to 256", mo.threads);
		return EXIT_MISUSE;
	}
	if (mo.max_read != INT_MIN && (mo.max_read < 4096 || mo.max_read > 131072)) {
		cli_error("max_read=%d: give 4096 to 131072 bytes", mo.max_read);
		return EXIT_MISUSE;
	}
	if ((mo.uid != -1 && mo.uid < 0) || (mo.gid != -1 && mo.gid < 0) ||
	    (mo.umask != -1 && (mo.umask < 0 || mo.umask > 0777))) {
		cli_error("uid=, gid= are ids and umask= an octal mask up to 0777");
		return EXIT_MISUSE;
	}
	if (mo.audit_required && !mo.audit_log) {
		cli_error("audit_required needs audit_log=PATH");
		return EXIT_MISUSE;
	}
	if (mo.key_file && mo.passphrase_file) {
		cli_error("give key_file= or passphrase_file=, not both");
		return EXIT_MISUSE;
	}
	if (mo.api_auth && strcmp(mo.api_auth, "none") != 0 && strcmp(mo.api_auth, "sigv4") != 0) {
		cli_error("api_auth=%s: give sigv4 (the default) or none", mo.api_auth);
		return EXIT_MISUSE;
	}
	bool api_unsigned = mo.api_auth && strcmp(mo.api_auth, "none") == 0;
	if ((mo.api_credentials || mo.api_auth || mo.api_tls_cert || mo.api_tls_key ||
	     mo.api_agent_listen || mo.api_agent_token_file) && !mo.api) {
		cli_error("the api_* options go with api=ADDR:PORT");
		return EXIT_MISUSE;
	}
	if (mo.api && !api_unsigned && !mo.api_credentials) {
		cli_error("api= needs api_credentials=FILE (or api_auth=none, for tests on loopback)");
		return EXIT_MISUSE;
	}
	if (mo.api && api_unsigned && mo.api_credentials) {
		cli_error("api_auth=none takes no api_credentials=");
		return EXIT_MISUSE;
	}
	if (!mo.api_tls_cert != !mo.api_tls_key) {
		cli_error("api_tls_cert= and api_tls_key= go together");
		return EXIT_MISUSE;
	}
	const char *store_path = argv[optind], *mountpoint = argv[optind + 1];
	clean_dead_mount(mountpoint);
	if (check_mountpoint(mountpoint, mo.nonempty))
		return 1;
	char *store_abs = realpath(store_path, NULL);
	if (!store_abs) {
		cli_error("%s: no such store", store_path);
		return 1;
	}
	if (foreground) {
		int status = run_mount(store_abs, mountpoint, &mo, 1, -1);
		free(store_abs);
		return status;
	}
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		cli_error("cannot create a pipe: %s", strerror(errno));
		free(store_abs);
		return 1;
	}
	/* Fork first: memory locks do not survive fork, so the child does all
	 * the key work. Its stderr is still ours until it is mounted. */
	pid_t pid = fork();
	if (pid < 0) {
		cli_error("cannot fork: %s", strerror(errno));
		free(store_abs);
		return 1;
	}
	if (pid == 0) {
		close(pipefd[0]);
		_exit(run_mount(store_abs, mountpoint, &mo, 0, pipefd[1]));
	}
	close(pipefd[1]);
	char status = 1;
	ssize_t got;
	while ((got = read(pipefd[0], &status, 1)) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	free(store_abs);
	if (got != 1) {
		int wstatus;
		waitpid(pid, &wstatus, 0);
		return 1;
	}
	if (status != 0)
		waitpid(pid, NULL, 0);
	return status;
}
