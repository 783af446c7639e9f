/*
 * The mount's life: fs_mount, fs_serve, fs_tick, fs_destroy and op_init;
 * the one fuse_lowlevel_ops table; how long the kernel may cache
 * attributes, and the change hook that drops its copy (see fs/internal.h).
 */
#include "fs/fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "secrets/audit.h"
#include "fs/internal.h"
#include "fs/nodes.h"
#include "fs/rotator.h"
#include "util/log.h"

/*
 * Every request names an inode whose meaning (its virtual path) the daemon
 * decides afresh, and a store has one daemon, so a cached name can only be
 * stale in being gone, which the next request answers with ENOENT: names
 * may be cached long.
 */
const double ENTRY_TIMEOUT = 60.0;
/*
 * Sizes and dates can change through another path of the same secret (a
 * view, a rotation, the CLI). Attributes of secrets and folders are still
 * cached long: every change to one reaches on_index_change, which drops the
 * kernel's copy at once. The views
 * (.versions, .stages, .fields, .deleted, scratch files) derive theirs from
 * a secret and are not tracked one by one: they keep a short timeout. With
 * default_permissions the kernel needs fresh attributes for every open, so
 * a short timeout costs one GETATTR round trip per open of an idle file.
 */
static const double ATTR_TIMEOUT = 60.0;
const double VIEW_ATTR_TIMEOUT = 1.0;

double attr_timeout(const char *vpath)
{
	/* The top stays short too: a stat of the mount point is how tools and
	 * containers notice that the daemon has died (ENOTCONN). */
	return vpath[0] == '.' || vpath[0] == '\0' ? VIEW_ATTR_TIMEOUT : ATTR_TIMEOUT;
}

/* Puts an open writer's size into st, if there is one; how long the kernel
 * may keep st (vpath NULL: a path no longer known). */
double attr_validity(struct fs *fs, fuse_ino_t ino, const char *vpath, struct stat *st)
{
	if (S_ISREG(st->st_mode) && writer_size(fs, ino, &st->st_size))
		return VIEW_ATTR_TIMEOUT; /* a writer's size, until its close */
	return vpath ? attr_timeout(vpath) : VIEW_ATTR_TIMEOUT;
}

/* Drops the kernel's cached attributes of ino (not its entry, not its pages). */
void forget_attributes(struct fs *fs, fuse_ino_t ino)
{
	/* -ENOENT: the kernel holds no such inode now, which is as good. */
	if (ino && fs->mounted)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

/* Drops the kernel's cached name vpath after it went without a request
 * that told the kernel (a refused create). Not from a request the kernel
 * sends holding the lock of vpath's folder, which this waits for. */
void forget_entry(struct fs *fs, const char *vpath)
{
	char parent[VPATH_MAX];
	const char *slash = strrchr(vpath, '/');
	size_t plen = slash ? (size_t)(slash - vpath) : 0;
	const char *base = slash ? slash + 1 : vpath;
	if (plen >= sizeof(parent) || !fs->mounted)
		return;
	memcpy(parent, vpath, plen);
	parent[plen] = '\0';
	fuse_ino_t dir = nodes_find(fs->nodes, parent);
	/* -ENOENT: the kernel holds no such name, which is as good. */
	if (dir)
		fuse_lowlevel_notify_inval_entry(fs->se, dir, base, strlen(base));
}

/*
 * The change hook (sm_set_change_hook): the secret or folder name changed,
 * by a request, a rotation, a purge, a first read of the day or another
 * host's commit. Its own node (and its folder's, with SM_CHANGE_FOLDER)
 * lose their cached attributes; the kernel discards a GETATTR answer older
 * than the invalidation. A change of this host's came through a request the
 * kernel made, which raised its inotify events; one another host made
 * (SM_CHANGE_REMOTE) did not, so the kernel is told of a name it knew
 * that is gone, from the notifier's thread (this one holds the writer
 * lock). That name's node stops answering to it now, as after an unlink,
 * so that a lookup after this change makes a new node.
 */
static void on_index_change(void *ctx, const char *name, unsigned what)
{
	struct fs *fs = ctx;
	char parent[VPATH_MAX];
	const char *slash = strrchr(name, '/');
	size_t plen = slash ? (size_t)(slash - name) : 0;
	fuse_ino_t ino = nodes_find(fs->nodes, name);
	forget_attributes(fs, ino);
	if ((what & SM_CHANGE_FOLDER) && plen < sizeof(parent)) {
		memcpy(parent, name, plen);
		parent[plen] = '\0';
		forget_attributes(fs, nodes_find(fs->nodes, parent));
	}
	if ((what & SM_CHANGE_REMOTE) && (what & SM_CHANGE_GONE) && ino) {
		nodes_detach(fs->nodes, name);
		notifier_post(fs->notifier, name, ino);
	}
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	/* O_TRUNC arrives with open, so a truncating writer is one commit. */
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* The kernel would trust its own idea of the size: never. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	conn->want &= ~FUSE_CAP_READDIRPLUS;
	conn->max_read = fs->opt.max_read;
}

static const struct fuse_lowlevel_ops ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.flush = op_flush,
	.fsync = op_fsync,
	.release = op_release,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.releasedir = op_releasedir,
	.statfs = op_statfs,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.setxattr = op_setxattr,
	.removexattr = op_removexattr,
};

