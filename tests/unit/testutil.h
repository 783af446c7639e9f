/*
 * testutil: helpers shared by the cmocka unit tests.
 *
 * Header-only (every helper is static inline) so each test_*.c is one
 * translation unit linked with libsecretsfs.a. Helpers return 0 or a
 * negative errno and never call cmocka asserts themselves, so they can be
 * used in setup/teardown and in forked children alike.
 */
#ifndef SECRETSFS_TESTS_TESTUTIL_H
#define SECRETSFS_TESTS_TESTUTIL_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "util/log.h"
#include "secrets/authstore.h"
#include "secrets/keyring.h"
#include "secrets/record.h"
#include "secrets/secrets.h"
#include "store/store.h"

#define TU_SECMEM_BYTES (1u << 20)
#define TU_PATH_MAX 512

/*
 * Before a test binary's group runs: SECRETSFS_TEST_FILTER (a cmocka glob
 * such as "test_crash*") selects tests; the library's log goes to
 * SECRETSFS_TEST_LOG (a file path, or "stderr"), and is discarded by default
 * so that the cmocka report stays readable. Needs <cmocka.h> included first.
 */
#define tu_run_group(name, tests, group_setup, group_teardown)                          \
	(tu_prepare_run(), cmocka_set_test_filter(getenv("SECRETSFS_TEST_FILTER")),      \
	 cmocka_run_group_tests_name(name, tests, group_setup, group_teardown))

static inline void tu_prepare_run(void)
{
	/* cmocka reports on stdout and stderr: keep them in order in a pipe. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *log = getenv("SECRETSFS_TEST_LOG");
	char scratch[] = "/tmp/secretsfs-unit-log-XXXXXX";
	if (log && strcmp(log, "stderr") == 0)
		return;
	if (!log || !*log) {
		/* Discarded: a file of our own, unlinked once open (log_open
		 * takes regular files only, not /dev/null). */
		int fd = mkstemp(scratch);
		if (fd >= 0)
			close(fd);
		log = scratch;
	}
	if (log_open(LOG_TO_FILE, log, true) != 0)
		fprintf(stderr, "cannot open log %s; logging to stderr\n", log);
	if (log == scratch)
		unlink(scratch);
}

/* crypto_init exactly once per process. */
static inline int tu_crypto_init(void)
{
	static int done, result;
	if (!done) {
		result = crypto_init(TU_SECMEM_BYTES);
		done = 1;
	}
	return result;
}

/* A cmocka group setup for tests that only need secure memory. */
static inline int tu_group_crypto(void **state)
{
	(void)state;
	return tu_crypto_init();
}

/* A fresh private directory under /tmp into dir (TU_PATH_MAX bytes). */
static inline int tu_mkdtemp(char *dir)
{
	snprintf(dir, TU_PATH_MAX, "/tmp/secretsfs-unit-XXXXXX");
	return mkdtemp(dir) ? 0 : -errno;
}

static inline int tu_rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) ? -errno : 0;
}

