/*
 * Unit tests of sm_create_replica (secrets/join.c): a host that joins a
 * store kept elsewhere makes its local file from the store's format and
 * header records; it opens as that store, empty, and the store's commits
 * applied to it (sm_apply, as a replica would) read there as on the host
 * that made them, after a reopen too. A wrong key, the other kind of
 * secret or a header that fails its tag leave no file.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/secrets.h"

struct fx {
	char dir[TU_PATH_MAX];
	char a_path[TU_PATH_MAX], b_path[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	uint8_t *format, *header;
	size_t format_len, header_len;
	struct sm *a;
	struct tu_capture batches; /* A's commits, as a replicator sends them */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sm_options opt = tu_sm_options(30);
	char vid[SM_VERSION_ID_MAX + 1];
	if (!f || tu_crypto_init() || tu_mkdtemp(f->dir))
		goto fail;
	tu_path(f->a_path, f->dir, "a.tdb");
	tu_path(f->b_path, f->dir, "b.tdb");
	crypto_random_key(f->key, CRYPTO_KEY_LEN, false);
	if (tu_create_store(f->a_path, f->key) ||
	    tu_get_record(f->a_path, "sfs/format", &f->format, &f->format_len) ||
	    tu_get_record(f->a_path, "sfs/header", &f->header, &f->header_len) ||
	    tu_open_sm_hooked(f->a_path, f->key, &opt, tu_capture_hook, &f->batches, &f->a))
		goto fail;
	/* A's life before B joins: a folder, versions, a tag, a label, a
	 * customer key's secret, a deletion. */
	if (sm_mkdir(f->a, "app", 0750, 1000, 1000) ||
	    sm_create(f->a, "app/db", 0600, 1000, 1000) ||
	    tu_sm_put_str(f->a, "app/db", "first", vid) ||
	    tu_sm_put_str(f->a, "app/db", "second", vid) ||
	    sm_set_tag(f->a, "app/db", "team", "blue", 4, 0) ||
	    sm_update_stage(f->a, "app/db", "mine", vid) ||
	    sm_create(f->a, "gone", 0600, 1000, 1000) ||
	    tu_sm_put_str(f->a, "gone", "x", vid) || sm_delete(f->a, "gone"))
		goto fail;
	*state = f;
	return 0;
fail:
	if (f && f->dir[0])
		tu_rmrf(f->dir);
	free(f);
	return -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	sm_close(f->a);
	tu_capture_clear(&f->batches);
	free(f->format);
	free(f->header);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void assert_like_a(struct fx *f, struct sm *b)
{
	char a_cur[SM_VERSION_ID_MAX + 1], b_cur[SM_VERSION_ID_MAX + 1];
	char a_mine[SM_VERSION_ID_MAX + 1], b_mine[SM_VERSION_ID_MAX + 1];
	char *a_desc = NULL, *b_desc = NULL;
	struct sm_attr at;
	assert_int_equal(tu_sm_value_is(b, "app/db", NULL, "second", 6), 1);
	assert_int_equal(tu_sm_nversions(b, "app/db"), 2);
	assert_int_equal(tu_sm_label(f->a, "app/db", "AWSCURRENT", a_cur), 0);
	assert_int_equal(tu_sm_label(b, "app/db", "AWSCURRENT", b_cur), 0);
	assert_string_equal(a_cur, b_cur);
	assert_int_equal(tu_sm_label(f->a, "app/db", "mine", a_mine), 0);
	assert_int_equal(tu_sm_label(b, "app/db", "mine", b_mine), 0);
	assert_string_equal(a_mine, b_mine);
	assert_int_equal(sm_attr(b, SM_VIEW_LIVE, "app", &at), 0);
	assert_int_equal(at.kind, SM_KIND_FOLDER);
	assert_int_equal(sm_attr(b, SM_VIEW_LIVE, "gone", &at), -ENOENT);
	assert_int_equal(sm_attr(b, SM_VIEW_DELETED, "gone", &at), 0);
	/* DescribeSecret says the same (ARN, dates, tags, versions). */
	assert_int_equal(sm_describe(f->a, "app/db", &a_desc), 0);
	assert_int_equal(sm_describe(b, "app/db", &b_desc), 0);
	assert_string_equal(a_desc, b_desc);
	free(a_desc);
	free(b_desc);
}

