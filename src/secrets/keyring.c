/*
 * The keyring's master key (secrets/keyring.h): the header that seals it,
 * creating a store, unlocking it, passwd, and the authentication of a
 * legacy store's header. Named keys are in namedkeys.c, key files in
 * keyfile.c, rekey's steps in keyring_next.c.
 */
#include "secrets/keyring.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "secrets/internal.h"
#include "util/hex.h"
#include "util/log.h"
#include "util/timeutil.h"

#define SEALED_MASTER_LEN (CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD)

/* Argon2id cost for passphrases: ~0.3 s and 64 MiB here (reference §3.4). */
static const struct argon2_params default_argon2 = { 3, 65536, 1 };

static const char *kind_name(enum unlock_kind kind)
{
	return kind == UNLOCK_PASSPHRASE ? "passphrase" : "key_file";
}

void keyring_kek_params(enum unlock_kind kind, struct argon2_params *params)
{
	static const struct argon2_params none = { 0, 0, 0 };
	*params = kind == UNLOCK_PASSPHRASE ? default_argon2 : none;
}

/*
 * The master key's binding: store id and unlock kind. Format 3 seals it
 * with a binding of its own, so that a format-3 header whose tag is cut
 * off and whose format record says 2 does not unlock as a legacy store
 * (whose records are read without tags).
 */
static size_t master_aad(char *buf, size_t len, int format, const char *store_id,
			 const char *kind)
{
	const char *purpose = format >= AUTHSTORE_FORMAT ? "secretsfs/master-key/v3"
							 : "secretsfs/master-key/v1";
	int n = snprintf(buf, len, "%s%c%s%c%s", purpose, 0, store_id, 0, kind);
	return n < 0 ? 0 : (size_t)n;
}

int keyring_derive_kek(const struct unlock_secret *unlock, const uint8_t salt[CRYPTO_SALT_LEN],
		       const struct argon2_params *params, uint8_t kek[CRYPTO_KEY_LEN])
{
	if (unlock->kind == UNLOCK_PASSPHRASE)
		return crypto_argon2id(unlock->bytes, unlock->len, salt, CRYPTO_SALT_LEN, params, kek);
	if (unlock->len != CRYPTO_KEY_LEN)
		return -EINVAL;
	uint8_t msg[32 + CRYPTO_SALT_LEN];
	memcpy(msg, "secretsfs key-encryption key v1", 32);
	memcpy(msg + 32, salt, CRYPTO_SALT_LEN);
	return crypto_hmac_sha256(unlock->bytes, unlock->len, msg, sizeof(msg), kek);
}

int keyring_header_text(const struct keyring *kr, enum unlock_kind kind,
			const uint8_t salt[CRYPTO_SALT_LEN], const struct argon2_params *params,
			const uint8_t *kek, const uint8_t *master, char **text)
{
	uint8_t sealed[SEALED_MASTER_LEN];
	char sealed_hex[2 * SEALED_MASTER_LEN + 1], salt_hex[2 * CRYPTO_SALT_LEN + 1], aad[160];
	json_object *hdr = json_object_new_object(), *un = json_object_new_object();
	int rc = hdr && un ? 0 : -ENOMEM;

	*text = NULL;
	size_t aad_len = master_aad(aad, sizeof(aad), AUTHSTORE_FORMAT, kr->store_id,
				    kind_name(kind));
	if (!rc)
		rc = crypto_seal(kek, aad, aad_len, master, CRYPTO_KEY_LEN, sealed);
	if (rc)
		goto out;
	hex_encode(sealed, sizeof(sealed), sealed_hex);
	hex_encode(salt, CRYPTO_SALT_LEN, salt_hex);
	/* Every field checked: a header written with a null master key
	 * would lock its store for good. */
	rc = record_json_add(un, "kind", json_object_new_string(kind_name(kind)));
	if (!rc)
		rc = record_json_add(un, "salt", json_object_new_string(salt_hex));
	if (!rc && kind == UNLOCK_PASSPHRASE) {
		rc = record_json_add(un, "kdf", json_object_new_string("argon2id"));
		if (!rc)
			rc = record_json_add(un, "t", json_object_new_int64(params->t_cost));
		if (!rc)
			rc = record_json_add(un, "m", json_object_new_int64(params->m_cost_kib));
		if (!rc)
			rc = record_json_add(un, "p", json_object_new_int64(params->parallelism));
	}
	if (!rc)
		rc = record_json_add(hdr, "store_id", json_object_new_string(kr->store_id));
	if (!rc)
		rc = record_json_add(hdr, "region", json_object_new_string(kr->region));
	if (!rc)
		rc = record_json_add(hdr, "account", json_object_new_string(kr->account));
	if (!rc)
		rc = record_json_add(hdr, "created", json_object_new_int64(kr->created_ms));
	if (!rc) {
		rc = record_json_add(hdr, "unlock", un);
		un = NULL; /* hdr's now, or freed */
	}
	if (!rc)
		rc = record_json_add(hdr, "master_key", json_object_new_string(sealed_hex));
	if (!rc) {
		const char *t = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
		if (!t || !(*text = strdup(t)))
			rc = -ENOMEM;
	}
out:
	json_object_put(un);
	json_object_put(hdr);
	return rc;
}