/* rm -rf dir; refuses anything not made by tu_mkdtemp. */
static inline int tu_rmrf(const char *dir)
{
	if (!dir || strncmp(dir, "/tmp/secretsfs-unit-", 20) != 0)
		return -EINVAL;
	return nftw(dir, tu_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* dir/name into buf (TU_PATH_MAX bytes); returns buf. */
static inline char *tu_path(char *buf, const char *dir, const char *name)
{
	snprintf(buf, TU_PATH_MAX, "%.256s/%.200s", dir, name);
	return buf;
}

/* The whole file, malloc'd (never NULL on success, even when empty). */
static inline int tu_read_file(const char *path, uint8_t **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		if (n == cap) {
			uint8_t *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = bigger;
			cap *= 2;
		}
		ssize_t got = read(fd, buf + n, cap - n);
		if (got < 0) {
			int rc = -errno;
			free(buf);
			close(fd);
			return rc;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	*data = buf;
	*len = n;
	return 0;
}

static inline int tu_write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	const uint8_t *p = data;
	while (len) {
		ssize_t put = write(fd, p, len);
		if (put < 0) {
			int rc = -errno;
			close(fd);
			return rc;
		}
		p += put;
		len -= (size_t)put;
	}
	return close(fd) ? -errno : 0;
}

/* 1 when both files exist with identical bytes, 0 when they differ, -errno. */
static inline int tu_file_equals(const char *path, const uint8_t *data, size_t len)
{
	uint8_t *now = NULL;
	size_t now_len = 0;
	int rc = tu_read_file(path, &now, &now_len);
	if (rc)
		return rc;
	rc = now_len == len && memcmp(now, data, len) == 0;
	free(now);
	return rc;
}

static inline bool tu_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* A new key file at path (keyring_write_key_file) and its 32 bytes. */
static inline int tu_make_key(const char *path, uint8_t key[CRYPTO_KEY_LEN])
{
	int rc = keyring_write_key_file(path);
	if (rc)
		return rc;
	return keyring_read_key_file(path, key);
}

static inline struct unlock_secret tu_key_unlock(const uint8_t key[CRYPTO_KEY_LEN])
{
	struct unlock_secret u = { UNLOCK_KEY_FILE, key, CRYPTO_KEY_LEN };
	return u;
}

/* A new store at path, unlocked by key: store_open(CREATE) + keyring_create. */
static inline int tu_create_store(const char *path, const uint8_t key[CRYPTO_KEY_LEN])
{
	struct store *st;
	struct unlock_secret u = tu_key_unlock(key);
	int rc = store_open(path, STORE_CREATE, &st);
	if (rc)
		return rc;
	rc = keyring_create(st, &u, "us-east-1", "123456789012");
	store_close(st);
	return rc;
}

static inline struct sm_options tu_sm_options(int recovery_window_days)
{
	struct sm_options o = { 0 };
	o.recovery_window_days = recovery_window_days;
	o.readonly = false;
	o.root_uid = (uint32_t)getuid();
	o.root_gid = (uint32_t)getgid();
	o.root_mode = 0755;
	return o;
}

/* store_open + keyring_unlock + sm_open of an existing store, with hook
 * (NULL: none) as the store's commit hook from the start: a host whose
 * commits a test replicates or refuses. */
static inline int tu_open_sm_hooked(const char *path, const uint8_t key[CRYPTO_KEY_LEN],
				    const struct sm_options *opt, store_commit_hook_fn hook,
				    void *hook_ctx, struct sm **out)
{
	struct store *st;
	struct keyring *kr;
	struct unlock_secret u = tu_key_unlock(key);
	*out = NULL;
	int rc = store_open(path, 0, &st);
	if (rc)
		return rc;
	if (hook)
		store_set_commit_hook(st, hook, hook_ctx);
	rc = keyring_unlock(st, &u, &kr);
	if (rc) {
		store_close(st);
		return rc;
	}
	return sm_open(st, kr, opt, out);
}

static inline int tu_open_sm(const char *path, const uint8_t key[CRYPTO_KEY_LEN],
			     const struct sm_options *opt, struct sm **out)
{
	return tu_open_sm_hooked(path, key, opt, NULL, NULL, out);
}

/* A fresh temporary folder holding a new store under a random key, opened
 * as a domain: the setup most domain tests share. */
static inline int tu_new_sm(char dir[TU_PATH_MAX], char path[TU_PATH_MAX],
			    uint8_t key[CRYPTO_KEY_LEN], int recovery_window_days,
			    struct sm **out)
{
	struct sm_options o = tu_sm_options(recovery_window_days);
	*out = NULL;
	if (tu_crypto_init() || tu_mkdtemp(dir))
		return -1;
	tu_path(path, dir, "store.tdb");
	crypto_random_key(key, CRYPTO_KEY_LEN, false);
	if (tu_create_store(path, key) || tu_open_sm(path, key, &o, out))
		return -1;
	return 0;
}

/* A fresh folder dir holding a new store at a_path under a new key (its key
 * file beside it) and b_path, a byte copy of it: one store as two hosts
 * hold it before either writes. */
static inline int tu_new_store_pair(char dir[TU_PATH_MAX], char a_path[TU_PATH_MAX],
				    char b_path[TU_PATH_MAX], uint8_t key[CRYPTO_KEY_LEN])
{
	char keyfile[TU_PATH_MAX];
	uint8_t *copy = NULL;
	size_t len;
	if (tu_crypto_init() || tu_mkdtemp(dir))
		return -1;
	tu_path(a_path, dir, "a.tdb");
	tu_path(b_path, dir, "b.tdb");
	tu_path(keyfile, dir, "master.key");
	int rc = tu_make_key(keyfile, key);
	if (!rc)
		rc = tu_create_store(a_path, key);
	if (!rc)
		rc = tu_read_file(a_path, &copy, &len);
	if (!rc)
		rc = tu_write_file(b_path, copy, len);
	free(copy);
	return rc;
}

/* ---- commits as a store's commit hook sees them ---- */

#define TU_CAPTURE_OPS 64
#define TU_CAPTURE_COMMITS 16

/* One commit: owned copies of its records' keys and new bytes (val NULL:
 * deleted); old is not kept. */
struct tu_commit {
	struct store_op ops[TU_CAPTURE_OPS];
	size_t count;
};

/* One host's commits in order, as a replicator would send them: every
 * record but the state record (each replica writes its own). */
struct tu_capture {
	struct tu_commit commits[TU_CAPTURE_COMMITS];
	size_t n;
};

static inline void tu_commit_free(struct tu_commit *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free((void *)c->ops[i].key);
		free((void *)c->ops[i].val);
	}
	c->count = 0;
}

/* Appends an owned copy of op (key, val, len) to c; -ENOBUFS when full. */
static inline int tu_commit_add(struct tu_commit *c, const struct store_op *op)
{
	if (c->count == TU_CAPTURE_OPS)
		return -ENOBUFS;
	uint8_t *val = op->val ? malloc(op->len ? op->len : 1) : NULL;
	if (val)
		memcpy(val, op->val, op->len);
	struct store_op *o = &c->ops[c->count++];
	*o = (struct store_op){ .key = strdup(op->key), .val = val, .len = op->len };
	return !o->key || (op->val && !val) ? -ENOMEM : 0;
}

/* An owned copy of src appended to dst. */
static inline int tu_commit_copy(struct tu_commit *dst, const struct tu_commit *src)
{
	int rc = 0;
	for (size_t i = 0; i < src->count && !rc; i++)
		rc = tu_commit_add(dst, &src->ops[i]);
	return rc;
}

/* Every commit freed: the capture is empty again. */
static inline void tu_capture_clear(struct tu_capture *cap)
{
	for (size_t i = 0; i < cap->n; i++)
		tu_commit_free(&cap->commits[i]);
	cap->n = 0;
}

/* A store commit hook (ctx: a struct tu_capture) that takes each commit
 * down and lets it through; -ENOBUFS when full, -ENOMEM. */
static inline int tu_capture_hook(void *ctx, const struct store_op *ops, size_t count)
{
	struct tu_capture *cap = ctx;
	if (cap->n == TU_CAPTURE_COMMITS)
		return -ENOBUFS;
	struct tu_commit *c = &cap->commits[cap->n++];
	int rc = 0;
	for (size_t i = 0; i < count && !rc; i++)
		if (strcmp(ops[i].key, "sfs/state") != 0)
			rc = tu_commit_add(c, &ops[i]);
	return rc;
}

/* One record written in its own transaction. */
static inline int tu_store_put_tx(struct store *st, const char *key, const void *val, size_t len)
{
	int rc = store_begin(st);
	if (rc)
		return rc;
	rc = store_put(st, key, val, len);
	if (rc) {
		store_cancel(st);
		return rc;
	}
	return store_commit(st);
}

static inline int tu_store_delete_tx(struct store *st, const char *key)
{
	int rc = store_begin(st);
	if (rc)
		return rc;
	rc = store_delete(st, key);
	if (rc) {
		store_cancel(st);
		return rc;
	}
	return store_commit(st);
}

static inline int tu_count_visit(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	(void)key;
	(void)val;
	(void)len;
	(*(size_t *)ctx)++;
	return 0;
}

/* Records of the store file at path whose key starts with prefix (store not open). */
static inline long tu_count_records(const char *path, const char *prefix)
{
	struct store *st;
	size_t n = 0;
	int rc = store_open(path, STORE_READONLY, &st);
	if (rc)
		return rc;
	rc = store_foreach(st, prefix, tu_count_visit, &n);
	store_close(st);
	return rc ? rc : (long)n;
}

/* One record of the store file at path (store not open); *val malloc'd. */
static inline int tu_get_record(const char *path, const char *key, uint8_t **val, size_t *len)
{
	struct store *st;
	int rc = store_open(path, STORE_READONLY, &st);
	if (rc)
		return rc;
	rc = store_get(st, key, val, len);
	store_close(st);
	return rc;
}

/* Replaces (val non-NULL) or deletes (val NULL) one record of the store file at path. */
static inline int tu_set_record(const char *path, const char *key, const void *val, size_t len)
{
	struct store *st;
	int rc = store_open(path, 0, &st);
	if (rc)
		return rc;
	rc = val ? tu_store_put_tx(st, key, val, len) : tu_store_delete_tx(st, key);
	store_close(st);
	return rc;
}

/*
 * What a writer holding the key can do and an attacker cannot: one record
 * of the (unmounted) store at path replaced (val non-NULL) or deleted,
 * tagged under the store's master key and counted in its state record.
 */
static inline int tu_set_record_keyed(const char *path, const uint8_t key[CRYPTO_KEY_LEN],
				      const char *record, const void *val, size_t len)
{
	struct store *st;
	struct keyring *kr;
	struct unlock_secret u = tu_key_unlock(key);
	int rc = store_open(path, 0, &st);
	if (rc)
		return rc;
	if ((rc = keyring_unlock(st, &u, &kr))) {
		store_close(st);
		return rc;
	}
	struct authstore *as = keyring_authstore(kr);
	if (!(rc = authstore_begin(as))) {
		rc = val ? authstore_put(as, record, val, len) : authstore_delete(as, record);
		if (rc)
			authstore_cancel(as);
		else
			rc = authstore_commit(as);
	}
	keyring_free(kr);
	store_close(st);
	return rc;
}

/* One record's body, checked under the key (the store not open); *val malloc'd. */
static inline int tu_get_record_keyed(const char *path, const uint8_t key[CRYPTO_KEY_LEN],
				      const char *record, uint8_t **val, size_t *len)
{
	struct store *st;
	struct keyring *kr;
	struct unlock_secret u = tu_key_unlock(key);
	int rc = store_open(path, STORE_READONLY, &st);
	if (rc)
		return rc;
	if (!(rc = keyring_unlock(st, &u, &kr))) {
		rc = authstore_get(keyring_authstore(kr), record, val, len);
		keyring_free(kr);
	}
	store_close(st);
	return rc;
}

/*
 * The current value of a live secret, decrypted: 0 with *len and *out (malloc'd
 * copy of the plaintext) or the error of the snapshot or the decrypt.
 */
static inline int tu_sm_read(struct sm *sm, const char *name, const char *version_id,
			     uint8_t **out, size_t *len)
{
	struct sm_snapshot *snap;
	struct secbuf buf = { 0 };
	int rc = version_id ? sm_snapshot_version(sm, name, version_id, &snap)
			    : sm_snapshot_current(sm, name, &snap);
	if (rc)
		return rc;
	rc = sm_snapshot_decrypt(sm, snap, &buf);
	if (!rc) {
		*out = malloc(buf.len ? buf.len : 1);
		if (!*out)
			rc = -ENOMEM;
		else if (buf.len)
			memcpy(*out, buf.data, buf.len);
		*len = buf.len;
	}
	secbuf_free(&buf);
	sm_snapshot_free(snap);
	return rc;
}

/* 1 when the secret's value (current, or version_id) equals value, 0 when not, -errno. */
static inline int tu_sm_value_is(struct sm *sm, const char *name, const char *version_id,
				 const void *value, size_t len)
{
	uint8_t *got;
	size_t got_len;
	int rc = tu_sm_read(sm, name, version_id, &got, &got_len);
	if (rc)
		return rc;
	rc = got_len == len && memcmp(got, value, len) == 0;
	free(got);
	return rc;
}

static inline int tu_sm_put_str(struct sm *sm, const char *name, const char *value,
				char version_id[SM_VERSION_ID_MAX + 1])
{
	char ignored[SM_VERSION_ID_MAX + 1];
	return sm_put_value(sm, name, (const uint8_t *)value, strlen(value),
			    version_id ? version_id : ignored);
}

/* The version id carrying label on a secret (any state), into buf ("" when none). */
static inline int tu_sm_label(struct sm *sm, const char *name, const char *label,
			      char buf[SM_VERSION_ID_MAX + 1])
{
	struct sm_secret *s;
	int rc = sm_secret_copy(sm, name, &s);
	buf[0] = '\0';
	if (rc)
		return rc;
	const char *id = secret_label_version(s, label);
	if (id)
		snprintf(buf, SM_VERSION_ID_MAX + 1, "%s", id);
	secret_free(s);
	return 0;
}

/* Number of stored versions of a secret (any state), or -errno. */
static inline long tu_sm_nversions(struct sm *sm, const char *name)
{
	struct sm_secret *s;
	int rc = sm_secret_copy(sm, name, &s);
	if (rc)
		return rc;
	long n = (long)s->nversions;
	secret_free(s);
	return n;
}

/* 1 when listing holds name with kind. */
static inline int tu_listing_has(const struct sm_listing *l, const char *name, enum sm_kind kind)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->entries[i].name, name) == 0 && l->entries[i].kind == kind)
			return 1;
	return 0;
}

/* Hex text to bytes; returns the number of bytes or -1. */
static inline int tu_unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = strlen(hex);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -1;
		out[i] = (uint8_t)b;
	}
	return (int)(n / 2);
}

#endif
