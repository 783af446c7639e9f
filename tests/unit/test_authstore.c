/* Unit tests of secrets/authstore: record tags, the state record's sum, rewrites. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/authstore.h"

#define STORE_ID "0123456789abcdef0123456789abcdef"
#define OTHER_ID "fedcba9876543210fedcba9876543210"

struct fx {
	char dir[TU_PATH_MAX];
	char path[TU_PATH_MAX];
	uint8_t master[CRYPTO_KEY_LEN];
	struct store *st;
	struct authstore *as;
};

static int group_setup(void **state)
{
	(void)state;
	return tu_crypto_init();
}

/* A format-3 store holding sfs/header, secret/a, secret/b and ver/x/1. */
static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || tu_mkdtemp(f->dir))
		return -1;
	tu_path(f->path, f->dir, "store.tdb");
	crypto_random_key(f->master, sizeof(f->master), false);
	if (store_open(f->path, STORE_CREATE, &f->st) ||
	    authstore_open(f->st, STORE_ID, f->master, 0, &f->as) ||
	    authstore_begin_rewrite(f->as, NULL) ||
	    authstore_put(f->as, RECORD_KEY_HEADER, "{\"h\":1}", 7) ||
	    authstore_put(f->as, "secret/a", "alpha", 5) ||
	    authstore_put(f->as, "secret/b", "beta", 4) ||
	    authstore_put(f->as, "ver/x/1", "sealed", 6) || authstore_commit(f->as))
		return -1;
	authstore_free(f->as);
	f->as = NULL;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	authstore_free(f->as);
	store_close(f->st);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fx *f, const char *store_id, const uint8_t *master, int want)
{
	authstore_free(f->as);
	f->as = NULL;
	assert_int_equal(authstore_open(f->st, store_id, master, authstore_format(f->st), &f->as),
			 want);
}

/* Reads every covered record once, as a load does; the load's verdict. */
static int load_all(struct fx *f)
{
	static const char *const keys[] = { RECORD_KEY_HEADER, "secret/a", "secret/b",
					    "secret/c" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint8_t *body;
		size_t len;
		if (authstore_get(f->as, keys[i], &body, &len) == 0)
			free(body);
	}
	return authstore_load_done(f->as, NULL);
}

static void raw_put(struct fx *f, const char *key, const void *val, size_t len)
{
	assert_int_equal(tu_store_put_tx(f->st, key, val, len), 0);
}

static void expect_body(struct fx *f, const char *key, const char *want)
{
	uint8_t *body;
	size_t len;
	assert_int_equal(authstore_get(f->as, key, &body, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(body, want, len);
	free(body);
}

static void test_roundtrip_and_format(void **state)
{
	struct fx *f = *state;
	assert_int_equal(authstore_format(f->st), AUTHSTORE_FORMAT);
	reopen(f, STORE_ID, f->master, 0);
	assert_false(authstore_is_legacy(f->as));
	expect_body(f, "secret/a", "alpha");
	expect_body(f, "ver/x/1", "sealed"); /* versions pass through */
	assert_int_equal(authstore_load_done(f->as, NULL), -EBADMSG); /* not all read */
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(load_all(f), 0);
	/* The record on disk is the envelope; the version record is bare. */
	uint8_t *raw;
	size_t len;
	assert_int_equal(store_get(f->st, "secret/a", &raw, &len), 0);
	assert_int_equal(len, 4 + 32 + 5);
	assert_memory_equal(raw, "SFA3", 4);
	free(raw);
	assert_int_equal(store_get(f->st, "ver/x/1", &raw, &len), 0);
	assert_int_equal(len, 6);
	free(raw);
}

static void test_every_edit_is_refused(void **state)
{
	struct fx *f = *state;
	uint8_t *orig, *copy, *b;
	size_t len, blen;
	assert_int_equal(store_get(f->st, "secret/a", &orig, &len), 0);
	copy = malloc(len + 1);
	assert_non_null(copy);
	reopen(f, STORE_ID, f->master, 0);
	/* Every byte flipped, the magic and tag included. */
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, orig, len);
		copy[i] ^= 0x20;
		raw_put(f, "secret/a", copy, len);
		assert_int_equal(authstore_get(f->as, "secret/a", &b, &blen), -EBADMSG);
	}
	/* Cut at every length, and one byte appended. */
	for (size_t cut = 0; cut < len; cut++) {
		raw_put(f, "secret/a", orig, cut);
		assert_int_equal(authstore_get(f->as, "secret/a", &b, &blen), -EBADMSG);
	}
	memcpy(copy, orig, len);
	copy[len] = 'x';
	raw_put(f, "secret/a", copy, len + 1);
	assert_int_equal(authstore_get(f->as, "secret/a", &b, &blen), -EBADMSG);
	/* Moved: a's record under b's key. */
	raw_put(f, "secret/b", orig, len);
	assert_int_equal(authstore_get(f->as, "secret/b", &b, &blen), -EBADMSG);
	/* Put back, it reads. */
	raw_put(f, "secret/a", orig, len);
	expect_body(f, "secret/a", "alpha");
	free(copy);
	free(orig);
}