static struct keyring *keyring_new(void)
{
	struct keyring *kr = calloc(1, sizeof(*kr));
	if (!kr)
		return NULL;
	pthread_rwlock_init(&kr->lock, NULL);
	if (!(kr->master = crypto_secure_alloc(CRYPTO_KEY_LEN))) {
		pthread_rwlock_destroy(&kr->lock);
		free(kr);
		return NULL;
	}
	return kr;
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->nkeys; i++)
		named_key_free(&kr->keys[i]);
	free(kr->keys);
	authstore_free(kr->as);
	crypto_secure_free(kr->master, CRYPTO_KEY_LEN);
	crypto_secure_free(kr->legacy_kek, CRYPTO_KEY_LEN);
	pthread_rwlock_destroy(&kr->lock);
	free(kr);
}

int keyring_create(struct store *st, const struct unlock_secret *unlock, const char *region,
		   const char *account)
{
	uint8_t id_bytes[16];
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	struct keyring *kr = keyring_new();
	char *text = NULL;
	uint8_t *existing;
	size_t existing_len;
	int rc;

	if (!kr || !kek) {
		rc = -ENOMEM;
		goto out;
	}
	crypto_random_nonce(id_bytes, sizeof(id_bytes));
	hex_encode(id_bytes, sizeof(id_bytes), kr->store_id);
	snprintf(kr->region, sizeof(kr->region), "%s", region);
	snprintf(kr->account, sizeof(kr->account), "%s", account);
	kr->created_ms = time_now_ms();
	kr->kind = unlock->kind;
	crypto_random_nonce(kr->salt, sizeof(kr->salt));
	keyring_kek_params(unlock->kind, &kr->params);
	crypto_random_key(kr->master, CRYPTO_KEY_LEN, true);
	if ((rc = keyring_derive_kek(unlock, kr->salt, &kr->params, kek)) ||
	    (rc = keyring_header_text(kr, kr->kind, kr->salt, &kr->params, kek, kr->master, &text)))
		goto out;
	/* An empty store: format 0 until this first commit makes it 3. */
	if ((rc = authstore_open(st, kr->store_id, kr->master, 0, &kr->as)) ||
	    (rc = authstore_begin_rewrite(kr->as, NULL)))
		goto out;
	if (store_get(st, RECORD_KEY_HEADER, &existing, &existing_len) == 0) {
		/* Never replace the master key of a store that has one. */
		free(existing);
		authstore_cancel(kr->as);
		rc = -EEXIST;
		goto out;
	}
	if ((rc = authstore_put(kr->as, RECORD_KEY_HEADER, text, strlen(text)))) {
		authstore_cancel(kr->as);
		goto out;
	}
	rc = authstore_commit(kr->as);
out:
	free(text);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	keyring_free(kr);
	return rc;
}

