#define FUSE_USE_VERSION 312

#include "fs/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fuse_lowlevel.h>

#include "fs/audit.h"
#include "secrets/policy.h"
#include "fs/nodes.h"
#include "fs/paths.h"
#include "fs/rotator.h"
#include "fs/xattrs.h"
#include "util/log.h"

/*
 * Every request names an inode whose meaning (its virtual path) the daemon
 * decides afresh, and a store has one daemon, so a cached name can only be
 * stale in being gone, which the next request answers with ENOENT: names
 * may be cached long.
 */
static const double ENTRY_TIMEOUT = 60.0;
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
static const double VIEW_ATTR_TIMEOUT = 1.0;

static double attr_timeout(const char *vpath)
{
	/* The top stays short too: a stat of the mount point is how tools and
	 * containers notice that the daemon has died (ENOTCONN). */
	return vpath[0] == '.' || vpath[0] == '\0' ? VIEW_ATTR_TIMEOUT : ATTR_TIMEOUT;
}

struct fs {
	struct sm *sm;
	struct audit *audit;
	const struct policy *policy;
	pthread_mutex_t writers_lock;
	struct handle *writers;   /* open write handles, for their sizes */
	struct rotator *rotator;
	struct node_table *nodes;
	struct fuse_session *se;
	struct fs_options opt;
	bool mounted;
};

enum handle_kind { HANDLE_READ, HANDLE_WRITE, HANDLE_DIR };

struct handle {
	enum handle_kind kind;
	fuse_ino_t ino;
	pthread_mutex_t lock;
	struct sm_snapshot *snap; /* readers: the version they opened */
	struct secbuf buf;        /* writers: the whole new value, in secure memory */
	bool dirty;               /* written or truncated since the last commit */
	bool created;             /* made by create(): commit even when empty */
	bool append;
	int failed;               /* a refused write poisons the handle: nothing commits */
	struct handle *next_writer, *prev_writer;
	struct audit_caller opener; /* who opened it: the commit's caller */
	char field[256];          /* .fields readers: the field they read */
	struct sm_listing listing; /* directories: entries as of opendir */
};

static bool writer_size(struct fs *fs, fuse_ino_t ino, off_t *size);

/* Puts an open writer's size into st, if there is one; how long the kernel
 * may keep st (vpath NULL: a path no longer known). */
static double attr_validity(struct fs *fs, fuse_ino_t ino, const char *vpath, struct stat *st)
{
	if (S_ISREG(st->st_mode) && writer_size(fs, ino, &st->st_size))
		return VIEW_ATTR_TIMEOUT; /* a writer's size, until its close */
	return vpath ? attr_timeout(vpath) : VIEW_ATTR_TIMEOUT;
}

/* Drops the kernel's cached attributes of ino (not its entry, not its pages). */
static void forget_attributes(struct fs *fs, fuse_ino_t ino)
{
	/* -ENOENT: the kernel holds no such inode now, which is as good. */
	if (ino && fs->mounted)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

/*
 * The change hook (sm_set_change_hook): the secret or folder name changed,
 * by a request, a rotation, a purge or a first read of the day. Its own node
 * (and its folder's, when in_folder) lose their cached attributes; the
 * kernel discards a GETATTR answer older than the invalidation.
 */
static void on_index_change(void *ctx, const char *name, bool in_folder)
{
	struct fs *fs = ctx;
	char parent[VPATH_MAX];
	const char *slash = strrchr(name, '/');
	size_t plen = slash ? (size_t)(slash - name) : 0;
	forget_attributes(fs, nodes_find(fs->nodes, name));
	if (in_folder && plen < sizeof(parent)) {
		memcpy(parent, name, plen);
		parent[plen] = '\0';
		forget_attributes(fs, nodes_find(fs->nodes, parent));
	}
}

static struct audit_caller caller_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct audit_caller c = { ctx->uid, ctx->gid, ctx->pid };
	return c;
}

/*
 * The audit trail: one record per operation, with its outcome. A change
 * under audit_required is announced first (audit_begin), so that a log
 * that cannot be written refuses it before it is made.
 */
static int audit_event(struct fs *fs, const struct audit_caller *who, const char *name,
		       const char *secret, int outcome)
{
	struct audit_event ev = { .name = name, .secret = secret };
	return audit_record(fs->audit, who, &ev, outcome);
}

static int audit_begin(struct fs *fs, const struct audit_caller *who, const char *name,
		       const char *secret);

/* The access policy (policy=FILE), on top of the kernel's checks: -EACCES,
 * logged and audited, when it does not allow event on secret. */
static int authorize(struct fs *fs, fuse_req_t req, const char *event, const char *secret)
{
	gid_t groups[65];
	char action[96], arn[SM_NAME_MAX + 128] = "";
	if (!fs->policy)
		return 0;
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	groups[0] = ctx->gid;
	int n = fuse_req_getgroups(req, 64, groups + 1);
	snprintf(action, sizeof(action), "secretsmanager:%s", event);
	if (secret && secret[0])
		sm_arn_of(fs->sm, secret, arn, sizeof(arn));
	struct policy_request r = { ctx->uid, groups, 1 + (size_t)(n > 0 && n <= 64 ? n : 0),
				    action, secret ? secret : "", arn[0] ? arn : NULL };
	if (policy_allows(fs->policy, &r))
		return 0;
	log_warn("%s: refused by the access policy: uid %u, %s", secret && secret[0] ? secret : "/",
		 (unsigned)ctx->uid, action);
	struct audit_caller who = caller_of(req);
	audit_event(fs, &who, event, secret && secret[0] ? secret : NULL, -EACCES);
	return -EACCES;
}

