/*
 * Folders and ownership: mkdir, rmdir, the parent and children checks
 * the other mutations share, and chmod/chown of a folder or a secret.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/timeutil.h"

int check_parent(struct sm *sm, const char *name)
{
	char parent[SM_NAME_MAX + 1];
	name_parent(name, parent, sizeof(parent));
	if (find_folder(sm, parent))
		return 0;
	return find_secret(sm, parent) && is_live(find_secret(sm, parent)) ? -ENOTDIR : -ENOENT;
}

int collect_below(const char *key, void *value, void *ctx)
{
	struct prefix_collect *pc = ctx;
	if (!name_is_below(key, pc->prefix))
		return 0;
	void **items = realloc(pc->items, (pc->count + 1) * sizeof(*items));
	if (!items)
		return -ENOMEM;
	pc->items = items;
	items[pc->count++] = value;
	return 0;
}

bool folder_has_children(struct sm *sm, const char *path)
{
	struct prefix_collect a = { path, NULL, 0, 0 }, b = { path, NULL, 0, 0 };
	hashmap_foreach(sm->folders, collect_below, &a);
	hashmap_foreach(sm->secrets, collect_below, &b);
	bool children = a.count > 1;
	for (size_t i = 0; i < b.count; i++)
		if (is_live(b.items[i]) && strcmp(((struct sm_secret *)b.items[i])->name, path) != 0)
			children = true;
	free(a.items);
	free(b.items);
	return children;
}

static void apply_owner_mode(uint32_t *mode, uint32_t *uid, uint32_t *gid, const uint32_t *new_mode,
			     const uint32_t *new_uid, const uint32_t *new_gid)
{
	if (new_mode)
		*mode = *new_mode & 07777;
	if (new_uid)
		*uid = *new_uid;
	if (new_gid)
		*gid = *new_gid;
}

static int owner_mode_once(struct sm *sm, const char *path, const uint32_t *mode,
			   const uint32_t *uid, const uint32_t *gid)
{
	struct change c = { 0 };
	int rc;

	if ((rc = write_begin(sm)))
		return rc;
	struct sm_folder *f = find_folder(sm, path);
	struct sm_secret *s = f ? NULL : find_secret(sm, path);
	if (f) {
		struct sm_folder *n = clone_folder(f, NULL);
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		apply_owner_mode(&n->mode, &n->uid, &n->gid, mode, uid, gid);
		n->changed_ms = time_now_ms();
		n->persisted = true;
		change_put_folder(&c, n);
		if ((rc = change_commit(sm, &c))) {
			folder_free(n);
			goto out;
		}
		index_replace_folder(sm, path, n);
	} else if (is_live(s)) {
		struct sm_secret *n = secret_clone(s);
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		apply_owner_mode(&n->mode, &n->uid, &n->gid, mode, uid, gid);
		if (n->persisted) {
			change_put_secret(&c, n);
			if ((rc = change_commit(sm, &c))) {
				secret_free(n);
				goto out;
			}
		}
		index_replace(sm, path, n);
	} else {
		rc = -ENOENT;
	}
out:
	write_end(sm);
	change_free(&c);
	return rc;
}

int sm_set_owner_mode(struct sm *sm, const char *path, const uint32_t *mode, const uint32_t *uid,
		      const uint32_t *gid)
{
	int rc, tries = 0;
	do
		rc = owner_mode_once(sm, path, mode, uid, gid);
	while (write_again(sm, path[0] ? path : "/", &rc, &tries));
	return rc;
}

static int mkdir_once(struct sm *sm, const char *path, uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct change c = { 0 };
	const char *why;
	int rc;

	if (name_check(path, &why))
		return refuse(-EINVAL, path, why);
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *held = find_secret(sm, path);
	if (find_folder(sm, path) || is_live(held)) {
		rc = -EEXIST;
		goto out;
	}
	if (held) {
		/* Kept for its restore (or an editor's create), which a folder
		 * of the same name would refuse. */
		rc = refuse(-EEXIST, path, held->deleted_ms
			? "a folder cannot take the name of a secret scheduled for deletion; "
			  "restore or remove it first"
			: "a folder cannot take the name of a secret hidden by an editor's rename");
		goto out;
	}
	if ((rc = check_parent(sm, path)))
		goto out;
	struct sm_folder *f = new_folder(path, mode, uid, gid, time_now_ms());
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	f->persisted = true;
	change_put_folder(&c, f);
	if ((rc = change_commit(sm, &c))) {
		folder_free(f);
		goto out;
	}
	index_replace_folder(sm, path, f);
out:
	write_end(sm);
	change_free(&c);
	return rc;
}

int sm_mkdir(struct sm *sm, const char *path, uint32_t mode, uint32_t uid, uint32_t gid)
{
	int rc, tries = 0;
	do
		rc = mkdir_once(sm, path, mode, uid, gid);
	while (write_again(sm, path, &rc, &tries));
	return rc;
}

static int rmdir_once(struct sm *sm, const char *path)
{
	struct change c = { 0 };
	int rc;

	if ((rc = write_begin(sm)))
		return rc;
	struct sm_folder *f = path[0] ? find_folder(sm, path) : NULL;
	if (!f) {
		rc = is_live(find_secret(sm, path)) ? -ENOTDIR : path[0] ? -ENOENT : -EBUSY;
		goto out;
	}
	if (folder_has_children(sm, path)) {
		rc = -ENOTEMPTY;
		goto out;
	}
	if (f->persisted) {
		char key[SM_NAME_MAX + 32];
		record_key_folder(path, key, sizeof(key));
		change_add(&c, key, NULL, 0);
		if ((rc = change_commit(sm, &c)))
			goto out;
	}
	index_replace_folder(sm, path, NULL);
out:
	write_end(sm);
	change_free(&c);
	return rc;
}

int sm_rmdir(struct sm *sm, const char *path)
{
	int rc, tries = 0;
	do
		rc = rmdir_once(sm, path);
	while (write_again(sm, path, &rc, &tries));
	return rc;
}
