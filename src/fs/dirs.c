/*
 * Directories: opendir takes the listing (live folders, and the views
 * filtered to what they show), readdir serves it, releasedir frees it;
 * statfs.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs/internal.h"

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

void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
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

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
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

void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	handle_free((struct handle *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void op_statfs(fuse_req_t req, fuse_ino_t ino)
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
