/* Unit tests of secrets/secrets: the Secrets Manager domain (sm_*). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>

#include "testutil.h"
#include "secrets/secrets.h"
#include "util/timeutil.h"

struct fx {
	char dir[TU_PATH_MAX];
	char store[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm_options opt;
	struct sm *sm;
};

static int group_setup(void **state)
{
	(void)state;
	return tu_crypto_init();
}

/* The brief's recipe: store_open(CREATE), keyring_create, close; then open, unlock, sm_open. */
static int setup_with_window(void **state, int days)
{
	struct fx *f = calloc(1, sizeof(*f));
	char keyfile[TU_PATH_MAX];
	if (!f || tu_mkdtemp(f->dir))
		goto fail;
	tu_path(f->store, f->dir, "store.tdb");
	tu_path(keyfile, f->dir, "master.key");
	if (tu_make_key(keyfile, f->key) || tu_create_store(f->store, f->key))
		goto fail;
	f->opt = tu_sm_options(days);
	if (tu_open_sm(f->store, f->key, &f->opt, &f->sm))
		goto fail;
	*state = f;
	return 0;
fail:
	if (f && f->dir[0])
		tu_rmrf(f->dir);
	free(f);
	return -1;
}

static int setup(void **state)
{
	return setup_with_window(state, 30);
}

static int setup_window0(void **state)
{
	return setup_with_window(state, 0);
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
	sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(tu_open_sm(f->store, f->key, &f->opt, &f->sm), 0);
}

/*
 * Records under prefix, counted read-only with the domain closed (the store
 * is free then). The domain stays closed: call it as a test's last step.
 */
static long count_records_at_end(struct fx *f, const char *prefix)
{
	sm_close(f->sm);
	f->sm = NULL;
	return tu_count_records(f->store, prefix);
}

static void put(struct fx *f, const char *name, const char *value, char *id)
{
	char ignored[SM_VERSION_ID_MAX + 1];
	int rc = tu_sm_put_str(f->sm, name, value, id ? id : ignored);
	if (rc)
		fail_msg("sm_put_value(%s) gave %d", name, rc);
}

static void create_put(struct fx *f, const char *name, const char *value, char *id)
{
	int rc = sm_create(f->sm, name, 0600, 1000, 1000);
	if (rc)
		fail_msg("sm_create(%s) gave %d", name, rc);
	put(f, name, value, id);
}

static void assert_value(struct fx *f, const char *name, const char *version, const char *want)
{
	int rc = tu_sm_value_is(f->sm, name, version, want, strlen(want));
	if (rc != 1)
		fail_msg("%s%s%s: value is not \"%s\" (%d)", name, version ? " version " : "",
			 version ? version : "", want, rc);
}

static void assert_label(struct fx *f, const char *name, const char *label, const char *want)
{
	char id[SM_VERSION_ID_MAX + 1];
	assert_int_equal(tu_sm_label(f->sm, name, label, id), 0);
	assert_string_equal(id, want ? want : "");
}

static void assert_live(struct fx *f, const char *name, enum sm_kind kind)
{
	struct sm_attr a;
	int rc = sm_attr(f->sm, SM_VIEW_LIVE, name, &a);
	if (rc)
		fail_msg("%s: sm_attr gave %d", name, rc);
	assert_int_equal(a.kind, kind);
}

static void assert_gone(struct fx *f, enum sm_view view, const char *name)
{
	struct sm_attr a;
	int rc = sm_attr(f->sm, view, name, &a);
	if (rc != -ENOENT)
		fail_msg("%s: sm_attr(%s) gave %d, expected -ENOENT", name,
			 view == SM_VIEW_LIVE ? "live" : "deleted", rc);
}

/* ---------- put ---------- */

static void test_first_put_creates_v1(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1];
	struct sm_attr a;
	struct sm_secret *s;

	assert_int_equal(sm_create(f->sm, "db", 0600, 1000, 2000), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "db", &a), 0);
	assert_int_equal(a.kind, SM_KIND_SECRET);
	assert_int_equal(a.size, 0);
	assert_int_equal(a.nversions, 0);
	assert_int_equal(a.mode, 0600);
	assert_int_equal(a.uid, 1000);
	assert_int_equal(a.gid, 2000);
	assert_int_equal(sm_create(f->sm, "db", 0600, 1000, 2000), -EEXIST);

	put(f, "db", "hunter2", v1);
	assert_int_equal(name_check_version_id(v1, NULL), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "db", &a), 0);
	assert_int_equal(a.size, 7);
	assert_int_equal(a.nversions, 1);
	assert_int_equal(sm_secret_copy(f->sm, "db", &s), 0);
	assert_int_equal(s->nversions, 1);
	assert_string_equal(s->versions[0].id, v1);
	assert_int_equal(s->versions[0].size, 7);
	assert_false(s->versions[0].binary);
	assert_string_equal(secret_label_version(s, "AWSCURRENT"), v1);
	assert_null(secret_label_version(s, "AWSPREVIOUS"));
	assert_int_equal(s->nlabels, 1);
	secret_free(s);
	assert_value(f, "db", NULL, "hunter2");
	assert_value(f, "db", v1, "hunter2");

	/* A value that is not UTF-8 text is binary. */
	static const uint8_t bin[] = { 0x00, 0xff, 0x10, 0x80 };
	char b1[SM_VERSION_ID_MAX + 1];
	assert_int_equal(sm_create(f->sm, "blob", 0600, 0, 0), 0);
	assert_int_equal(sm_put_value(f->sm, "blob", bin, sizeof(bin), b1), 0);
	assert_int_equal(sm_secret_copy(f->sm, "blob", &s), 0);
	assert_true(s->versions[0].binary);
	secret_free(s);
	assert_int_equal(tu_sm_value_is(f->sm, "blob", NULL, bin, sizeof(bin)), 1);

	/* Put to a secret that does not exist. */
	char x[SM_VERSION_ID_MAX + 1];
	assert_int_equal(tu_sm_put_str(f->sm, "nope", "v", x), -ENOENT);
}

static void test_second_put_moves_labels(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1], v3[SM_VERSION_ID_MAX + 1];
	struct sm_listing l;

	create_put(f, "db", "one", v1);
	put(f, "db", "two", v2);
	assert_string_not_equal(v1, v2);
	assert_label(f, "db", "AWSCURRENT", v2);
	assert_label(f, "db", "AWSPREVIOUS", v1);
	assert_value(f, "db", NULL, "two");
	assert_value(f, "db", v1, "one");
	assert_int_equal(sm_list_versions(f->sm, "db", &l), 0);
	assert_int_equal(l.count, 2);
	assert_string_equal(l.entries[0].name, v1); /* oldest first */
	assert_string_equal(l.entries[1].name, v2);
	sm_listing_free(&l);

	put(f, "db", "three", v3);
	assert_label(f, "db", "AWSCURRENT", v3);
	assert_label(f, "db", "AWSPREVIOUS", v2);
	assert_int_equal(tu_sm_nversions(f->sm, "db"), 3);
	/* v1 is deprecated (no label) but kept. */
	assert_value(f, "db", v1, "one");
}

