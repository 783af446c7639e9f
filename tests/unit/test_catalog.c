/* The catalog: metadata loaded by key, kept in step, format 1 migrated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

struct fx {
	char dir[TU_PATH_MAX], path[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm *sm;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || tu_new_sm(f->dir, f->path, f->key, 0, &f->sm))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	sm_close(f->sm);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void reopen(struct fx *f)
{
	struct sm_options o = tu_sm_options(0);
	if (f->sm)
		sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(tu_open_sm(f->path, f->key, &o, &f->sm), 0);
}

static void fill(struct fx *f)
{
	char name[64];
	assert_int_equal(sm_mkdir(f->sm, "app", 0755, 0, 0), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "app/s%03d", i);
		assert_int_equal(sm_create(f->sm, name, 0600, 0, 0), 0);
		assert_int_equal(tu_sm_put_str(f->sm, name, name, NULL), 0);
	}
	assert_int_equal(sm_delete(f->sm, "app/s000"), 0);        /* purged: window 0 */
	assert_int_equal(sm_rename(f->sm, "app/s001", "app/renamed", false, NULL, NULL), 0);
	assert_int_equal(sm_rename(f->sm, "app/s002", "app/s003", false, NULL, NULL), 0); /* over */
}

static void expect_filled(struct fx *f)
{
	struct sm_counts c;
	struct sm_attr a;
	sm_count(f->sm, &c);
	assert_int_equal(c.secrets, 298);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app/s000", &a), -ENOENT);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app/s001", &a), -ENOENT);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app/renamed", &a), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app", &a), 0);
	assert_int_equal(a.kind, SM_KIND_FOLDER);
	assert_int_equal(tu_sm_value_is(f->sm, "app/s003", NULL, "app/s002", 8), 1);
	assert_int_equal(tu_sm_value_is(f->sm, "app/s299", NULL, "app/s299", 8), 1);
}

static void test_catalog_follows_every_change(void **state)
{
	struct fx *f = *state;
	fill(f);
	reopen(f);
	expect_filled(f);
	sm_close(f->sm);
	f->sm = NULL;
	assert_true(tu_count_records(f->path, "cat/") > 0);
}

static int drop_catalog(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	(void)val;
	(void)len;
	return store_delete(ctx, key);
}

/*
 * A format-3 store dressed as format 1 (catalog dropped, format record
 * changed, as an attacker without the key would to have its records read
 * untagged) does not unlock: its master key is sealed by format 3, and
 * nothing is written. Genuine format 1 and 2 stores, made by the releases
 * that wrote them, are migrated in tests/fs/test_tamper.py.
 */
static void test_downgrade_to_format_1_is_refused(void **state)
{
	struct fx *f = *state;
	struct store *st;
	struct keyring *kr = NULL;
	uint8_t *before;
	size_t before_len;
	fill(f);
	sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_foreach(st, "cat/", drop_catalog, st), 0);
	assert_int_equal(store_put(st, "sfs/format", "1", 1), 0);
	/* The header's tag cut off, so that it parses as a legacy header. */
	uint8_t *hdr;
	size_t hdr_len;
	assert_int_equal(store_get(st, RECORD_KEY_HEADER, &hdr, &hdr_len), 0);
	assert_true(hdr_len > 36);
	assert_int_equal(store_put(st, RECORD_KEY_HEADER, hdr + 36, hdr_len - 36), 0);
	free(hdr);
	assert_int_equal(store_commit(st), 0);
	store_close(st);
	assert_int_equal(tu_read_file(f->path, &before, &before_len), 0);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	struct unlock_secret u = tu_key_unlock(f->key);
	assert_int_equal(keyring_unlock(st, &u, &kr), -EBADMSG);
	assert_null(kr);
	store_close(st);
	assert_int_equal(tu_file_equals(f->path, before, before_len), 1);
	free(before);
}

static int first_key(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	(void)val;
	(void)len;
	snprintf(ctx, 32, "%s", key);
	return 1;
}

/* A catalog bucket removed: its secrets are not loaded, and the sum says so. */
static void test_dropped_catalog_bucket_is_refused(void **state)
{
	struct fx *f = *state;
	struct store *st;
	fill(f);
	sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_int_equal(store_begin(st), 0);
	char first[32] = "";
	assert_int_equal(store_foreach(st, "cat/", first_key, first), 1);
	assert_int_equal(store_delete(st, first), 0);
	assert_int_equal(store_commit(st), 0);
	store_close(st);
	struct sm_options o = tu_sm_options(0);
	struct sm_damage d = { 0 };
	o.damage = &d;
	assert_int_equal(tu_open_sm(f->path, f->key, &o, &f->sm), -EBADMSG);
	assert_true(d.count > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_catalog_follows_every_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_downgrade_to_format_1_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dropped_catalog_bucket_is_refused, setup, teardown),
	};
	return tu_run_group("catalog", tests, NULL, NULL);
}
