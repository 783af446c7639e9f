/*
 * sm_rename: a secret to a free name, over another secret (rename_over),
 * to or from a scratch name (an editor's temp and backup files), and a
 * folder with everything below it, each in one transaction.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"

/* Tags of from join to's (rename keeps what a sync tool set on its temp file). */
static int merge_tags(struct sm_secret *to, const struct sm_secret *from)
{
	for (size_t i = 0; i < from->ntags; i++) {
		struct sm_tag *t = NULL;
		for (size_t j = 0; j < to->ntags; j++)
			if (strcmp(to->tags[j].key, from->tags[i].key) == 0)
				t = &to->tags[j];
		char *value = strdup(from->tags[i].value);
		if (!value)
			return -ENOMEM;
		if (t) {
			free(t->value);
			t->value = value;
			continue;
		}
		struct sm_tag *tags = realloc(to->tags, (to->ntags + 1) * sizeof(*tags));
		if (!tags || !(tags[to->ntags].key = strdup(from->tags[i].key))) {
			if (tags)
				to->tags = tags;
			free(value);
			return -ENOMEM;
		}
		to->tags = tags;
		tags[to->ntags++].value = value;
		to->tags_ever = true;
	}
	return 0;
}

/* The value a rename carries: a scratch file's, or the current version's. */
static int renamed_value(struct sm *sm, const struct sm_secret *from, struct secbuf *out)
{
	if (!from->scratch)
		return read_current(sm, from, out);
	const struct secbuf *v = scratch_value(sm, from->name);
	out->len = 0;
	return v ? secbuf_set(out, v->data, v->len) : 0;
}

/*
 * rename A -> B with B present: B gets A's current value as a new version,
 * and, as a rename replaces a file, A's mode and owner; A's tags join B's.
 * A goes away.
 */
static int rename_over(struct sm *sm, struct sm_secret *from, struct sm_secret *to)
{
	struct change c = { 0 };
	struct secbuf value = { 0 };
	struct sm_secret *s = secret_clone(to);
	char version_id[SM_VERSION_ID_MAX + 1];
	bool added = false;
	int rc;

	if (!s)
		return -ENOMEM;
	if ((rc = renamed_value(sm, from, &value)) || (rc = merge_tags(s, from)))
		goto out;
	s->persisted = true;
	s->hidden = false;
	s->restore_pending = false;
	s->deleted_ms = s->purge_ms = 0;
	s->mode = from->mode;
	s->uid = from->uid;
	s->gid = from->gid;
	if (value.len && (rc = add_version(sm, s, value.data, value.len, NULL, &c, version_id, &added)))
		goto out;
	change_put_secret(&c, s);
	purge_into(&c, from);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_debug("%s: replaced by rename from %s%s", to->name, from->name,
		  added ? "" : " (same value, no new version)");
	char from_name[SM_NAME_MAX + 1];
	snprintf(from_name, sizeof(from_name), "%s", from->name);
	if (from->scratch)
		scratch_set(sm, from_name, NULL, 0);
	index_replace(sm, s->name, s);
	s = NULL;
	index_replace(sm, from_name, NULL);
out:
	secbuf_free(&value);
	secret_free(s);
	change_free(&c);
	return rc;
}

static int rename_secret(struct sm *sm, struct sm_secret *from, const char *to)
{
	struct change c = { 0 };
	struct secbuf value = { 0 };
	struct sm_secret *s = secret_clone(from);
	char version_id[SM_VERSION_ID_MAX + 1];
	bool added;
	int rc = 0;
	if (!s)
		return -ENOMEM;
	free(s->name);
	if (!(s->name = strdup(to))) {
		rc = -ENOMEM;
		goto out;
	}
	if (from->scratch) {
		/* A scratch file renamed to a real name is CreateSecret with its value. */
		s->scratch = false;
		s->scratch_size = 0;
		s->persisted = true;
		if ((rc = renamed_value(sm, from, &value)) ||
		    (value.len &&
		     (rc = add_version(sm, s, value.data, value.len, NULL, &c, version_id, &added))))
			goto out;
		change_put_secret(&c, s);
	} else if (from->persisted) {
		change_del_secret(&c, from->name);
		change_put_secret(&c, s);
	}
	if (c.count && (rc = change_commit(sm, &c)))
		goto out;
	char from_name[SM_NAME_MAX + 1];
	snprintf(from_name, sizeof(from_name), "%s", from->name);
	if (from->scratch)
		scratch_set(sm, from_name, NULL, 0);
	index_replace(sm, to, s);
	s = NULL;
	index_replace(sm, from_name, NULL);
out:
	secbuf_free(&value);
	secret_free(s);
	change_free(&c);
	return rc;
}