static void test_same_value_makes_no_version(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1], again[SM_VERSION_ID_MAX + 1];
	struct sm_secret *before, *after;

	create_put(f, "db", "one", v1);
	put(f, "db", "two", v2);
	assert_int_equal(sm_secret_copy(f->sm, "db", &before), 0);
	put(f, "db", "two", again);
	assert_string_equal(again, v2); /* the current version's id */
	assert_int_equal(sm_secret_copy(f->sm, "db", &after), 0);
	assert_int_equal(after->nversions, 2);
	assert_string_equal(secret_label_version(after, "AWSCURRENT"), v2);
	assert_string_equal(secret_label_version(after, "AWSPREVIOUS"), v1);
	assert_true(after->changed_ms == before->changed_ms);
	secret_free(before);
	secret_free(after);
	/* Same value as AWSPREVIOUS (not current) is a new version. */
	char v3[SM_VERSION_ID_MAX + 1];
	put(f, "db", "one", v3);
	assert_string_not_equal(v3, v1);
	assert_int_equal(tu_sm_nversions(f->sm, "db"), 3);
	assert_label(f, "db", "AWSCURRENT", v3);
	assert_label(f, "db", "AWSPREVIOUS", v2);
	/* Same length, different bytes: a new version too. */
	put(f, "db", "onf", NULL);
	assert_int_equal(tu_sm_nversions(f->sm, "db"), 4);
	reopen(f);
	put(f, "db", "onf", again);
	assert_int_equal(tu_sm_nversions(f->sm, "db"), 4);
}

static void test_value_size_limits(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], id[SM_VERSION_ID_MAX + 1];
	uint8_t *big = malloc(SM_VALUE_MAX + 1);
	struct sm_secret *before, *after;
	assert_non_null(big);
	for (size_t i = 0; i <= SM_VALUE_MAX; i++)
		big[i] = (uint8_t)('a' + i % 26);

	create_put(f, "db", "small", v1);
	assert_int_equal(sm_secret_copy(f->sm, "db", &before), 0);
	assert_int_equal(sm_put_value(f->sm, "db", big, SM_VALUE_MAX + 1, id), -EFBIG);
	assert_int_equal(sm_put_value(f->sm, "db", big, 0, id), -EINVAL);
	assert_int_equal(sm_secret_copy(f->sm, "db", &after), 0);
	assert_int_equal(after->nversions, 1);
	assert_string_equal(secret_label_version(after, "AWSCURRENT"), v1);
	assert_true(after->changed_ms == before->changed_ms);
	secret_free(before);
	secret_free(after);
	assert_value(f, "db", NULL, "small");
	reopen(f);
	assert_int_equal(tu_sm_nversions(f->sm, "db"), 1);
	assert_value(f, "db", NULL, "small");

	/* Exactly 65,536 bytes is allowed. */
	assert_int_equal(sm_put_value(f->sm, "db", big, SM_VALUE_MAX, id), 0);
	assert_int_equal(tu_sm_value_is(f->sm, "db", NULL, big, SM_VALUE_MAX), 1);
	struct sm_attr a;
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "db", &a), 0);
	assert_int_equal(a.size, SM_VALUE_MAX);

	/* A new secret refused its first value keeps no version. */
	assert_int_equal(sm_create(f->sm, "fresh", 0600, 0, 0), 0);
	assert_int_equal(sm_put_value(f->sm, "fresh", big, SM_VALUE_MAX + 1, id), -EFBIG);
	assert_int_equal(sm_put_value(f->sm, "fresh", big, 0, id), -EINVAL);
	assert_int_equal(tu_sm_nversions(f->sm, "fresh"), 0);
	free(big);
}

static void test_bad_names_refused(void **state)
{
	struct fx *f = *state;
	static const char *bad[] = { "a b", "", "/a", "a/", "a//b", ".versions", "a/../b", "x*y" };
	create_put(f, "ok", "v", NULL);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(sm_create(f->sm, bad[i], 0600, 0, 0), -EINVAL);
		assert_int_equal(sm_mkdir(f->sm, bad[i], 0755, 0, 0), -EINVAL);
		assert_int_equal(sm_rename(f->sm, "ok", bad[i], false, NULL, NULL), -EINVAL);
		assert_gone(f, SM_VIEW_LIVE, bad[i][0] ? bad[i] : "zz-nothing");
	}
	assert_live(f, "ok", SM_KIND_SECRET);
	struct sm_counts c;
	sm_count(f->sm, &c);
	assert_int_equal(c.secrets, 1);
}

/* ---------- snapshots ---------- */

static void test_snapshots(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1];
	struct sm_snapshot *old, *cur, *none;
	struct secbuf buf = { 0 };

	create_put(f, "db", "before-update", v1);
	assert_int_equal(sm_snapshot_current(f->sm, "db", &old), 0);
	assert_string_equal(sm_snapshot_version_id(old), v1);
	assert_int_equal(sm_snapshot_size(old), 13);
	put(f, "db", "after", v2);
	/* The reader that opened before the update keeps its version. */
	assert_int_equal(sm_snapshot_decrypt(f->sm, old, &buf), 0);
	assert_int_equal(buf.len, 13);
	assert_memory_equal(buf.data, "before-update", 13);
	assert_int_equal(sm_snapshot_current(f->sm, "db", &cur), 0);
	assert_string_equal(sm_snapshot_version_id(cur), v2);
	assert_int_equal(sm_snapshot_decrypt(f->sm, cur, &buf), 0);
	assert_int_equal(buf.len, 5);
	assert_memory_equal(buf.data, "after", 5);
	/* Still the old one, decrypted again. */
	assert_int_equal(sm_snapshot_decrypt(f->sm, old, &buf), 0);
	assert_memory_equal(buf.data, "before-update", 13);
	sm_snapshot_free(cur);

	/* ... even after the secret is gone. */
	assert_int_equal(sm_delete(f->sm, "db"), 0);
	assert_int_equal(sm_snapshot_decrypt(f->sm, old, &buf), 0);
	assert_memory_equal(buf.data, "before-update", 13);
	sm_snapshot_free(old);
	assert_int_equal(sm_snapshot_current(f->sm, "db", &cur), -ENOENT);

	/* A secret without a value: an empty snapshot. */
	assert_int_equal(sm_create(f->sm, "empty", 0600, 0, 0), 0);
	assert_int_equal(sm_snapshot_current(f->sm, "empty", &none), 0);
	assert_string_equal(sm_snapshot_version_id(none), "");
	assert_int_equal(sm_snapshot_size(none), 0);
	assert_int_equal(sm_snapshot_decrypt(f->sm, none, &buf), 0);
	assert_int_equal(buf.len, 0);
	sm_snapshot_free(none);
	assert_int_equal(sm_snapshot_version(f->sm, "empty", v1, &none), -ENOENT);
	assert_int_equal(sm_snapshot_current(f->sm, "missing", &none), -ENOENT);
	secbuf_free(&buf);
}

/* ---------- listing and folders ---------- */