static void test_other_store_or_master(void **state)
{
	struct fx *f = *state;
	uint8_t other[CRYPTO_KEY_LEN], *b;
	size_t len;
	/* Same master, another store id: every tag differs. */
	reopen(f, OTHER_ID, f->master, -EBADMSG); /* its state record fails first */
	crypto_random_key(other, sizeof(other), false);
	reopen(f, STORE_ID, other, -EBADMSG);
	/* A legacy reading of the same file takes bodies as they are: the
	 * reason a format-3 header must never unlock as an older format. */
	assert_int_equal(authstore_open(f->st, STORE_ID, f->master, 2, &f->as), 0);
	assert_int_equal(authstore_get(f->as, "secret/a", &b, &len), 0);
	assert_int_equal(len, 4 + 32 + 5);
	free(b);
}

static void test_sum_catches_removal_and_replay(void **state)
{
	struct fx *f = *state;
	uint8_t *old_a;
	size_t old_len;
	assert_int_equal(store_get(f->st, "secret/a", &old_a, &old_len), 0);
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(authstore_begin(f->as), 0);
	assert_int_equal(authstore_put(f->as, "secret/a", "alpha2", 6), 0);
	assert_int_equal(authstore_put(f->as, "secret/c", "gamma", 5), 0);
	assert_int_equal(authstore_commit(f->as), 0);
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(load_all(f), 0);

	/* An older copy of a put back: it authenticates, the sum does not. */
	uint8_t *new_a;
	size_t new_len;
	assert_int_equal(store_get(f->st, "secret/a", &new_a, &new_len), 0);
	raw_put(f, "secret/a", old_a, old_len);
	reopen(f, STORE_ID, f->master, 0);
	expect_body(f, "secret/a", "alpha");
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(load_all(f), -EBADMSG);
	raw_put(f, "secret/a", new_a, new_len);

	/* A record removed. */
	uint8_t *c;
	size_t c_len;
	assert_int_equal(store_get(f->st, "secret/c", &c, &c_len), 0);
	assert_int_equal(tu_store_delete_tx(f->st, "secret/c"), 0);
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(load_all(f), -EBADMSG);
	raw_put(f, "secret/c", c, c_len);
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(load_all(f), 0);

	/* The state record itself rolled back or removed. */
	assert_int_equal(tu_store_delete_tx(f->st, AUTHSTORE_KEY_STATE), 0);
	reopen(f, STORE_ID, f->master, -EBADMSG);
	free(c);
	free(new_a);
	free(old_a);
}

static void test_delete_and_put_over_damage(void **state)
{
	struct fx *f = *state;
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(authstore_begin(f->as), 0);
	assert_int_equal(authstore_delete(f->as, "secret/b"), 0);
	assert_int_equal(authstore_delete(f->as, "secret/zz"), -ENOENT);
	assert_int_equal(authstore_commit(f->as), 0);
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(load_all(f), 0);

	/* A damaged record cannot be overwritten or deleted: its term is unknown. */
	raw_put(f, "secret/a", "SFA3 forged", 11);
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(authstore_begin(f->as), 0);
	assert_int_equal(authstore_put(f->as, "secret/a", "mine", 4), -EBADMSG);
	assert_int_equal(authstore_delete(f->as, "secret/a"), -EBADMSG);
	authstore_cancel(f->as);
	uint64_t damaged = 0;
	load_all(f);
	assert_int_equal(authstore_load_done(f->as, &damaged), -EBADMSG);
	assert_int_equal(damaged, 1);
}

