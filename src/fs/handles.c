/*
 * File handles: open and create (a snapshot for readers, a secure buffer
 * for writers), read, write, truncate, and the commit at flush, fsync or
 * release; the list of open writers, whose sizes stat reports.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/internal.h"
#include "fs/nodes.h"
#include "util/log.h"
#include "util/proc.h"

struct handle *handle_new(enum handle_kind kind, fuse_ino_t ino)
{
	struct handle *h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->kind = kind;
	h->ino = ino;
	pthread_mutex_init(&h->lock, NULL);
	return h;
}

void handle_free(struct handle *h)
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

/* writers_lock held. */
static void writers_unlink(struct fs *fs, struct handle *h)
{
	if (h->prev_writer)
		h->prev_writer->next_writer = h->next_writer;
	else if (fs->writers == h)
		fs->writers = h->next_writer;
	if (h->next_writer)
		h->next_writer->prev_writer = h->prev_writer;
}

static void writer_remove(struct fs *fs, struct handle *h)
{
	if (h->kind != HANDLE_WRITE)
		return;
	pthread_mutex_lock(&fs->writers_lock);
	writers_unlink(fs, h);
	pthread_mutex_unlock(&fs->writers_lock);
}

/* The size a dirty writer of ino holds, if any. */
bool writer_size(struct fs *fs, fuse_ino_t ino, off_t *size)
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
int truncate_handle(struct handle *h, off_t size)
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
		return sm_snapshot_has_value(h->snap) ? 0 : -ENOENT;
	case T_FIELD:
		snprintf(h->field, sizeof(h->field), "%s", t->field);
		return sm_snapshot_current(fs->sm, t->name, &h->snap);
	default:
		if ((rc = sm_snapshot_current(fs->sm, t->name, &h->snap)))
			return rc;
		/* A secret without a value (touch) has no AWSCURRENT to get: the
		 * open fails, so that no script reads an empty credential and cp
		 * makes no empty copy (docs/semantics.md). */
		if (!sm_snapshot_has_value(h->snap)) {
			log_warn("%s: refused: the secret has no value yet; write one first", t->name);
			return -ENODATA;
		}
		return 0;
	}
}

/* GetSecretValue through a handle: the version it got, recorded before any
 * byte is served (an unrecorded read is refused under audit_required). */
static int audit_get(struct fs *fs, const struct handle *h, const struct target *t,
		     const struct sm_snapshot *snap, int rc)
{
	if (!rc && t->kind != T_VERSION)
		sm_note_access(fs->sm, t->name);
	struct audit_event ev = {
		.name = "GetSecretValue", .secret = t->name, .read_only = true,
		.version_id = snap ? sm_snapshot_version_id(snap) : NULL,
		.stage = t->kind == T_STAGE_SECRET ? t->label : NULL,
		.detail_key = t->kind == T_FIELD ? "field" : NULL,
		.detail_value = t->kind == T_FIELD ? t->field : NULL,
	};
	if (audit_record(fs->audit, &h->opener, &ev, rc) && audit_required(fs->audit) && !rc)
		rc = -EIO;
	return rc;
}

/* A writer without O_TRUNC starts from the value shown (partial overwrites,
 * appends): it is decrypted into the handle, a GetSecretValue. A secret
 * (or label) without a value gives it nothing to read, and no Get. */