static void test_list(void **state)
{
	struct fx *f = *state;
	struct sm_listing l;

	assert_int_equal(sm_mkdir(f->sm, "prod", 0755, 0, 0), 0);
	assert_int_equal(sm_mkdir(f->sm, "prod/db", 0700, 0, 0), 0);
	create_put(f, "top", "1", NULL);
	create_put(f, "prod/api", "2", NULL);
	create_put(f, "prod/db/password", "3", NULL);
	assert_int_equal(sm_create(f->sm, "prod/db/.env", 0600, 0, 0), 0); /* no value yet */

	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "", &l), 0);
	assert_int_equal(l.count, 2);
	assert_true(tu_listing_has(&l, "prod", SM_KIND_FOLDER));
	assert_true(tu_listing_has(&l, "top", SM_KIND_SECRET));
	sm_listing_free(&l);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "prod", &l), 0);
	assert_int_equal(l.count, 2);
	assert_true(tu_listing_has(&l, "api", SM_KIND_SECRET));
	assert_true(tu_listing_has(&l, "db", SM_KIND_FOLDER));
	sm_listing_free(&l);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "prod/db", &l), 0);
	assert_int_equal(l.count, 2);
	assert_true(tu_listing_has(&l, "password", SM_KIND_SECRET));
	assert_true(tu_listing_has(&l, ".env", SM_KIND_SECRET));
	sm_listing_free(&l);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "nothing", &l), -ENOENT);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "top", &l), -ENOTDIR);

	/* Deleted secrets leave their folder and show in the deleted view. */
	assert_int_equal(sm_delete(f->sm, "prod/api"), 0);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "prod", &l), 0);
	assert_int_equal(l.count, 1);
	assert_true(tu_listing_has(&l, "db", SM_KIND_FOLDER));
	sm_listing_free(&l);
	assert_int_equal(sm_list(f->sm, SM_VIEW_DELETED, "", &l), 0);
	assert_int_equal(l.count, 1);
	assert_true(tu_listing_has(&l, "prod", SM_KIND_FOLDER));
	sm_listing_free(&l);
	assert_int_equal(sm_list(f->sm, SM_VIEW_DELETED, "prod", &l), 0);
	assert_int_equal(l.count, 1);
	assert_true(tu_listing_has(&l, "api", SM_KIND_SECRET));
	sm_listing_free(&l);

	/* The same after reopening (the valueless .env was never committed). */
	reopen(f);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "", &l), 0);
	assert_int_equal(l.count, 2);
	sm_listing_free(&l);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "prod/db", &l), 0);
	assert_int_equal(l.count, 1);
	assert_true(tu_listing_has(&l, "password", SM_KIND_SECRET));
	sm_listing_free(&l);
	assert_int_equal(sm_list(f->sm, SM_VIEW_DELETED, "prod", &l), 0);
	assert_int_equal(l.count, 1);
	sm_listing_free(&l);
}

static void test_mkdir_rmdir(void **state)
{
	struct fx *f = *state;
	struct sm_attr a;

	assert_int_equal(sm_mkdir(f->sm, "app", 0750, 12, 34), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app", &a), 0);
	assert_int_equal(a.kind, SM_KIND_FOLDER);
	assert_int_equal(a.mode, 0750);
	assert_int_equal(a.uid, 12);
	assert_int_equal(a.gid, 34);
	assert_int_equal(sm_mkdir(f->sm, "app", 0750, 0, 0), -EEXIST);
	assert_int_equal(sm_mkdir(f->sm, "missing/sub", 0750, 0, 0), -ENOENT);
	assert_int_equal(sm_create(f->sm, "missing/x", 0600, 0, 0), -ENOENT);
	create_put(f, "app/x", "v", NULL);
	assert_int_equal(sm_mkdir(f->sm, "app/x", 0750, 0, 0), -EEXIST);
	assert_int_equal(sm_mkdir(f->sm, "app/x/y", 0750, 0, 0), -ENOTDIR);
	assert_int_equal(sm_create(f->sm, "app", 0600, 0, 0), -EEXIST);
	assert_int_equal(sm_mkdir(f->sm, "app/sub", 0700, 0, 0), 0);

	assert_int_equal(sm_rmdir(f->sm, "app"), -ENOTEMPTY);
	assert_int_equal(sm_rmdir(f->sm, "app/x"), -ENOTDIR);
	assert_int_equal(sm_rmdir(f->sm, "nothing"), -ENOENT);
	assert_int_not_equal(sm_rmdir(f->sm, ""), 0); /* never the top */
	assert_int_equal(sm_rmdir(f->sm, "app/sub"), 0);
	assert_gone(f, SM_VIEW_LIVE, "app/sub");
	assert_int_equal(sm_rmdir(f->sm, "app"), -ENOTEMPTY);

	/* Folders persist (with their attributes), removals too. */
	assert_int_equal(sm_mkdir(f->sm, "keep", 0705, 5, 6), 0);
	assert_int_equal(sm_mkdir(f->sm, "gone", 0705, 5, 6), 0);
	assert_int_equal(sm_rmdir(f->sm, "gone"), 0);
	reopen(f);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "keep", &a), 0);
	assert_int_equal(a.kind, SM_KIND_FOLDER);
	assert_int_equal(a.mode, 0705);
	assert_int_equal(a.uid, 5);
	assert_int_equal(a.gid, 6);
	assert_gone(f, SM_VIEW_LIVE, "gone");
	assert_gone(f, SM_VIEW_LIVE, "app/sub");
	assert_int_equal(sm_rmdir(f->sm, "keep"), 0);
	assert_gone(f, SM_VIEW_LIVE, "keep");
}

/* ---------- delete and restore ---------- */

static void test_delete_and_restore(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1];
	struct sm_attr a;
	struct sm_secret *s;
	struct sm_counts c;

	create_put(f, "db", "one", v1);
	put(f, "db", "two", v2);
	int64_t t0 = time_now_ms();
	assert_int_equal(sm_delete(f->sm, "db"), 0);
	assert_gone(f, SM_VIEW_LIVE, "db");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "db", &a), 0);
	assert_int_equal(a.kind, SM_KIND_SECRET);
	assert_int_equal(a.nversions, 2);
	int64_t window = 30LL * 86400000LL;
	assert_true(a.purge_ms >= t0 + window - 1000 && a.purge_ms <= time_now_ms() + window + 1000);
	assert_int_equal(sm_delete(f->sm, "db"), -ENOENT);
	struct sm_snapshot *snap;
	assert_int_equal(sm_snapshot_current(f->sm, "db", &snap), -ENOENT);
	sm_count(f->sm, &c);
	assert_int_equal(c.secrets, 0);
	assert_int_equal(c.deleted, 1);

	/* Deleted state is durable. */
	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "db");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "db", &a), 0);

	assert_int_equal(sm_restore(f->sm, "db", "db"), 0);
	assert_live(f, "db", SM_KIND_SECRET);
	assert_gone(f, SM_VIEW_DELETED, "db");
	assert_int_equal(sm_secret_copy(f->sm, "db", &s), 0);
	assert_int_equal(s->nversions, 2);
	assert_string_equal(s->versions[0].id, v1);
	assert_string_equal(s->versions[1].id, v2);
	assert_true(s->deleted_ms == 0);
	secret_free(s);
	assert_label(f, "db", "AWSCURRENT", v2);
	assert_label(f, "db", "AWSPREVIOUS", v1);
	assert_value(f, "db", NULL, "two");
	assert_value(f, "db", v1, "one");
	assert_int_equal(sm_restore(f->sm, "db", "db"), -ENOENT); /* not deleted */
	reopen(f);
	assert_value(f, "db", NULL, "two");

	/* Restore under a new name. */
	assert_int_equal(sm_delete(f->sm, "db"), 0);
	assert_int_equal(sm_restore(f->sm, "db", "db2"), 0);
	assert_gone(f, SM_VIEW_LIVE, "db");
	assert_gone(f, SM_VIEW_DELETED, "db");
	assert_value(f, "db2", NULL, "two");
	assert_value(f, "db2", v1, "one");
	reopen(f);
	assert_gone(f, SM_VIEW_DELETED, "db");
	assert_value(f, "db2", NULL, "two");
}

static void test_create_restores_deleted(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1];

	create_put(f, "db", "one", v1);
	assert_int_equal(sm_delete(f->sm, "db"), 0);
	assert_int_equal(sm_create(f->sm, "db", 0600, 1000, 1000), 0);
	assert_live(f, "db", SM_KIND_SECRET);
	assert_gone(f, SM_VIEW_DELETED, "db");
	assert_int_equal(tu_sm_nversions(f->sm, "db"), 1);
	assert_label(f, "db", "AWSCURRENT", v1);
	assert_value(f, "db", NULL, "one");
	put(f, "db", "two", v2);
	assert_int_equal(tu_sm_nversions(f->sm, "db"), 2);
	assert_label(f, "db", "AWSCURRENT", v2);
	assert_label(f, "db", "AWSPREVIOUS", v1);
	reopen(f);
	assert_value(f, "db", NULL, "two");
	assert_value(f, "db", v1, "one");
}

