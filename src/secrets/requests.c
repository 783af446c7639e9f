/*
 * The service's requests as the API sends them (secrets.h, "the service's
 * requests"): CreateSecret with its description, key, tags and first
 * value; PutSecretValue and UpdateSecret with a ClientRequestToken that
 * always names the new version; TagResource and UntagResource of lists;
 * UpdateSecretVersionStage with RemoveFromVersionId checked; DeleteSecret
 * with a window per call. Each is one transaction on a private copy,
 * swapped into the index after the commit, on live stored secrets only;
 * the rules themselves are metadata.c's and versions.c's, shared with the
 * filesystem's operations.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

/* A secret the service's requests act on: stored, live, not a scratch file. */
static bool servable(const struct sm_secret *s)
{
	return is_live(s) && s->persisted && !s->scratch;
}

/* Where a new secret's name may not go in secretsfs, where every prefix of
 * a name is a folder: over a folder, or below a live secret. */
static int check_place(struct sm *sm, const char *name)
{
	char path[SM_NAME_MAX + 1];
	if (find_folder(sm, name))
		return refuse(-ENOTDIR, name, "other secrets' names continue this one as a folder; "
				  "in secretsfs a name is either a secret or a folder");
	snprintf(path, sizeof(path), "%s", name);
	for (char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		if (is_live(find_secret(sm, path)))
			return refuse(-ENOTDIR, name, "a part of this name is a secret; in secretsfs "
					  "a name is either a secret or a folder");
		*slash = '/';
	}
	return 0;
}

static int apply_tags(struct sm_secret *s, const struct sm_tag_arg *tags, size_t n)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < n; i++)
		rc = apply_tag(s, tags[i].key, tags[i].value ? tags[i].value : "",
			       tags[i].value ? strlen(tags[i].value) : 0, 0);
	return rc;
}

/* A replay of CreateSecret: the same token names a version of the same value. */
static int create_replay(struct sm *sm, const struct sm_secret *s,
			 const struct sm_create_request *req, bool *replayed)
{
	const struct sm_version *v = req->token ? secret_find_version(s, req->token) : NULL;
	struct secbuf old = { 0 };
	if (!v || !req->value)
		return refuse(-EEXIST, s->name, "the secret already exists");
	int rc = read_version(sm, s, v, &old);
	bool same = !rc && old.len == req->value->len &&
		    memcmp(old.data, req->value->data, old.len) == 0 &&
		    (!req->value->type || v->binary == (req->value->type == SM_VALUE_BINARY));
	secbuf_free(&old);
	if (rc)
		return rc;
	if (!same)
		return refuse(-EEXIST, s->name, "the client request token is already in use for a "
				  "version of this secret with another value");
	*replayed = true;
	return 0;
}

static int create_once(struct sm *sm, const struct sm_create_request *req,
		       char version_id[SM_VERSION_ID_MAX + 1], bool *replayed)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	const char *why;
	int rc;

	version_id[0] = '\0';
	*replayed = false;
	if (name_check(req->name, &why))
		return refuse(-EINVAL, req->name, why);
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, req->name);
	if (old && old->deleted_ms) {
		rc = refuse(-EBUSY, req->name, "a secret with this name is already scheduled for "
			    "deletion");
		goto out;
	}
	if (servable(old)) {
		if (!(rc = create_replay(sm, old, req, replayed)))
			snprintf(version_id, SM_VERSION_ID_MAX + 1, "%s", req->token);
		goto out;
	}
	if (old) {
		rc = refuse(-EEXIST, req->name, "a file of this name is being written through the mount");
		goto out;
	}
	if ((rc = check_place(sm, req->name)))
		goto out;
	if (!(s = secret_new(req->name, req->mode, req->uid, req->gid))) {
		rc = -ENOMEM;
		goto out;
	}
	s->persisted = true;
	if (req->description &&
	    (rc = apply_description(s, req->description, strlen(req->description), false)))
		goto out;
	if (req->kms_key_id && (rc = apply_kms_key(sm, s, req->kms_key_id, strlen(req->kms_key_id),
						     false)))
		goto out;
	if ((rc = apply_tags(s, req->tags, req->ntags)))
		goto out;
	if (req->value) {
		struct put_request put = { NULL, 0, req->token, req->value->type };
		bool added;
		if ((rc = add_version(sm, s, req->value->data, req->value->len, &put, &c, version_id,
				      &added)))
			goto out;
	}
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	pthread_rwlock_wrlock(&sm->index_lock);
	rc = ensure_parents(sm, s->name, s);
	pthread_rwlock_unlock(&sm->index_lock);
	if (rc)
		log_error("%s: out of memory adding its folders to the index", s->name);
	rc = 0; /* committed: the folders come back at the next load */
	log_info("%s: created (CreateSecret)", s->name);
	index_replace(sm, s->name, s);
	s = NULL;
