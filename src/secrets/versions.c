/* Sealing and opening versions; snapshots; PutSecretValue. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/fields.h"
#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"


/* Binding of a sealed record: purpose NUL store NUL secret NUL version NUL extra. */
size_t binding(char *buf, size_t len, const char *purpose, const char *store_id,
		      const char *secret_uuid, const char *version_id, const char *extra)
{
	int n = snprintf(buf, len, "secretsfs/%s/v1%c%s%c%s%c%s%c%s", purpose, 0, store_id, 0,
			 secret_uuid, 0, version_id, 0, extra);
	return (n < 0 || (size_t)n >= len) ? 0 : (size_t)n;
}

/* The labels on version id of s, as they are now, into snap. */
static int copy_stages(const struct sm_secret *s, const char *id, struct sm_snapshot *snap)
{
	size_t size = 0;
	for (size_t i = 0; i < s->nlabels; i++)
		if (strcmp(s->labels[i].version_id, id) == 0)
			size += strlen(s->labels[i].name) + 1;
	if (!size)
		return 0;
	if (!(snap->stages = malloc(size)))
		return -ENOMEM;
	char *p = snap->stages;
	for (size_t i = 0; i < s->nlabels; i++)
		if (strcmp(s->labels[i].version_id, id) == 0) {
			p = stpcpy(p, s->labels[i].name) + 1;
			snap->nstages++;
		}
	return 0;
}

static int take_snapshot(struct sm *sm, const char *name, const char *version_id,
			 const char *label, struct sm_snapshot **out)
{
	char key[SM_VERSION_ID_MAX + SM_UUID_HEX_LEN + 16];
	struct sm_snapshot *snap = calloc(1, sizeof(*snap));
	const char *key_id = NULL;
	int rc = 0;

	*out = NULL;
	if (!snap)
		return -ENOMEM;
	pthread_rwlock_rdlock(&sm->index_lock);
	struct sm_secret *s = find_secret(sm, name);
	const struct sm_version *v = NULL;
	if (!is_live(s))
		rc = -ENOENT;
	else if (version_id && !(v = secret_find_version(s, version_id)))
		rc = -ENOENT;
	else if (label) {
		const char *holder = secret_label_version(s, label);
		v = holder ? secret_find_version(s, holder) : NULL;
	} else if (!version_id)
		v = secret_current(s);
	if (!rc) {
		snap->is_scratch = s->scratch;
		snprintf(snap->name, sizeof(snap->name), "%s", s->name);
		memcpy(snap->secret_uuid, s->uuid, sizeof(snap->secret_uuid));
		if (v) {
			memcpy(snap->version_id, v->id, sizeof(snap->version_id));
			snap->size = v->size;
			snap->binary = v->binary;
			snap->created_ms = v->created_ms;
			key_id = v->key_id; /* interned: outlives the index entry */
			rc = copy_stages(s, v->id, snap);
		}
	}
	pthread_rwlock_unlock(&sm->index_lock);
	if (!rc && snap->is_scratch) {
		/* The value is copied under the writer lock that guards it. */
		pthread_mutex_lock(&sm->write_lock);
		const struct secbuf *value = scratch_value(sm, snap->name);
		rc = value ? secbuf_set(&snap->scratch, value->data, value->len) : 0;
		snap->size = (uint32_t)snap->scratch.len;
		pthread_mutex_unlock(&sm->write_lock);
		goto out;
	}
	if (rc || !snap->version_id[0])
		goto out;
	record_key_version(snap->secret_uuid, snap->version_id, key, sizeof(key));
	rc = authstore_get(sm->as, key, &snap->record, &snap->record_len);
	if (rc) {
		log_error("%s: version %s has no sealed record in the store", name, snap->version_id);
		rc = -EIO;
		goto out;
	}
	/* A disabled key refuses at open, not halfway through a read. The key
	 * is the one the authenticated metadata names: a record that names
	 * another fails to open (EIO) at the read. */
	if (key_id && keyring_key_state(sm->kr, key_id) == -EACCES) {
		log_warn("%s: refused: version %s is encrypted under a disabled key", name,
			 snap->version_id);
		rc = -EACCES;
	}
out:
	if (rc) {
		sm_snapshot_free(snap);
		return rc;
	}
	*out = snap;
	return 0;
}