/* A create whose first commit is refused makes nothing (sm_discard_created). */
static void test_discard_refused_create(void **state)
{
	struct fx *f = *state;
	struct sm_attr a, before;
	char v1[SM_VERSION_ID_MAX + 1], id[SM_VERSION_ID_MAX + 1];
	uint8_t big[SM_VALUE_MAX + 1];

	/* A new name: gone from the index, never stored. */
	assert_int_equal(sm_create(f->sm, "new", 0600, 0, 0), 0);
	memset(big, 'x', sizeof(big));
	assert_int_equal(sm_put_value(f->sm, "new", big, sizeof(big), id), -EFBIG);
	assert_live(f, "new", SM_KIND_SECRET);
	assert_int_equal(sm_discard_created(f->sm, "new"), 1);
	assert_gone(f, SM_VIEW_LIVE, "new");
	assert_gone(f, SM_VIEW_DELETED, "new");
	assert_int_equal(sm_discard_created(f->sm, "new"), 0);
	/* The name is free for a create at once. */
	create_put(f, "new", "value", NULL);

	/* Committed meanwhile (by another writer, or touch): nothing to undo. */
	assert_int_equal(sm_discard_created(f->sm, "new"), 0);
	assert_int_equal(sm_create(f->sm, "touched", 0600, 0, 0), 0);
	assert_int_equal(sm_commit_created(f->sm, "touched"), 0);
	assert_int_equal(sm_discard_created(f->sm, "touched"), 0);
	assert_live(f, "touched", SM_KIND_SECRET);

	/* A deleted name that the create restored: deleted again, dates kept. */
	create_put(f, "db", "one", v1);
	assert_int_equal(sm_delete(f->sm, "db"), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "db", &before), 0);
	assert_int_equal(sm_create(f->sm, "db", 0600, 0, 0), 0);
	assert_live(f, "db", SM_KIND_SECRET);
	assert_int_equal(sm_discard_created(f->sm, "db"), 1);
	assert_gone(f, SM_VIEW_LIVE, "db");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "db", &a), 0);
	assert_true(a.purge_ms == before.purge_ms);
	assert_int_equal(a.nversions, 1);

	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "db");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "db", &a), 0);
	assert_true(a.purge_ms == before.purge_ms);
	assert_int_equal(sm_restore(f->sm, "db", "db"), 0);
	assert_value(f, "db", NULL, "one");
	assert_value(f, "new", NULL, "value");
	assert_live(f, "touched", SM_KIND_SECRET);

	/* A metadata edit stored the restore already: nothing to undo then. */
	assert_int_equal(sm_delete(f->sm, "db"), 0);
	assert_int_equal(sm_create(f->sm, "db", 0600, 0, 0), 0);
	assert_int_equal(sm_set_description(f->sm, "db", "d", 1), 0);
	assert_int_equal(sm_discard_created(f->sm, "db"), 0);
	reopen(f);
	assert_live(f, "db", SM_KIND_SECRET);
	assert_value(f, "db", NULL, "one");
}

static void test_valueless_secret_removed_at_once(void **state)
{
	struct fx *f = *state;
	struct sm_counts c;

	/* Created, never committed. */
	assert_int_equal(sm_create(f->sm, "touched", 0600, 0, 0), 0);
	assert_int_equal(sm_delete(f->sm, "touched"), 0);
	assert_gone(f, SM_VIEW_LIVE, "touched");
	assert_gone(f, SM_VIEW_DELETED, "touched");

	/* Created and committed without a value (touch). */
	assert_int_equal(sm_create(f->sm, "touched", 0600, 0, 0), 0);
	assert_int_equal(sm_commit_created(f->sm, "touched"), 0);
	reopen(f);
	assert_live(f, "touched", SM_KIND_SECRET);
	assert_int_equal(tu_sm_nversions(f->sm, "touched"), 0);
	assert_int_equal(sm_delete(f->sm, "touched"), 0);
	assert_gone(f, SM_VIEW_LIVE, "touched");
	assert_gone(f, SM_VIEW_DELETED, "touched");
	sm_count(f->sm, &c);
	assert_int_equal(c.deleted, 0);
	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "touched");
	assert_gone(f, SM_VIEW_DELETED, "touched");

	/* A created secret that is never committed does not survive a reopen. */
	assert_int_equal(sm_create(f->sm, "ephemeral", 0600, 0, 0), 0);
	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "ephemeral");
}

static void test_window0_purges_at_once(void **state)
{
	struct fx *f = *state;
	struct sm_secret *s;
	char uuid[SM_UUID_HEX_LEN + 1], prefix[64];

	create_put(f, "db", "one", NULL);
	put(f, "db", "two", NULL);
	create_put(f, "other", "keep", NULL);
	assert_int_equal(sm_secret_copy(f->sm, "db", &s), 0);
	snprintf(uuid, sizeof(uuid), "%s", s->uuid);
	secret_free(s);
	assert_int_equal(sm_delete(f->sm, "db"), 0);
	assert_gone(f, SM_VIEW_LIVE, "db");
	assert_gone(f, SM_VIEW_DELETED, "db");
	struct sm_counts c;
	sm_count(f->sm, &c);
	assert_int_equal(c.secrets, 1);
	assert_int_equal(c.deleted, 0);
	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "db");
	assert_gone(f, SM_VIEW_DELETED, "db");
	assert_value(f, "other", NULL, "keep");
	/* Nothing of it remains in the store. */
	snprintf(prefix, sizeof(prefix), "%s%s/", RECORD_PREFIX_VERSION, uuid);
	assert_int_equal(count_records_at_end(f, prefix), 0);
	assert_int_equal(tu_count_records(f->store, RECORD_PREFIX_SECRET "db"), 0);
	assert_int_equal(tu_count_records(f->store, RECORD_PREFIX_SECRET "other"), 1);
}

/*
 * A pending ClientRequestToken and import date belong to the commit that
 * uses them: a refused one leaves them for a retry, except a token that
 * names a version with another value, which no retry could use.
 */
static void test_refused_commit_keeps_token_and_date(void **state)
{
	static const char tok[] = "0123456789abcdef0123456789abcdef-tok";
	static const char tok2[] = "0123456789abcdef0123456789abcdef-two";
	struct fx *f = *state;
	char id[SM_VERSION_ID_MAX + 1];
	int64_t dated = time_now_ms() - 86400000;
	uint8_t *big = calloc(1, SM_VALUE_MAX + 1);
	struct sm_secret *s;

	assert_non_null(big);
	create_put(f, "t", "one", NULL);
	assert_int_equal(sm_set_request_token(f->sm, "t", tok, strlen(tok)), 0);
	assert_int_equal(sm_set_request_created(f->sm, "t", dated), 0);
	memset(big, 'x', SM_VALUE_MAX + 1);
	assert_int_equal(sm_put_value(f->sm, "t", big, SM_VALUE_MAX + 1, id), -EFBIG);
	assert_int_equal(sm_put_value(f->sm, "t", (const uint8_t *)"", 0, id), -EINVAL);
	free(big);
	put(f, "t", "two", id);
	assert_string_equal(id, tok);
	assert_int_equal(sm_secret_copy(f->sm, "t", &s), 0);
	assert_true(s->versions[s->nversions - 1].created_ms == dated);
	assert_null(s->request_token);
	secret_free(s);

	/* Spent: the next commit gets a new id and today's date. */
	put(f, "t", "three", id);
	assert_string_not_equal(id, tok);

	/* The token names a version with another value: spent by the refusal. */
	assert_int_equal(sm_set_request_token(f->sm, "t", tok, strlen(tok)), 0);
	assert_int_equal(tu_sm_put_str(f->sm, "t", "other", id), -EEXIST);
	put(f, "t", "four", id);
	assert_string_not_equal(id, tok);

	/* A rename over the secret is its next commit: it spends them too. */
	assert_int_equal(sm_set_request_token(f->sm, "t", tok2, strlen(tok2)), 0);
	create_put(f, "u", "five", NULL);
	assert_int_equal(sm_rename(f->sm, "u", "t", false, NULL, NULL), 0);
	assert_label(f, "t", "AWSCURRENT", tok2);
	put(f, "t", "six", id);
	assert_string_not_equal(id, tok2);
	assert_value(f, "t", NULL, "six");
}