static void test_joined_replica_reads_like_the_store(void **state)
{
	struct fx *f = *state;
	struct unlock_secret u = tu_key_unlock(f->key);
	struct { struct sm_options o; } h = { tu_sm_options(30) };
	struct sm *b;
	struct sm_attr at;
	struct sm_listing l;

	assert_int_equal(sm_create_replica(f->b_path, f->format, f->format_len, f->header,
					   f->header_len, &u), 0);
	/* It opens as the store, empty. */
	assert_int_equal(tu_open_sm(f->b_path, f->key, &h.o, &b), 0);
	assert_int_equal(sm_attr(b, SM_VIEW_LIVE, "", &at), 0);
	assert_int_equal(sm_list(b, SM_VIEW_LIVE, "", &l), 0);
	assert_int_equal(l.count, 0);
	sm_listing_free(&l);
	assert_string_equal(keyring_store_id(sm_keyring(b)), keyring_store_id(sm_keyring(f->a)));
	/* The store's commits, in order, as a replica applies them. */
	assert_true(f->batches.n >= 8);
	for (size_t i = 0; i < f->batches.n; i++) {
		const struct tu_commit *c = &f->batches.commits[i];
		assert_int_equal(sm_apply(b, c->ops, c->count, NULL, NULL, NULL), 0);
	}
	assert_like_a(f, b);
	/* Its own load check passes: the file is a whole store. */
	sm_close(b);
	assert_int_equal(tu_open_sm(f->b_path, f->key, &h.o, &b), 0);
	assert_like_a(f, b);
	/* And it is a store to write to. */
	char vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(tu_sm_put_str(b, "app/db", "third", vid), 0);
	sm_close(b);
	assert_int_equal(tu_open_sm(f->b_path, f->key, &h.o, &b), 0);
	assert_int_equal(tu_sm_value_is(b, "app/db", NULL, "third", 5), 1);
	sm_close(b);
}

static void test_wrong_secret_refused(void **state)
{
	struct fx *f = *state;
	uint8_t other[CRYPTO_KEY_LEN];
	crypto_random_key(other, sizeof(other), false);
	struct unlock_secret wrong = tu_key_unlock(other);
	assert_int_equal(sm_create_replica(f->b_path, f->format, f->format_len, f->header,
					   f->header_len, &wrong), -EACCES);
	assert_false(tu_exists(f->b_path));
	struct unlock_secret pass = { UNLOCK_PASSPHRASE, (const uint8_t *)"correct horse", 13 };
	assert_int_equal(sm_create_replica(f->b_path, f->format, f->format_len, f->header,
					   f->header_len, &pass), -ENOKEY);
	assert_false(tu_exists(f->b_path));
}

static void test_changed_header_refused(void **state)
{
	struct fx *f = *state;
	struct unlock_secret u = tu_key_unlock(f->key);
	uint8_t *h = malloc(f->header_len);
	memcpy(h, f->header, f->header_len);
	h[10] ^= 0x01; /* in the tag: the body still unlocks */
	assert_int_equal(sm_create_replica(f->b_path, f->format, f->format_len, h, f->header_len,
					   &u), -EBADMSG);
	assert_false(tu_exists(f->b_path));
	/* A body that does not parse, and a legacy format. */
	memcpy(h, f->header, f->header_len);
	h[f->header_len - 1] = 'x';
	assert_int_not_equal(sm_create_replica(f->b_path, f->format, f->format_len, h,
					       f->header_len, &u), 0);
	assert_false(tu_exists(f->b_path));
	assert_int_equal(sm_create_replica(f->b_path, (const uint8_t *)"2", 1, f->header,
					   f->header_len, &u), -EIO);
	assert_false(tu_exists(f->b_path));
	free(h);
}

static void test_existing_file_kept(void **state)
{
	struct fx *f = *state;
	struct unlock_secret u = tu_key_unlock(f->key);
	assert_int_equal(tu_write_file(f->b_path, "mine", 4), 0);
	assert_int_equal(sm_create_replica(f->b_path, f->format, f->format_len, f->header,
					   f->header_len, &u), -EEXIST);
	assert_int_equal(tu_file_equals(f->b_path, (const uint8_t *)"mine", 4), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_joined_replica_reads_like_the_store, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_wrong_secret_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changed_header_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_file_kept, setup, teardown),
	};
	return tu_run_group("join", tests, NULL, NULL);
}
