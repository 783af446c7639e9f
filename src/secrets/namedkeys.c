/*
 * Named keys (secrets/keyring.h), KMS's counterpart: their records, made,
 * found by alias, id or ARN, enabled and disabled, and the wrapping of
 * data keys under them.
 */
#include "secrets/keyring.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "secrets/internal.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/timeutil.h"

#define SEALED_KEY_LEN (CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD)

static size_t named_key_aad(char *buf, size_t len, const char *store_id, const char *key_id)
{
	int n = snprintf(buf, len, "secretsfs/named-key/v1%c%s%c%s", 0, store_id, 0, key_id);
	return n < 0 ? 0 : (size_t)n;
}

void named_key_free(struct named_key *k)
{
	free(k->alias);
	crypto_secure_free(k->material, CRYPTO_KEY_LEN);
	k->alias = NULL;
	k->material = NULL;
}

/* 0 when k may wrap and unwrap; -ENOENT, -EACCES (disabled), -EBADMSG (damaged). */
static int key_usable(const struct named_key *k)
{
	return !k ? -ENOENT : k->damaged ? -EBADMSG : !k->enabled ? -EACCES : 0;
}

static int add_key(struct keyring *kr, struct named_key *k)
{
	struct named_key *keys = realloc(kr->keys, (kr->nkeys + 1) * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	kr->keys = keys;
	kr->keys[kr->nkeys++] = *k;
	memset(k, 0, sizeof(*k));
	return 0;
}

int named_key_load(struct keyring *kr, const char *record_key, const uint8_t *body, size_t len,
		   int err)
{
	const char *rid = record_key + strlen(RECORD_PREFIX_KEY);
	json_object *o = NULL;
	uint8_t sealed[SEALED_KEY_LEN];
	char aad[160];
	struct named_key k = { 0 };
	const char *id = NULL, *alias = NULL, *sealed_hex = NULL;
	int64_t created = 0, seq = 0;
	int rc = 0;

	if (!err) {
		json_object *en;
		o = record_json_parse(body, len);
		if (!o || record_json_string(o, "id", true, &id) ||
		    record_json_string(o, "alias", false, &alias) ||
		    record_json_string(o, "sealed", true, &sealed_hex) ||
		    record_json_int(o, "created", false, &created) ||
		    record_json_int(o, "seq", false, &seq) || seq < 0 ||
		    !json_object_object_get_ex(o, "enabled", &en) ||
		    !json_object_is_type(en, json_type_boolean) || strcmp(id, rid) != 0 ||
		    strlen(id) != SM_KEY_ID_LEN || hex_decode(sealed_hex, sealed, sizeof(sealed))) {
			log_error("store record %s is damaged (not a named key)", record_key);
			err = -EBADMSG;
		} else {
			k.enabled = json_object_get_boolean(en);
		}
	}
	/* A key whose record fails is kept by id, unusable: its secrets'
	 * versions fail to open (EIO) instead of vanishing. */
	snprintf(k.id, sizeof(k.id), "%s", strlen(rid) == SM_KEY_ID_LEN ? rid : "?");
	k.created_ms = created;
	k.seq = seq;
	if (err) {
		k.damaged = true;
		goto add;
	}
	if ((alias && !(k.alias = strdup(alias))) ||
	    !(k.material = crypto_secure_alloc(CRYPTO_KEY_LEN))) {
		rc = -ENOMEM;
		goto out;
	}
	size_t aad_len = named_key_aad(aad, sizeof(aad), kr->store_id, k.id);
	if (crypto_open(kr->master, aad, aad_len, sealed, sizeof(sealed), k.material)) {
		log_error("named key %s does not open under this store's master key", k.id);
		named_key_free(&k);
		k.damaged = true;
	}
add:
	rc = add_key(kr, &k);
out:
	named_key_free(&k);
	json_object_put(o);
	return rc;
}

int named_key_put(struct keyring *kr, const struct named_key *k, const uint8_t *master)
{
	uint8_t sealed[SEALED_KEY_LEN];
	char sealed_hex[2 * SEALED_KEY_LEN + 1], aad[160], rkey[64];
	json_object *o = json_object_new_object();
	int rc = o ? 0 : -ENOMEM;
	size_t aad_len = named_key_aad(aad, sizeof(aad), kr->store_id, k->id);
	if (!rc)
		rc = crypto_seal(master, aad, aad_len, k->material, CRYPTO_KEY_LEN, sealed);
	if (!rc) {
		hex_encode(sealed, sizeof(sealed), sealed_hex);
		rc = record_json_add(o, "id", json_object_new_string(k->id));
	}
	if (!rc && k->alias)
		rc = record_json_add(o, "alias", json_object_new_string(k->alias));
	if (!rc)
		rc = record_json_add(o, "enabled", json_object_new_boolean(k->enabled));
	if (!rc)
		rc = record_json_add(o, "created", json_object_new_int64(k->created_ms));
	/* One up from what is held: the caller keeps it once committed. */
	if (!rc)
		rc = record_json_add(o, "seq", json_object_new_int64(k->seq + 1));
	if (!rc)
		rc = record_json_add(o, "sealed", json_object_new_string(sealed_hex));
	if (!rc) {
		const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		snprintf(rkey, sizeof(rkey), "%s%s", RECORD_PREFIX_KEY, k->id);
		rc = text ? authstore_put(kr->as, rkey, text, strlen(text)) : -ENOMEM;
	}
	json_object_put(o);
	return rc;
}

/* One named key's record in a transaction of its own. */
static int commit_key(struct keyring *kr, const struct named_key *k)
{
	int rc = authstore_begin(kr->as);
	if (rc)
		return rc;
	if ((rc = named_key_put(kr, k, kr->master))) {
		authstore_cancel(kr->as);
		return rc;
	}
	return authstore_commit(kr->as);
}

static struct named_key *find_alias(struct keyring *kr, const char *alias)
{
	for (size_t i = 0; i < kr->nkeys; i++)
		if (kr->keys[i].alias && strcmp(kr->keys[i].alias, alias) == 0)
			return &kr->keys[i];
	return NULL;
}

static struct named_key *find_id(struct keyring *kr, const char *id)
{
	for (size_t i = 0; i < kr->nkeys; i++)
		if (strcmp(kr->keys[i].id, id) == 0)
			return &kr->keys[i];
	return NULL;
}

static int create_named_key(struct keyring *kr, const char *alias, char key_id[SM_KEY_ID_LEN + 1])
{
	struct named_key k = { 0 };
	int rc = -ENOMEM;
	keyring_new_uuid(key_id);
	memcpy(k.id, key_id, SM_KEY_ID_LEN + 1);
	k.enabled = true;
	k.created_ms = time_now_ms();
	if (!(k.alias = strdup(alias)) || !(k.material = crypto_secure_alloc(CRYPTO_KEY_LEN)))
		goto out;
	crypto_random_key(k.material, CRYPTO_KEY_LEN, true);
	/* Room first: once committed, the key must be in memory too. */
	struct named_key *keys = realloc(kr->keys, (kr->nkeys + 1) * sizeof(*keys));
	if (!keys)
		goto out;
	kr->keys = keys;
	if ((rc = commit_key(kr, &k)))
		goto out;
	k.seq++;
	log_info("created named key alias/%s (%s)", alias, key_id);
	rc = add_key(kr, &k);
out:
	named_key_free(&k);
	return rc;
}

int keyring_reload_key(struct keyring *kr, const char *record_key)
{
	const char *id = record_key + strlen(RECORD_PREFIX_KEY);
	uint8_t *body = NULL;
	size_t len = 0;
	int err = authstore_get(kr->as, record_key, &body, &len), rc = 0;
	if (err && err != -ENOENT && err != -EBADMSG) {
		free(body);
		return err;
	}
	pthread_rwlock_wrlock(&kr->lock);
	struct named_key *held = find_id(kr, id);
	if (held) {
		named_key_free(held);
		*held = kr->keys[--kr->nkeys];
	}
	if (err != -ENOENT)
		rc = named_key_load(kr, record_key, body, len, err);
	pthread_rwlock_unlock(&kr->lock);
	free(body);
	return rc;
}

int64_t keyring_key_seq(struct keyring *kr, const char *id)
{
	pthread_rwlock_rdlock(&kr->lock);
	const struct named_key *k = find_id(kr, id);
	int64_t seq = k && !k->damaged ? k->seq : -1;
	pthread_rwlock_unlock(&kr->lock);
	return seq;
}

int keyring_default_key(struct keyring *kr, char key_id[SM_KEY_ID_LEN + 1])
{
	pthread_rwlock_rdlock(&kr->lock);
	struct named_key *k = find_alias(kr, KEYRING_DEFAULT_ALIAS);
	if (k)
		memcpy(key_id, k->id, SM_KEY_ID_LEN + 1);
	pthread_rwlock_unlock(&kr->lock);
	if (k)
		return 0;

	pthread_rwlock_wrlock(&kr->lock);
	int rc = 0;
	k = find_alias(kr, KEYRING_DEFAULT_ALIAS);
	if (k)
		memcpy(key_id, k->id, SM_KEY_ID_LEN + 1);
	else
		rc = create_named_key(kr, KEYRING_DEFAULT_ALIAS, key_id);
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

int keyring_wrap(struct keyring *kr, const char *key_id, const void *aad, size_t aad_len,
		 const uint8_t dek[CRYPTO_KEY_LEN], uint8_t out[KEYRING_WRAPPED_DEK_LEN])
{
	pthread_rwlock_rdlock(&kr->lock);
	struct named_key *k = find_id(kr, key_id);
	int rc = key_usable(k);
	if (!rc)
		rc = crypto_seal(k->material, aad, aad_len, dek, CRYPTO_KEY_LEN, out);
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

int keyring_unwrap(struct keyring *kr, const char *key_id, const void *aad, size_t aad_len,
		   const uint8_t *wrapped, size_t wrapped_len, uint8_t dek[CRYPTO_KEY_LEN])
{
	if (wrapped_len != KEYRING_WRAPPED_DEK_LEN)
		return -EBADMSG;
	pthread_rwlock_rdlock(&kr->lock);
	struct named_key *k = find_id(kr, key_id);
	int rc = !k ? -ENOENT : k->damaged ? -EBADMSG : 0;
	/* Authenticated first, even under a disabled key: a record that names
	 * a disabled key falsely is tampering (EIO), not a refusal (EACCES). */
	if (!rc)
		rc = crypto_open(k->material, aad, aad_len, wrapped, wrapped_len, dek);
	if (!rc && !k->enabled) {
		crypto_wipe(dek, CRYPTO_KEY_LEN);
		rc = -EACCES;
	}
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

static bool valid_alias_name(const char *name)
{
	size_t len = strlen(name);
	if (len < 1 || len > 250)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '/' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* "NAME" of "alias/NAME", or of a bare NAME. */
static const char *alias_name(const char *alias)
{
	return strncmp(alias, "alias/", 6) == 0 ? alias + 6 : alias;
}

int keyring_create_key(struct keyring *kr, const char *alias, char key_id[SM_KEY_ID_LEN + 1])
{
	const char *name = alias_name(alias);
	if (!valid_alias_name(name) || strncmp(name, "aws/", 4) == 0)
		return -EINVAL;
	pthread_rwlock_wrlock(&kr->lock);
	int rc = find_alias(kr, name) ? -EEXIST : create_named_key(kr, name, key_id);
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

static bool is_uuid(const char *s)
{
	if (strlen(s) != SM_KEY_ID_LEN)
		return false;
	for (int i = 0; i < SM_KEY_ID_LEN; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* Finds the key a spec names; caller holds the lock. */
static int lookup_spec(struct keyring *kr, const char *spec, struct named_key **out)
{
	char prefix[128];
	*out = NULL;
	if (!spec || !spec[0]) {
		*out = find_alias(kr, KEYRING_DEFAULT_ALIAS);
		return *out ? 0 : -ENOENT;
	}
	if (strncmp(spec, "arn:", 4) == 0) {
		snprintf(prefix, sizeof(prefix), "arn:aws:kms:%s:%s:", kr->region, kr->account);
		if (strncmp(spec, prefix, strlen(prefix)) != 0)
			return -EINVAL; /* another partition, region or account */
		spec += strlen(prefix);
		if (strncmp(spec, "key/", 4) == 0)
			spec += 4;
		else if (strncmp(spec, "alias/", 6) != 0)
			return -EINVAL;
	}
	if (strncmp(spec, "alias/", 6) == 0)
		*out = find_alias(kr, spec + 6);
	else if (is_uuid(spec))
		*out = find_id(kr, spec);
	else
		return -EINVAL;
	return *out ? 0 : -ENOENT;
}

int keyring_resolve(struct keyring *kr, const char *spec, char key_id[SM_KEY_ID_LEN + 1])
{
	if (!spec || !spec[0])
		return keyring_default_key(kr, key_id);
	pthread_rwlock_rdlock(&kr->lock);
	struct named_key *k;
	int rc = lookup_spec(kr, spec, &k);
	if (!rc)
		memcpy(key_id, k->id, SM_KEY_ID_LEN + 1);
	pthread_rwlock_unlock(&kr->lock);
	/* aws/secretsmanager named before it was ever needed: make it now. */
	if (rc == -ENOENT && (strcmp(spec, "alias/" KEYRING_DEFAULT_ALIAS) == 0 ||
			      strstr(spec, ":alias/" KEYRING_DEFAULT_ALIAS)))
		return keyring_default_key(kr, key_id);
	return rc;
}

void keyring_key_arn(const struct keyring *kr, const char *key_id, char *buf, size_t len)
{
	snprintf(buf, len, "arn:aws:kms:%s:%s:key/%s", kr->region, kr->account, key_id);
}

int keyring_key_state(struct keyring *kr, const char *key_id)
{
	pthread_rwlock_rdlock(&kr->lock);
	int rc = key_usable(find_id(kr, key_id));
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

static int write_enabled(struct keyring *kr, struct named_key *k, bool enabled)
{
	bool was = k->enabled;
	k->enabled = enabled;
	int rc = commit_key(kr, k);
	if (rc)
		k->enabled = was;
	else
		k->seq++;
	return rc;
}

int keyring_set_enabled(struct keyring *kr, const char *spec, bool enabled)
{
	pthread_rwlock_wrlock(&kr->lock);
	struct named_key *k;
	int rc = lookup_spec(kr, spec, &k);
	if (!rc && k->damaged)
		rc = -EBADMSG;
	if (!rc && k->enabled != enabled && !(rc = write_enabled(kr, k, enabled))) {
		log_info("named key %s (alias/%s) %s", k->id, k->alias ? k->alias : "",
			 enabled ? "enabled" : "disabled");
	}
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

int keyring_list(struct keyring *kr, struct keyring_key_info **keys, size_t *count)
{
	pthread_rwlock_rdlock(&kr->lock);
	*count = kr->nkeys;
	*keys = calloc(kr->nkeys ? kr->nkeys : 1, sizeof(**keys));
	for (size_t i = 0; *keys && i < kr->nkeys; i++) {
		memcpy((*keys)[i].id, kr->keys[i].id, sizeof((*keys)[i].id));
		snprintf((*keys)[i].alias, sizeof((*keys)[i].alias), "%s",
			 kr->keys[i].alias ? kr->keys[i].alias : "");
		(*keys)[i].enabled = kr->keys[i].enabled;
		(*keys)[i].damaged = kr->keys[i].damaged;
		(*keys)[i].created_ms = kr->keys[i].created_ms;
	}
	pthread_rwlock_unlock(&kr->lock);
	return *keys ? 0 : -ENOMEM;
}