static int seed_writer(struct fs *fs, const struct target *t, struct handle *h)
{
	struct sm_snapshot *snap = NULL;
	int rc = t->kind == T_STAGE_SECRET ? sm_snapshot_label(fs->sm, t->name, t->label, &snap)
					   : sm_snapshot_current(fs->sm, t->name, &snap);
	if (!rc && !sm_snapshot_has_value(snap))
		goto out;
	if (!rc)
		rc = sm_snapshot_decrypt(fs->sm, snap, &h->buf);
	rc = audit_get(fs, h, t, snap, rc);
out:
	sm_snapshot_free(snap);
	return rc;
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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
	/* Read-only, or a replica offline: refused now, not at the close. */
	if (accmode != O_RDONLY && (rc = writable_view ? sm_writable(fs->sm) : -EROFS))
		goto out;
	h = handle_new(accmode == O_RDONLY ? HANDLE_READ : HANDLE_WRITE, ino);
	if (!h) {
		rc = -ENOMEM;
		goto out;
	}
	h->opener = caller_of(req);
	/* A writer reads too when it can (O_RDWR) or when it starts from the
	 * current value (no O_TRUNC): both actions, as the policy says. */
	bool seeded = h->kind == HANDLE_WRITE && !(fi->flags & O_TRUNC);
	if ((h->kind == HANDLE_WRITE && (rc = authorize_value(fs, req, "PutSecretValue", t.name))) ||
	    ((h->kind == HANDLE_READ || seeded || accmode == O_RDWR) &&
	     (rc = authorize_value(fs, req, "GetSecretValue", t.name))))
		goto out;
	if (h->kind == HANDLE_READ) {
		rc = open_reader(fs, &t, h);
		rc = audit_get(fs, h, &t, h->snap, rc);
		fi->noflush = 1; /* nothing to commit: spare the FLUSH round trip */
	} else {
		h->append = (fi->flags & O_APPEND) != 0;
		if (seeded)
			rc = seed_writer(fs, &t, h);
		else
			h->dirty = true; /* O_TRUNC */
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

void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
	       struct fuse_file_info *fi)
{
	struct fs *fs = fs_of(req);
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct fuse_entry_param e;
	struct new_child c;
	struct handle *h = NULL;
	bool made = false;
	int rc = new_child(fs, parent, name, true, CHILD_FILE, &c);

	if (!rc)
		rc = sm_writable(fs->sm);
	if (!rc)
		rc = authorize_create(fs, req, c.name);
	/* New secrets are 0600 less the caller's umask (BRIEF §2), unless the
	 * mount sets umask=, uid=, gid= for them. */
	if (!rc)
		made = !(rc = sm_create(fs->sm, c.name,
			fs->opt.new_umask >= 0 ? 0666 & ~(mode_t)fs->opt.new_umask : mode & 0600,
			fs->opt.new_uid >= 0 ? (uid_t)fs->opt.new_uid : ctx->uid,
			fs->opt.new_gid >= 0 ? (gid_t)fs->opt.new_gid : ctx->gid));
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
		/* The caller was interrupted: it created nothing. */
		writer_remove(fs, h);
		nodes_forget(fs->nodes, e.ino, 1);
		handle_free(h);
		sm_discard_created(fs->sm, c.name);
	}
	return;
fail:
	if (made)
		sm_discard_created(fs->sm, c.name);
	handle_free(h);
	fuse_reply_err(req, -rc);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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

void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
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
 * *create_refused: this handle's CreateSecret is refused, now or before.
 */
static int commit(struct fs *fs, struct handle *h, bool final, bool *create_refused)
{
	char vpath[VPATH_MAX], version_id[SM_VERSION_ID_MAX + 1];
	int rc = 0;

	*create_refused = false;
	if (h->kind != HANDLE_WRITE)
		return 0;
	pthread_mutex_lock(&h->lock);
	if (h->failed) {
		/* The value as written was refused: the secret keeps its old one,
		 * and a client request token or import date set for this commit
		 * stays pending, for a retry. */
		rc = h->failed;
		if (h->dirty) {
			struct target ft;
			if (nodes_path(fs->nodes, h->ino, vpath, sizeof(vpath)) == 0 &&
			    path_resolve(fs->sm, vpath, &ft) == 0)
				audit_event(fs, &h->opener, h->created ? "CreateSecret" : "PutSecretValue",
					    ft.name, rc);
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
	if (rc && h->created) {
		/* CreateSecret failed: the name is to go, and no later write
		 * through this handle may bring it back. */
		if (!h->failed)
			h->failed = rc;
		*create_refused = true;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

/*
 * A created secret whose first commit was refused was never created (a
 * CreateSecret that fails creates nothing): it leaves the index and the
 * kernel's cache; the store never had it. A writer that opened the name
 * meanwhile may still give it a value, so the name goes with the last
 * writer of the inode, and only if nothing was committed by then.
 * refused: h's create was refused just now; leaving: h is released.
 * From flush and release only: the kernel sends fsync holding the inode's
 * lock, which the invalidation of its name would wait for.
 */
static void drop_refused_create(struct fs *fs, struct handle *h, bool refused, bool leaving)
{
	char vpath[VPATH_MAX];
	struct target t;
	bool last = true;

	pthread_mutex_lock(&fs->writers_lock);
	if (leaving)
		writers_unlink(fs, h);
	if (refused)
		h->create_refused = true;
	refused = h->create_refused;
	for (struct handle *o = fs->writers; o && refused; o = o->next_writer) {
		if (o != h && o->ino == h->ino) {
			o->create_refused = true; /* the decision is theirs now */
			last = false;
		}
	}
	pthread_mutex_unlock(&fs->writers_lock);
	if (!refused || !last)
		return;
	/* Unlinked meanwhile (-ESTALE), or committed by another writer: stays. */
	if (nodes_path(fs->nodes, h->ino, vpath, sizeof(vpath)) ||
	    path_resolve(fs->sm, vpath, &t) || sm_discard_created(fs->sm, t.name) != 1)
		return;
	nodes_detach(fs->nodes, vpath);
	forget_entry(fs, vpath);
}

/*
 * A writer that dies does not commit. The kernel closes the files of a
 * process killed by a signal, and that close's FLUSH is served while the
 * closing task, still in /proc, waits for it (FUSE gives its thread id):
 * when that task is dying of a signal, nobody will see this close return,
 * and what the handle holds may be half a value. It is dropped: the handle
 * is poisoned as a refused write is, so neither this flush, the RELEASE
 * after it, nor a later close by another holder of the descriptor (a
 * parent after fork) commits it. A normal exit (exit(), a return from
 * main) closes as a close(2) would and commits.
 */
static void drop_if_killed(struct fs *fs, fuse_req_t req, struct handle *h)
{
	char vpath[VPATH_MAX] = "";
	if (h->kind != HANDLE_WRITE)
		return;
	pthread_mutex_lock(&h->lock);
	bool pending = h->dirty && !h->failed;
	pthread_mutex_unlock(&h->lock);
	int sig = pending ? proc_death_signal(fuse_req_ctx(req)->pid) : 0;
	if (!sig)
		return;
	pthread_mutex_lock(&h->lock);
	if (h->dirty && !h->failed) {
		h->failed = -ECANCELED;
		nodes_path(fs->nodes, h->ino, vpath, sizeof(vpath));
		log_warn("%s: the writer (pid %d) was killed by signal %d before its close: "
			 "nothing it wrote is committed", vpath, (int)fuse_req_ctx(req)->pid, sig);
	}
	pthread_mutex_unlock(&h->lock);
}

void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	bool refused;
	(void)ino;
	drop_if_killed(fs_of(req), req, h);
	int rc = commit(fs_of(req), h, false, &refused);
	if (refused) /* gone before close returns */
		drop_refused_create(fs_of(req), h, true, false);
	fuse_reply_err(req, -rc);
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	bool refused; /* the name goes at close (see drop_refused_create) */
	(void)ino;
	(void)datasync;
	fuse_reply_err(req, -commit(fs_of(req), (struct handle *)(uintptr_t)fi->fh, false, &refused));
}

void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	bool refused;
	(void)ino;
	/* Normally flush committed already; this catches a writer without one. */
	int rc = commit(fs_of(req), h, true, &refused);
	if (rc && !h->failed)
		log_warn("commit at release failed: %s", strerror(-rc));
	if (h->kind == HANDLE_WRITE) {
		drop_refused_create(fs_of(req), h, refused, true);
		/* committed or not, its size is shown no more */
		forget_attributes(fs_of(req), h->ino);
	}
	handle_free(h);
	fuse_reply_err(req, 0);
}