/* Policy, then the audit's announcement of a change. */
static int gate(struct fs *fs, fuse_req_t req, const char *event, const char *secret)
{
	struct audit_caller who = caller_of(req);
	int rc = authorize(fs, req, event, secret);
	return rc ? rc : audit_begin(fs, &who, event, secret);
}

static int audit_begin(struct fs *fs, const struct audit_caller *who, const char *name,
		       const char *secret)
{
	if (!audit_required(fs->audit))
		return 0;
	struct audit_event ev = { .name = name, .secret = secret, .detail_key = "eventStatus",
				  .detail_value = "started" };
	return audit_record(fs->audit, who, &ev, 0) ? -EIO : 0;
}

static struct fs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static int stat_vpath(struct fs *fs, const char *vpath, fuse_ino_t ino, struct stat *st)
{
	struct target t;
	int rc = path_resolve(fs->sm, vpath, &t);
	if (!rc)
		target_stat(&t, ino, st);
	return rc;
}

static int path_of(struct fs *fs, fuse_ino_t ino, char *buf)
{
	int rc = nodes_path(fs->nodes, ino, buf, VPATH_MAX);
	return rc == -ESTALE ? -ENOENT : rc;
}

static int child_path(struct fs *fs, fuse_ino_t parent, const char *name, char *buf)
{
	char ppath[VPATH_MAX];
	int rc = path_of(fs, parent, ppath);
	if (rc)
		return rc;
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	int n = ppath[0] ? snprintf(buf, VPATH_MAX, "%s/%s", ppath, name)
			 : snprintf(buf, VPATH_MAX, "%s", name);
	return (n < 0 || n >= VPATH_MAX) ? -ENAMETOOLONG : 0;
}

/* A name about to be made below parent: a live secret or folder, or (in
 * .stages/LABEL/) a secret created through that label. */
struct new_child {
	char vpath[VPATH_MAX];
	char name[SM_NAME_MAX + 1];
	char label[SM_LABEL_MAX + 1]; /* "" outside .stages */
};

/* What the new name is for: only files may be top-level scratch names. */
enum child_use { CHILD_FILE, CHILD_OTHER };

static int new_child(struct fs *fs, fuse_ino_t parent, const char *name, bool allow_stage,
		     enum child_use use, struct new_child *c)
{
	char ppath[VPATH_MAX];
	struct target pt;
	int rc = path_of(fs, parent, ppath);
	if (rc || (rc = path_resolve(fs->sm, ppath, &pt)))
		return rc;
	bool live = pt.kind == T_ROOT || pt.kind == T_FOLDER;
	bool staged = allow_stage && (pt.kind == T_STAGE_LABEL ||
				      (pt.kind == T_VIEW_FOLDER && pt.view == VIEW_STAGES));
	if (!live && !staged)
		return -EPERM;
	if (!pt.name[0] && name[0] == '.') {
		enum view view;
		if (path_view_name(name, &view) || (use == CHILD_FILE && staged) ||
		    use != CHILD_FILE) {
			log_warn("%s: refused: top-level names beginning with '.' are reserved for "
				 "secretsfs and scratch files", name);
			return -EINVAL;
		}
	}
	if ((rc = child_path(fs, parent, name, c->vpath)))
		return rc;
	int n = pt.name[0] ? snprintf(c->name, sizeof(c->name), "%s/%s", pt.name, name)
			   : snprintf(c->name, sizeof(c->name), "%s", name);
	if (n < 0 || (size_t)n >= sizeof(c->name)) {
		log_warn("%s/%s: refused: a name may be at most 512 characters", pt.name, name);
		return -EINVAL; /* a Secrets Manager rule, not a path limit */
	}
	snprintf(c->label, sizeof(c->label), "%s", staged ? pt.label : "");
	return 0;
}