/*
 * A folder and everything below it move to a new prefix: one transaction.
 * An empty folder at the new prefix is replaced in the same one: the moved
 * folder's record takes its key, and its entry in the index. check sees
 * each secret that moves, as it moves, before anything is written.
 */
static int rename_folder(struct sm *sm, const char *from, const char *to,
			 sm_move_check_fn check, void *ctx)
{
	struct prefix_collect folders = { from, NULL, 0, 0 }, secrets = { from, NULL, 0, 0 };
	struct change c = { 0 };
	struct sm_folder **new_folders = NULL;
	struct sm_secret **new_secrets = NULL;
	size_t flen = strlen(from);
	int rc;

	if ((rc = hashmap_foreach(sm->folders, collect_below, &folders)) ||
	    (rc = hashmap_foreach(sm->secrets, collect_below, &secrets)))
		goto out;
	new_folders = calloc(folders.count + 1, sizeof(*new_folders));
	new_secrets = calloc(secrets.count + 1, sizeof(*new_secrets));
	if (!new_folders || !new_secrets) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < folders.count; i++) {
		struct sm_folder *f = folders.items[i];
		char path[SM_NAME_MAX + 2];
		if (snprintf(path, sizeof(path), "%s%s", to, f->path + flen) > SM_NAME_MAX) {
			rc = refuse(-ENAMETOOLONG, to, "a name may be at most 512 characters");
			goto out;
		}
		if (!(new_folders[i] = clone_folder(f, path))) {
			rc = -ENOMEM;
			goto out;
		}
		new_folders[i]->persisted = true;
		if (f->persisted) {
			char key[SM_NAME_MAX + 32];
			record_key_folder(f->path, key, sizeof(key));
			change_add(&c, key, NULL, 0);
		}
		change_put_folder(&c, new_folders[i]);
	}
	for (size_t i = 0; i < secrets.count; i++) {
		struct sm_secret *s = secrets.items[i];
		char name[SM_NAME_MAX + 2];
		if (snprintf(name, sizeof(name), "%s%s", to, s->name + flen) > SM_NAME_MAX) {
			rc = refuse(-ENAMETOOLONG, to, "a name may be at most 512 characters");
			goto out;
		}
		if (check && (rc = check(s->name, name, ctx)))
			goto out;
		if (!(new_secrets[i] = secret_clone(s))) {
			rc = -ENOMEM;
			goto out;
		}
		free(new_secrets[i]->name);
		if (!(new_secrets[i]->name = strdup(name))) {
			rc = -ENOMEM;
			goto out;
		}
		if (s->persisted) {
			change_del_secret(&c, s->name);
			change_put_secret(&c, new_secrets[i]);
		}
	}
	if ((rc = change_commit(sm, &c)))
		goto out;
	/* Remove the old names first: a new name may equal another's old one. */
	for (size_t i = 0; i < folders.count; i++)
		index_replace_folder(sm, ((struct sm_folder *)folders.items[i])->path, NULL);
	for (size_t i = 0; i < secrets.count; i++)
		index_replace(sm, ((struct sm_secret *)secrets.items[i])->name, NULL);
	for (size_t i = 0; i < folders.count; i++) {
		index_replace_folder(sm, new_folders[i]->path, new_folders[i]);
		new_folders[i] = NULL;
	}
	for (size_t i = 0; i < secrets.count; i++) {
		index_replace(sm, new_secrets[i]->name, new_secrets[i]);
		new_secrets[i] = NULL;
	}
	log_info("%s: folder renamed to %s", from, to);
out:
	for (size_t i = 0; new_folders && i < folders.count; i++)
		folder_free(new_folders[i]);
	for (size_t i = 0; new_secrets && i < secrets.count; i++)
		secret_free(new_secrets[i]);
	free(new_folders);
	free(new_secrets);
	free(folders.items);
	free(secrets.items);
	change_free(&c);
	return rc;
}

/*
 * rename A -> a scratch name (vim's "A~" backup): the scratch file gets A's
 * value and metadata, and A is hidden, not moved: the editor creates A again
 * at once, and that is the same secret with a new version, its history
 * kept. Hidden is memory only: after a restart A is simply back.
 */
