/*
 * A secret's life: create (new, or a deleted name restored), the commit
 * of what create left in memory or its undoing, delete into the recovery
 * window, restore, and the purge of what the window let go or a forced
 * delete asked for.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

static void new_arn_suffix(char out[SM_ARN_SUFFIX_LEN + 1])
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t r[SM_ARN_SUFFIX_LEN];
	crypto_random_nonce(r, sizeof(r));
	for (int i = 0; i < SM_ARN_SUFFIX_LEN; i++)
		out[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
	out[SM_ARN_SUFFIX_LEN] = '\0';
}

struct sm_secret *secret_new(const char *name, uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct sm_secret *s = calloc(1, sizeof(*s));
	uint8_t id[SM_UUID_HEX_LEN / 2];
	if (!s || !(s->name = strdup(name))) {
		free(s);
		return NULL;
	}
	crypto_random_nonce(id, sizeof(id));
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(s->uuid + 2 * i, 3, "%02x", id[i]);
	new_arn_suffix(s->arn_suffix);
	s->created_ms = s->changed_ms = time_now_ms();
	s->mode = mode & 07777;
	s->uid = uid;
	s->gid = gid;
	return s;
}

/* A deleted secret restored by a create, in memory only (pending), or
 * deleted again as the store still says (its first commit was refused). */
static int set_restore_pending(struct sm *sm, const char *name, const struct sm_secret *old,
			       bool pending)
{
	struct sm_secret *s = secret_clone(old);
	if (!s)
		return -ENOMEM;
	if (pending) {
		s->restore_deleted_ms = s->deleted_ms;
		s->restore_purge_ms = s->purge_ms;
		s->deleted_ms = s->purge_ms = 0;
	} else {
		s->deleted_ms = s->restore_deleted_ms;
		s->purge_ms = s->restore_purge_ms;
	}
	s->restore_pending = pending;
	index_replace(sm, name, s);
	return 0;
}

int sm_create(struct sm *sm, const char *name, uint32_t mode, uint32_t uid, uint32_t gid)
{
	const char *why;
	bool scratch = name_is_scratch(name);
	int rc = 0;

	if (!scratch && name_check(name, &why))
		return refuse(-EINVAL, name, why);
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, name);
	if (find_folder(sm, name) || is_live(old)) {
		rc = -EEXIST;
		goto out;
	}
	if (old && old->hidden) {
		/* An editor that moved the secret to its backup name writes it
		 * anew: the same secret, whose next commit is a new version. */
		struct sm_secret *s = secret_clone(old);
		if (!s) {
			rc = -ENOMEM;
			goto out;
		}
		s->hidden = false;
		index_replace(sm, name, s);
		goto out;
	}
	if ((rc = check_parent(sm, name)))
		goto out;
	if (old) {
		/* Creating a deleted name restores it: nothing is lost (BRIEF §4).
		 * In memory only until the new value (or the empty close) is
		 * committed: a crash before that leaves it deleted, as it was. */
		rc = set_restore_pending(sm, name, old, true);
		goto out;
	}
	struct sm_secret *s = secret_new(name, mode, uid, gid);
	if (!s) {
		rc = -ENOMEM;
		goto out;
	}
	s->persisted = false;
	s->scratch = scratch;
	index_replace(sm, name, s);
out:
	write_end(sm);
	return rc;
}

static int commit_created_once(struct sm *sm, const char *name)
{
	int rc;
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, name);
	if (old && (!old->persisted || old->restore_pending) && !old->scratch) {
		struct sm_secret *s = secret_clone(old);
		struct change c = { 0 };
		if (!s) {
			rc = -ENOMEM;
			goto out;
		}
		bool restored = s->restore_pending;
		s->persisted = true;
		s->restore_pending = false;
		change_put_secret(&c, s);
		rc = change_commit(sm, &c);
		change_free(&c);
		if (rc) {
			secret_free(s);
			goto out;
		}
		if (restored)
			log_info("%s: restored by a new create", name);
		index_replace(sm, name, s);
	}
out:
	write_end(sm);
	return rc;
}

int sm_commit_created(struct sm *sm, const char *name)
{
	int rc, tries = 0;
	do
		rc = commit_created_once(sm, name);
	while (write_again(sm, name, &rc, &tries));
	return rc;
}