static void reply_entry(fuse_req_t req, struct fs *fs, const char *vpath)
{
	struct fuse_entry_param e;
	memset(&e, 0, sizeof(e));
	int rc = stat_vpath(fs, vpath, 0, &e.attr);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	bool first;
	e.ino = nodes_lookup(fs->nodes, vpath, &first);
	if (!e.ino) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	e.attr.st_ino = e.ino;
	/* A node new to the kernel: an invalidation sent before the kernel has
	 * built its inode from this reply finds nothing to drop, so these
	 * attributes, possibly already old, get only the short timeout. */
	e.attr_timeout = first ? VIEW_ATTR_TIMEOUT : attr_timeout(vpath);
	e.entry_timeout = ENTRY_TIMEOUT;
	if (fuse_reply_entry(req, &e) == -ENOENT)
		nodes_forget(fs->nodes, e.ino, 1); /* the caller was interrupted */
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

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	char vpath[VPATH_MAX];
	int rc = child_path(fs, parent, name, vpath);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, fs, vpath);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	nodes_forget(fs_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		nodes_forget(fs_of(req)->nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char vpath[VPATH_MAX];
	struct stat st;
	int rc = path_of(fs, ino, vpath);
	bool known = rc == 0;
	if (rc == 0)
		rc = stat_vpath(fs, vpath, ino, &st);
	if (rc == -ENOENT && fi && fi->fh) {
		known = false;
		/* An open file that lost its name: answer from the handle. */
		struct handle *h = (struct handle *)(uintptr_t)fi->fh;
		memset(&st, 0, sizeof(st));
		st.st_ino = ino;
		st.st_mode = S_IFREG | 0400;
		st.st_nlink = 0;
		st.st_uid = getuid();
		st.st_size = h->kind == HANDLE_WRITE ? (off_t)h->buf.len
			   : h->snap ? (off_t)sm_snapshot_size(h->snap) : 0;
		rc = 0;
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_attr(req, &st, attr_validity(fs, ino, known ? vpath : NULL, &st));
}

static int truncate_handle(struct handle *h, off_t size)
{
	pthread_mutex_lock(&h->lock);
	int rc = size > SM_VALUE_MAX ? -EFBIG : secbuf_reserve(&h->buf, (size_t)size);
	if (rc)
		h->failed = rc;
	else {
		if ((size_t)size > h->buf.len)
			memset(h->buf.data + h->buf.len, 0, (size_t)size - h->buf.len);
		else
			explicit_bzero(h->buf.data + size, h->buf.len - (size_t)size);
		h->buf.len = (size_t)size;
		h->dirty = true;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/* truncate(2) by path: a new version of the resized value. */
static int truncate_secret(struct fs *fs, const char *name, off_t size)
{
	struct sm_snapshot *snap = NULL;
	struct secbuf value = { 0 };
	char version_id[SM_VERSION_ID_MAX + 1];
	int rc;

	if (size > SM_VALUE_MAX)
		return -EFBIG;
	if (size == 0) {
		log_warn("%s: refused: a value must be at least 1 byte (truncate to 0)", name);
		return -EINVAL;
	}
	if ((rc = sm_snapshot_current(fs->sm, name, &snap)) ||
	    (rc = sm_snapshot_decrypt(fs->sm, snap, &value)) ||
	    (rc = secbuf_reserve(&value, (size_t)size)))
		goto out;
	if ((size_t)size > value.len)
		memset(value.data + value.len, 0, (size_t)size - value.len);
	value.len = (size_t)size;
	rc = sm_put_value(fs->sm, name, value.data, value.len, version_id);
out:
	secbuf_free(&value);
	sm_snapshot_free(snap);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char vpath[VPATH_MAX];
	struct target t;
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	bool writer = h && h->kind == HANDLE_WRITE;
	int rc = path_of(fs, ino, vpath);

	if (rc || (rc = path_resolve(fs->sm, vpath, &t)))
		goto out;
	bool live = t.kind == T_ROOT || t.kind == T_FOLDER || t.kind == T_SECRET;
	if (((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && !live) ||
	    ((to_set & FUSE_SET_ATTR_SIZE) && !live && !writer)) {
		rc = -EPERM;
		goto out;
	}
	if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uint32_t mode = attr->st_mode & 07777, uid = attr->st_uid, gid = attr->st_gid;
		struct audit_caller who = caller_of(req);
		if ((rc = gate(fs, req, "SetPermissions", t.name)))
			goto out;
		rc = sm_set_owner_mode(fs->sm, t.kind == T_ROOT ? "" : t.name,
				       (to_set & FUSE_SET_ATTR_MODE) ? &mode : NULL,
				       (to_set & FUSE_SET_ATTR_UID) ? &uid : NULL,
				       (to_set & FUSE_SET_ATTR_GID) ? &gid : NULL);
		audit_event(fs, &who, "SetPermissions", t.name, rc);
		if (rc)
			goto out;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		if (target_is_dir(&t)) {
			rc = -EISDIR;
			goto out;
		}
		if (writer)
			rc = truncate_handle(h, attr->st_size);
		else
			rc = truncate_secret(fs, t.name, attr->st_size);
		if (rc)
			goto out;
	}
	/* Times are CreatedDate and LastChangedDate, which only Secrets Manager
	 * operations move: utimens is accepted and changes nothing (docs/design.md). */
out:
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	struct stat st;
	if ((rc = stat_vpath(fs, vpath, ino, &st))) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_attr(req, &st, attr_validity(fs, ino, vpath, &st));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct new_child c;
	struct audit_caller who = caller_of(req);
	int rc = new_child(fs, parent, name, false, CHILD_OTHER, &c);
	if (!rc && !(rc = gate(fs, req, "CreateFolder", c.name))) {
		rc = sm_mkdir(fs->sm, c.name,
			      fs->opt.new_umask >= 0 ? 0777 & ~(mode_t)fs->opt.new_umask : mode & 07777,
			      fs->opt.new_uid >= 0 ? (uid_t)fs->opt.new_uid : ctx->uid,
			      fs->opt.new_gid >= 0 ? (gid_t)fs->opt.new_gid : ctx->gid);
		audit_event(fs, &who, "CreateFolder", c.name, rc);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, fs, c.vpath);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct new_child c;
	struct audit_caller who = caller_of(req);
	int rc = new_child(fs, parent, name, false, CHILD_FILE, &c);
	if (!rc && !(rc = gate(fs, req, "DeleteSecret", c.name))) {
		rc = sm_delete(fs->sm, c.name);
		audit_event(fs, &who, "DeleteSecret", c.name, rc);
	}
	if (!rc)
		nodes_detach(fs->nodes, c.vpath);
	fuse_reply_err(req, -rc);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct new_child c;
	struct audit_caller who = caller_of(req);
	int rc = new_child(fs, parent, name, false, CHILD_OTHER, &c);
	if (!rc && !(rc = gate(fs, req, "DeleteFolder", c.name))) {
		rc = sm_rmdir(fs->sm, c.name);
		audit_event(fs, &who, "DeleteFolder", c.name, rc);
	}
	if (!rc)
		nodes_detach(fs->nodes, c.vpath);
	fuse_reply_err(req, -rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct fs *fs = fs_of(req);
	char from[VPATH_MAX];
	struct new_child to;
	struct target ft;
	int rc;

	if (flags & ~RENAME_NOREPLACE) {
		rc = -EINVAL; /* RENAME_EXCHANGE would swap two secrets' histories */
		goto out;
	}
	if ((rc = child_path(fs, parent, name, from)) || (rc = path_resolve(fs->sm, from, &ft)) ||
	    (rc = new_child(fs, newparent, newname, false, CHILD_FILE, &to)))
		goto out;
	struct audit_caller who = caller_of(req);
	const char *event = ft.kind == T_DELETED_SECRET ? "RestoreSecret" :
			    ft.kind == T_FOLDER ? "RenameFolder" : "RenameSecret";
	if (ft.kind != T_DELETED_SECRET && ft.kind != T_SECRET && ft.kind != T_FOLDER)
		rc = -EPERM; /* views are not renamed */
	else if (!(rc = gate(fs, req, event, ft.name))) {
		if (ft.kind == T_DELETED_SECRET)
			rc = sm_restore(fs->sm, ft.name, to.name);
		else
			rc = sm_rename(fs->sm, ft.name, to.name, flags & RENAME_NOREPLACE);
		struct audit_event ev = { .name = event, .secret = ft.name, .detail_key = "newName",
					  .detail_value = to.name };
		audit_record(fs->audit, &who, &ev, rc);
	}
	if (!rc) /* the kernel drops the moved inode's cached attributes itself */
		nodes_move(fs->nodes, from, to.vpath);
out:
	fuse_reply_err(req, -rc);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

/* mknod of a regular file (tar --xattrs makes files so before opening them)
 * is CreateSecret without a value; devices, fifos and sockets are not secrets. */
static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct new_child c;
	int rc;
	(void)rdev;

	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = new_child(fs, parent, name, false, CHILD_FILE, &c);
	if (!rc && fs->opt.readonly)
		rc = -EROFS;
	if (!rc)
		rc = sm_create(fs->sm, c.name,
			       fs->opt.new_umask >= 0 ? 0666 & ~(mode_t)fs->opt.new_umask : mode & 0600,
			       fs->opt.new_uid >= 0 ? (uid_t)fs->opt.new_uid : ctx->uid,
			       fs->opt.new_gid >= 0 ? (gid_t)fs->opt.new_gid : ctx->gid);
	if (!rc)
		rc = sm_commit_created(fs->sm, c.name);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, fs, c.vpath);
}

static struct handle *handle_new(enum handle_kind kind, fuse_ino_t ino)
{
	struct handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->kind = kind;
	h->ino = ino;
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

static void handle_free(struct handle *h)
{
	if (!h)
		return;
	secbuf_free(&h->buf);
	sm_snapshot_free(h->snap);
	sm_listing_free(&h->listing);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Write handles are registered so that a stat without a handle (cp -p's
 * fchmod and futimens come without one) reports the size being written. */
static void writer_add(struct fs *fs, struct handle *h)
{
	pthread_mutex_lock(&fs->writers_lock);
	h->prev_writer = NULL;
	h->next_writer = fs->writers;
	if (fs->writers)
		fs->writers->prev_writer = h;
	fs->writers = h;
	pthread_mutex_unlock(&fs->writers_lock);
}

static void writer_remove(struct fs *fs, struct handle *h)
{
	if (h->kind != HANDLE_WRITE)
		return;
	pthread_mutex_lock(&fs->writers_lock);
	if (h->prev_writer)
		h->prev_writer->next_writer = h->next_writer;
	else if (fs->writers == h)
		fs->writers = h->next_writer;
	if (h->next_writer)
		h->next_writer->prev_writer = h->prev_writer;
	pthread_mutex_unlock(&fs->writers_lock);
}

/* The size a dirty writer of ino holds, if any. */
static bool writer_size(struct fs *fs, fuse_ino_t ino, off_t *size)
{
	bool found = false;
	pthread_mutex_lock(&fs->writers_lock);
	for (struct handle *h = fs->writers; h && !found; h = h->next_writer) {
		if (h->ino != ino)
			continue;
		pthread_mutex_lock(&h->lock);
		if (h->dirty && !h->failed) {
			*size = (off_t)h->buf.len;
			found = true;
		}
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_unlock(&fs->writers_lock);
	return found;
}

/* Readers get the version current now, for as long as they keep it open. */
static int open_reader(struct fs *fs, const struct target *t, struct handle *h)
{
	int rc;
	switch (t->kind) {
	case T_VERSION:
		return sm_snapshot_version(fs->sm, t->name, t->version_id, &h->snap);
	case T_STAGE_SECRET:
		if ((rc = sm_snapshot_label(fs->sm, t->name, t->label, &h->snap)))
			return rc;
		/* GetSecretValue of a label no version carries: not found. */
		return sm_snapshot_version_id(h->snap)[0] ? 0 : -ENOENT;
	case T_FIELD:
		snprintf(h->field, sizeof(h->field), "%s", t->field);
		return sm_snapshot_current(fs->sm, t->name, &h->snap);
	default:
		return sm_snapshot_current(fs->sm, t->name, &h->snap);
	}
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char vpath[VPATH_MAX];
	struct target t;
	struct handle *h = NULL;
	int accmode = fi->flags & O_ACCMODE;
	int rc = path_of(fs, ino, vpath);

	if (rc || (rc = path_resolve(fs->sm, vpath, &t)))
		goto out;
	if (target_is_dir(&t)) {
		rc = -EISDIR;
		goto out;
	}
	if (t.kind == T_DELETED_SECRET) {
		log_warn("%s: refused: scheduled for deletion; restore it with mv first", t.name);
		rc = -EACCES;
		goto out;
	}
	bool writable_view = t.kind == T_SECRET || t.kind == T_STAGE_SECRET;
	if (accmode != O_RDONLY && (!writable_view || fs->opt.readonly)) {
		rc = -EROFS;
		goto out;
	}
	h = handle_new(accmode == O_RDONLY ? HANDLE_READ : HANDLE_WRITE, ino);
	if (!h) {
		rc = -ENOMEM;
		goto out;
	}
	h->opener = caller_of(req);
	if ((rc = authorize(fs, req, h->kind == HANDLE_READ ? "GetSecretValue" : "PutSecretValue",
			    t.name)))
		goto out;
	if (h->kind == HANDLE_READ) {
		if (!(rc = open_reader(fs, &t, h)) && t.kind != T_VERSION)
			sm_note_access(fs->sm, t.name); /* GetSecretValue */
		struct audit_event ev = {
			.name = "GetSecretValue", .secret = t.name, .read_only = true,
			.version_id = h->snap ? sm_snapshot_version_id(h->snap) : NULL,
			.stage = t.kind == T_STAGE_SECRET ? t.label : NULL,
			.detail_key = t.kind == T_FIELD ? "field" : NULL,
			.detail_value = t.kind == T_FIELD ? t.field : NULL,
		};
		/* Recorded before any byte is served: unrecorded reads are refused. */
		if (audit_record(fs->audit, &h->opener, &ev, rc) && audit_required(fs->audit) && !rc)
			rc = -EIO;
		fi->noflush = 1; /* nothing to commit: spare the FLUSH round trip */
	} else {
		h->append = (fi->flags & O_APPEND) != 0;
		if (fi->flags & O_TRUNC) {
			h->dirty = true;
		} else {
			/* Partial overwrites and appends edit the value shown. */
			struct sm_snapshot *snap = NULL;
			rc = t.kind == T_STAGE_SECRET ? sm_snapshot_label(fs->sm, t.name, t.label, &snap)
						      : sm_snapshot_current(fs->sm, t.name, &snap);
			if (!rc)
				rc = sm_snapshot_decrypt(fs->sm, snap, &h->buf);
			sm_snapshot_free(snap);
		}
	}
	if (rc)
		goto out;
	/* Each reader is served its own snapshot; the page cache would mix them. */
	fi->direct_io = 1;
	fi->fh = (uintptr_t)h;
	if (h->kind == HANDLE_WRITE)
		writer_add(fs, h);
	if (fuse_reply_open(req, fi) == -ENOENT) {
		writer_remove(fs, h);
		handle_free(h);
	}
	return;
out:
	handle_free(h);
	fuse_reply_err(req, -rc);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct new_child c;
	struct handle *h = NULL;
	int rc = new_child(fs, parent, name, true, CHILD_FILE, &c);

	if (!rc && fs->opt.readonly)
		rc = -EROFS;
	if (!rc && !name_is_scratch(c.name))
		rc = authorize(fs, req, "CreateSecret", c.name);
	/* New secrets are 0600 less the caller's umask (BRIEF §2), unless the
	 * mount sets umask=, uid=, gid= for them. */
	if (!rc)
		rc = sm_create(fs->sm, c.name,
			       fs->opt.new_umask >= 0 ? 0666 & ~(mode_t)fs->opt.new_umask : mode & 0600,
			       fs->opt.new_uid >= 0 ? (uid_t)fs->opt.new_uid : ctx->uid,
			       fs->opt.new_gid >= 0 ? (gid_t)fs->opt.new_gid : ctx->gid);
	if (rc)
		goto fail;
	memset(&e, 0, sizeof(e));
	if ((rc = stat_vpath(fs, c.vpath, 0, &e.attr)))
		goto fail;
	h = handle_new(HANDLE_WRITE, 0);
	e.ino = nodes_lookup(fs->nodes, c.vpath, NULL);
	if (!h || !e.ino) {
		rc = -ENOMEM;
		goto fail;
	}
	h->ino = e.ino;
	h->opener = caller_of(req);
	h->created = true;
	h->dirty = true;
	h->append = (fi->flags & O_APPEND) != 0;
	e.attr.st_ino = e.ino;
	e.attr.st_size = 0; /* a restored name starts over from what is written now */
	e.attr_timeout = VIEW_ATTR_TIMEOUT; /* a writer has it open */
	e.entry_timeout = ENTRY_TIMEOUT;
	fi->direct_io = 1;
	fi->fh = (uintptr_t)h;
	writer_add(fs, h);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		writer_remove(fs, h);
		nodes_forget(fs->nodes, e.ino, 1);
		handle_free(h);
	}
	return;
fail:
	handle_free(h);
	fuse_reply_err(req, -rc);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct secbuf plain = { 0 };
	(void)ino;

	if (h->kind == HANDLE_WRITE) {
		pthread_mutex_lock(&h->lock);
		size_t len = h->buf.len;
		size_t start = (size_t)off < len ? (size_t)off : len;
		size_t n = len - start < size ? len - start : size;
		fuse_reply_buf(req, n ? (const char *)h->buf.data + start : NULL, n);
		pthread_mutex_unlock(&h->lock);
		return;
	}
	/* Plaintext exists only for the length of this reply, in locked memory. */
	int rc = h->field[0] ? sm_snapshot_field(fs->sm, h->snap, h->field, &plain)
			     : sm_snapshot_decrypt(fs->sm, h->snap, &plain);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	size_t start = (size_t)off < plain.len ? (size_t)off : plain.len;
	size_t n = plain.len - start < size ? plain.len - start : size;
	fuse_reply_buf(req, n ? (const char *)plain.data + start : NULL, n);
	secbuf_free(&plain);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int rc = 0;
	(void)ino;

	if (h->kind != HANDLE_WRITE) {
		rc = -EBADF;
		goto out;
	}
	pthread_mutex_lock(&h->lock);
	size_t start = h->append ? h->buf.len : (size_t)off;
	if (off < 0 || start + size > SM_VALUE_MAX) {
		char vpath[VPATH_MAX] = "";
		nodes_path(fs_of(req)->nodes, h->ino, vpath, sizeof(vpath));
		log_warn("%s: refused: a value may be at most 65,536 bytes; nothing is committed",
			 vpath);
		rc = -EFBIG;
		h->failed = rc;
	} else if ((rc = secbuf_reserve(&h->buf, start + size)) == 0) {
		if (start > h->buf.len)
			memset(h->buf.data + h->buf.len, 0, start - h->buf.len);
		memcpy(h->buf.data + start, buf, size);
		if (start + size > h->buf.len)
			h->buf.len = start + size;
		h->dirty = true;
	} else {
		log_error("out of secure memory for an open secret");
		h->failed = rc;
	}
	pthread_mutex_unlock(&h->lock);
out:
	/* libfuse's receive buffer is not locked memory: leave no plaintext in it. */
	explicit_bzero((void *)buf, size);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, size);
}

/*
 * close/fsync: the commit point (BRIEF §2). An empty buffer is not a value:
 * shells close a dup of a fresh fd before writing to it, so emptiness is
 * only judged at the last close (final), where a created secret becomes
 * one without a value (touch) and an emptied one is refused, unchanged.
 */
static int commit(struct fs *fs, struct handle *h, bool final)
{
	char vpath[VPATH_MAX], version_id[SM_VERSION_ID_MAX + 1];
	int rc = 0;

	if (h->kind != HANDLE_WRITE)
		return 0;
	pthread_mutex_lock(&h->lock);
	if (h->failed) {
		/* The value as written was refused: the secret keeps its old one,
		 * and a client request token set for this commit is spent. */
		rc = h->failed;
		if (h->dirty) {
			struct target ft;
			if (nodes_path(fs->nodes, h->ino, vpath, sizeof(vpath)) == 0 &&
			    path_resolve(fs->sm, vpath, &ft) == 0) {
				sm_set_request_token(fs->sm, ft.name, NULL, 0);
				audit_event(fs, &h->opener, h->created ? "CreateSecret" : "PutSecretValue",
					    ft.name, rc);
			}
		}
		h->dirty = false;
		goto out;
	}
	if (!h->dirty || (h->buf.len == 0 && !final))
		goto out;
	rc = nodes_path(fs->nodes, h->ino, vpath, sizeof(vpath));
	if (rc == -ESTALE) {
		/* Unlinked while open: like any filesystem, the data goes with it. */
		h->dirty = false;
		rc = 0;
		goto out;
	}
	struct target t;
	if (rc || (rc = path_resolve(fs->sm, vpath, &t)))
		goto out;
	const char *event = h->created ? "CreateSecret" : "PutSecretValue";
	if ((rc = audit_begin(fs, &h->opener, event, t.name))) {
		h->dirty = false;
		goto out;
	}
	version_id[0] = '\0';
	if (h->buf.len == 0) {
		if (h->created) {
			rc = sm_commit_created(fs->sm, t.name);
		} else {
			log_warn("%s: refused: a value must be at least 1 byte; the secret is unchanged",
				 t.name);
			rc = -EINVAL;
		}
	} else if (t.kind == T_STAGE_SECRET) {
		/* PutSecretValue with VersionStages=[LABEL] (BRIEF §1). */
		const char *stages[] = { t.label };
		rc = sm_put_value_staged(fs->sm, t.name, h->buf.data, h->buf.len, stages, 1, version_id);
	} else {
		rc = sm_put_value(fs->sm, t.name, h->buf.data, h->buf.len, version_id);
	}
	if (h->buf.len || h->created || rc) {
		struct audit_event ev = { .name = event, .secret = t.name, .version_id = version_id,
					  .stage = t.kind == T_STAGE_SECRET ? t.label : NULL };
		audit_record(fs->audit, &h->opener, &ev, rc);
	}
	/* Committed, or refused for good: either way not again at release. */
	h->dirty = false;
	if (rc == 0)
		h->created = false;
out:
	pthread_mutex_unlock(&h->lock);
	return rc;
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	fuse_reply_err(req, -commit(fs_of(req), (struct handle *)(uintptr_t)fi->fh, false));
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	fuse_reply_err(req, -commit(fs_of(req), (struct handle *)(uintptr_t)fi->fh, false));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	(void)ino;
	/* Normally flush committed already; this catches a writer without one. */
	int rc = commit(fs_of(req), h, true);
	if (rc && !h->failed)
		log_warn("commit at release failed: %s", strerror(-rc));
	writer_remove(fs_of(req), h);
	if (h->kind == HANDLE_WRITE) /* committed or not, its size is shown no more */
		forget_attributes(fs_of(req), h->ino);
	handle_free(h);
	fuse_reply_err(req, 0);
}

/* Keeps the entries of l that satisfy keep; frees the rest. */
static void filter_listing(struct sm_listing *l, bool (*keep)(struct fs *, const struct sm_dirent *,
							       const struct target *),
			   struct fs *fs, const struct target *t)
{
	size_t kept = 0;
	for (size_t i = 0; i < l->count; i++) {
		if (keep(fs, &l->entries[i], t))
			l->entries[kept++] = l->entries[i];
		else
			free(l->entries[i].name);
	}
	l->count = kept;
}

/* In .stages/LABEL/, a folder lists the secrets that carry LABEL. */
static bool carries_label(struct fs *fs, const struct sm_dirent *e, const struct target *t)
{
	char name[SM_NAME_MAX + 1];
	struct sm_secret *s;
	if (e->kind == SM_KIND_FOLDER)
		return true;
	int n = t->name[0] ? snprintf(name, sizeof(name), "%s/%s", t->name, e->name)
			   : snprintf(name, sizeof(name), "%s", e->name);
	if (n < 0 || (size_t)n >= sizeof(name) || sm_secret_copy(fs->sm, name, &s))
		return false;
	bool has = secret_label_version(s, t->label) != NULL;
	secret_free(s);
	return has;
}

/* In .fields/, a folder lists the secrets whose value is a JSON object. */
static bool has_fields(struct fs *fs, const struct sm_dirent *e, const struct target *t)
{
	char vpath[VPATH_MAX];
	struct target child;
	if (e->kind == SM_KIND_FOLDER)
		return true;
	int n = t->name[0] ? snprintf(vpath, sizeof(vpath), ".fields/%s/%s", t->name, e->name)
			   : snprintf(vpath, sizeof(vpath), ".fields/%s", e->name);
	return n > 0 && (size_t)n < sizeof(vpath) && path_resolve(fs->sm, vpath, &child) == 0;
}

static void all_folders(struct sm_listing *l)
{
	for (size_t i = 0; i < l->count; i++)
		l->entries[i].kind = SM_KIND_FOLDER;
}

static int list_target(struct fs *fs, const struct target *t, struct sm_listing *l)
{
	struct sm_snapshot *snap;
	int rc;
	switch (t->kind) {
	case T_ROOT:
	case T_FOLDER:
		return sm_list(fs->sm, SM_VIEW_LIVE, t->name, l);
	case T_VIEW_ROOT:
	case T_STAGE_LABEL:
	case T_VIEW_FOLDER:
		if (t->view == VIEW_DELETED)
			return sm_list(fs->sm, SM_VIEW_DELETED, t->name, l);
		if (t->view == VIEW_STAGES && t->kind == T_VIEW_ROOT)
			return sm_list_labels(fs->sm, l);
		if ((rc = sm_list(fs->sm, SM_VIEW_LIVE, t->name, l)))
			return rc;
		if (t->view == VIEW_STAGES) {
			filter_listing(l, carries_label, fs, t);
			return 0;
		}
		if (t->view == VIEW_FIELDS)
			filter_listing(l, has_fields, fs, t);
		all_folders(l); /* .versions/, .fields/: a secret is a folder */
		return 0;
	case T_SECRET_DIR:
		if (t->view == VIEW_VERSIONS)
			return sm_list_versions(fs->sm, t->name, l);
		if ((rc = sm_snapshot_current(fs->sm, t->name, &snap)))
			return rc;
		rc = sm_snapshot_field_names(fs->sm, snap, l);
		sm_snapshot_free(snap);
		return rc;
	default:
		return -ENOTDIR;
	}
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	char vpath[VPATH_MAX];
	struct target t;
	struct handle *h = NULL;
	int rc = path_of(fs, ino, vpath);

	if (rc || (rc = path_resolve(fs->sm, vpath, &t)))
		goto out;
	if (!target_is_dir(&t)) {
		rc = -ENOTDIR;
		goto out;
	}
	if (!(h = handle_new(HANDLE_DIR, ino))) {
		rc = -ENOMEM;
		goto out;
	}
	if ((t.kind == T_ROOT || t.kind == T_FOLDER) && (rc = authorize(fs, req, "ListSecrets", t.name)))
		goto out;
	if (t.kind == T_SECRET_DIR && t.view == VIEW_VERSIONS &&
	    (rc = authorize(fs, req, "ListSecretVersionIds", t.name)))
		goto out;
	rc = list_target(fs, &t, &h->listing);
	if (t.kind == T_ROOT || t.kind == T_FOLDER ||
	    (t.kind == T_SECRET_DIR && t.view == VIEW_VERSIONS)) {
		struct audit_caller who = caller_of(req);
		struct audit_event ev = {
			.name = t.kind == T_SECRET_DIR ? "ListSecretVersionIds" : "ListSecrets",
			.secret = t.kind == T_SECRET_DIR ? t.name : NULL, .read_only = true,
			.detail_key = t.kind == T_SECRET_DIR ? NULL : "folder", .detail_value = t.name,
		};
		if (audit_record(fs->audit, &who, &ev, rc) && audit_required(fs->audit) && !rc)
			rc = -EIO;
	}
	if (rc)
		goto out;
	fi->fh = (uintptr_t)h;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) == -ENOENT)
		handle_free(h);
	return;
out:
	handle_free(h);
	fuse_reply_err(req, -rc);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	(void)ino;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2.. the listing taken at opendir. */
	for (off_t i = off; i < (off_t)h->listing.count + 2; i++) {
		struct stat st;
		const char *name;
		memset(&st, 0, sizeof(st));
		if (i < 2) {
			name = i == 0 ? "." : "..";
			st.st_mode = S_IFDIR;
		} else {
			const struct sm_dirent *e = &h->listing.entries[i - 2];
			name = e->name;
			st.st_mode = e->kind == SM_KIND_FOLDER ? S_IFDIR : S_IFREG;
		}
		st.st_ino = (ino_t)(i + 1);
		size_t n = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
		if (n > size - used)
			break;
		used += n;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	handle_free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct sm_counts counts;
	struct statvfs sv;
	(void)ino;
	sm_count(fs_of(req)->sm, &counts);
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_frsize = 4096;
	sv.f_namemax = NAME_MAX;
	sv.f_files = counts.secrets;
	fuse_reply_statfs(req, &sv);
}

/* The Secrets Manager (or KMS) action an attribute change is, if any. */
static const char *xattr_event(const char *name, bool removing)
{
	if (strncmp(name, "user.tag.", 9) == 0)
		return removing ? "UntagResource" : "TagResource";
	if (strcmp(name, "user.sm.description") == 0 || strcmp(name, "user.sm.kms_key_id") == 0)
		return "UpdateSecret";
	if (strncmp(name, "user.sm.stage.", 14) == 0)
		return "UpdateSecretVersionStage";
	if (strcmp(name, "user.sm.rotate") == 0 || strncmp(name, "user.sm.rotation_", 17) == 0)
		return removing && strcmp(name, "user.sm.rotation_command") == 0 ? "CancelRotateSecret"
										  : "RotateSecret";
	if (strcmp(name, "user.sm.key.create") == 0)
		return "CreateKey";
	if (strcmp(name, "user.sm.key.enable") == 0)
		return "EnableKey";
	if (strcmp(name, "user.sm.key.disable") == 0)
		return "DisableKey";
	if (strcmp(name, "user.sm.backup") == 0)
		return "BackupStore";
	return NULL;
}

static bool kernel_probe(const char *name)
{
	return strncmp(name, "security.", 9) == 0 || strncmp(name, "system.", 7) == 0 ||
	       strncmp(name, "trusted.", 8) == 0;
}

static int target_of(struct fs *fs, fuse_ino_t ino, struct target *t)
{
	char vpath[VPATH_MAX];
	int rc = path_of(fs, ino, vpath);
	return rc ? rc : path_resolve(fs->sm, vpath, t);
}

static void reply_sized(fuse_req_t req, const char *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct target t;
	char *value = NULL;
	size_t len = 0;
	/* The kernel asks for security.capability on every write: answer at once. */
	int rc = kernel_probe(name) ? -ENODATA : target_of(fs, ino, &t);
	if (!rc && strcmp(name, "user.sm.describe") == 0 && t.name[0])
		rc = authorize(fs, req, "DescribeSecret", t.name);
	if (!rc)
		rc = xattr_get(fs->sm, &t, name, &value, &len);
	if (strcmp(name, "user.sm.describe") == 0 && t.name[0] && rc != -EACCES) {
		struct audit_caller who = caller_of(req);
		struct audit_event ev = { .name = "DescribeSecret", .secret = t.name, .read_only = true };
		if (audit_record(fs->audit, &who, &ev, rc) && audit_required(fs->audit) && !rc)
			rc = -EIO;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_sized(req, value, len, size);
	free(value);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	struct target t;
	char *names = NULL;
	size_t len = 0;
	int rc = target_of(fs, ino, &t);
	if (!rc)
		rc = xattr_list(fs->sm, &t, &names, &len);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_sized(req, names, len, size);
	free(names);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct fs *fs = fs_of(req);
	struct xattr_caller who = { fuse_req_ctx(req)->uid, getuid() };
	struct target t;
	struct audit_caller caller = caller_of(req);
	const char *event = xattr_event(name, false);
	int rc = fs->opt.readonly ? -EROFS : target_of(fs, ino, &t);
	if (!rc && event && (rc = gate(fs, req, event, t.name[0] ? t.name : NULL)))
		goto out;
	if (!rc && t.kind == T_SECRET && strcmp(name, "user.sm.rotate") == 0) {
		/* RotateSecret: checked now, its steps run on the rotator's thread. */
		rc = size == 3 && memcmp(value, "now", 3) == 0 ? rotator_rotate(fs->rotator, t.name)
							      : -EINVAL;
	} else if (!rc) {
		rc = xattr_set(fs->sm, &t, &who, name, value, size, flags);
	}
	if (event) {
		struct audit_event ev = { .name = event, .secret = t.name[0] ? t.name : NULL,
					  .source = strncmp(event, "CreateKey", 9) == 0 ||
							    strstr(event, "ableKey") ? "kms.amazonaws.com" : NULL,
					  .detail_key = "attribute", .detail_value = name };
		audit_record(fs->audit, &caller, &ev, rc);
	}
out:
	fuse_reply_err(req, -rc);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs_of(req);
	struct xattr_caller who = { fuse_req_ctx(req)->uid, getuid() };
	struct target t;
	struct audit_caller caller = caller_of(req);
	const char *event = xattr_event(name, true);
	int rc = fs->opt.readonly ? -EROFS : target_of(fs, ino, &t);
	if (!rc && event && (rc = gate(fs, req, event, t.name[0] ? t.name : NULL)))
		goto out;
	if (!rc)
		rc = xattr_remove(fs->sm, &t, &who, name);
	if (event) {
		struct audit_event ev = { .name = event, .secret = t.name[0] ? t.name : NULL,
					  .detail_key = "attribute", .detail_value = name };
		audit_record(fs->audit, &caller, &ev, rc);
	}
out:
	fuse_reply_err(req, -rc);
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
	sm_set_change_hook(sm, on_index_change, fs);
	if ((rc = rotator_start(sm, opt->mountpoint ? opt->mountpoint : "/", &fs->rotator))) {
		log_error("cannot start the rotation thread: %s", strerror(-rc));
		goto fail;
	}
	fs->opt.mountpoint = NULL; /* the caller's string; the rotator has its copy */
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

void fs_destroy(struct fs *fs)
{
	if (!fs)
		return;
	rotator_stop(fs->rotator);
	sm_set_change_hook(fs->sm, NULL, NULL);
	audit_close(fs->audit);
	if (fs->se) {
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	nodes_free(fs->nodes);
	free(fs);
}