static int rename_to_scratch(struct sm *sm, struct sm_secret *from, const char *to)
{
	struct secbuf value = { 0 };
	struct sm_secret *copy = secret_clone(from), *hidden = NULL;
	int rc;
	if (!copy)
		return -ENOMEM;
	if ((rc = renamed_value(sm, from, &value)))
		goto out;
	free(copy->name);
	if (!(copy->name = strdup(to))) {
		rc = -ENOMEM;
		goto out;
	}
	copy->scratch = true;
	copy->persisted = false;
	copy->scratch_size = (uint32_t)value.len;
	if ((rc = scratch_set(sm, to, value.data, value.len)))
		goto out;
	char from_name[SM_NAME_MAX + 1];
	snprintf(from_name, sizeof(from_name), "%s", from->name);
	if (from->scratch) {
		scratch_set(sm, from_name, NULL, 0);
		index_replace(sm, from_name, NULL);
	} else {
		if (!(hidden = secret_clone(from))) {
			rc = -ENOMEM;
			goto out;
		}
		hidden->hidden = true;
		index_replace(sm, from_name, hidden);
	}
	index_replace(sm, to, copy);
	copy = NULL;
out:
	secbuf_free(&value);
	secret_free(copy);
	return rc;
}

/*
 * A folder moves only onto a path that holds nothing, not even a secret
 * scheduled for deletion or hidden by an editor's rename: the moved
 * secrets' records would take their keys, and a deleted secret's name is
 * kept for its restore (AWS refuses to reuse it). -ENOTEMPTY, as
 * rename(2) over a folder that is not empty; 0 when the path is free.
 */
static int check_folder_target(struct sm *sm, const char *to)
{
	struct prefix_collect held = { to, NULL, 0, 0 };
	char why[SM_NAME_MAX + 160];
	int rc = hashmap_foreach(sm->secrets, collect_below, &held);
	if (!rc && held.count) {
		const struct sm_secret *s = held.items[0];
		snprintf(why, sizeof(why), "a folder cannot move over %s, which is %s; "
			 "restore or remove it first", s->name,
			 s->deleted_ms ? "scheduled for deletion" : "hidden by an editor's rename");
		rc = refuse(-ENOTEMPTY, to, why);
	}
	free(held.items);
	return rc;
}

static int rename_once(struct sm *sm, const char *from, const char *to, bool noreplace,
		       sm_move_check_fn check, void *ctx)
{
	const char *why;
	int rc;

	bool to_scratch = name_is_scratch(to);
	if (!to_scratch && name_check(to, &why))
		return refuse(-EINVAL, to, why);
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *fs = find_secret(sm, from), *ts = find_secret(sm, to);
	if (to_scratch) {
		if (!is_live(fs))
			rc = from[0] && find_folder(sm, from) ? refuse(-EINVAL, to, "a folder cannot take a scratch name")
							      : -ENOENT;
		else if (ts && !ts->scratch)
			rc = -EEXIST;
		else if (!(rc = check ? check(from, to, ctx) : 0))
			rc = rename_to_scratch(sm, fs, to);
		goto out;
	}
	struct sm_folder *ff = from[0] ? find_folder(sm, from) : NULL, *tf = find_folder(sm, to);
	if ((rc = check_parent(sm, to)))
		goto out;
	if (strcmp(from, to) == 0) {
		rc = (is_live(fs) || ff) ? 0 : -ENOENT;
		goto out;
	}
	if (is_live(fs)) {
		if (tf)
			rc = -EISDIR;
		else if (ts && noreplace && is_live(ts))
			rc = -EEXIST;
		else if (!(rc = check ? check(from, to, ctx) : 0))
			rc = ts ? rename_over(sm, fs, ts) : rename_secret(sm, fs, to);
	} else if (ff) {
		if (is_live(ts))
			rc = -ENOTDIR;
		else if (name_is_below(to, from))
			rc = refuse(-EINVAL, to, "a folder cannot move below itself");
		else if (tf && noreplace)
			rc = -EEXIST;
		else if (tf && folder_has_children(sm, to))
			rc = -ENOTEMPTY;
		else if (!(rc = check_folder_target(sm, to)))
			rc = rename_folder(sm, from, to, check, ctx);
	} else {
		rc = -ENOENT;
	}
out:
	write_end(sm);
	return rc;
}

int sm_rename(struct sm *sm, const char *from, const char *to, bool noreplace,
	      sm_move_check_fn check, void *ctx)
{
	int rc, tries = 0;
	do
		rc = rename_once(sm, from, to, noreplace, check, ctx);
	while (write_again(sm, from, &rc, &tries));
	return rc;
}