int sm_snapshot_current(struct sm *sm, const char *name, struct sm_snapshot **out)
{
	return take_snapshot(sm, name, NULL, NULL, out);
}

int sm_snapshot_label(struct sm *sm, const char *name, const char *label,
		      struct sm_snapshot **out)
{
	return take_snapshot(sm, name, NULL, label, out);
}

int sm_snapshot_field(struct sm *sm, const struct sm_snapshot *snap, const char *key,
		      struct secbuf *out)
{
	struct secbuf whole = { 0 };
	int rc = sm_snapshot_decrypt(sm, snap, &whole);
	if (!rc)
		rc = fields_get(whole.data, whole.len, key, out);
	secbuf_free(&whole);
	return rc == -EINVAL ? -ENOENT : rc;
}

struct field_names {
	struct sm_listing *out;
};

static int add_field_name(const char *key, size_t len, void *ctx)
{
	struct sm_listing *l = ctx;
	struct sm_dirent *e = realloc(l->entries, (l->count + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	l->entries = e;
	if (!(e[l->count].name = strndup(key, len)))
		return -ENOMEM;
	e[l->count].kind = SM_KIND_SECRET;
	l->count++;
	return 0;
}

int sm_snapshot_field_names(struct sm *sm, const struct sm_snapshot *snap, struct sm_listing *out)
{
	struct secbuf whole = { 0 };
	memset(out, 0, sizeof(*out));
	int rc = snap->version_id[0] ? sm_snapshot_decrypt(sm, snap, &whole) : -ENOTDIR;
	if (!rc)
		rc = fields_keys(whole.data, whole.len, add_field_name, out);
	secbuf_free(&whole);
	if (rc)
		sm_listing_free(out);
	return rc == -EINVAL ? -ENOTDIR : rc;
}

int sm_snapshot_version(struct sm *sm, const char *name, const char *version_id,
			struct sm_snapshot **out)
{
	return take_snapshot(sm, name, version_id, NULL, out);
}

uint32_t sm_snapshot_size(const struct sm_snapshot *snap)
{
	return snap->size;
}

const char *sm_snapshot_version_id(const struct sm_snapshot *snap)
{
	return snap->version_id;
}

bool sm_snapshot_has_value(const struct sm_snapshot *snap)
{
	return snap->is_scratch || snap->version_id[0];
}

bool sm_snapshot_binary(const struct sm_snapshot *snap)
{
	return snap->binary;
}

int64_t sm_snapshot_created_ms(const struct sm_snapshot *snap)
{
	return snap->created_ms;
}

const char *sm_snapshot_stage(const struct sm_snapshot *snap, size_t i)
{
	const char *p = snap->stages;
	if (i >= snap->nstages)
		return NULL;
	while (i--)
		p += strlen(p) + 1;
	return p;
}

void sm_snapshot_free(struct sm_snapshot *snap)
{
	if (!snap)
		return;
	secbuf_free(&snap->scratch);
	free(snap->record);
	free(snap->stages);
	free(snap);
}

int open_sealed(struct sm *sm, const char *name, const char *secret_uuid,
		       const char *version_id, uint32_t size, const uint8_t *record,
		       size_t record_len, struct secbuf *out)
{
	struct sealed_version sv;
	char aad[SM_VERSION_ID_MAX + SM_UUID_HEX_LEN + 160];
	uint8_t *dek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	int rc;

	out->len = 0;
	if (!dek)
		return -ENOMEM;
	rc = record_decode_version(record, record_len, &sv);
	if (rc) {
		log_error("%s: version %s: sealed record is malformed", name, version_id);
		rc = -EIO;
		goto out;
	}
	if (sv.sealed_value_len != (size_t)size + CRYPTO_SEAL_OVERHEAD) {
		log_error("%s: version %s: sealed record has the wrong length", name, version_id);
		rc = -EIO;
		goto out;
	}
	size_t aad_len = binding(aad, sizeof(aad), "dek", keyring_store_id(sm->kr), secret_uuid,
				 version_id, sv.key_id);
	rc = keyring_unwrap(sm->kr, sv.key_id, aad, aad_len, sv.wrapped_dek, sv.wrapped_dek_len, dek);
	if (rc == -EACCES) {
		log_warn("%s: version %s: its key %s is disabled", name, version_id, sv.key_id);
		goto out;
	}
	if (rc) {
		log_error("%s: version %s: data key fails to open (%s): record tampered with or "
			  "copied from elsewhere", name, version_id,
			  rc == -ENOENT ? "unknown key" : "authentication failed");
		rc = -EIO;
		goto out;
	}
	aad_len = binding(aad, sizeof(aad), "value", keyring_store_id(sm->kr), secret_uuid,
			  version_id, sv.binary ? "B" : "S");
	if ((rc = secbuf_reserve(out, size ? size : 1))) {
		log_error("%s: out of secure memory", name);
		goto out;
	}
	rc = crypto_open(dek, aad, aad_len, sv.sealed_value, sv.sealed_value_len, out->data);
	if (rc) {
		log_error("%s: version %s: value fails authentication: record tampered with or "
			  "copied from elsewhere", name, version_id);
		rc = -EIO;
		goto out;
	}
	out->len = size;
out:
	crypto_secure_free(dek, CRYPTO_KEY_LEN);
	return rc;
}

int sm_snapshot_decrypt(struct sm *sm, const struct sm_snapshot *snap, struct secbuf *out)
{
	if (snap->is_scratch)
		return secbuf_set(out, snap->scratch.data, snap->scratch.len);
	if (!snap->version_id[0]) {
		out->len = 0;
		return 0;
	}
	return open_sealed(sm, snap->name, snap->secret_uuid, snap->version_id, snap->size,
			   snap->record, snap->record_len, out);
}

/* The current value of s into out (empty when it has none). Write lock held. */
/* Reads version v of s into out. */
int read_version(struct sm *sm, const struct sm_secret *s, const struct sm_version *v,
			struct secbuf *out)
{
	char key[SM_VERSION_ID_MAX + SM_UUID_HEX_LEN + 16];
	uint8_t *record;
	size_t len;
	record_key_version(s->uuid, v->id, key, sizeof(key));
	int rc = authstore_get(sm->as, key, &record, &len);
	if (rc) {
		log_error("%s: version %s has no sealed record in the store", s->name, v->id);
		return -EIO;
	}
	rc = open_sealed(sm, s->name, s->uuid, v->id, v->size, record, len, out);
	free(record);
	return rc;
}

int read_current(struct sm *sm, const struct sm_secret *s, struct secbuf *out)
{
	const struct sm_version *v = secret_current(s);
	out->len = 0;
	return v ? read_version(sm, s, v, out) : 0;
}

/* Seals value as a new version of s under its key; adds the record to c. */
int seal_version(struct sm *sm, const struct sm_secret *s, const char *version_id,
			const uint8_t *value, size_t len, bool binary, struct change *c,
			char key_id[SM_KEY_ID_LEN + 1])
{
	char aad[SM_VERSION_ID_MAX + SM_UUID_HEX_LEN + 160];
	char rkey[SM_VERSION_ID_MAX + SM_UUID_HEX_LEN + 16];
	uint8_t wrapped[KEYRING_WRAPPED_DEK_LEN];
	uint8_t *dek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	uint8_t *sealed = malloc(len + CRYPTO_SEAL_OVERHEAD);
	uint8_t *record = NULL;
	size_t record_len;
	int rc;

	if (!dek || !sealed) {
		rc = -ENOMEM;
		goto out;
	}
	rc = keyring_resolve(sm->kr, s->kms_key_id, key_id);
	if (rc == 0)
		rc = keyring_key_state(sm->kr, key_id);
	if (rc == -EACCES) {
		log_warn("%s: refused: its KMS key %s is disabled", s->name,
			 s->kms_key_id ? s->kms_key_id : "alias/" KEYRING_DEFAULT_ALIAS);
		goto out;
	}
	if (rc) {
		log_error("%s: its KMS key %s cannot be used: %s", s->name,
			  s->kms_key_id ? s->kms_key_id : "alias/" KEYRING_DEFAULT_ALIAS, strerror(-rc));
		rc = -EACCES;
		goto out;
	}
	crypto_random_key(dek, CRYPTO_KEY_LEN, false);
	size_t aad_len = binding(aad, sizeof(aad), "dek", keyring_store_id(sm->kr), s->uuid,
				 version_id, key_id);
	if ((rc = keyring_wrap(sm->kr, key_id, aad, aad_len, dek, wrapped)))
		goto out;
	aad_len = binding(aad, sizeof(aad), "value", keyring_store_id(sm->kr), s->uuid, version_id,
			  binary ? "B" : "S");
	if ((rc = crypto_seal(dek, aad, aad_len, value, len, sealed)))
		goto out;
	struct sealed_version sv = { .binary = binary, .wrapped_dek = wrapped,
				     .wrapped_dek_len = sizeof(wrapped), .sealed_value = sealed,
				     .sealed_value_len = len + CRYPTO_SEAL_OVERHEAD };
	memcpy(sv.key_id, key_id, SM_KEY_ID_LEN + 1);
	if ((rc = record_encode_version(&sv, &record, &record_len)))
		goto out;
	record_key_version(s->uuid, version_id, rkey, sizeof(rkey));
	change_add(c, rkey, (char *)record, record_len);
	record = NULL;
out:
	crypto_secure_free(dek, CRYPTO_KEY_LEN);
	free(sealed);
	free(record);
	return rc;
}

/* Deprecated versions (no label) go oldest first while more than SM_MAX_VERSIONS remain. */
void prune_versions(struct sm_secret *s, struct change *c)
{
	char key[SM_VERSION_ID_MAX + SM_UUID_HEX_LEN + 16];
	size_t i = 0;
	while (s->nversions > SM_MAX_VERSIONS && i < s->nversions) {
		char labels[8];
		secret_version_labels(s, s->versions[i].id, labels, sizeof(labels));
		if (labels[0]) {
			i++;
			continue;
		}
		record_key_version(s->uuid, s->versions[i].id, key, sizeof(key));
		change_add(c, key, NULL, 0);
		memmove(&s->versions[i], &s->versions[i + 1], (s->nversions - i - 1) * sizeof(*s->versions));
		s->nversions--;
	}
}

/*
 * Adds value to s (a private copy) as its new AWSCURRENT version, unless it
 * equals the current value. *added tells which. Write lock held.
 */

/* Is v's value exactly value? */
static int same_value(struct sm *sm, const struct sm_secret *s, const struct sm_version *v,
		      const uint8_t *value, size_t len, bool *same)
{
	struct secbuf old = { 0 };
	*same = false;
	if (v->size != len)
		return 0;
	int rc = read_version(sm, s, v, &old);
	if (!rc)
		*same = memcmp(old.data, value, len) == 0;
	secbuf_free(&old);
	return rc;
}

static bool has_stage(const struct put_request *req, const char *label)
{
	for (size_t i = 0; req && i < req->nstages; i++)
		if (strcmp(req->stages[i], label) == 0)
			return true;
	return false;
}

/* PutSecretValue's label moves (reference §6.3). */
static int move_labels(struct sm_secret *s, const struct put_request *req, const char *new_id)
{
	const char *cur = secret_label_version(s, "AWSCURRENT");
	char old_current[SM_VERSION_ID_MAX + 1] = "";
	bool move_current = !req || !req->nstages || has_stage(req, "AWSCURRENT") || !cur;
	int rc = 0;

	if (cur)
		snprintf(old_current, sizeof(old_current), "%s", cur);
	if (move_current && old_current[0]) {
		const char *pending = secret_label_version(s, "AWSPENDING");
		/* A default put supersedes a rotation that sat on the old current. */
		if ((!req || !req->nstages) && pending && strcmp(pending, old_current) == 0)
			secret_label_remove(s, "AWSPENDING");
		rc = secret_label_set(s, "AWSPREVIOUS", old_current);
	}
	if (!rc && move_current)
		rc = secret_label_set(s, "AWSCURRENT", new_id);
	for (size_t i = 0; !rc && req && i < req->nstages; i++)
		if (strcmp(req->stages[i], "AWSCURRENT") != 0)
			rc = secret_label_set(s, req->stages[i], new_id);
	if (!rc && s->nlabels > SM_MAX_LABELS)
		rc = refuse(-ENOSPC, s->name, "a secret may carry at most 20 staging labels");
	return rc;
}

static int new_version(struct sm *sm, struct sm_secret *s, const uint8_t *value, size_t len,
		       const struct put_request *req, struct change *c,
		       char version_id[SM_VERSION_ID_MAX + 1], bool *added, bool *token_refused)
{
	char key_id[SM_KEY_ID_LEN + 1];
	const char *token = req && req->token ? req->token : s->request_token;
	int64_t dated = s->request_created_ms;
	bool same;
	int rc;

	*added = false;
	if (len > SM_VALUE_MAX)
		return refuse(-EFBIG, s->name, "a value may be at most 65,536 bytes");
	if (len == 0)
		return refuse(-EINVAL, s->name, "a value must be at least 1 byte");
	for (size_t i = 0; req && i < req->nstages; i++) {
		const char *why;
		if (name_check_label(req->stages[i], &why))
			return refuse(-EINVAL, s->name, why);
	}
	if (token) {
		/* ClientRequestToken: a replay commits nothing (reference §7). */
		const struct sm_version *v = secret_find_version(s, token);
		if (v) {
			if ((rc = same_value(sm, s, v, value, len, &same)))
				return rc;
			/* A SecretString is not the SecretBinary of the same bytes. */
			if (req && req->type && v->binary != (req->type == SM_VALUE_BINARY))
				same = false;
			if (!same) {
				*token_refused = true;
				return refuse(-EEXIST, s->name,
					      "the client request token names a version with another value");
			}
			snprintf(version_id, SM_VERSION_ID_MAX + 1, "%s", token);
			return 0;
		}
		snprintf(version_id, SM_VERSION_ID_MAX + 1, "%s", token);
	} else {
		/* Writing the value the target label already shows makes no version. */
		const char *label = req && req->nstages ? req->stages[0] : "AWSCURRENT";
		const char *holder = secret_label_version(s, label);
		const struct sm_version *v = holder ? secret_find_version(s, holder) : NULL;
		if (v) {
			/* A current value that cannot be opened (damaged, or its key
			 * disabled) is simply not the same: the write replaces it. */
			rc = same_value(sm, s, v, value, len, &same);
			if (rc && rc != -EIO && rc != -EACCES)
				return rc;
			if (!rc && same && (!req || req->nstages <= 1)) {
				snprintf(version_id, SM_VERSION_ID_MAX + 1, "%s", v->id);
				return 0;
			}
		}
		keyring_new_uuid(version_id);
	}
	bool binary = req && req->type ? req->type == SM_VALUE_BINARY : !value_is_string(value, len);
	if ((rc = seal_version(sm, s, version_id, value, len, binary, c, key_id)))
		return rc;
	const char *shared_key_id = record_key_id(key_id);
	struct sm_version *versions = shared_key_id ? realloc(s->versions,
		(s->nversions + 1) * sizeof(*versions)) : NULL;
	if (!versions)
		return -ENOMEM;
	s->versions = versions;
	struct sm_version *v = &versions[s->nversions++];
	memset(v, 0, sizeof(*v));
	snprintf(v->id, sizeof(v->id), "%s", version_id);
	v->key_id = shared_key_id;
	v->created_ms = dated ? dated : time_now_ms();
	v->size = (uint32_t)len;
	v->binary = binary;
	if ((rc = move_labels(s, req, version_id)))
		return rc;
	/* An imported version keeps its date; the secret is never younger. */
	if (v->created_ms < s->created_ms)
		s->created_ms = v->created_ms;
	s->changed_ms = time_now_ms();
	prune_versions(s, c);
	*added = true;
	return 0;
}

int add_version(struct sm *sm, struct sm_secret *s, const uint8_t *value, size_t len,
		const struct put_request *req, struct change *c,
		char version_id[SM_VERSION_ID_MAX + 1], bool *added)
{
	bool token_refused = false;
	int rc = new_version(sm, s, value, len, req, c, version_id, added, &token_refused);
	/* The pending token and date are the commit's that uses them; any
	 * other refusal leaves them for a retry. A token naming another
	 * value's version is spent too: no retry could succeed with it, and
	 * every later commit of the secret would fail on it. */
	if (!rc || token_refused) {
		free(s->request_token);
		s->request_token = NULL;
		s->request_created_ms = 0;
	}
	return rc;
}

struct sm_secret *secret_clone_token_cleared(const struct sm_secret *s)
{
	struct sm_secret *c = secret_clone(s);
	if (c) {
		free(c->request_token);
		c->request_token = NULL;
		c->request_created_ms = 0;
	}
	return c;
}

int sm_put_value(struct sm *sm, const char *name, const uint8_t *value, size_t len,
		 char version_id[SM_VERSION_ID_MAX + 1])
{
	return sm_put_value_staged(sm, name, value, len, NULL, 0, version_id);
}

/*
 * creating: the internal id of the secret this put creates, kept from its
 * first run; a run again after -ESTALE that finds another secret under the
 * name (another host created it first) is CreateSecret's EEXIST.
 */
static int put_once(struct sm *sm, const char *name, const uint8_t *value, size_t len,
		    const struct put_request *req, char version_id[SM_VERSION_ID_MAX + 1],
		    char creating[SM_UUID_HEX_LEN + 1])
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	bool added;
	int rc;

	version_id[0] = '\0';
	if ((rc = write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, name);
	if (!old) {
		rc = -ENOENT;
		goto out;
	}
	if (creating[0] && strcmp(creating, old->uuid) != 0) {
		rc = refuse(-EEXIST, name, "CreateSecret: another host created this name first");
		goto out;
	}
	if (!old->persisted && !old->scratch)
		memcpy(creating, old->uuid, SM_UUID_HEX_LEN + 1);
	if (!(s = secret_clone(old))) {
		rc = -ENOMEM;
		goto out;
	}
	if (s->scratch) {
		/* Scratch files keep their value in memory, never in the store. */
		if (len > SM_VALUE_MAX)
			rc = refuse(-EFBIG, name, "a value may be at most 65,536 bytes");
		else if (!(rc = scratch_set(sm, name, value, len))) {
			s->scratch_size = (uint32_t)len;
			s->changed_ms = time_now_ms();
			index_replace(sm, name, s);
			s = NULL;
		}
		goto out;
	}
	bool changed = !s->persisted || s->deleted_ms || s->restore_pending;
	s->persisted = true;
	s->restore_pending = false;
	s->deleted_ms = s->purge_ms = 0;
	bool had_request = s->request_token != NULL || s->request_created_ms;
	rc = add_version(sm, s, value, len, req, &c, version_id, &added);
	bool spent = had_request && !s->request_token && !s->request_created_ms;
	if (rc) {
		/* Refused: the secret as it was, its token and date kept for a
		 * retry unless add_version spent them. */
		struct sm_secret *cleared = spent ? secret_clone_token_cleared(old) : NULL;
		if (cleared)
			index_replace(sm, name, cleared);
		goto out;
	}
	if (!added && !changed) {
		if (had_request) {
			index_replace(sm, name, s);
			s = NULL;
		}
		goto out;
	}
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

int sm_put_value_staged(struct sm *sm, const char *name, const uint8_t *value, size_t len,
			const char *const *stages, size_t nstages,
			char version_id[SM_VERSION_ID_MAX + 1])
{
	struct put_request req = { stages, nstages, NULL, SM_VALUE_AUTO };
	char creating[SM_UUID_HEX_LEN + 1] = "";
	int rc, tries = 0;
	do
		rc = put_once(sm, name, value, len, &req, version_id, creating);
	while (write_again(sm, name, &rc, &tries));
	return rc;
}
