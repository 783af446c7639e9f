#include "secrets/keyring.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "util/log.h"
#include "util/timeutil.h"

/* Argon2id cost for passphrases: ~0.3 s and 64 MiB here (reference §3.4). */
static const struct argon2_params default_argon2 = { 3, 65536, 1 };

struct named_key {
	char id[SM_KEY_ID_LEN + 1];
	char *alias;
	bool enabled;
	int64_t created_ms;
	uint8_t *material; /* secure memory */
};

struct keyring {
	struct store *store;
	char store_id[KEYRING_STORE_ID_LEN + 1];
	char region[64];
	char account[32];
	uint8_t *master; /* secure memory */
	pthread_rwlock_t lock;
	struct named_key *keys;
	size_t nkeys;
};

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int hex_value(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int hex_decode(const char *in, uint8_t *out, size_t out_len)
{
	if (strlen(in) != 2 * out_len)
		return -EINVAL;
	for (size_t i = 0; i < out_len; i++) {
		int hi = hex_value(in[2 * i]), lo = hex_value(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
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

int keyring_read_key_file(const char *path, uint8_t key[CRYPTO_KEY_LEN])
{
	/* 64 hex digits and trailing whitespace, or 32 raw bytes: anything
	 * longer than a page is not a key file; read one byte past it to see. */
	enum { CAP = 4096 };
	uint8_t *buf = crypto_secure_alloc(CAP + 1);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	ssize_t n = 0, got;
	while (n < CAP + 1 && (got = read(fd, buf + n, (size_t)(CAP + 1 - n))) > 0)
		n += got;
	if (got < 0)
		rc = -errno;
	close(fd);
	if (rc)
		goto out;
	if (n > CAP) {
		rc = -EINVAL;
		goto out;
	}
	bool all_hex = true;
	for (ssize_t i = 0; i < n; i++)
		if (!isxdigit(buf[i]))
			all_hex = false;
	if (n == CRYPTO_KEY_LEN && !all_hex) {
		memcpy(key, buf, CRYPTO_KEY_LEN); /* raw bytes */
		goto out;
	}
	while (n > 0 && isspace(buf[n - 1]))
		n--;
	if (n != 2 * CRYPTO_KEY_LEN) {
		rc = -EINVAL; /* also a hex key cut short to 32 digits */
		goto out;
	}
	buf[n] = '\0';
	rc = hex_decode((const char *)buf, key, CRYPTO_KEY_LEN);
out:
	crypto_secure_free(buf, CAP + 1);
	return rc;
}

int keyring_write_key_file(const char *path)
{
	uint8_t *key = crypto_secure_alloc(CRYPTO_KEY_LEN);
	char *text = crypto_secure_alloc(2 * CRYPTO_KEY_LEN + 2);
	int rc = 0, fd = -1;
	if (!key || !text) {
		rc = -ENOMEM;
		goto out;
	}
	crypto_random_key(key, CRYPTO_KEY_LEN, true);
	hex_encode(key, CRYPTO_KEY_LEN, text);
	text[2 * CRYPTO_KEY_LEN] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	size_t len = 2 * CRYPTO_KEY_LEN + 1;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
		rc = -errno ? -errno : -EIO;
		unlink(path);
	}
out:
	if (fd >= 0)
		close(fd);
	crypto_secure_free(key, CRYPTO_KEY_LEN);
	crypto_secure_free(text, 2 * CRYPTO_KEY_LEN + 2);
	return rc;
}

static const char *kind_name(enum unlock_kind kind)
{
	return kind == UNLOCK_PASSPHRASE ? "passphrase" : "key_file";
}

/* The header's "unlock" object: how to derive the key that seals the
 * master key (never the key itself). NULL when out of memory. */
static json_object *unlock_params(enum unlock_kind kind, const char *salt_hex)
{
	json_object *un = json_object_new_object();
	if (!un)
		return NULL;
	json_object_object_add(un, "kind", json_object_new_string(kind_name(kind)));
	json_object_object_add(un, "salt", json_object_new_string(salt_hex));
	if (kind == UNLOCK_PASSPHRASE) {
		json_object_object_add(un, "kdf", json_object_new_string("argon2id"));
		json_object_object_add(un, "t", json_object_new_int64(default_argon2.t_cost));
		json_object_object_add(un, "m", json_object_new_int64(default_argon2.m_cost_kib));
		json_object_object_add(un, "p", json_object_new_int64(default_argon2.parallelism));
	}
	return un;
}

/* "secretsfs/master-key/v1" NUL store_id NUL kind: the master key's binding. */
static size_t master_aad(char *buf, size_t len, const char *store_id, const char *kind)
{
	int n = snprintf(buf, len, "secretsfs/master-key/v1%c%s%c%s", 0, store_id, 0, kind);
	return n < 0 ? 0 : (size_t)n;
}

static size_t named_key_aad(char *buf, size_t len, const char *store_id, const char *key_id)
{
	int n = snprintf(buf, len, "secretsfs/named-key/v1%c%s%c%s", 0, store_id, 0, key_id);
	return n < 0 ? 0 : (size_t)n;
}

static int derive_kek(const struct unlock_secret *unlock, const uint8_t salt[CRYPTO_SALT_LEN],
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

int keyring_create(struct store *st, const struct unlock_secret *unlock, const char *region,
		   const char *account)
{
	uint8_t id_bytes[16], salt[CRYPTO_SALT_LEN];
	uint8_t sealed[CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD];
	char store_id[KEYRING_STORE_ID_LEN + 1], salt_hex[2 * CRYPTO_SALT_LEN + 1];
	char sealed_hex[2 * sizeof(sealed) + 1], aad[160], format[16];
	uint8_t *master = crypto_secure_alloc(CRYPTO_KEY_LEN);
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	json_object *hdr = NULL;
	int rc;

	if (!master || !kek) {
		rc = -ENOMEM;
		goto out;
	}
	crypto_random_nonce(id_bytes, sizeof(id_bytes));
	hex_encode(id_bytes, sizeof(id_bytes), store_id);
	crypto_random_nonce(salt, sizeof(salt));
	hex_encode(salt, sizeof(salt), salt_hex);
	crypto_random_key(master, CRYPTO_KEY_LEN, true);
	rc = derive_kek(unlock, salt, &default_argon2, kek);
	if (rc)
		goto out;
	size_t aad_len = master_aad(aad, sizeof(aad), store_id, kind_name(unlock->kind));
	rc = crypto_seal(kek, aad, aad_len, master, CRYPTO_KEY_LEN, sealed);
	if (rc)
		goto out;
	hex_encode(sealed, sizeof(sealed), sealed_hex);

	hdr = json_object_new_object();
	json_object *un = unlock_params(unlock->kind, salt_hex);
	if (!hdr || !un) {
		json_object_put(un);
		rc = -ENOMEM;
		goto out;
	}
	json_object_object_add(hdr, "store_id", json_object_new_string(store_id));
	json_object_object_add(hdr, "region", json_object_new_string(region));
	json_object_object_add(hdr, "account", json_object_new_string(account));
	json_object_object_add(hdr, "created", json_object_new_int64(time_now_ms()));
	json_object_object_add(hdr, "unlock", un);
	json_object_object_add(hdr, "master_key", json_object_new_string(sealed_hex));
	const char *text = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
	snprintf(format, sizeof(format), "%d", RECORD_FORMAT_VERSION);

	rc = store_begin(st);
	if (rc)
		goto out;
	uint8_t *existing;
	size_t existing_len;
	if (store_get(st, RECORD_KEY_HEADER, &existing, &existing_len) == 0) {
		/* Never replace the master key of a store that has one. */
		free(existing);
		store_cancel(st);
		rc = -EEXIST;
		goto out;
	}
	if ((rc = store_put(st, RECORD_KEY_FORMAT, format, strlen(format))) ||
	    (rc = store_put(st, RECORD_KEY_HEADER, text, strlen(text)))) {
		store_cancel(st);
		goto out;
	}
	rc = store_commit(st);
out:
	json_object_put(hdr);
	crypto_secure_free(master, CRYPTO_KEY_LEN);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	return rc;
}

static void free_key(struct named_key *k)
{
	free(k->alias);
	crypto_secure_free(k->material, CRYPTO_KEY_LEN);
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	for (size_t i = 0; i < kr->nkeys; i++)
		free_key(&kr->keys[i]);
	free(kr->keys);
	crypto_secure_free(kr->master, CRYPTO_KEY_LEN);
	pthread_rwlock_destroy(&kr->lock);
	free(kr);
}

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int64_t jint(json_object *o, const char *key, int64_t fallback)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return fallback;
	return json_object_get_int64(v);
}

static json_object *parse_record(const uint8_t *data, size_t len)
{
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_object *o = json_tokener_parse_ex(tok, (const char *)data, (int)len);
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		  json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* Loads one named key record into kr (caller holds the write lock). */
static int load_named_key(struct keyring *kr, const uint8_t *data, size_t len)
{
	json_object *o = parse_record(data, len);
	uint8_t sealed[CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD];
	char aad[160];
	struct named_key k = { 0 };
	int rc = -EIO;

	if (!o)
		goto out;
	const char *id = jstr(o, "id"), *alias = jstr(o, "alias"), *sealed_hex = jstr(o, "sealed");
	json_object *en;
	if (!id || strlen(id) != SM_KEY_ID_LEN || !sealed_hex ||
	    hex_decode(sealed_hex, sealed, sizeof(sealed)) ||
	    !json_object_object_get_ex(o, "enabled", &en))
		goto out;
	memcpy(k.id, id, SM_KEY_ID_LEN + 1);
	k.enabled = json_object_get_boolean(en);
	k.created_ms = jint(o, "created", 0);
	k.alias = alias ? strdup(alias) : NULL;
	k.material = crypto_secure_alloc(CRYPTO_KEY_LEN);
	if (!k.material || (alias && !k.alias)) {
		rc = -ENOMEM;
		goto out;
	}
	size_t aad_len = named_key_aad(aad, sizeof(aad), kr->store_id, k.id);
	rc = crypto_open(kr->master, aad, aad_len, sealed, sizeof(sealed), k.material);
	if (rc) {
		log_error("named key %s does not open under this store's master key", k.id);
		rc = -EIO;
		goto out;
	}
	struct named_key *keys = realloc(kr->keys, (kr->nkeys + 1) * sizeof(*keys));
	if (!keys) {
		rc = -ENOMEM;
		goto out;
	}
	kr->keys = keys;
	kr->keys[kr->nkeys++] = k;
	k.material = NULL;
	k.alias = NULL;
out:
	free_key(&k);
	json_object_put(o);
	return rc;
}

static int visit_key(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	(void)key;
	return load_named_key(ctx, val, len);
}

int keyring_unlock(struct store *st, const struct unlock_secret *unlock, struct keyring **out)
{
	uint8_t *data = NULL;
	size_t len = 0;
	json_object *hdr = NULL;
	uint8_t salt[CRYPTO_SALT_LEN], sealed[CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD];
	char aad[160];
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	struct keyring *kr = calloc(1, sizeof(*kr));
	int rc;

	*out = NULL;
	if (!kr || !kek || !(kr->master = crypto_secure_alloc(CRYPTO_KEY_LEN))) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_rwlock_init(&kr->lock, NULL);
	kr->store = st;

	rc = store_get(st, RECORD_KEY_FORMAT, &data, &len);
	if (rc) {
		log_error("%s: not a secretsfs store (no format record)", store_path(st));
		rc = -EIO;
		goto out;
	}
	int64_t format = -1;
	{
		char text[8] = { 0 };
		/* Exactly a known version's digits, nothing after them. */
		if (len > 0 && len < sizeof(text)) {
			char *end;
			memcpy(text, data, len);
			format = strtol(text, &end, 10);
			if (*end || text[0] < '0' || text[0] > '9')
				format = -1;
		}
	}
	free(data);
	data = NULL;
	if (format != RECORD_FORMAT_VERSION && format != 1) {
		log_error("%s: store format %lld is not one this secretsfs reads (%d)",
			  store_path(st), (long long)format, RECORD_FORMAT_VERSION);
		rc = -EIO;
		goto out;
	}
	rc = store_get(st, RECORD_KEY_HEADER, &data, &len);
	if (rc || !(hdr = parse_record(data, len))) {
		log_error("%s: store header is missing or damaged", store_path(st));
		rc = -EIO;
		goto out;
	}
	json_object *un;
	const char *store_id = jstr(hdr, "store_id"), *region = jstr(hdr, "region");
	const char *account = jstr(hdr, "account"), *master_hex = jstr(hdr, "master_key");
	if (!store_id || strlen(store_id) != KEYRING_STORE_ID_LEN || !region || !account ||
	    !master_hex || hex_decode(master_hex, sealed, sizeof(sealed)) ||
	    !json_object_object_get_ex(hdr, "unlock", &un)) {
		log_error("%s: store header is damaged", store_path(st));
		rc = -EIO;
		goto out;
	}
	const char *kind = jstr(un, "kind"), *salt_hex = jstr(un, "salt");
	if (!kind || !salt_hex || hex_decode(salt_hex, salt, sizeof(salt))) {
		log_error("%s: store header is damaged (unlock parameters)", store_path(st));
		rc = -EIO;
		goto out;
	}
	if (strcmp(kind, kind_name(unlock->kind)) != 0) {
		rc = -ENOKEY; /* the caller says which kind the store wants */
		goto out;
	}
	struct argon2_params params = {
		(uint32_t)jint(un, "t", 0), (uint32_t)jint(un, "m", 0), (uint32_t)jint(un, "p", 0)
	};
	if (unlock->kind == UNLOCK_PASSPHRASE &&
	    (params.t_cost < 1 || params.t_cost > 100 || params.m_cost_kib < 8 ||
	     params.m_cost_kib > 4 * 1024 * 1024 || params.parallelism < 1 || params.parallelism > 64)) {
		log_error("%s: store header is damaged (KDF parameters)", store_path(st));
		rc = -EIO;
		goto out;
	}
	snprintf(kr->store_id, sizeof(kr->store_id), "%s", store_id);
	snprintf(kr->region, sizeof(kr->region), "%s", region);
	snprintf(kr->account, sizeof(kr->account), "%s", account);
	rc = derive_kek(unlock, salt, &params, kek);
	if (rc)
		goto out;
	size_t aad_len = master_aad(aad, sizeof(aad), kr->store_id, kind);
	rc = crypto_open(kek, aad, aad_len, sealed, sizeof(sealed), kr->master);
	if (rc == -EBADMSG) {
		rc = -EACCES;
		goto out;
	}
	if (rc)
		goto out;
	rc = store_foreach(st, RECORD_PREFIX_KEY, visit_key, kr);
	if (rc)
		goto out;
	*out = kr;
	kr = NULL;
out:
	json_object_put(hdr);
	free(data);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	keyring_free(kr);
	return rc;
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
	uint8_t sealed[CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD];
	char sealed_hex[2 * sizeof(sealed) + 1], aad[160], rkey[64];
	uint8_t *material = crypto_secure_alloc(CRYPTO_KEY_LEN);
	json_object *o = json_object_new_object();
	int rc;

	if (!material || !o) {
		rc = -ENOMEM;
		goto out;
	}
	keyring_new_uuid(key_id);
	crypto_random_key(material, CRYPTO_KEY_LEN, true);
	size_t aad_len = named_key_aad(aad, sizeof(aad), kr->store_id, key_id);
	rc = crypto_seal(kr->master, aad, aad_len, material, CRYPTO_KEY_LEN, sealed);
	if (rc)
		goto out;
	hex_encode(sealed, sizeof(sealed), sealed_hex);
	int64_t now = time_now_ms();
	json_object_object_add(o, "id", json_object_new_string(key_id));
	json_object_object_add(o, "alias", json_object_new_string(alias));
	json_object_object_add(o, "enabled", json_object_new_boolean(1));
	json_object_object_add(o, "created", json_object_new_int64(now));
	json_object_object_add(o, "sealed", json_object_new_string(sealed_hex));
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	snprintf(rkey, sizeof(rkey), "%s%s", RECORD_PREFIX_KEY, key_id);

	struct named_key *keys = realloc(kr->keys, (kr->nkeys + 1) * sizeof(*keys));
	if (!keys) {
		rc = -ENOMEM;
		goto out;
	}
	kr->keys = keys;
	char *alias_copy = strdup(alias);
	if (!alias_copy) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = store_begin(kr->store))) {
		free(alias_copy);
		goto out;
	}
	rc = store_put(kr->store, rkey, text, strlen(text));
	if (rc) {
		store_cancel(kr->store);
		free(alias_copy);
		goto out;
	}
	rc = store_commit(kr->store);
	if (rc) {
		free(alias_copy);
		goto out;
	}
	struct named_key *k = &kr->keys[kr->nkeys++];
	memset(k, 0, sizeof(*k));
	memcpy(k->id, key_id, SM_KEY_ID_LEN + 1);
	k->alias = alias_copy;
	k->enabled = true;
	k->created_ms = now;
	k->material = material;
	material = NULL;
	log_info("created named key alias/%s (%s)", alias, key_id);
out:
	json_object_put(o);
	crypto_secure_free(material, CRYPTO_KEY_LEN);
	return rc;
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
	int rc = !k ? -ENOENT : !k->enabled ? -EACCES : 0;
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
	int rc = !k ? -ENOENT : !k->enabled ? -EACCES : 0;
	if (!rc)
		rc = crypto_open(k->material, aad, aad_len, wrapped, wrapped_len, dek);
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
	struct named_key *k = find_id(kr, key_id);
	int rc = !k ? -ENOENT : k->enabled ? 0 : -EACCES;
	pthread_rwlock_unlock(&kr->lock);
	return rc;
}

static int write_key_record(struct keyring *kr, const struct named_key *k, bool enabled)
{
	uint8_t *data = NULL;
	size_t len;
	char rkey[64];
	int rc;
	snprintf(rkey, sizeof(rkey), "%s%s", RECORD_PREFIX_KEY, k->id);
	if ((rc = store_begin(kr->store)))
		return rc;
	if ((rc = store_get(kr->store, rkey, &data, &len))) {
		store_cancel(kr->store);
		return rc == -ENOENT ? -EIO : rc;
	}
	json_object *o = parse_record(data, len);
	free(data);
	if (!o) {
		store_cancel(kr->store);
		return -EIO;
	}
	json_object_object_add(o, "enabled", json_object_new_boolean(enabled));
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	rc = text ? store_put(kr->store, rkey, text, strlen(text)) : -ENOMEM;
	json_object_put(o);
	if (rc) {
		store_cancel(kr->store);
		return rc;
	}
	return store_commit(kr->store);
}

int keyring_set_enabled(struct keyring *kr, const char *spec, bool enabled)
{
	pthread_rwlock_wrlock(&kr->lock);
	struct named_key *k;
	int rc = lookup_spec(kr, spec, &k);
	if (!rc && k->enabled != enabled && !(rc = write_key_record(kr, k, enabled))) {
		k->enabled = enabled;
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
		(*keys)[i].created_ms = kr->keys[i].created_ms;
	}
	pthread_rwlock_unlock(&kr->lock);
	return *keys ? 0 : -ENOMEM;
}

/* Re-seals one named key's record under master (one record of a change). */
static int reseal_key_record(struct keyring *kr, const struct named_key *k, const uint8_t *master)
{
	uint8_t *data = NULL, sealed[CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD];
	char rkey[64], aad[160], sealed_hex[2 * sizeof(sealed) + 1];
	size_t len;
	int rc;
	snprintf(rkey, sizeof(rkey), "%s%s", RECORD_PREFIX_KEY, k->id);
	if ((rc = store_get(kr->store, rkey, &data, &len)))
		return rc == -ENOENT ? -EIO : rc;
	json_object *o = parse_record(data, len);
	free(data);
	if (!o)
		return -EIO;
	size_t aad_len = named_key_aad(aad, sizeof(aad), kr->store_id, k->id);
	rc = crypto_seal(master, aad, aad_len, k->material, CRYPTO_KEY_LEN, sealed);
	if (!rc) {
		hex_encode(sealed, sizeof(sealed), sealed_hex);
		json_object_object_add(o, "sealed", json_object_new_string(sealed_hex));
		const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		rc = text ? store_put(kr->store, rkey, text, strlen(text)) : -ENOMEM;
	}
	json_object_put(o);
	return rc;
}

int keyring_change_unlock(struct keyring *kr, const struct unlock_secret *unlock, bool new_master)
{
	uint8_t salt[CRYPTO_SALT_LEN], sealed[CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD];
	char salt_hex[2 * CRYPTO_SALT_LEN + 1], sealed_hex[2 * sizeof(sealed) + 1], aad[160];
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	uint8_t *master = crypto_secure_alloc(CRYPTO_KEY_LEN);
	uint8_t *data = NULL;
	json_object *hdr = NULL;
	size_t len;
	int rc;

	if (!kek || !master) {
		rc = -ENOMEM;
		goto out;
	}
	if (new_master)
		crypto_random_key(master, CRYPTO_KEY_LEN, true);
	else
		memcpy(master, kr->master, CRYPTO_KEY_LEN);
	crypto_random_nonce(salt, sizeof(salt));
	hex_encode(salt, sizeof(salt), salt_hex);
	if ((rc = derive_kek(unlock, salt, &default_argon2, kek)))
		goto out;
	size_t aad_len = master_aad(aad, sizeof(aad), kr->store_id, kind_name(unlock->kind));
	if ((rc = crypto_seal(kek, aad, aad_len, master, CRYPTO_KEY_LEN, sealed)))
		goto out;
	hex_encode(sealed, sizeof(sealed), sealed_hex);

	pthread_rwlock_wrlock(&kr->lock);
	if ((rc = store_begin(kr->store))) {
		pthread_rwlock_unlock(&kr->lock);
		goto out;
	}
	rc = store_get(kr->store, RECORD_KEY_HEADER, &data, &len);
	if (!rc && !(hdr = parse_record(data, len)))
		rc = -EIO;
	json_object *un = NULL;
	if (!rc && !(un = unlock_params(unlock->kind, salt_hex)))
		rc = -ENOMEM;
	if (!rc) {
		json_object_object_add(hdr, "unlock", un);
		json_object_object_add(hdr, "master_key", json_object_new_string(sealed_hex));
		const char *text = json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN);
		rc = text ? store_put(kr->store, RECORD_KEY_HEADER, text, strlen(text)) : -ENOMEM;
	}
	/* A new master key re-seals the named keys, never the values. */
	for (size_t i = 0; !rc && new_master && i < kr->nkeys; i++)
		rc = reseal_key_record(kr, &kr->keys[i], master);
	if (rc) {
		store_cancel(kr->store);
	} else if ((rc = store_commit(kr->store)) == 0) {
		memcpy(kr->master, master, CRYPTO_KEY_LEN);
	}
	pthread_rwlock_unlock(&kr->lock);
out:
	json_object_put(hdr);
	free(data);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	crypto_secure_free(master, CRYPTO_KEY_LEN);
	return rc;
}
