/*
 * Entries and inodes: names below a folder (lookup, mkdir, mknod, unlink,
 * rmdir, rename; link and symlink refused), the kernel's lookup counts,
 * and attributes (getattr, setattr with truncate by path).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/internal.h"
#include "fs/nodes.h"
#include "util/log.h"

int stat_vpath(struct fs *fs, const char *vpath, fuse_ino_t ino, struct stat *st)
{
	struct target t;
	int rc = path_resolve(fs->sm, vpath, &t);
	if (!rc)
		target_stat(&t, ino, st);
	return rc;
}

int path_of(struct fs *fs, fuse_ino_t ino, char *buf)
{
	int rc = nodes_path(fs->nodes, ino, buf, VPATH_MAX);
	return rc == -ESTALE ? -ENOENT : rc;
}

/* name below the folder at ppath, as a virtual path (buf: VPATH_MAX). */
static int join_path(const char *ppath, const char *name, char *buf)
{
	if (strlen(name) > NAME_MAX)
		return -ENAMETOOLONG;
	int n = ppath[0] ? snprintf(buf, VPATH_MAX, "%s/%s", ppath, name)
			 : snprintf(buf, VPATH_MAX, "%s", name);
	return (n < 0 || n >= VPATH_MAX) ? -ENAMETOOLONG : 0;
}

static int child_path(struct fs *fs, fuse_ino_t parent, const char *name, char *buf)
{
	char ppath[VPATH_MAX];
	int rc = path_of(fs, parent, ppath);
	return rc ? rc : join_path(ppath, name, buf);
}

/* The parent folder of a request: its path and what it stands for. */
static int resolve_parent(struct fs *fs, fuse_ino_t parent, char *ppath, struct target *pt)
{
	int rc = path_of(fs, parent, ppath);
	return rc ? rc : path_resolve(fs->sm, ppath, pt);
}

/* A name about to be made below the folder pt (at ppath): see new_child. */
static int child_of(const char *ppath, const struct target *pt, const char *name,
		    bool allow_stage, enum child_use use, struct new_child *c)
{
	int rc;
	bool live = pt->kind == T_ROOT || pt->kind == T_FOLDER;
	bool staged = allow_stage && (pt->kind == T_STAGE_LABEL ||
				      (pt->kind == T_VIEW_FOLDER && pt->view == VIEW_STAGES));
	if (!live && !staged)
		return -EPERM;
	if (!pt->name[0] && name[0] == '.') {
		enum view view;
		if (path_view_name(name, &view) || (use == CHILD_FILE && staged) ||
		    use != CHILD_FILE) {
			log_warn("%s: refused: top-level names beginning with '.' are reserved for "
				 "secretsfs and scratch files", name);
			return -EINVAL;
		}
	}
	if ((rc = join_path(ppath, name, c->vpath)))
		return rc;
	int n = pt->name[0] ? snprintf(c->name, sizeof(c->name), "%s/%s", pt->name, name)
			   : snprintf(c->name, sizeof(c->name), "%s", name);
	if (n < 0 || (size_t)n >= sizeof(c->name)) {
		log_warn("%s/%s: refused: a name may be at most 512 characters", pt->name, name);
		return -EINVAL; /* a Secrets Manager rule, not a path limit */
	}
	snprintf(c->label, sizeof(c->label), "%s", staged ? pt->label : "");
	return 0;
}

