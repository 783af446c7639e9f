/*
 * The authenticated store (secrets/authstore.h): record tags, the state
 * record's sum, and the rewrite that authenticates a legacy store or moves
 * a store to a new master key.
 */
#include "secrets/authstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/record.h"
#include "util/hashmap.h"
#include "util/log.h"
#include "util/strlist.h"

#define MAGIC "SFA3"
#define MAGIC_LEN 4
#define TAG_LEN CRYPTO_PRF_LEN
#define TERM_LEN CRYPTO_PRF_LEN
#define ENVELOPE_LEN (MAGIC_LEN + TAG_LEN)
#define STATE_BODY_LEN (TERM_LEN + 8)
#define TAG_KEY_LABEL "secretsfs/record-tag-key/v3"
#define TERM_KEY_LABEL "secretsfs/record-term-key/v3"

/* A record's tag is HMAC(tag key, record); its term, which only the key's
 * holder can compute, is HMAC(term key, tag). */
struct record_keys {
	struct crypto_prf *tag, *term;
};

struct sum {
	uint8_t xor[TERM_LEN];
	uint64_t count;
};

struct authstore {
	struct store *st;
	int format;
	char store_id[64];
	pthread_rwlock_t lock;     /* keys and format against the rewrite's swap */
	struct record_keys *keys;  /* the current ones */
	struct sum state;          /* as of the last commit (format 3) */

	pthread_mutex_t load_lock;
	bool loading;
	struct sum loaded;
	uint64_t load_damaged;

	/* The transaction, touched only by the thread that holds it (the
	 * store's lock keeps every other writer out from begin to end). */
	_Atomic bool in_txn;          /* read by other threads: "is it mine?" */
	_Atomic pthread_t txn_owner;  /* set before in_txn */
	bool rewrite;
	struct sum txn;
	struct record_keys *txn_keys;   /* rewrite: the keys records move to */
	struct hashmap *txn_written;    /* rewrite: key -> its term (malloc'd) */
};

static bool covered(const char *key)
{
	return strncmp(key, RECORD_PREFIX_VERSION, strlen(RECORD_PREFIX_VERSION)) != 0 &&
	       strcmp(key, RECORD_KEY_FORMAT) != 0 && strcmp(key, AUTHSTORE_KEY_STATE) != 0;
}

static void sum_add(struct sum *s, const uint8_t term[TERM_LEN])
{
	for (int i = 0; i < TERM_LEN; i++)
		s->xor[i] ^= term[i];
	s->count++;
}

static void sum_remove(struct sum *s, const uint8_t term[TERM_LEN])
{
	for (int i = 0; i < TERM_LEN; i++)
		s->xor[i] ^= term[i];
	s->count--;
}

/* A record's tag and, when term is not NULL, its hidden term. */
static int record_mac(const struct record_keys *k, const char *store_id, const char *key,
		      const uint8_t *body, size_t len, uint8_t tag[TAG_LEN], uint8_t *term)
{
	static const char label[] = "secretsfs/record/v3";
	char format[8];
	int n = snprintf(format, sizeof(format), "%d", AUTHSTORE_FORMAT);
	const struct crypto_part parts[] = {
		{ label, sizeof(label) },                 /* with its NUL */
		{ store_id, strlen(store_id) + 1 },
		{ format, (size_t)n + 1 },
		{ key, strlen(key) + 1 },
		{ body, len },
	};
	int rc = crypto_prf(k->tag, parts, sizeof(parts) / sizeof(parts[0]), tag);
	if (!rc && term) {
		const struct crypto_part of_tag = { tag, TAG_LEN };
		rc = crypto_prf(k->term, &of_tag, 1, term);
	}
	return rc;
}

/* An envelope's shape: long enough, and the magic. */
static bool enveloped(const uint8_t *raw, size_t raw_len)
{
	return raw_len >= ENVELOPE_LEN && memcmp(raw, MAGIC, MAGIC_LEN) == 0;
}

/* Does the record's tag hold under k? term gets its hidden term. */
static int check_envelope(const struct record_keys *k, const char *store_id, const char *key,
			  const uint8_t *raw, size_t raw_len, uint8_t term[TERM_LEN])
{
	uint8_t tag[TAG_LEN];
	if (!enveloped(raw, raw_len))
		return -EBADMSG;
	int rc = record_mac(k, store_id, key, raw + ENVELOPE_LEN, raw_len - ENVELOPE_LEN, tag,
			    NULL);
	if (rc)
		return rc;
	if (!crypto_equal(tag, raw + MAGIC_LEN, TAG_LEN))
		return -EBADMSG;
	if (term) {
		const struct crypto_part of_tag = { tag, TAG_LEN };
		rc = crypto_prf(k->term, &of_tag, 1, term);
	}
	return rc;
}