/* A created secret never committed leaves the index (it was never stored). */
static void drop_uncommitted(struct sm *sm, const struct sm_secret *s)
{
	char name[SM_NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", s->name);
	if (s->scratch)
		scratch_set(sm, name, NULL, 0);
	index_replace(sm, name, NULL);
}

int sm_discard_created(struct sm *sm, const char *name)
{
	int rc = 1;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *old = find_secret(sm, name);
	if (!old || (old->persisted && !old->restore_pending)) {
		rc = 0; /* committed meanwhile, or already gone */
	} else if (!old->persisted) {
		drop_uncommitted(sm, old);
	} else if (set_restore_pending(sm, name, old, false)) {
		rc = -ENOMEM;
	}
	if (rc == 1)
		log_info("%s: not created: CreateSecret failed, nothing was stored", name);
	pthread_mutex_unlock(&sm->write_lock);
	return rc;
}

void purge_into(struct change *c, const struct sm_secret *s)
{
	if (!s->persisted)
		return;
	change_del_versions(c, s);
	change_del_secret(c, s->name);
}

/* Removes s for good, metadata and every version in one transaction; under
 * the writer lock. how ends the log line. */
static int purge_now(struct sm *sm, const struct sm_secret *s, const char *how)
{
	struct change c = { 0 };
	purge_into(&c, s);
	int rc = change_commit(sm, &c);
	change_free(&c);
	if (rc)
		return rc;
	log_info("%s: %s", s->name, how);
	index_replace(sm, s->name, NULL);
	return 0;
}

static int delete_once(struct sm *sm, const char *name)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	int rc;

	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, name);
	if (!is_live(old)) {
		rc = find_folder(sm, name) ? -EISDIR : -ENOENT;
		goto out;
	}
	if (!old->persisted) {
		drop_uncommitted(sm, old);
		goto out;
	}
	if (old->nversions == 0 || sm->opt.recovery_window_days == 0) {
		rc = purge_now(sm, old, "deleted for good");
		goto out;
	}
	if (!(s = secret_clone(old))) {
		rc = -ENOMEM;
		goto out;
	}
	s->deleted_ms = time_now_ms();
	s->purge_ms = s->deleted_ms + (int64_t)sm->opt.recovery_window_days * MS_PER_DAY;
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_info("%s: scheduled for deletion in %d days", name, sm->opt.recovery_window_days);
	index_replace(sm, name, s);
	s = NULL;
out:
	write_end(sm);
	secret_free(s);
	change_free(&c);
	return rc;
}

int sm_delete(struct sm *sm, const char *name)
{
	int rc, tries = 0;
	do
		rc = delete_once(sm, name);
	while (write_again(sm, name, &rc, &tries));
	return rc;
}

static int restore_once(struct sm *sm, const char *deleted_name, const char *new_name)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	const char *why;
	int rc;

	if (name_check(new_name, &why))
		return refuse(-EINVAL, new_name, why);
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, deleted_name);
	bool renaming = strcmp(deleted_name, new_name) != 0;
	if (!old || !old->deleted_ms) {
		rc = -ENOENT;
		goto out;
	}
	if (renaming && (find_secret(sm, new_name) || find_folder(sm, new_name))) {
		rc = -EEXIST;
		goto out;
	}
	if ((rc = check_parent(sm, new_name)))
		goto out;
	if (!(s = secret_clone(old)) || (renaming && (free(s->name), !(s->name = strdup(new_name))))) {
		rc = -ENOMEM;
		goto out;
	}
	s->deleted_ms = s->purge_ms = 0;
	if (renaming)
		change_del_secret(&c, deleted_name);
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_info("%s: restored%s%s", deleted_name, renaming ? " as " : "", renaming ? new_name : "");
	if (renaming)
		index_replace(sm, deleted_name, NULL);
	index_replace(sm, new_name, s);
	s = NULL;
out:
	write_end(sm);
	secret_free(s);
	change_free(&c);
	return rc;
}

int sm_restore(struct sm *sm, const char *deleted_name, const char *new_name)
{
	int rc, tries = 0;
	do
		rc = restore_once(sm, deleted_name, new_name);
	while (write_again(sm, deleted_name, &rc, &tries));
	return rc;
}

static int purge_deleted_once(struct sm *sm, const char *name)
{
	int rc;
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *s = find_secret(sm, name);
	rc = s && s->deleted_ms ? purge_now(sm, s, "deleted for good (ForceDeleteWithoutRecovery)")
				: -ENOENT;
	write_end(sm);
	return rc;
}

int sm_purge_deleted(struct sm *sm, const char *name)
{
	int rc, tries = 0;
	do
		rc = purge_deleted_once(sm, name);
	while (write_again(sm, name, &rc, &tries));
	return rc;
}

struct expired {
	int64_t now;
	char **names;
	size_t count;
};

static int collect_expired(const char *name, void *value, void *ctx)
{
	struct expired *e = ctx;
	const struct sm_secret *s = value;
	if (!s->deleted_ms || s->purge_ms > e->now)
		return 0;
	char **names = realloc(e->names, (e->count + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	e->names = names;
	if (!(names[e->count] = strdup(name)))
		return -ENOMEM;
	e->count++;
	return 0;
}

static int purge_expired_once(struct sm *sm)
{
	struct expired e = { time_now_ms(), NULL, 0 };
	int rc = 0;
	/* The upkeep's: a store that cannot change now is purged later. */
	if (write_begin(sm))
		return 0;
	hashmap_foreach(sm->secrets, collect_expired, &e);
	for (size_t i = 0; i < e.count; i++) {
		int one = purge_now(sm, find_secret(sm, e.names[i]), "recovery window over, deleted for good");
		if (one == -ESTALE || (one && !rc))
			rc = one;
	}
	write_end(sm);
	for (size_t i = 0; i < e.count; i++)
		free(e.names[i]);
	free(e.names);
	return rc;
}

int sm_purge_expired(struct sm *sm)
{
	int rc, tries = 0;
	do
		rc = purge_expired_once(sm);
	while (write_again(sm, "expired deletions", &rc, &tries));
	return rc;
}
