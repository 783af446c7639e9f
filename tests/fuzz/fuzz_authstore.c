/*
 * fuzz_authstore: the record envelope (include/secrets/authstore.h) and the
 * records a store's unlock reads before and after it can check them: the
 * format record, the header (parsed before any key exists), the state
 * record and the named keys (keyring_unlock). Secret and folder bodies are
 * fuzz_record's.
 *
 * One store per process, made at start in a temporary folder with a key
 * file (a fresh master key, store id and aws/secretsmanager key). Each
 * input is a list of changes to it, made in one transaction that is
 * cancelled at the end, so the file never changes after start:
 *
 *     change: OP KEY NUL [LEN(2, little-endian) BODY]   (BODY cut at the end)
 *     OP % 3: 0 the raw bytes, as anyone who can write the file could put
 *             them; 1 the body through authstore_put, as the key's holder
 *             would (a tag under the master key); 2 the record deleted.
 *
 * Properties, besides "no crash, leak or undefined behaviour":
 *  - a record the key's holder put reads back (authstore_get and
 *    authstore_peek) as its body; raw bytes never pass a tag: -EBADMSG,
 *    and peek strips exactly an envelope's header (or says -EBADMSG);
 *    records outside the tags (ver/, sfs/format, sfs/state) read as written;
 *  - authstore_put over raw bytes is refused (-EBADMSG), the record kept;
 *  - keyring_unlock gives 0 or a documented error, and 0 exactly when the
 *    header and state record are the store's own and the format record
 *    says 3 (never an older, untagged format: the master key was sealed
 *    for this one); then every named key record written without the
 *    store's key material counts as damaged, each once, and the store's
 *    own key is not.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "secrets/authstore.h"
#include "secrets/keyring.h"
#include "secrets/record.h"
#include "store/store.h"
#include "util/log.h"

#define MAX_CHANGES 16
#define KEY_MAX 200
#define ENVELOPE_LEN (4 + 32) /* "SFA3" and the tag (authstore.c) */

enum state { RAW, TAGGED, DELETED };

struct change {
	char key[KEY_MAX + 1];
	enum state state; /* of the record after every change to it */
	const uint8_t *body;
	size_t len;
};

static struct {
	char dir[64], path[96];
	uint8_t key_file[CRYPTO_KEY_LEN];
	struct unlock_secret unlock;
	struct store *st;
	struct keyring *kr;
	struct authstore *as;
} fx;

static void cleanup(void)
{
	keyring_free(fx.kr);
	store_close(fx.st);
	unlink(fx.path);
	rmdir(fx.dir);
}

static void setup(void)
{
	char id[SM_KEY_ID_LEN + 1];
	fuzz_crypto_init();
	log_set_threshold(LOG_CRIT); /* the refusals are the point: not logged */
	const char *tmp = getenv("TMPDIR");
	snprintf(fx.dir, sizeof(fx.dir), "%s/secretsfs-fuzz.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	FUZZ_CHECK(mkdtemp(fx.dir) != NULL);
	snprintf(fx.path, sizeof(fx.path), "%s/store.tdb", fx.dir);
	atexit(cleanup);
	memset(fx.key_file, 0x5a, sizeof(fx.key_file));
	fx.unlock = (struct unlock_secret){ UNLOCK_KEY_FILE, fx.key_file, sizeof(fx.key_file) };
	FUZZ_CHECK(store_open(fx.path, STORE_CREATE, &fx.st) == 0);
	FUZZ_CHECK(keyring_create(fx.st, &fx.unlock, "us-east-1", "000000000000") == 0);
	FUZZ_CHECK(keyring_unlock(fx.st, &fx.unlock, &fx.kr) == 0);
	fx.as = keyring_authstore(fx.kr);
	/* Ends the load's count (only the keyring's records were read). */
	authstore_load_done(fx.as, NULL);
	FUZZ_CHECK(keyring_default_key(fx.kr, id) == 0);
}

static bool has_prefix(const char *key, const char *prefix)
{
	return strncmp(key, prefix, strlen(prefix)) == 0;
}

/* Records with a tag (authstore.c's covered()). */
static bool covered(const char *key)
{
	return !has_prefix(key, RECORD_PREFIX_VERSION) && strcmp(key, RECORD_KEY_FORMAT) != 0 &&
	       strcmp(key, AUTHSTORE_KEY_STATE) != 0;
}

static struct change *find(struct change *c, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].key, key) == 0)
			return &c[i];
	return NULL;
}