/* A malloc'd envelope of body under k; term gets its hidden term. */
static int make_envelope(const struct record_keys *k, const char *store_id, const char *key,
			 const void *body, size_t len, uint8_t **out, size_t *out_len,
			 uint8_t term[TERM_LEN])
{
	uint8_t tag[TAG_LEN];
	uint8_t *buf = malloc(ENVELOPE_LEN + len);
	if (!buf)
		return -ENOMEM;
	int rc = record_mac(k, store_id, key, body, len, tag, term);
	if (rc) {
		free(buf);
		return rc;
	}
	memcpy(buf, MAGIC, MAGIC_LEN);
	memcpy(buf + MAGIC_LEN, tag, TAG_LEN);
	if (len)
		memcpy(buf + ENVELOPE_LEN, body, len);
	*out = buf;
	*out_len = ENVELOPE_LEN + len;
	return 0;
}

static void log_refused(const char *key)
{
	log_error("store record %s fails authentication: changed, truncated, renamed or "
		  "copied from another store (secretsfs check lists every such record)", key);
}

int authstore_format(struct store *st)
{
	uint8_t *data;
	size_t len;
	char text[8] = { 0 };
	if (store_get(st, RECORD_KEY_FORMAT, &data, &len))
		return -EIO;
	int format = -EIO;
	/* Exactly a version's digits, nothing after them. */
	if (len > 0 && len < sizeof(text)) {
		char *end;
		memcpy(text, data, len);
		long v = strtol(text, &end, 10);
		if (!*end && text[0] >= '0' && text[0] <= '9' && v > 0 && v < 1000)
			format = (int)v;
	}
	free(data);
	return format;
}

int authstore_peek(struct store *st, int format, const char *key, uint8_t **body, size_t *len)
{
	uint8_t *raw;
	size_t raw_len;
	int rc = store_get(st, key, &raw, &raw_len);
	if (rc)
		return rc;
	if (format >= AUTHSTORE_FORMAT && covered(key)) {
		if (!enveloped(raw, raw_len)) {
			free(raw);
			return -EBADMSG;
		}
		raw_len -= ENVELOPE_LEN;
		memmove(raw, raw + ENVELOPE_LEN, raw_len);
	}
	*body = raw;
	*len = raw_len;
	return 0;
}

static void keys_free(struct record_keys *k)
{
	if (!k)
		return;
	crypto_prf_free(k->tag);
	crypto_prf_free(k->term);
	free(k);
}

/* The record keys of a master key: independent subkeys, one per purpose. */
static int keys_new(const uint8_t master[CRYPTO_KEY_LEN], const char *store_id,
		    struct record_keys **out)
{
	uint8_t *sub = crypto_secure_alloc(CRYPTO_KEY_LEN);
	struct record_keys *k = calloc(1, sizeof(*k));
	int rc = sub && k ? 0 : -ENOMEM;
	if (!rc)
		rc = crypto_derive_key(master, TAG_KEY_LABEL, store_id, sub);
	if (!rc)
		rc = crypto_prf_new(sub, &k->tag);
	if (!rc)
		rc = crypto_derive_key(master, TERM_KEY_LABEL, store_id, sub);
	if (!rc)
		rc = crypto_prf_new(sub, &k->term);
	crypto_secure_free(sub, CRYPTO_KEY_LEN);
	if (rc) {
		keys_free(k);
		k = NULL;
	}
	*out = k;
	return rc;
}

static int read_state(struct authstore *as)
{
	uint8_t *raw;
	size_t len;
	int rc = store_get(as->st, AUTHSTORE_KEY_STATE, &raw, &len);
	/* The caller says the store fails authentication; the log says why. */
	if (rc == -ENOENT) {
		log_info("%s: the store's state record is missing: records may have been "
			 "removed or replaced", store_path(as->st));
		return -EBADMSG;
	}
	if (rc)
		return rc;
	rc = check_envelope(as->keys, as->store_id, AUTHSTORE_KEY_STATE, raw, len, NULL);
	if (!rc && len - ENVELOPE_LEN != STATE_BODY_LEN)
		rc = -EBADMSG;
	if (rc == -EBADMSG)
		log_info("%s: store record %s fails authentication", store_path(as->st),
			 AUTHSTORE_KEY_STATE);
	if (!rc) {
		const uint8_t *body = raw + ENVELOPE_LEN;
		memcpy(as->state.xor, body, TERM_LEN);
		as->state.count = 0;
		for (int i = 7; i >= 0; i--)
			as->state.count = as->state.count << 8 | body[TERM_LEN + i];
	}
	free(raw);
	return rc;
}