/* ---------- rename ---------- */

static void test_rename_to_absent_keeps_history(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1];
	struct sm_secret *a, *b;
	struct sm_listing before, after;

	create_put(f, "A", "one", v1);
	put(f, "A", "two", v2);
	uint32_t mode = 0640;
	assert_int_equal(sm_set_owner_mode(f->sm, "A", &mode, NULL, NULL), 0);
	assert_int_equal(sm_secret_copy(f->sm, "A", &a), 0);
	assert_int_equal(sm_list_versions(f->sm, "A", &before), 0);

	assert_int_equal(sm_rename(f->sm, "A", "B", false, NULL, NULL), 0);
	assert_gone(f, SM_VIEW_LIVE, "A");
	assert_gone(f, SM_VIEW_DELETED, "A");
	assert_int_equal(sm_list_versions(f->sm, "B", &after), 0);
	assert_int_equal(after.count, before.count);
	for (size_t i = 0; i < before.count; i++)
		assert_string_equal(after.entries[i].name, before.entries[i].name);
	sm_listing_free(&after);
	assert_int_equal(sm_secret_copy(f->sm, "B", &b), 0);
	assert_string_equal(b->uuid, a->uuid);
	assert_true(b->created_ms == a->created_ms);
	assert_int_equal(b->mode, 0640);
	secret_free(b);
	assert_label(f, "B", "AWSCURRENT", v2);
	assert_label(f, "B", "AWSPREVIOUS", v1);
	assert_value(f, "B", NULL, "two");
	assert_value(f, "B", v1, "one");

	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "A");
	assert_int_equal(sm_list_versions(f->sm, "B", &after), 0);
	assert_int_equal(after.count, before.count);
	for (size_t i = 0; i < before.count; i++)
		assert_string_equal(after.entries[i].name, before.entries[i].name);
	sm_listing_free(&after);
	sm_listing_free(&before);
	assert_value(f, "B", NULL, "two");
	assert_value(f, "B", v1, "one");
	secret_free(a);

	/* Into a folder, and a missing one. */
	assert_int_equal(sm_mkdir(f->sm, "dir", 0755, 0, 0), 0);
	assert_int_equal(sm_rename(f->sm, "B", "dir/B", false, NULL, NULL), 0);
	assert_value(f, "dir/B", NULL, "two");
	assert_int_equal(sm_rename(f->sm, "dir/B", "nodir/B", false, NULL, NULL), -ENOENT);
	assert_int_equal(sm_rename(f->sm, "nothing", "C", false, NULL, NULL), -ENOENT);
	assert_value(f, "dir/B", NULL, "two");
}

static void test_rename_over_present(void **state)
{
	struct fx *f = *state;
	char a1[SM_VERSION_ID_MAX + 1], b1[SM_VERSION_ID_MAX + 1], b2[SM_VERSION_ID_MAX + 1];
	char cur[SM_VERSION_ID_MAX + 1];
	struct sm_secret *a;
	char prefix[64];

	create_put(f, "A", "new value", a1);
	create_put(f, "B", "b-one", b1);
	put(f, "B", "b-two", b2);
	assert_int_equal(sm_secret_copy(f->sm, "A", &a), 0);
	snprintf(prefix, sizeof(prefix), "%s%s/", RECORD_PREFIX_VERSION, a->uuid);
	secret_free(a);

	/* RENAME_NOREPLACE: refused, nothing moves. */
	assert_int_equal(sm_rename(f->sm, "A", "B", true, NULL, NULL), -EEXIST);
	assert_value(f, "A", NULL, "new value");
	assert_value(f, "B", NULL, "b-two");
	assert_int_equal(tu_sm_nversions(f->sm, "B"), 2);

	assert_int_equal(sm_rename(f->sm, "A", "B", false, NULL, NULL), 0);
	assert_gone(f, SM_VIEW_LIVE, "A");
	assert_gone(f, SM_VIEW_DELETED, "A");
	assert_int_equal(tu_sm_nversions(f->sm, "B"), 3);
	assert_int_equal(tu_sm_label(f->sm, "B", "AWSCURRENT", cur), 0);
	assert_string_not_equal(cur, b2);
	assert_string_not_equal(cur, a1); /* a new version of B, not A's record */
	assert_label(f, "B", "AWSPREVIOUS", b2);
	assert_value(f, "B", NULL, "new value");
	assert_value(f, "B", b1, "b-one");
	assert_value(f, "B", b2, "b-two");

	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "A");
	assert_gone(f, SM_VIEW_DELETED, "A");
	assert_int_equal(tu_sm_nversions(f->sm, "B"), 3);
	assert_label(f, "B", "AWSCURRENT", cur);
	assert_label(f, "B", "AWSPREVIOUS", b2);
	assert_value(f, "B", NULL, "new value");

	/* Replacing with the value B already has makes no version. */
	create_put(f, "C", "new value", NULL);
	assert_int_equal(sm_rename(f->sm, "C", "B", false, NULL, NULL), 0);
	assert_gone(f, SM_VIEW_LIVE, "C");
	assert_int_equal(tu_sm_nversions(f->sm, "B"), 3);
	assert_label(f, "B", "AWSCURRENT", cur);

	/* A's records are gone from the store. */
	assert_int_equal(count_records_at_end(f, prefix), 0);
}

static void test_rename_folder(void **state)
{
	struct fx *f = *state;
	struct sm_attr a;
	char x1[SM_VERSION_ID_MAX + 1];

	assert_int_equal(sm_mkdir(f->sm, "app", 0750, 0, 0), 0);
	assert_int_equal(sm_mkdir(f->sm, "app/sub", 0700, 0, 0), 0);
	create_put(f, "app/x", "x-one", x1);
	put(f, "app/x", "x-two", NULL);
	create_put(f, "app/sub/y", "y", NULL);
	create_put(f, "apple", "not below app", NULL);

	assert_int_equal(sm_rename(f->sm, "app", "app/sub/inside", false, NULL, NULL), -EINVAL);
	assert_int_equal(sm_rename(f->sm, "app", "svc", false, NULL, NULL), 0);
	assert_gone(f, SM_VIEW_LIVE, "app");
	assert_gone(f, SM_VIEW_LIVE, "app/x");
	assert_gone(f, SM_VIEW_LIVE, "app/sub");
	assert_gone(f, SM_VIEW_LIVE, "app/sub/y");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "svc", &a), 0);
	assert_int_equal(a.kind, SM_KIND_FOLDER);
	assert_int_equal(a.mode, 0750);
	assert_live(f, "svc/sub", SM_KIND_FOLDER);
	assert_value(f, "svc/x", NULL, "x-two");
	assert_value(f, "svc/x", x1, "x-one");
	assert_value(f, "svc/sub/y", NULL, "y");
	assert_value(f, "apple", NULL, "not below app");

	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "app");
	assert_gone(f, SM_VIEW_LIVE, "app/x");
	assert_live(f, "svc", SM_KIND_FOLDER);
	assert_live(f, "svc/sub", SM_KIND_FOLDER);
	assert_value(f, "svc/x", NULL, "x-two");
	assert_value(f, "svc/sub/y", NULL, "y");
	assert_int_equal(tu_sm_nversions(f->sm, "svc/x"), 2);

	/* Onto a non-empty folder, or onto a secret. */
	assert_int_equal(sm_mkdir(f->sm, "other", 0755, 0, 0), 0);
	create_put(f, "other/z", "z", NULL);
	assert_int_equal(sm_rename(f->sm, "svc", "other", false, NULL, NULL), -ENOTEMPTY);
	assert_int_equal(sm_rename(f->sm, "svc", "apple", false, NULL, NULL), -ENOTDIR);
	assert_live(f, "svc/sub", SM_KIND_FOLDER);
	assert_value(f, "other/z", NULL, "z");
}