/* What the header says, parsed from body; master_sealed gets the sealed key. */
static int parse_header(struct keyring *kr, const uint8_t *body, size_t len,
			uint8_t master_sealed[SEALED_MASTER_LEN])
{
	json_object *hdr = record_json_parse(body, len), *un;
	const char *store_id, *region, *account, *master_hex, *kind, *salt_hex;
	int64_t t, m, p;
	int rc = -EIO;

	if (!hdr || record_json_string(hdr, "store_id", true, &store_id) ||
	    record_json_string(hdr, "region", true, &region) ||
	    record_json_string(hdr, "account", true, &account) ||
	    record_json_string(hdr, "master_key", true, &master_hex) ||
	    record_json_int(hdr, "created", false, &kr->created_ms) ||
	    strlen(store_id) != KEYRING_STORE_ID_LEN ||
	    hex_decode(master_hex, master_sealed, SEALED_MASTER_LEN) ||
	    !json_object_object_get_ex(hdr, "unlock", &un) ||
	    record_json_string(un, "kind", true, &kind) ||
	    record_json_string(un, "salt", true, &salt_hex) ||
	    hex_decode(salt_hex, kr->salt, CRYPTO_SALT_LEN) ||
	    record_json_int(un, "t", false, &t) || record_json_int(un, "m", false, &m) ||
	    record_json_int(un, "p", false, &p))
		goto out;
	if (strcmp(kind, kind_name(UNLOCK_KEY_FILE)) == 0) {
		kr->kind = UNLOCK_KEY_FILE;
	} else if (strcmp(kind, kind_name(UNLOCK_PASSPHRASE)) == 0) {
		kr->kind = UNLOCK_PASSPHRASE;
		/* Read before anything can be authenticated: bounds that keep a
		 * changed header from making the unlock take minutes or all memory
		 * (secretsfs writes t=3, m=64 MiB, p=1). */
		if (t < 1 || t > 16 || m < 8 || m > 1024 * 1024 || p < 1 || p > 16)
			goto out;
	} else {
		goto out;
	}
	kr->params = (struct argon2_params){ (uint32_t)t, (uint32_t)m, (uint32_t)p };
	snprintf(kr->store_id, sizeof(kr->store_id), "%s", store_id);
	snprintf(kr->region, sizeof(kr->region), "%s", region);
	snprintf(kr->account, sizeof(kr->account), "%s", account);
	rc = 0;
out:
	json_object_put(hdr);
	return rc;
}

/* Opens the master key with the binding of format; -EACCES when it fails. */
static int open_master(struct keyring *kr, struct store *st, int format, const uint8_t *kek,
		       const uint8_t sealed[SEALED_MASTER_LEN])
{
	const char *kind = kind_name(kr->kind);
	char aad[160];
	size_t aad_len = master_aad(aad, sizeof(aad), format, kr->store_id, kind);
	int rc = crypto_open(kek, aad, aad_len, sealed, SEALED_MASTER_LEN, kr->master);
	if (rc != -EBADMSG)
		return rc;
	if (format < AUTHSTORE_FORMAT) {
		aad_len = master_aad(aad, sizeof(aad), AUTHSTORE_FORMAT, kr->store_id, kind);
		if (crypto_open(kek, aad, aad_len, sealed, SEALED_MASTER_LEN, kr->master) == 0) {
			crypto_wipe(kr->master, CRYPTO_KEY_LEN);
			/* The caller says "fails authentication"; the log says why. */
			log_info("%s: the store says format %d, but its master key was sealed by "
				  "format %d: the format record was changed; refused",
				  store_path(st), format, AUTHSTORE_FORMAT);
			return -EBADMSG;
		}
	}
	return -EACCES;
}

static int load_key_record(const char *key, const uint8_t *body, size_t len, int err, void *ctx)
{
	return named_key_load(ctx, key, body, len, err);
}

/*
 * The format and the header as the store holds them, before anything can
 * be authenticated: -EIO with why filled for a store that is not one,
 * of an unknown format, or whose header is missing or does not parse.
 */