int authstore_open(struct store *st, const char *store_id, const uint8_t master[CRYPTO_KEY_LEN],
		   int format, struct authstore **out)
{
	struct authstore *as = calloc(1, sizeof(*as));
	int rc;
	*out = NULL;
	if (!as)
		return -ENOMEM;
	as->st = st;
	as->format = format;
	snprintf(as->store_id, sizeof(as->store_id), "%s", store_id);
	pthread_rwlock_init(&as->lock, NULL);
	pthread_mutex_init(&as->load_lock, NULL);
	as->loading = true;
	if ((rc = keys_new(master, store_id, &as->keys)))
		goto fail;
	if (format >= AUTHSTORE_FORMAT && (rc = read_state(as)))
		goto fail;
	*out = as;
	return 0;
fail:
	authstore_free(as);
	return rc;
}

static int free_term(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	free(value);
	return 0;
}

static void end_txn(struct authstore *as)
{
	if (as->txn_written) {
		hashmap_foreach(as->txn_written, free_term, NULL);
		hashmap_free(as->txn_written);
	}
	as->txn_written = NULL;
	keys_free(as->txn_keys);
	as->txn_keys = NULL;
	as->in_txn = false;
	as->rewrite = false;
}

void authstore_free(struct authstore *as)
{
	if (!as)
		return;
	end_txn(as);
	keys_free(as->keys);
	pthread_rwlock_destroy(&as->lock);
	pthread_mutex_destroy(&as->load_lock);
	free(as);
}

struct store *authstore_store(struct authstore *as)
{
	return as->st;
}

int authstore_current_format(const struct authstore *as)
{
	return as->format;
}

bool authstore_is_legacy(const struct authstore *as)
{
	return as->format < AUTHSTORE_FORMAT;
}

int authstore_load_done(struct authstore *as, uint64_t *damaged)
{
	pthread_mutex_lock(&as->load_lock);
	as->loading = false;
	uint64_t bad = as->load_damaged;
	bool same = crypto_equal(as->loaded.xor, as->state.xor, TERM_LEN) &&
		    as->loaded.count == as->state.count;
	pthread_mutex_unlock(&as->load_lock);
	if (damaged)
		*damaged = bad;
	if (authstore_is_legacy(as) || same)
		return 0;
	log_debug("%s: %llu records read, %llu committed", store_path(as->st),
		  (unsigned long long)as->loaded.count, (unsigned long long)as->state.count);
	return -EBADMSG;
}

static void note_loaded(struct authstore *as, const uint8_t *term, bool damaged)
{
	pthread_mutex_lock(&as->load_lock);
	if (as->loading) {
		if (damaged)
			as->load_damaged++;
		else
			sum_add(&as->loaded, term);
	}
	pthread_mutex_unlock(&as->load_lock);
}

static bool own_txn(const struct authstore *as)
{
	return as->in_txn && pthread_equal(as->txn_owner, pthread_self());
}

static const struct record_keys *txn_keys(struct authstore *as)
{
	return as->rewrite && as->txn_keys ? as->txn_keys : as->keys;
}

/*
 * Checks one raw record; *body points into raw. Records this transaction
 * rewrote are checked under the new key, every other one under the
 * current key (or not at all on a legacy store).
 */
static int check_raw(struct authstore *as, const char *key, const uint8_t *raw, size_t raw_len,
		     const uint8_t **body, size_t *len, uint8_t term[TERM_LEN], bool *checked)
{
	*checked = false;
	if (!covered(key)) {
		*body = raw;
		*len = raw_len;
		return 0;
	}
	const struct record_keys *k = NULL;
	if (own_txn(as) && as->rewrite && hashmap_get(as->txn_written, key))
		k = txn_keys(as);
	pthread_rwlock_rdlock(&as->lock);
	if (!k && !authstore_is_legacy(as))
		k = as->keys;
	int rc = k ? check_envelope(k, as->store_id, key, raw, raw_len, term) : 0;
	pthread_rwlock_unlock(&as->lock);
	if (rc)
		return rc;
	if (!k) {
		*body = raw;
		*len = raw_len;
		return 0;
	}
	*checked = true;
	*body = raw + ENVELOPE_LEN;
	*len = raw_len - ENVELOPE_LEN;
	return 0;
}