/*
 * A folder renamed over an empty folder: the empty one is replaced in the
 * same transaction, so a rename refused part way leaves it as it was.
 */
static void test_rename_folder_over_empty(void **state)
{
	struct fx *f = *state;
	struct sm_attr a;
	char from[SM_NAME_MAX + 1], deep[SM_NAME_MAX + 1], to[SM_NAME_MAX + 1];

	assert_int_equal(sm_mkdir(f->sm, "src", 0750, 0, 0), 0);
	create_put(f, "src/x", "x", NULL);
	assert_int_equal(sm_mkdir(f->sm, "dst", 0700, 0, 0), 0);
	assert_int_equal(sm_rename(f->sm, "src", "dst", true, NULL, NULL), -EEXIST);
	assert_int_equal(sm_rename(f->sm, "src", "dst", false, NULL, NULL), 0);
	assert_gone(f, SM_VIEW_LIVE, "src");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "dst", &a), 0);
	assert_int_equal(a.mode, 0750); /* the moved folder's, not the replaced one's */
	assert_value(f, "dst/x", NULL, "x");
	reopen(f);
	assert_gone(f, SM_VIEW_LIVE, "src");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "dst", &a), 0);
	assert_int_equal(a.mode, 0750);
	assert_value(f, "dst/x", NULL, "x");

	/* Refused part way (a name below would pass 512 bytes): the empty
	 * target is still there, in memory and in the store. */
	memset(from, 'f', 500);
	from[500] = '\0';
	assert_int_equal(sm_mkdir(f->sm, from, 0755, 0, 0), 0);
	memcpy(deep, from, 500);
	memcpy(deep + 500, "/xy", 4);
	create_put(f, deep, "deep", NULL);
	memset(to, 'g', 510);
	to[510] = '\0';
	assert_int_equal(sm_mkdir(f->sm, to, 0711, 0, 0), 0);
	assert_int_equal(sm_rename(f->sm, from, to, false, NULL, NULL), -ENAMETOOLONG);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, to, &a), 0);
	assert_int_equal(a.mode, 0711);
	assert_value(f, deep, NULL, "deep");
	reopen(f);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, to, &a), 0);
	assert_int_equal(a.kind, SM_KIND_FOLDER);
	assert_int_equal(a.mode, 0711);
	assert_value(f, deep, NULL, "deep");
}

/*
 * A folder moves only onto a path that holds nothing: a secret scheduled
 * for deletion (or hidden by an editor) below the target would lose its
 * record to a moved one. The rename is refused and nothing changes; a
 * single secret renamed onto a deleted name restores it, its history
 * continued, as a create of that name does.
 */
static void test_rename_folder_over_held_names(void **state)
{
	struct fx *f = *state;
	struct sm_attr a;
	char v2[SM_VERSION_ID_MAX + 1];

	assert_int_equal(sm_mkdir(f->sm, "d1", 0755, 0, 0), 0);
	assert_int_equal(sm_mkdir(f->sm, "d2", 0755, 0, 0), 0);
	create_put(f, "d1/s", "v1", NULL);
	create_put(f, "d2/s", "v2", v2);
	assert_int_equal(sm_delete(f->sm, "d2/s"), 0);

	assert_int_equal(sm_rename(f->sm, "d1", "d2", false, NULL, NULL), -ENOTEMPTY);
	assert_value(f, "d1/s", NULL, "v1");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "d2/s", &a), 0);
	/* With the empty folder gone, the deleted name still holds. */
	assert_int_equal(sm_rmdir(f->sm, "d2"), 0);
	assert_int_equal(sm_rename(f->sm, "d1", "d2", false, NULL, NULL), -ENOTEMPTY);
	assert_gone(f, SM_VIEW_LIVE, "d2");
	/* A folder does not take a deleted secret's name either. */
	assert_int_equal(sm_mkdir(f->sm, "d2", 0755, 0, 0), 0);
	assert_int_equal(sm_mkdir(f->sm, "d2/s", 0755, 0, 0), -EEXIST);
	reopen(f);
	assert_value(f, "d1/s", NULL, "v1");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "d2/s", &a), 0);
	assert_int_equal(tu_sm_nversions(f->sm, "d1/s"), 1);

	/* Hidden by an editor's rename (memory only): refused the same way. */
	assert_int_equal(sm_mkdir(f->sm, "d3", 0755, 0, 0), 0);
	create_put(f, "d3/e", "e", NULL);
	assert_int_equal(sm_rename(f->sm, "d3/e", "e~", false, NULL, NULL), 0);
	assert_int_equal(sm_rename(f->sm, "d1", "d3", false, NULL, NULL), -ENOTEMPTY);
	assert_value(f, "d1/s", NULL, "v1");
	assert_int_equal(sm_create(f->sm, "d3/e", 0600, 0, 0), 0);
	assert_value(f, "d3/e", NULL, "e");

	/* A secret renamed onto the deleted name restores it, history kept. */
	assert_int_equal(sm_rename(f->sm, "d1/s", "d2/s", false, NULL, NULL), 0);
	assert_gone(f, SM_VIEW_DELETED, "d2/s");
	assert_gone(f, SM_VIEW_LIVE, "d1/s");
	assert_value(f, "d2/s", NULL, "v1");
	assert_value(f, "d2/s", v2, "v2");
	assert_int_equal(tu_sm_nversions(f->sm, "d2/s"), 2);
	reopen(f);
	assert_value(f, "d2/s", v2, "v2");
	assert_int_equal(tu_sm_nversions(f->sm, "d2/s"), 2);
}

/* What a rename's check saw: "from>to" pairs, sorted, joined with spaces;
 * refuse_from: the secret it refuses (EACCES), if any. */
struct moves {
	char seen[8][2 * SM_NAME_MAX + 2];
	size_t count;
	const char *refuse_from;
};

static int note_move(const char *from, const char *to, void *ctx)
{
	struct moves *m = ctx;
	if (m->count < 8)
		snprintf(m->seen[m->count++], sizeof(m->seen[0]), "%s>%s", from, to);
	return m->refuse_from && strcmp(from, m->refuse_from) == 0 ? -EACCES : 0;
}