int fs_mount(struct sm *sm, const char *mountpoint, const struct fs_options *opt, struct fs **out)
{
	char options[1024];
	struct fs *fs = calloc(1, sizeof(*fs));
	int rc = -EIO;

	*out = NULL;
	if (!fs || !(fs->nodes = nodes_new())) {
		free(fs);
		return -ENOMEM;
	}
	fs->sm = sm;
	fs->opt = *opt;
	if (!fs->opt.max_read)
		fs->opt.max_read = FS_DEFAULT_MAX_READ;
	if (!fs->opt.max_threads)
		fs->opt.max_threads = FS_DEFAULT_MAX_THREADS;
	pthread_mutex_init(&fs->writers_lock, NULL);
	/* default_permissions: the kernel checks mode and owner, always. */
	snprintf(options, sizeof(options),
		 "default_permissions,max_read=%u,fsname=%s,subtype=secretsfs%s%s%s", fs->opt.max_read,
		 opt->fsname ? opt->fsname : "secretsfs", opt->allow_other ? ",allow_other" : "",
		 opt->readonly ? ",ro" : "", opt->kernel_flags ? opt->kernel_flags : "");
	char *argv[] = { "secretsfs", "-o", options, opt->debug ? "-d" : NULL, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(opt->debug ? 4 : 3, argv);
	fs->se = fuse_session_new(&args, &ops, sizeof(ops), fs);
	if (!fs->se) {
		log_error("cannot create the FUSE session");
		goto fail;
	}
	if (fuse_session_mount(fs->se, mountpoint) != 0) {
		log_error("%s: cannot mount here", mountpoint);
		goto fail;
	}
	fs->mounted = true;
	if ((rc = notifier_start(fs, &fs->notifier))) {
		log_error("cannot start the kernel notices' thread: %s", strerror(-rc));
		goto fail;
	}
	sm_set_change_hook(sm, on_index_change, fs);
	if ((rc = rotator_start(sm, opt->mountpoint ? opt->mountpoint : "/", opt->rotation_dir,
				&fs->rotator))) {
		log_error("cannot start the rotation thread: %s", strerror(-rc));
		goto fail;
	}
	/* The caller's strings; the rotator has its copies. */
	fs->opt.mountpoint = fs->opt.rotation_dir = NULL;
	fs->policy = opt->policy;
	if ((rc = audit_open(opt->audit_log, opt->audit_required, sm, &fs->audit))) {
		log_error("%s: cannot open the audit log: %s", opt->audit_log, strerror(-rc));
		goto fail;
	}
	*out = fs;
	return 0;
fail:
	fs_destroy(fs);
	return rc;
}

int fs_serve(struct fs *fs)
{
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();
	if (!cfg)
		return -ENOMEM;
	unsigned threads = fs->opt.max_threads;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_max_threads(cfg, threads);
	/* Threads that stay: libfuse otherwise ends idle ones and starts new
	 * ones under load, a clone and a teardown for every burst of requests. */
	fuse_loop_cfg_set_idle_threads(cfg, threads);
	if (fuse_set_signal_handlers(fs->se) != 0) {
		fuse_loop_cfg_destroy(cfg);
		return -EIO;
	}
	int rc = fuse_session_loop_mt(fs->se, cfg);
	fuse_remove_signal_handlers(fs->se);
	fuse_loop_cfg_destroy(cfg);
	return rc < 0 ? rc : 0;
}

void fs_tick(struct fs *fs)
{
	rotator_run_due(fs->rotator);
}

int fs_rotate(struct fs *fs, const char *name, const char *token)
{
	return rotator_rotate(fs->rotator, name, token);
}

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	rotator_stop(fs->rotator);
	sm_set_change_hook(fs->sm, NULL, NULL);
	notifier_stop(fs->notifier); /* no hook posts now */
	audit_close(fs->audit);
	if (fs->se) {
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	nodes_free(fs->nodes);
	free(fs);
}