/* check_raw for a read: a checked record's term goes into the load's sum,
 * a failed one is counted (its reader names it, in its own terms). */
static int read_raw(struct authstore *as, const char *key, const uint8_t *raw, size_t raw_len,
		    const uint8_t **body, size_t *len)
{
	uint8_t term[TERM_LEN];
	bool checked;
	int rc = check_raw(as, key, raw, raw_len, body, len, term, &checked);
	if (rc == -EBADMSG)
		note_loaded(as, NULL, true);
	else if (!rc && checked)
		note_loaded(as, term, false);
	return rc;
}

int authstore_get(struct authstore *as, const char *key, uint8_t **body, size_t *len)
{
	uint8_t *raw;
	const uint8_t *b;
	size_t raw_len, blen;
	int rc = store_get(as->st, key, &raw, &raw_len);
	if (rc)
		return rc;
	if ((rc = read_raw(as, key, raw, raw_len, &b, &blen))) {
		free(raw);
		return rc;
	}
	memmove(raw, b, blen);
	*body = raw;
	*len = blen;
	return 0;
}

struct visit {
	struct authstore *as;
	authstore_visit_fn fn;
	void *ctx;
};

static int visit_raw(const char *key, const uint8_t *raw, size_t raw_len, void *ctx)
{
	struct visit *v = ctx;
	const uint8_t *body;
	size_t len;
	int rc = read_raw(v->as, key, raw, raw_len, &body, &len);
	if (rc == -EBADMSG)
		return v->fn(key, NULL, 0, rc, v->ctx);
	return rc ? rc : v->fn(key, body, len, 0, v->ctx);
}

int authstore_foreach(struct authstore *as, const char *prefix, authstore_visit_fn fn, void *ctx)
{
	struct visit v = { as, fn, ctx };
	return store_foreach(as->st, prefix, visit_raw, &v);
}

static int begin(struct authstore *as, bool rewrite)
{
	int rc = store_begin(as->st); /* waits for any other writer's transaction */
	if (rc)
		return rc;
	as->txn_owner = pthread_self();
	as->rewrite = rewrite;
	as->in_txn = true;
	as->txn = rewrite ? (struct sum){ { 0 }, 0 } : as->state;
	return 0;
}

int authstore_begin(struct authstore *as)
{
	if (authstore_is_legacy(as)) {
		log_error("%s: store format %d: its records are not authenticated yet; a "
			  "writable mount with the key authenticates them first", store_path(as->st),
			  as->format);
		return -EROFS;
	}
	return begin(as, false);
}

int authstore_begin_rewrite(struct authstore *as, const uint8_t *new_master)
{
	struct record_keys *keys = NULL;
	struct hashmap *written = hashmap_new(64);
	int rc = written ? 0 : -ENOMEM;
	if (!rc && new_master)
		rc = keys_new(new_master, as->store_id, &keys);
	if (!rc)
		rc = begin(as, true);
	if (rc) {
		keys_free(keys);
		hashmap_free(written);
		return rc;
	}
	as->txn_keys = keys; /* NULL: the current keys */
	as->txn_written = written;
	return 0;
}

/* The term of the record now under key (checked), for taking it out of the sum. */
static int current_term(struct authstore *as, const char *key, uint8_t term[TERM_LEN])
{
	uint8_t *raw;
	size_t raw_len;
	int rc = store_get(as->st, key, &raw, &raw_len);
	if (rc)
		return rc;
	rc = check_envelope(as->keys, as->store_id, key, raw, raw_len, term);
	free(raw);
	if (rc == -EBADMSG)
		log_refused(key);
	return rc;
}

int authstore_put(struct authstore *as, const char *key, const void *body, size_t len)
{
	uint8_t term[TERM_LEN], old[TERM_LEN], *env;
	size_t env_len;
	int rc;
	if (!own_txn(as))
		return -EINVAL;
	if (!covered(key))
		return store_put(as->st, key, body, len);
	if (as->rewrite) {
		uint8_t *prev = hashmap_get(as->txn_written, key);
		if (prev)
			sum_remove(&as->txn, prev);
	} else {
		rc = current_term(as, key, old);
		if (rc == 0)
			sum_remove(&as->txn, old);
		else if (rc != -ENOENT)
			return rc;
	}
	if ((rc = make_envelope(txn_keys(as), as->store_id, key, body, len, &env, &env_len, term)))
		return rc;
	rc = store_put(as->st, key, env, env_len);
	free(env);
	if (rc)
		return rc;
	if (as->rewrite) {
		uint8_t *copy = malloc(TERM_LEN);
		void *replaced = NULL;
		if (!copy)
			return -ENOMEM;
		memcpy(copy, term, TERM_LEN);
		if (hashmap_put(as->txn_written, key, copy, &replaced)) {
			free(copy);
			return -ENOMEM;
		}
		free(replaced);
	}
	sum_add(&as->txn, term);
	return 0;
}