static void test_rewrite_under_new_master(void **state)
{
	struct fx *f = *state;
	uint8_t next[CRYPTO_KEY_LEN];
	crypto_random_key(next, sizeof(next), false);
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(authstore_begin_rewrite(f->as, next), 0);
	assert_int_equal(authstore_put(f->as, "secret/b", "beta2", 5), 0);
	/* Read back inside the transaction, under the new key. */
	expect_body(f, "secret/b", "beta2");
	/* A record put and deleted in the transaction leaves no term behind. */
	assert_int_equal(authstore_put(f->as, "secret/c", "gamma", 5), 0);
	assert_int_equal(authstore_delete(f->as, "secret/c"), 0);
	assert_int_equal(authstore_commit(f->as), 0);
	expect_body(f, "secret/a", "alpha"); /* the handle moved to the new key */
	reopen(f, STORE_ID, f->master, -EBADMSG);
	reopen(f, STORE_ID, next, 0);
	assert_int_equal(load_all(f), 0);
	expect_body(f, "secret/b", "beta2");

	/* A cancelled rewrite leaves the old key in force. */
	uint8_t third[CRYPTO_KEY_LEN];
	crypto_random_key(third, sizeof(third), false);
	assert_int_equal(authstore_begin_rewrite(f->as, third), 0);
	authstore_cancel(f->as);
	reopen(f, STORE_ID, next, 0);
	assert_int_equal(load_all(f), 0);
}

static void test_legacy_store(void **state)
{
	struct fx *f = *state;
	uint8_t *b;
	size_t len;
	/* A format-2 store: bare records, no state. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_put(f->st, RECORD_KEY_FORMAT, "2", 1), 0);
	assert_int_equal(store_put(f->st, "secret/a", "plain", 5), 0);
	assert_int_equal(store_put(f->st, RECORD_KEY_HEADER, "{}", 2), 0);
	assert_int_equal(store_put(f->st, "secret/b", "b", 1), 0);
	assert_int_equal(store_delete(f->st, AUTHSTORE_KEY_STATE), 0);
	assert_int_equal(store_commit(f->st), 0);
	reopen(f, STORE_ID, f->master, 0);
	assert_true(authstore_is_legacy(f->as));
	assert_int_equal(authstore_get(f->as, "secret/a", &b, &len), 0);
	free(b);
	assert_int_equal(authstore_load_done(f->as, NULL), 0);
	assert_int_equal(authstore_begin(f->as), -EROFS);
	/* Authenticated: every record tagged, the state written, format 3. */
	assert_int_equal(authstore_begin_rewrite(f->as, NULL), 0);
	assert_int_equal(authstore_put(f->as, RECORD_KEY_HEADER, "{\"h\":3}", 7), 0);
	assert_int_equal(authstore_commit(f->as), 0);
	assert_false(authstore_is_legacy(f->as));
	assert_int_equal(authstore_format(f->st), 3);
	reopen(f, STORE_ID, f->master, 0);
	expect_body(f, "secret/a", "plain");
	reopen(f, STORE_ID, f->master, 0);
	assert_int_equal(load_all(f), 0);
	expect_body(f, RECORD_KEY_HEADER, "{\"h\":3}");
	expect_body(f, "ver/x/1", "sealed");
}

static void test_peek(void **state)
{
	struct fx *f = *state;
	uint8_t *b;
	size_t len;
	assert_int_equal(authstore_peek(f->st, 3, RECORD_KEY_HEADER, &b, &len), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(b, "{\"h\":1}", 7);
	free(b);
	raw_put(f, RECORD_KEY_HEADER, "{}", 2);
	assert_int_equal(authstore_peek(f->st, 3, RECORD_KEY_HEADER, &b, &len), -EBADMSG);
	assert_int_equal(authstore_peek(f->st, 2, RECORD_KEY_HEADER, &b, &len), 0);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_and_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_edit_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_store_or_master, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sum_catches_removal_and_replay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_put_over_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrite_under_new_master, setup, teardown),
		cmocka_unit_test_setup_teardown(test_legacy_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peek, setup, teardown),
	};
	return tu_run_group("authstore", tests, group_setup, NULL);
}