out:
	write_end(sm);
	secret_free(s);
	change_free(&c);
	return rc;
}

int sm_create_secret(struct sm *sm, const struct sm_create_request *req,
		     char version_id[SM_VERSION_ID_MAX + 1], bool *replayed)
{
	int rc, tries = 0;
	do
		rc = create_once(sm, req, version_id, replayed);
	while (write_again(sm, req->name, &rc, &tries));
	return rc;
}

/*
 * A value, a description and a key for a live secret, in one transaction
 * (PutSecretValue and UpdateSecret). stages as PutSecretValue's
 * VersionStages; token the new version's id (a replay of the same value
 * adds nothing).
 */
struct update {
	const struct sm_update_request *req;
	const char *const *stages;
	size_t nstages;
};

static int update_once(struct sm *sm, const char *name, const struct update *u,
		       char version_id[SM_VERSION_ID_MAX + 1])
{
	const struct sm_update_request *req = u->req;
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	bool added = false, changed = false;
	int rc;

	version_id[0] = '\0';
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, name);
	if (!servable(old)) {
		rc = -ENOENT;
		goto out;
	}
	if (!(s = secret_clone(old))) {
		rc = -ENOMEM;
		goto out;
	}
	if (req->description) {
		if ((rc = apply_description(s, req->description, strlen(req->description), false)))
			goto out;
		changed = true;
	}
	if (req->kms_key_id) {
		if ((rc = apply_kms_key(sm, s, req->kms_key_id, strlen(req->kms_key_id), false)))
			goto out;
		changed = true;
	}
	if (req->value) {
		struct put_request put = { u->stages, u->nstages, req->token, req->value->type };
		/* The filesystem's pending token is the next file commit's, not this one's. */
		char *pending = s->request_token;
		int64_t pending_created = s->request_created_ms;
		s->request_token = NULL;
		s->request_created_ms = 0;
		char fresh[37];
		if (!put.token) {
			keyring_new_uuid(fresh);
			put.token = fresh;
		}
		rc = add_version(sm, s, req->value->data, req->value->len, &put, &c, version_id,
				 &added);
		s->request_token = pending;
		s->request_created_ms = pending_created;
		if (rc)
			goto out;
	}
	if (!added && !changed)
		goto out; /* a replay, or nothing asked */
	if (changed)
		s->changed_ms = time_now_ms();
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	index_replace(sm, name, s);
	s = NULL;
out:
	write_end(sm);
	secret_free(s);
	change_free(&c);
	return rc;
}

static int update(struct sm *sm, const char *name, const struct update *u,
		  char version_id[SM_VERSION_ID_MAX + 1])
{
	int rc, tries = 0;
	do
		rc = update_once(sm, name, u, version_id);
	while (write_again(sm, name, &rc, &tries));
	return rc;
}

int sm_put_secret_value(struct sm *sm, const char *name, const struct sm_value *value,
			const char *const *stages, size_t nstages, const char *token,
			char version_id[SM_VERSION_ID_MAX + 1])
{
	struct sm_update_request req = { NULL, NULL, value, token };
	struct update u = { &req, stages, nstages };
	return update(sm, name, &u, version_id);
}

int sm_update_secret(struct sm *sm, const char *name, const struct sm_update_request *req,
		     char version_id[SM_VERSION_ID_MAX + 1])
{
	struct update u = { req, NULL, 0 };
	return update(sm, name, &u, version_id);
}

/* Edits of a servable secret's metadata, through edit_secret. */
static int edit_servable(struct sm *sm, const char *name, edit_fn edit, void *ctx)
{
	struct sm_secret *s;
	pthread_rwlock_rdlock(&sm->index_lock);
	s = find_secret(sm, name);
	bool ok = servable(s);
	pthread_rwlock_unlock(&sm->index_lock);
	/* edit_secret looks again under the writer lock: live is what it needs. */
	return ok ? edit_secret(sm, name, edit, ctx, EDIT_CHANGE) : -ENOENT;
}

struct tags_arg {
	const struct sm_tag_arg *tags;
	const char *const *keys;
	size_t n;
};

static int edit_tags(struct sm *sm, struct sm_secret *s, void *ctx)
{
	const struct tags_arg *a = ctx;
	(void)sm;
	return apply_tags(s, a->tags, a->n);
}