static int read_header(struct store *st, struct keyring *kr, int *format,
		       uint8_t sealed[SEALED_MASTER_LEN], uint8_t **peeked, size_t *peeked_len,
		       char *why, size_t why_len)
{
	*format = authstore_format(st);
	if (*format < 0) {
		snprintf(why, why_len, "not a secretsfs store (no format record)");
		return -EIO;
	}
	if (*format < 1 || *format > AUTHSTORE_FORMAT) {
		snprintf(why, why_len, "store format %d is not one this secretsfs reads (1 to %d)",
			 *format, AUTHSTORE_FORMAT);
		return -EIO;
	}
	if (authstore_peek(st, *format, RECORD_KEY_HEADER, peeked, peeked_len) ||
	    parse_header(kr, *peeked, *peeked_len, sealed)) {
		snprintf(why, why_len, "store header is missing or damaged");
		return -EIO;
	}
	return 0;
}

int keyring_store_kind(struct store *st, enum unlock_kind *kind)
{
	struct keyring hdr = { 0 }; /* the parsed fields only: no key, no lock */
	uint8_t sealed[SEALED_MASTER_LEN], *peeked = NULL;
	size_t peeked_len = 0;
	char why[128];
	int format, rc = read_header(st, &hdr, &format, sealed, &peeked, &peeked_len, why,
				     sizeof(why));
	free(peeked);
	if (rc == 0)
		*kind = hdr.kind;
	return rc;
}

int keyring_unlock(struct store *st, const struct unlock_secret *unlock, struct keyring **out)
{
	uint8_t *peeked = NULL, *body = NULL, sealed[SEALED_MASTER_LEN];
	size_t peeked_len = 0, len = 0;
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	struct keyring *kr = keyring_new();
	char why[128];
	int rc, format;

	*out = NULL;
	if (!kr || !kek) {
		rc = -ENOMEM;
		goto out;
	}
	/* The header is read before its tag can be checked: nothing it says
	 * is trusted until the master key it seals has opened and its tag holds. */
	if ((rc = read_header(st, kr, &format, sealed, &peeked, &peeked_len, why, sizeof(why)))) {
		log_error("%s: %s", store_path(st), why);
		goto out;
	}
	if (kr->kind != unlock->kind) {
		rc = -ENOKEY; /* the caller says which kind the store wants */
		goto out;
	}
	if ((rc = keyring_derive_kek(unlock, kr->salt, &kr->params, kek)))
		goto out;
	if ((rc = open_master(kr, st, format, kek, sealed)))
		goto out;
	if ((rc = authstore_open(st, kr->store_id, kr->master, format, &kr->as)))
		goto out;
	rc = authstore_get(kr->as, RECORD_KEY_HEADER, &body, &len);
	if (rc == -EBADMSG) {
		log_info("%s: store record %s fails authentication: changed without the key",
			  store_path(st), RECORD_KEY_HEADER);
		goto out;
	}
	if (rc || len != peeked_len || memcmp(body, peeked, len) != 0) {
		log_error("%s: store header changed while it was read", store_path(st));
		rc = -EIO;
		goto out;
	}
	pthread_rwlock_wrlock(&kr->lock);
	rc = authstore_foreach(kr->as, RECORD_PREFIX_KEY, load_key_record, kr);
	pthread_rwlock_unlock(&kr->lock);
	if (rc)
		goto out;
	if (authstore_is_legacy(kr->as)) {
		kr->legacy_kek = kek; /* to seal the master key anew when authenticated */
		kek = NULL;
	}
	*out = kr;
	kr = NULL;
out:
	free(peeked);
	free(body);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	keyring_free(kr);
	return rc;
}

/* The given format and header, as they are, into the empty store st. */
static int put_raw_header(struct store *st, const uint8_t *format, size_t format_len,
			  const uint8_t *header, size_t header_len)
{
	int rc = store_begin(st);
	if (rc)
		return rc;
	if ((rc = store_put(st, RECORD_KEY_FORMAT, format, format_len)) ||
	    (rc = store_put(st, RECORD_KEY_HEADER, header, header_len))) {
		store_cancel(st);
		return rc;
	}
	return store_commit(st);
}