static bool same(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

/* Applies the input's changes; the final state of each record it touched. */
static size_t apply(const uint8_t *data, size_t size, struct change *c)
{
	size_t n = 0;
	for (size_t at = 0; at < size;) {
		uint8_t op = data[at++] % 3;
		const uint8_t *nul = memchr(data + at, 0, size - at);
		size_t klen = nul ? (size_t)(nul - (data + at)) : size - at;
		char key[KEY_MAX + 1];
		const uint8_t *body = NULL;
		size_t len = 0;
		bool usable = klen > 0 && klen <= KEY_MAX;
		if (usable) {
			memcpy(key, data + at, klen);
			key[klen] = '\0';
		}
		at += klen + (nul ? 1 : 0);
		if (op != DELETED) {
			if (at + 2 <= size) {
				len = (size_t)data[at] | (size_t)data[at + 1] << 8;
				at += 2;
			}
			len = len < size - at ? len : size - at;
			body = data + at;
			at += len;
		}
		struct change *prev = usable ? find(c, n, key) : NULL;
		if (!usable || (!prev && n == MAX_CHANGES))
			continue;
		int rc;
		enum state was = prev ? prev->state : TAGGED; /* the store's own: tagged */
		if (op == RAW) {
			rc = store_put(fx.st, key, body, len);
		} else if (op == TAGGED) {
			rc = authstore_put(fx.as, key, body, len);
			if (covered(key) && was == RAW) { /* a tag it cannot take out of the sum */
				FUZZ_CHECK(rc == -EBADMSG);
				continue;
			}
		} else {
			rc = store_delete(fx.st, key);
			FUZZ_CHECK(rc == 0 || rc == -ENOENT);
			rc = 0;
		}
		FUZZ_CHECK(rc == 0);
		if (!prev) {
			prev = &c[n++];
			memcpy(prev->key, key, klen + 1);
		}
		prev->state = (enum state)op;
		prev->body = body;
		prev->len = len;
	}
	return n;
}

/* How each touched record reads: through the tag, and peeked before one. */
static void check_reads(const struct change *c)
{
	uint8_t *body = NULL, *peeked = NULL;
	size_t len = 0, plen = 0;
	int got = authstore_get(fx.as, c->key, &body, &len);
	int peek = authstore_peek(fx.st, AUTHSTORE_FORMAT, c->key, &peeked, &plen);

	if (c->state == DELETED) {
		FUZZ_CHECK(got == -ENOENT && peek == -ENOENT);
	} else if (!covered(c->key) || c->state == TAGGED) {
		FUZZ_CHECK(got == 0 && same(body, len, c->body, c->len));
		FUZZ_CHECK(peek == 0 && same(peeked, plen, c->body, c->len));
	} else {
		FUZZ_CHECK(got == -EBADMSG);
		if (c->len < ENVELOPE_LEN || memcmp(c->body, "SFA3", 4) != 0)
			FUZZ_CHECK(peek == -EBADMSG);
		else
			FUZZ_CHECK(peek == 0 && same(peeked, plen, c->body + ENVELOPE_LEN,
						     c->len - ENVELOPE_LEN));
	}
	if (got == 0)
		free(body);
	if (peek == 0)
		free(peeked);
}

static void check_unlock(struct change *c, size_t n)
{
	struct keyring *kr;
	size_t keys = 0;
	int rc = keyring_unlock(fx.st, &fx.unlock, &kr);
	FUZZ_CHECK(rc == 0 || rc == -EIO || rc == -EACCES || rc == -ENOKEY || rc == -EBADMSG ||
		   rc == -ENOMEM);
	bool own = !find(c, n, RECORD_KEY_HEADER) &&
		   !find(c, n, AUTHSTORE_KEY_STATE) &&
		   authstore_format(fx.st) == AUTHSTORE_FORMAT;
	if (rc != -ENOMEM)
		FUZZ_CHECK((rc == 0) == own);
	if (rc)
		return;
	FUZZ_CHECK(authstore_current_format(keyring_authstore(kr)) == AUTHSTORE_FORMAT);
	FUZZ_CHECK(!authstore_is_legacy(keyring_authstore(kr)));
	for (size_t i = 0; i < n; i++)
		keys += has_prefix(c[i].key, RECORD_PREFIX_KEY) && c[i].state != DELETED;
	FUZZ_CHECK(keyring_damaged(kr) == keys);
	keyring_free(kr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct change c[MAX_CHANGES];
	if (!fx.st)
		setup();
	FUZZ_CHECK(authstore_begin(fx.as) == 0);
	size_t n = apply(data, size, c);
	for (size_t i = 0; i < n; i++)
		check_reads(&c[i]);
	check_unlock(c, n);
	authstore_cancel(fx.as);
	return 0;
}
