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
	assert_int_equal(sm_rename(f->sm, "app/s001", "app/renamed", false), 0);
	assert_int_equal(sm_rename(f->sm, "app/s002", "app/s003", false), 0); /* over */
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

/* A format 1 store (no catalog) is walked once and migrated. */
static void test_format_1_is_migrated(void **state)
{
	struct fx *f = *state;
	struct store *st;
	fill(f);
	sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_foreach(st, "cat/", drop_catalog, st), 0);
	assert_int_equal(store_put(st, "sfs/format", "1", 1), 0);
	assert_int_equal(store_commit(st), 0);
	store_close(st);
	assert_int_equal(tu_count_records(f->path, "cat/"), 0);
	reopen(f);
	expect_filled(f);
	sm_close(f->sm);
	f->sm = NULL;
	uint8_t *format;
	size_t len;
	assert_int_equal(tu_get_record(f->path, "sfs/format", &format, &len), 0);
	assert_memory_equal(format, "2", 1);
	free(format);
	assert_true(tu_count_records(f->path, "cat/") > 0);
	reopen(f);
	expect_filled(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_catalog_follows_every_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_format_1_is_migrated, setup, teardown),
	};
	return tu_run_group("catalog", tests, NULL, NULL);
}