int sm_tag_secret(struct sm *sm, const char *name, const struct sm_tag_arg *tags, size_t n)
{
	struct tags_arg a = { tags, NULL, n };
	return edit_servable(sm, name, edit_tags, &a);
}

static int edit_untags(struct sm *sm, struct sm_secret *s, void *ctx)
{
	const struct tags_arg *a = ctx;
	bool any = false;
	(void)sm;
	for (size_t i = 0; i < a->n; i++) {
		int rc = apply_untag(s, a->keys[i]);
		if (rc && rc != -ENODATA)
			return rc;
		any |= rc == 0;
	}
	return any ? 0 : 1; /* none there: nothing to store */
}

int sm_untag_secret(struct sm *sm, const char *name, const char *const *keys, size_t n)
{
	struct tags_arg a = { NULL, keys, n };
	return edit_servable(sm, name, edit_untags, &a);
}

struct move_arg {
	const char *label, *remove_from, *move_to;
};

/* UpdateSecretVersionStage's checks (reference §5.8), then apply_stage's move. */
static int edit_move(struct sm *sm, struct sm_secret *s, void *ctx)
{
	const struct move_arg *a = ctx;
	char why[SM_LABEL_MAX + SM_VERSION_ID_MAX + 200];
	const char *rule;
	(void)sm;
	if (name_check_label(a->label, &rule))
		return refuse(-EINVAL, s->name, rule);
	const char *holder = secret_label_version(s, a->label);
	if (!a->move_to && !a->remove_from)
		return refuse(-EINVAL, s->name, "give MoveToVersionId, RemoveFromVersionId or both");
	if (a->remove_from && (!holder || strcmp(holder, a->remove_from) != 0)) {
		snprintf(why, sizeof(why), "the staging label %s is not attached to version %s",
			 a->label, a->remove_from);
		return refuse(-EINVAL, s->name, why);
	}
	if (a->move_to && holder && strcmp(holder, a->move_to) != 0 && !a->remove_from) {
		snprintf(why, sizeof(why), "The parameter RemoveFromVersionId can't be empty. Staging "
			 "label %s is currently attached to version %s, so you must explicitly "
			 "reference that version in RemoveFromVersionId.", a->label, holder);
		return refuse(-EINVAL, s->name, why);
	}
	if (a->move_to && !secret_find_version(s, a->move_to)) {
		snprintf(why, sizeof(why), "no version %s", a->move_to);
		return refuse(-EINVAL, s->name, why);
	}
	return apply_stage(s, a->label, a->move_to);
}

int sm_move_stage(struct sm *sm, const char *name, const char *label, const char *remove_from,
		  const char *move_to)
{
	struct move_arg a = { label, remove_from, move_to };
	return edit_servable(sm, name, edit_move, &a);
}

static int delete_once(struct sm *sm, const char *name, int days, bool force,
		       int64_t *deletion_ms)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	int rc;

	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, name);
	if (!old || !old->persisted || old->scratch || old->hidden) {
		rc = -ENOENT;
		goto out;
	}
	if (force) {
		purge_into(&c, old);
		if ((rc = change_commit(sm, &c)))
			goto out;
		log_info("%s: deleted for good (ForceDeleteWithoutRecovery)", name);
		*deletion_ms = time_now_ms();
		index_replace(sm, name, NULL);
		goto out;
	}
	if (old->deleted_ms) {
		rc = refuse(-EBUSY, name, "the secret is already scheduled for deletion");
		goto out;
	}
	if (days < 7 || days > 30) {
		rc = refuse(-EINVAL, name, "RecoveryWindowInDays is 7 to 30");
		goto out;
	}
	if (!(s = secret_clone(old))) {
		rc = -ENOMEM;
		goto out;
	}
	s->deleted_ms = time_now_ms();
	s->purge_ms = s->deleted_ms + (int64_t)days * MS_PER_DAY;
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_info("%s: scheduled for deletion in %d days (DeleteSecret)", name, days);
	*deletion_ms = s->purge_ms;
	index_replace(sm, name, s);
	s = NULL;
out:
	write_end(sm);
	secret_free(s);
	change_free(&c);
	return rc;
}

int sm_delete_secret(struct sm *sm, const char *name, int days, bool force, int64_t *deletion_ms)
{
	int rc, tries = 0;
	do
		rc = delete_once(sm, name, days, force, deletion_ms);
	while (write_again(sm, name, &rc, &tries));
	return rc;
}