int keyring_create_replica(struct store *st, const uint8_t *format, size_t format_len,
			   const uint8_t *header, size_t header_len,
			   const struct unlock_secret *unlock)
{
	uint8_t *peeked = NULL, *stored = NULL, sealed[SEALED_MASTER_LEN];
	size_t peeked_len = 0, stored_len = 0;
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	struct keyring *kr = keyring_new();
	char why[128];
	int rc, fmt;

	if (!kr || !kek) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = put_raw_header(st, format, format_len, header, header_len)))
		goto out;
	if ((rc = read_header(st, kr, &fmt, sealed, &peeked, &peeked_len, why, sizeof(why))) ||
	    (fmt != AUTHSTORE_FORMAT && (rc = -EIO))) {
		log_error("%s: the store to join: %s", store_path(st),
			  rc && fmt == AUTHSTORE_FORMAT ? why : "not an authenticated store (format 3)");
		goto out;
	}
	if (kr->kind != unlock->kind) {
		rc = -ENOKEY;
		goto out;
	}
	if ((rc = keyring_derive_kek(unlock, kr->salt, &kr->params, kek)) ||
	    (rc = open_master(kr, st, fmt, kek, sealed)))
		goto out;
	/* The header tagged again under the master key it sealed, and the
	 * state record made, as keyring_create does. The tag is a MAC of the
	 * body: the bytes written are the bytes given exactly when the given
	 * header's tag holds. */
	if ((rc = authstore_open(st, kr->store_id, kr->master, 0, &kr->as)) ||
	    (rc = authstore_begin_rewrite(kr->as, NULL)))
		goto out;
	if ((rc = authstore_put(kr->as, RECORD_KEY_HEADER, peeked, peeked_len))) {
		authstore_cancel(kr->as);
		goto out;
	}
	if ((rc = authstore_commit(kr->as)) ||
	    (rc = store_get(st, RECORD_KEY_HEADER, &stored, &stored_len)))
		goto out;
	if (stored_len != header_len || memcmp(stored, header, header_len) != 0) {
		log_error("%s: the header of the store to join fails authentication: changed "
			  "without the key", store_path(st));
		rc = -EBADMSG;
	}
out:
	free(peeked);
	free(stored);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	keyring_free(kr);
	return rc;
}

struct authstore *keyring_authstore(struct keyring *kr)
{
	return kr->as;
}

size_t keyring_damaged(struct keyring *kr)
{
	size_t n = 0;
	pthread_rwlock_rdlock(&kr->lock);
	for (size_t i = 0; i < kr->nkeys; i++)
		n += kr->keys[i].damaged;
	pthread_rwlock_unlock(&kr->lock);
	return n;
}

const char *keyring_store_id(const struct keyring *kr)
{
	return kr->store_id;
}

const char *keyring_region(const struct keyring *kr)
{
	return kr->region;
}

const char *keyring_account(const struct keyring *kr)
{
	return kr->account;
}

int keyring_change_unlock(struct keyring *kr, const struct unlock_secret *unlock)
{
	uint8_t salt[CRYPTO_SALT_LEN];
	struct argon2_params params;
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	char *text = NULL;
	int rc;

	if (!kek)
		return -ENOMEM;
	crypto_random_nonce(salt, sizeof(salt));
	keyring_kek_params(unlock->kind, &params);
	if ((rc = keyring_derive_kek(unlock, salt, &params, kek)))
		goto out;
	pthread_rwlock_wrlock(&kr->lock);
	rc = keyring_header_text(kr, unlock->kind, salt, &params, kek, kr->master, &text);
	if (!rc && !(rc = authstore_begin(kr->as))) {
		if ((rc = authstore_put(kr->as, RECORD_KEY_HEADER, text, strlen(text))))
			authstore_cancel(kr->as);
		else
			rc = authstore_commit(kr->as);
	}
	if (!rc) {
		kr->kind = unlock->kind;
		memcpy(kr->salt, salt, sizeof(salt));
		kr->params = params;
	}
	pthread_rwlock_unlock(&kr->lock);
out:
	free(text);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	return rc;
}

void keyring_new_uuid(char out[37])
{
	uint8_t b[16];
	crypto_random_nonce(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
}