int new_child(struct fs *fs, fuse_ino_t parent, const char *name, bool allow_stage,
	      enum child_use use, struct new_child *c)
{
	char ppath[VPATH_MAX];
	struct target pt;
	int rc = resolve_parent(fs, parent, ppath, &pt);
	return rc ? rc : child_of(ppath, &pt, name, allow_stage, use, c);
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

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
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

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	nodes_forget(fs_of(req)->nodes, ino, nlookup);
	fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		nodes_forget(fs_of(req)->nodes, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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

/* truncate(2) by path: a new version of the resized value. */
static int truncate_secret(struct fs *fs, const char *name, off_t size,
			   char version_id[SM_VERSION_ID_MAX + 1])
{
	struct sm_snapshot *snap = NULL;
	struct secbuf value = { 0 };
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

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
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
		if (writer) {
			rc = truncate_handle(h, attr->st_size);
		} else {
			/* A new version made from the current value: both actions,
			 * as for a writer opened without O_TRUNC. */
			struct audit_caller who = caller_of(req);
			char version_id[SM_VERSION_ID_MAX + 1] = "";
			if ((rc = authorize_value(fs, req, "GetSecretValue", t.name)) ||
			    (rc = gate(fs, req, "PutSecretValue", t.name)))
				goto out;
			rc = truncate_secret(fs, t.name, attr->st_size, version_id);
			struct audit_event ev = { .name = "PutSecretValue", .secret = t.name,
						  .version_id = version_id };
			audit_record(fs->audit, &who, &ev, rc);
		}
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

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
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

/*
 * rm .deleted/NAME: DeleteSecret with ForceDeleteWithoutRecovery of a
 * secret scheduled for deletion. The kernel has checked the rights, as for
 * a restore (.deleted is sticky: the secret's owner or root); the policy
 * asks for DeleteSecret, as rm NAME does. pt is the folder of .deleted the
 * name is in; the domain refuses a name that is not a deleted secret.
 */
static int force_delete(struct fs *fs, fuse_req_t req, const struct target *pt, const char *name)
{
	struct audit_caller who = caller_of(req);
	char deleted[SM_NAME_MAX + 1];
	int n = pt->name[0] ? snprintf(deleted, sizeof(deleted), "%s/%s", pt->name, name)
			    : snprintf(deleted, sizeof(deleted), "%s", name);
	if (n < 0 || (size_t)n >= sizeof(deleted))
		return -ENOENT; /* longer than any secret's name */
	int rc = gate(fs, req, "DeleteSecret", deleted);
	if (rc)
		return rc;
	rc = sm_purge_deleted(fs->sm, deleted);
	struct audit_event ev = { .name = "DeleteSecret", .secret = deleted, .force_delete = true };
	audit_record(fs->audit, &who, &ev, rc);
	return rc;
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fs_of(req);
	struct audit_caller who = caller_of(req);
	char ppath[VPATH_MAX];
	struct new_child c;
	struct target pt;
	int rc = resolve_parent(fs, parent, ppath, &pt);
	if (!rc && pt.view == VIEW_DELETED) {
		if (!(rc = join_path(ppath, name, c.vpath)) && !(rc = force_delete(fs, req, &pt, name)))
			nodes_detach(fs->nodes, c.vpath);
		fuse_reply_err(req, -rc);
		return;
	}
	if (!rc && !(rc = child_of(ppath, &pt, name, false, CHILD_FILE, &c)) &&
	    !(rc = gate(fs, req, "DeleteSecret", c.name))) {
		rc = sm_delete(fs->sm, c.name);
		audit_event(fs, &who, "DeleteSecret", c.name, rc);
	}
	if (!rc)
		nodes_detach(fs->nodes, c.vpath);
	fuse_reply_err(req, -rc);
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
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

/* What a rename moves, as the domain moves it: a secret, or each secret
 * below a folder, checked under its write lock (nothing can be created
 * below the folder between the check and the move). A refusal is audited
 * by the check, naming what it refused: the rename adds no record of it. */
struct move_check {
	struct fs *fs;
	fuse_req_t req;
	int refused; /* what the check refused the move with (audited), or 0 */
};

static int check_move(const char *from, const char *to, void *ctx)
{
	struct move_check *mc = ctx;
	mc->refused = authorize_move(mc->fs, mc->req, from, to);
	return mc->refused;
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
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
	else if (!(rc = authorize(fs, req, event, ft.name)) &&
		 !(rc = ft.kind == T_DELETED_SECRET ? authorize_move(fs, req, ft.name, to.name) : 0) &&
		 !(rc = audit_begin(fs, &who, event, ft.name))) {
		struct move_check mc = { fs, req, 0 };
		if (ft.kind == T_DELETED_SECRET)
			rc = sm_restore(fs->sm, ft.name, to.name);
		else
			rc = sm_rename(fs->sm, ft.name, to.name, flags & RENAME_NOREPLACE,
				       fs->policy ? check_move : NULL, &mc);
		struct audit_event ev = { .name = event, .secret = ft.name, .detail_key = "newName",
					  .detail_value = to.name };
		bool audited = mc.refused && rc == mc.refused; /* by check_move */
		if (!audited)
			audit_record(fs->audit, &who, &ev, rc);
	}
	if (!rc) /* the kernel drops the moved inode's cached attributes itself */
		nodes_move(fs->nodes, from, to.vpath);
out:
	fuse_reply_err(req, -rc);
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	fuse_reply_err(req, EPERM);
}

void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	(void)link;
	(void)parent;
	(void)name;
	fuse_reply_err(req, EPERM);
}

/* mknod of a regular file (tar --xattrs makes files so before opening them)
 * is CreateSecret without a value; devices, fifos and sockets are not secrets. */
void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
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
	if (!rc)
		rc = sm_writable(fs->sm);
	if (!rc)
		rc = authorize_create(fs, req, c.name);
	if (!rc)
		rc = sm_create(fs->sm, c.name,
			       fs->opt.new_umask >= 0 ? 0666 & ~(mode_t)fs->opt.new_umask : mode & 0600,
			       fs->opt.new_uid >= 0 ? (uid_t)fs->opt.new_uid : ctx->uid,
			       fs->opt.new_gid >= 0 ? (gid_t)fs->opt.new_gid : ctx->gid);
	if (!rc && (rc = sm_commit_created(fs->sm, c.name)))
		sm_discard_created(fs->sm, c.name); /* a failed create makes nothing */
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, fs, c.vpath);
}