static int by_text(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void moves_text(struct moves *m, char *out, size_t len)
{
	qsort(m->seen, m->count, sizeof(m->seen[0]), by_text);
	out[0] = '\0';
	for (size_t i = 0; i < m->count; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? " " : "", m->seen[i]);
	m->count = 0;
}

/*
 * sm_rename's check sees every secret that moves, in every state (live,
 * deleted, hidden, scratch), with its new name, before anything is
 * written: a refusal of any one of them leaves everything where it was.
 */
static void test_rename_checks_what_moves(void **state)
{
	static const char *const secrets[] = { "app/x", "app/sub/y", "apple", "app/gone", "app/ed" };
	struct fx *f = *state;
	struct moves m = { .count = 0 };
	char text[1024];

	assert_int_equal(sm_mkdir(f->sm, "app", 0700, 0, 0), 0);
	assert_int_equal(sm_mkdir(f->sm, "app/sub", 0700, 0, 0), 0);
	for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
		create_put(f, secrets[i], "v", NULL);
	assert_int_equal(sm_delete(f->sm, "app/gone"), 0);
	assert_int_equal(sm_rename(f->sm, "app/ed", "app/ed~", false, note_move, &m), 0);
	moves_text(&m, text, sizeof(text));
	assert_string_equal(text, "app/ed>app/ed~");

	m.refuse_from = "app/sub/y";
	assert_int_equal(sm_rename(f->sm, "app", "svc", false, note_move, &m), -EACCES);
	moves_text(&m, text, sizeof(text));
	assert_true(strstr(text, "app/sub/y>svc/sub/y") != NULL);
	assert_value(f, "app/x", NULL, "v");
	assert_live(f, "app/sub", SM_KIND_FOLDER);
	assert_gone(f, SM_VIEW_LIVE, "svc");
	reopen(f);
	assert_value(f, "app/sub/y", NULL, "v");
	assert_gone(f, SM_VIEW_LIVE, "svc");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "app/gone", &(struct sm_attr){ 0 }), 0);

	/* Live, deleted, hidden and scratch: everything a folder rename moves
	 * (the hidden one and its scratch file were memory only: reopened, the
	 * secret is back and the scratch file gone). */
	assert_int_equal(sm_rename(f->sm, "app/ed", "app/ed~", false, NULL, NULL), 0);
	m.refuse_from = NULL;
	assert_int_equal(sm_rename(f->sm, "app", "svc", false, note_move, &m), 0);
	moves_text(&m, text, sizeof(text));
	assert_string_equal(text, "app/ed>svc/ed app/ed~>svc/ed~ app/gone>svc/gone "
				  "app/sub/y>svc/sub/y app/x>svc/x");
	assert_value(f, "svc/x", NULL, "v");
	assert_value(f, "apple", NULL, "v");

	/* A rename refused before anything would move asks nothing. */
	create_put(f, "svc/z", "z", NULL);
	assert_int_equal(sm_rename(f->sm, "svc/z", "svc/x", true, note_move, &m), -EEXIST);
	assert_int_equal(sm_rename(f->sm, "svc/z", "svc", false, note_move, &m), -EISDIR);
	assert_int_equal(m.count, 0);
	m.refuse_from = "svc/z";
	assert_int_equal(sm_rename(f->sm, "svc/z", "svc/x", false, note_move, &m), -EACCES);
	assert_value(f, "svc/z", NULL, "z");
	assert_int_equal(tu_sm_nversions(f->sm, "svc/x"), 1);
}

/* ---------- owner and mode ---------- */

static void test_owner_mode_persisted(void **state)
{
	struct fx *f = *state;
	struct sm_attr a;
	uint32_t mode = 0640, uid = 123, gid = 456, dmode = 0711, rmode = 0750;

	create_put(f, "db", "v", NULL);
	assert_int_equal(sm_mkdir(f->sm, "dir", 0755, 1, 1), 0);
	assert_int_equal(sm_set_owner_mode(f->sm, "db", &mode, &uid, &gid), 0);
	assert_int_equal(sm_set_owner_mode(f->sm, "dir", &dmode, NULL, &gid), 0);
	assert_int_equal(sm_set_owner_mode(f->sm, "", &rmode, NULL, NULL), 0);
	assert_int_equal(sm_set_owner_mode(f->sm, "missing", &mode, NULL, NULL), -ENOENT);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "db", &a), 0);
	assert_int_equal(a.mode, 0640);
	assert_int_equal(a.uid, 123);
	assert_int_equal(a.gid, 456);

	reopen(f);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "db", &a), 0);
	assert_int_equal(a.mode, 0640);
	assert_int_equal(a.uid, 123);
	assert_int_equal(a.gid, 456);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "dir", &a), 0);
	assert_int_equal(a.mode, 0711);
	assert_int_equal(a.uid, 1); /* untouched */
	assert_int_equal(a.gid, 456);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "", &a), 0);
	assert_int_equal(a.kind, SM_KIND_FOLDER);
	assert_int_equal(a.mode, 0750);

	/* Only the permission bits; NULL leaves the rest alone. */
	uint32_t odd = 0100644;
	assert_int_equal(sm_set_owner_mode(f->sm, "db", &odd, NULL, NULL), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "db", &a), 0);
	assert_int_equal(a.mode, 0644);
	assert_int_equal(a.uid, 123);
	assert_int_equal(a.gid, 456);
	assert_value(f, "db", NULL, "v");
}

/* ---------- pruning ---------- */

static void test_pruning_keeps_100(void **state)
{
	struct fx *f = *state;
	enum { PUTS = 105 };
	char (*ids)[SM_VERSION_ID_MAX + 1] = calloc(PUTS, sizeof(*ids));
	char value[32], prefix[64];
	struct sm_listing l;
	struct sm_secret *s;
	assert_non_null(ids);

	assert_int_equal(sm_create(f->sm, "busy", 0600, 0, 0), 0);
	for (int i = 0; i < PUTS; i++) {
		snprintf(value, sizeof(value), "value-%03d", i);
		put(f, "busy", value, ids[i]);
	}
	assert_int_equal(sm_list_versions(f->sm, "busy", &l), 0);
	assert_true(l.count <= SM_MAX_VERSIONS);
	assert_int_equal(l.count, SM_MAX_VERSIONS);
	/* The oldest went first: what is left is the newest 100, in order. */
	for (size_t i = 0; i < l.count; i++)
		assert_string_equal(l.entries[i].name, ids[PUTS - SM_MAX_VERSIONS + i]);
	sm_listing_free(&l);
	assert_label(f, "busy", "AWSCURRENT", ids[PUTS - 1]);
	assert_label(f, "busy", "AWSPREVIOUS", ids[PUTS - 2]);
	assert_value(f, "busy", NULL, "value-104");
	assert_value(f, "busy", ids[PUTS - 2], "value-103");
	assert_value(f, "busy", ids[PUTS - SM_MAX_VERSIONS], "value-005");
	struct sm_snapshot *snap;
	assert_int_equal(sm_snapshot_version(f->sm, "busy", ids[0], &snap), -ENOENT);

	/* The store holds exactly the versions the metadata lists. */
	assert_int_equal(sm_secret_copy(f->sm, "busy", &s), 0);
	snprintf(prefix, sizeof(prefix), "%s%s/", RECORD_PREFIX_VERSION, s->uuid);
	secret_free(s);
	free(ids);
	assert_int_equal(count_records_at_end(f, prefix), SM_MAX_VERSIONS);
}

/* ---------- everything durable ---------- */