int authstore_put_raw(struct authstore *as, const char *key, const uint8_t *raw, size_t len)
{
	uint8_t term[TERM_LEN], old[TERM_LEN];
	if (!own_txn(as) || as->rewrite || authstore_is_legacy(as))
		return -EINVAL;
	if (!covered(key))
		return store_put(as->st, key, raw, len);
	int rc = check_envelope(as->keys, as->store_id, key, raw, len, term);
	if (rc == -EBADMSG)
		log_refused(key);
	if (rc)
		return rc;
	rc = current_term(as, key, old);
	if (rc == 0)
		sum_remove(&as->txn, old);
	else if (rc != -ENOENT)
		return rc;
	if ((rc = store_put(as->st, key, raw, len)))
		return rc;
	sum_add(&as->txn, term);
	return 0;
}

int authstore_delete(struct authstore *as, const char *key)
{
	uint8_t old[TERM_LEN];
	if (!own_txn(as))
		return -EINVAL;
	if (as->rewrite && covered(key)) {
		/* The sum is made from scratch: only a term this transaction
		 * added comes out. */
		uint8_t *added = hashmap_remove(as->txn_written, key);
		if (added)
			sum_remove(&as->txn, added);
		free(added);
	} else if (covered(key)) {
		int rc = current_term(as, key, old);
		if (rc)
			return rc;
		sum_remove(&as->txn, old);
	}
	return store_delete(as->st, key);
}

static int put_state(struct authstore *as)
{
	uint8_t body[STATE_BODY_LEN], term[TERM_LEN], *env;
	size_t env_len;
	memcpy(body, as->txn.xor, TERM_LEN);
	for (int i = 0; i < 8; i++)
		body[TERM_LEN + i] = (uint8_t)(as->txn.count >> (8 * i));
	int rc = make_envelope(txn_keys(as), as->store_id, AUTHSTORE_KEY_STATE, body, sizeof(body),
			       &env, &env_len, term);
	if (rc)
		return rc;
	rc = store_put(as->st, AUTHSTORE_KEY_STATE, env, env_len);
	free(env);
	return rc;
}

/* Every record the transaction did not write, tagged anew under the transaction's keys. */
static int rewrite_rest(struct authstore *as)
{
	struct strlist l = { 0 };
	int rc = store_keys(as->st, "", &l);
	for (size_t i = 0; !rc && i < l.count; i++) {
		const char *key = l.items[i];
		uint8_t *raw;
		const uint8_t *body;
		size_t raw_len, len;
		uint8_t term[TERM_LEN];
		bool checked;
		if (!covered(key) || hashmap_get(as->txn_written, key))
			continue;
		if ((rc = store_get(as->st, key, &raw, &raw_len)))
			break;
		rc = check_raw(as, key, raw, raw_len, &body, &len, term, &checked);
		if (rc == -EBADMSG)
			log_refused(key);
		if (!rc)
			rc = authstore_put(as, key, body, len);
		free(raw);
	}
	strlist_free(&l);
	return rc;
}

int authstore_commit(struct authstore *as)
{
	int rc;
	char format[8];
	if (!own_txn(as))
		return -EINVAL;
	if (as->rewrite) {
		snprintf(format, sizeof(format), "%d", AUTHSTORE_FORMAT);
		if ((rc = rewrite_rest(as)) ||
		    (rc = store_put(as->st, RECORD_KEY_FORMAT, format, strlen(format)))) {
			authstore_cancel(as);
			return rc;
		}
	}
	if ((rc = put_state(as))) {
		authstore_cancel(as);
		return rc;
	}
	rc = store_commit(as->st); /* cancels on failure */
	if (rc) {
		end_txn(as);
		return rc;
	}
	as->state = as->txn;
	if (as->rewrite) {
		pthread_rwlock_wrlock(&as->lock);
		if (as->txn_keys) {
			keys_free(as->keys);
			as->keys = as->txn_keys;
			as->txn_keys = NULL;
		}
		as->format = AUTHSTORE_FORMAT;
		pthread_rwlock_unlock(&as->lock);
	}
	end_txn(as);
	return 0;
}

void authstore_cancel(struct authstore *as)
{
	if (!own_txn(as))
		return;
	end_txn(as);
	store_cancel(as->st);
}