static void test_everything_survives_reopen(void **state)
{
	struct fx *f = *state;
	char a1[SM_VERSION_ID_MAX + 1], a2[SM_VERSION_ID_MAX + 1], d1[SM_VERSION_ID_MAX + 1];
	struct sm_secret *before_a, *after_a;
	struct sm_counts c1, c2;
	struct sm_listing l;
	struct sm_attr a;

	assert_int_equal(sm_mkdir(f->sm, "prod", 0750, 10, 20), 0);
	assert_int_equal(sm_mkdir(f->sm, "prod/db", 0700, 10, 20), 0);
	create_put(f, "prod/db/password", "pw-1", a1);
	put(f, "prod/db/password", "pw-2", a2);
	create_put(f, "prod/api-key", "k", NULL);
	create_put(f, "gone", "g", d1);
	assert_int_equal(sm_delete(f->sm, "gone"), 0);
	assert_int_equal(sm_create(f->sm, "touched", 0600, 0, 0), 0);
	assert_int_equal(sm_commit_created(f->sm, "touched"), 0);
	assert_int_equal(sm_secret_copy(f->sm, "prod/db/password", &before_a), 0);
	sm_count(f->sm, &c1);

	reopen(f);
	sm_count(f->sm, &c2);
	assert_int_equal(c1.secrets, c2.secrets);
	assert_int_equal(c1.deleted, c2.deleted);
	assert_int_equal(c1.versions, c2.versions);
	assert_int_equal(c2.secrets, 3);
	assert_int_equal(c2.deleted, 1);
	assert_int_equal(c2.versions, 4);
	assert_int_equal(sm_secret_copy(f->sm, "prod/db/password", &after_a), 0);
	assert_string_equal(after_a->uuid, before_a->uuid);
	assert_string_equal(after_a->arn_suffix, before_a->arn_suffix);
	assert_int_equal(after_a->nversions, 2);
	assert_true(after_a->created_ms == before_a->created_ms);
	assert_true(after_a->changed_ms == before_a->changed_ms);
	assert_int_equal(after_a->mode, before_a->mode);
	assert_int_equal(after_a->uid, before_a->uid);
	secret_free(before_a);
	secret_free(after_a);
	assert_label(f, "prod/db/password", "AWSCURRENT", a2);
	assert_label(f, "prod/db/password", "AWSPREVIOUS", a1);
	assert_value(f, "prod/db/password", NULL, "pw-2");
	assert_value(f, "prod/db/password", a1, "pw-1");
	assert_value(f, "prod/api-key", NULL, "k");
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "prod", &a), 0);
	assert_int_equal(a.mode, 0750);
	assert_int_equal(a.uid, 10);
	assert_int_equal(sm_list(f->sm, SM_VIEW_LIVE, "", &l), 0);
	assert_int_equal(l.count, 2);
	assert_true(tu_listing_has(&l, "prod", SM_KIND_FOLDER));
	assert_true(tu_listing_has(&l, "touched", SM_KIND_SECRET));
	sm_listing_free(&l);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "gone", &a), 0);
	assert_int_equal(sm_restore(f->sm, "gone", "gone"), 0);
	assert_value(f, "gone", d1, "g");

	char arn[SM_NAME_MAX + 200];
	struct sm_secret *s;
	assert_int_equal(sm_secret_copy(f->sm, "prod/api-key", &s), 0);
	sm_arn(f->sm, s, arn, sizeof(arn));
	char want[SM_NAME_MAX + 200];
	snprintf(want, sizeof(want), "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-key-%s",
		 s->arn_suffix);
	assert_string_equal(arn, want);
	secret_free(s);
}

/* ---------- names at the limit ---------- */

static void test_longest_names(void **state)
{
	struct fx *f = *state;
	char name[SM_NAME_MAX + 1], folder[SM_NAME_MAX + 1], to[SM_NAME_MAX + 1];

	memset(name, 'n', SM_NAME_MAX);
	name[SM_NAME_MAX] = '\0';
	create_put(f, name, "long", NULL);
	/* 510 bytes: a folder "ff..." and a secret "x" below it. */
	memset(folder, 'f', 508);
	folder[508] = '\0';
	assert_int_equal(sm_mkdir(f->sm, folder, 0755, 0, 0), 0);
	memcpy(to, folder, 508);
	memcpy(to + 508, "/xy", 4);
	assert_int_equal(strlen(to), 511);
	create_put(f, to, "deep", NULL);
	reopen(f);
	assert_value(f, name, NULL, "long");
	assert_value(f, to, NULL, "deep");
	/* Renaming the folder to a longer name would push the secret past 512 bytes. */
	char longer[SM_NAME_MAX + 1];
	memset(longer, 'g', 510);
	longer[510] = '\0';
	assert_int_not_equal(sm_rename(f->sm, folder, longer, false, NULL, NULL), 0);
	assert_value(f, to, NULL, "deep");
	assert_live(f, folder, SM_KIND_FOLDER);
	assert_gone(f, SM_VIEW_LIVE, longer);
}

/* ---------- readers and a writer on several threads ---------- */

enum { GENERATIONS = 60 };

static size_t gen_len(int g)
{
	return 20 + (size_t)((g * 37) % 300);
}

static void gen_value(int g, char *buf)
{
	size_t len = gen_len(g);
	int n = snprintf(buf, len + 1, "g=%06d;", g);
	memset(buf + n, 'a' + g % 26, len - (size_t)n);
	buf[len] = '\0';
}

/* 0 when buf is exactly one generation's value, whole. */
static int check_value(const uint8_t *data, size_t len)
{
	char want[400];
	if (len < 9 || data[0] != 'g' || data[1] != '=')
		return -1;
	int g = atoi((const char *)data + 2);
	if (g < 1 || g > GENERATIONS)
		return -1;
	gen_value(g, want);
	return (len == strlen(want) && memcmp(data, want, len) == 0) ? 0 : -1;
}

struct reader {
	struct sm *sm;
	volatile int *done;
	long reads, bad;
	int rc;
};

static void *read_loop(void *p)
{
	struct reader *r = p;
	struct secbuf buf = { 0 };
	while (!*r->done) {
		struct sm_snapshot *snap;
		int rc = sm_snapshot_current(r->sm, "hot", &snap);
		if (!rc) {
			rc = sm_snapshot_decrypt(r->sm, snap, &buf);
			sm_snapshot_free(snap);
		}
		if (rc) {
			r->rc = rc;
			break;
		}
		r->reads++;
		if (check_value(buf.data, buf.len))
			r->bad++;
	}
	secbuf_free(&buf);
	return NULL;
}

static void test_readers_never_see_a_mix(void **state)
{
	struct fx *f = *state;
	volatile int done = 0;
	struct reader r[3];
	pthread_t t[3];
	char value[400];
	struct sm_snapshot *early;
	struct secbuf buf = { 0 };

	gen_value(1, value);
	create_put(f, "hot", value, NULL);
	assert_int_equal(sm_snapshot_current(f->sm, "hot", &early), 0);
	for (int i = 0; i < 3; i++) {
		r[i] = (struct reader){ f->sm, &done, 0, 0, 0 };
		assert_int_equal(pthread_create(&t[i], NULL, read_loop, &r[i]), 0);
	}
	for (int g = 2; g <= GENERATIONS; g++) {
		gen_value(g, value);
		put(f, "hot", value, NULL);
	}
	done = 1;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_int_equal(r[i].rc, 0);
		assert_int_equal(r[i].bad, 0);
		assert_true(r[i].reads > 0);
	}
	/* The snapshot from before all the updates still reads generation 1. */
	assert_int_equal(sm_snapshot_decrypt(f->sm, early, &buf), 0);
	gen_value(1, value);
	assert_int_equal(buf.len, strlen(value));
	assert_memory_equal(buf.data, value, buf.len);
	sm_snapshot_free(early);
	secbuf_free(&buf);
	gen_value(GENERATIONS, value);
	assert_value(f, "hot", NULL, value);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_put_creates_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_put_moves_labels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_value_makes_no_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_size_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_rmdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_restore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_restores_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_refused_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_valueless_secret_removed_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window0_purges_at_once, setup_window0, teardown),
		cmocka_unit_test_setup_teardown(test_refused_commit_keeps_token_and_date, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_to_absent_keeps_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_over_present, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_folder, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_folder_over_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_folder_over_held_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_checks_what_moves, setup, teardown),
		cmocka_unit_test_setup_teardown(test_owner_mode_persisted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pruning_keeps_100, setup, teardown),
		cmocka_unit_test_setup_teardown(test_everything_survives_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_longest_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readers_never_see_a_mix, setup, teardown),
	};
	return tu_run_group("secrets", tests, group_setup, NULL);
}
