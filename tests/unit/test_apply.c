/*
 * Unit tests of sm_apply (secrets/apply.c): one host's commits, as its
 * store's commit hook sees them, applied to a replica of the same store;
 * a batch that fails authentication changes nothing.
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
	struct sm_options opt;
	struct sm *a, *b;
	struct tu_capture pending; /* A's commits not yet replicated */
	char changed[1024];        /* names B's change hook was told of */
	char changed_a[1024];      /* and A's */
};

/* name:FLAGS; for each change told, R remote, G gone, F its folder too. */
static void note_into(char *buf, size_t cap, const char *name, unsigned what)
{
	size_t used = strlen(buf);
	snprintf(buf + used, cap - used, "%s:%s%s%s;", name, what & SM_CHANGE_REMOTE ? "R" : "",
		 what & SM_CHANGE_GONE ? "G" : "", what & SM_CHANGE_FOLDER ? "F" : "");
}

static void note_change(void *ctx, const char *name, unsigned what)
{
	struct fx *f = ctx;
	note_into(f->changed, sizeof(f->changed), name, what);
}

static void note_change_a(void *ctx, const char *name, unsigned what)
{
	struct fx *f = ctx;
	note_into(f->changed_a, sizeof(f->changed_a), name, what);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->opt = tu_sm_options(0);
	/* B starts as a copy of A: one store, two replicas */
	if (tu_new_store_pair(f->dir, f->a_path, f->b_path, f->key) ||
	    tu_open_sm_hooked(f->a_path, f->key, &f->opt, tu_capture_hook, &f->pending, &f->a) ||
	    tu_open_sm(f->b_path, f->key, &f->opt, &f->b)) {
		if (f->dir[0])
			tu_rmrf(f->dir);
		free(f);
		return -1;
	}
	sm_set_change_hook(f->b, note_change, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	sm_close(f->a);
	sm_close(f->b);
	tu_capture_clear(&f->pending);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* A's commits since the last call onto B, in order. */
static int replicate(struct fx *f)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < f->pending.n; i++)
		rc = sm_apply(f->b, f->pending.commits[i].ops, f->pending.commits[i].count, NULL, NULL, NULL);
	tu_capture_clear(&f->pending);
	return rc;
}

static void reopen_b(struct fx *f)
{
	sm_close(f->b);
	f->b = NULL;
	assert_int_equal(tu_open_sm(f->b_path, f->key, &f->opt, &f->b), 0);
}

static void create_put_replicated(struct fx *f, const char *name, const char *value)
{
	char vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(sm_create(f->a, name, 0600, 1000, 1000), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(tu_sm_put_str(f->a, name, value, vid), 0);
	assert_int_equal(replicate(f), 0);
}

/* The op under prefix in A's last pending commit. */
static struct store_op *find_op(struct fx *f, const char *prefix)
{
	assert_true(f->pending.n > 0);
	struct tu_commit *b = &f->pending.commits[f->pending.n - 1];
	for (size_t i = 0; i < b->count; i++)
		if (strncmp(b->ops[i].key, prefix, strlen(prefix)) == 0)
			return &b->ops[i];
	return NULL;
}

/* Creates, new versions and label moves on A read the same on B, at once
 * and after B is opened again (its own state record agrees). */
static void test_writes_reach_the_replica(void **state)
{
	struct fx *f = *state;
	char a_cur[SM_VERSION_ID_MAX + 1], b_cur[SM_VERSION_ID_MAX + 1], vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(sm_mkdir(f->a, "app", 0750, 1000, 1000), 0);
	assert_int_equal(replicate(f), 0);
	create_put_replicated(f, "app/db", "first");
	assert_int_equal(tu_sm_value_is(f->b, "app/db", NULL, "first", 5), 1);
	assert_non_null(strstr(f->changed, "app/db:RF;"));
	assert_int_equal(tu_sm_put_str(f->a, "app/db", "second", vid), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(tu_sm_value_is(f->b, "app/db", NULL, "second", 6), 1);
	assert_int_equal(tu_sm_label(f->a, "app/db", "AWSCURRENT", a_cur), 0);
	assert_int_equal(tu_sm_label(f->b, "app/db", "AWSCURRENT", b_cur), 0);
	assert_string_equal(a_cur, b_cur);
	assert_int_equal(tu_sm_nversions(f->b, "app/db"), 2);
	reopen_b(f);
	assert_int_equal(tu_sm_value_is(f->b, "app/db", NULL, "second", 6), 1);
	assert_int_equal(tu_sm_label(f->b, "app/db", "AWSPREVIOUS", b_cur), 0);
	assert_int_equal(tu_sm_value_is(f->b, "app/db", b_cur, "first", 5), 1);
}

/* A deletion (purged at once: a window of 0 days) removes the secret and
 * its versions on B too, and B's change hook hears it as another host's. */
static void test_deletion_reaches_the_replica(void **state)
{
	struct fx *f = *state;
	create_put_replicated(f, "gone", "value");
	sm_set_change_hook(f->a, note_change_a, f);
	f->changed[0] = '\0';
	assert_int_equal(sm_delete(f->a, "gone"), 0);
	/* The host that deleted it is told a change of its own, the other
	 * one another host's: the FUSE layer tells its kernel of that one. */
	assert_non_null(strstr(f->changed_a, "gone:GF;"));
	assert_int_equal(replicate(f), 0);
	assert_non_null(strstr(f->changed, "gone:RGF;"));
	struct sm_attr at;
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "gone", &at), -ENOENT);
	reopen_b(f);
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "gone", &at), -ENOENT);
	sm_close(f->b);
	f->b = NULL;
	assert_int_equal(tu_count_records(f->b_path, "ver/"), 0);
	assert_int_equal(tu_open_sm(f->b_path, f->key, &f->opt, &f->b), 0);
}

/* One changed byte, a record of another store, or a record a replica
 * keeps alone: the whole batch is refused and B keeps what it had. */
static void test_refused_batches_change_nothing(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	create_put_replicated(f, "s", "old");
	assert_int_equal(tu_sm_put_str(f->a, "s", "new", vid), 0);

	assert_int_equal(f->pending.n, 1);
	struct store_op *rec = find_op(f, "secret/");
	assert_non_null(rec);
	((uint8_t *)rec->val)[rec->len - 2] ^= 1;
	assert_int_equal(sm_apply(f->b, f->pending.commits[0].ops, f->pending.commits[0].count, NULL, NULL, NULL),
			 -EBADMSG);
	((uint8_t *)rec->val)[rec->len - 2] ^= 1;

	struct store_op bad = { .key = "sfs/state", .val = (const uint8_t *)"x", .len = 1 };
	assert_int_equal(sm_apply(f->b, &bad, 1, NULL, NULL, NULL), -EPERM);
	struct store_op fmt = { .key = "sfs/format", .val = (const uint8_t *)"9", .len = 1 };
	assert_int_equal(sm_apply(f->b, &fmt, 1, NULL, NULL, NULL), -EPERM);

	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "old", 3), 1);
	reopen_b(f);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "old", 3), 1);
	/* the genuine batch still applies */
	assert_int_equal(replicate(f), 0);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "new", 3), 1);
}

/* A record tagged by another store (another master key) does not apply. */
static void test_record_of_another_store_refused(void **state)
{
	struct fx *f = *state;
	char dir[TU_PATH_MAX], path[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm *other = NULL;
	char vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(tu_new_sm(dir, path, key, 0, &other), 0);
	assert_int_equal(sm_create(other, "x", 0600, 1000, 1000), 0);
	assert_int_equal(tu_sm_put_str(other, "x", "foreign", vid), 0);
	sm_close(other);
	uint8_t *raw = NULL;
	size_t len;
	assert_int_equal(tu_get_record(path, "secret/x", &raw, &len), 0);
	struct store_op op = { .key = "secret/x", .val = raw, .len = len };
	assert_int_equal(sm_apply(f->b, &op, 1, NULL, NULL, NULL), -EBADMSG);
	struct sm_attr at;
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "x", &at), -ENOENT);
	free(raw);
	tu_rmrf(dir);
}

/* A replica's own records commit with a batch or alone, count in its
 * state sum (it opens again), and are nobody else's to send. */
static void test_local_records(void **state)
{
	struct fx *f = *state;
	uint8_t *body = NULL;
	size_t len;
	assert_int_equal(sm_local_put(f->b, "sfs/cluster", "{\"prefix\":\"/p/\"}", 15), 0);
	assert_int_equal(sm_create(f->a, "s", 0600, 1000, 1000), 0);
	char vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(tu_sm_put_str(f->a, "s", "v", vid), 0);
	for (size_t i = 0; i < f->pending.n; i++) {
		struct store_op rev = { .key = "sfs/replica", .val = (const uint8_t *)"42", .len = 2 };
		assert_int_equal(sm_apply(f->b, f->pending.commits[i].ops, f->pending.commits[i].count, &rev, NULL,
					  NULL), 0);
	}
	tu_capture_clear(&f->pending);
	reopen_b(f);
	assert_int_equal(sm_local_get(f->b, "sfs/replica", &body, &len), 0);
	assert_int_equal(len, 2);
	assert_memory_equal(body, "42", 2);
	free(body);
	assert_int_equal(sm_local_get(f->b, "sfs/cluster", &body, &len), 0);
	assert_int_equal(len, 15);
	free(body);
	assert_int_equal(sm_local_get(f->b, "secret/s", &body, &len), -EPERM);
	assert_int_equal(sm_local_put(f->b, "secret/s", "x", 1), -EPERM);
	struct store_op bad = { .key = "secret/s", .val = (const uint8_t *)"x", .len = 1 };
	assert_int_equal(sm_apply(f->b, NULL, 0, &bad, NULL, NULL), -EPERM);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v", 1), 1);
}

/* As when this host wrote secret s since: its record and versions. */
static bool keep_all_but_s(void *ctx, const char *key)
{
	const char *uuid = ctx;
	return strcmp(key, "secret/s") != 0 &&
	       !(strncmp(key, "ver/", 4) == 0 && strncmp(key + 4, uuid, strlen(uuid)) == 0);
}

/* An op keep declines is left out (the replica's own newer write of the
 * key stays), the rest of the batch applies. */
static void test_keep_declines(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	struct sm_secret *copy = NULL;
	create_put_replicated(f, "s", "old");
	assert_int_equal(sm_secret_copy(f->b, "s", &copy), 0);
	char uuid[SM_UUID_HEX_LEN + 1];
	memcpy(uuid, copy->uuid, sizeof(uuid));
	secret_free(copy);
	/* one batch: a new value of s, and a new secret t */
	assert_int_equal(tu_sm_put_str(f->a, "s", "new", vid), 0);
	assert_int_equal(sm_create(f->a, "t", 0600, 1000, 1000), 0);
	assert_int_equal(tu_sm_put_str(f->a, "t", "tee", vid), 0);
	struct store_op all[2 * TU_CAPTURE_OPS];
	size_t n = 0;
	for (size_t i = 0; i < f->pending.n; i++)
		for (size_t j = 0; j < f->pending.commits[i].count; j++)
			all[n++] = f->pending.commits[i].ops[j];
	assert_int_equal(sm_apply(f->b, all, n, NULL, keep_all_but_s, uuid), 0);
	tu_capture_clear(&f->pending);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "old", 3), 1);
	assert_int_equal(tu_sm_nversions(f->b, "s"), 1);
	assert_int_equal(tu_sm_value_is(f->b, "t", NULL, "tee", 3), 1);
}

/* A genuine but older record of a secret (etcd's admin putting an old
 * copy back) is refused whole and logged; the same record again is
 * nothing to do. */
static void test_older_record_refused(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(sm_create(f->a, "s", 0600, 1000, 1000), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(tu_sm_put_str(f->a, "s", "one", vid), 0);
	struct tu_commit first = { 0 };
	/* keep A's first value commit aside (the last pending batch) */
	assert_true(f->pending.n > 0);
	first = f->pending.commits[f->pending.n - 1];
	f->pending.commits[f->pending.n - 1].count = 0;
	for (size_t i = 0; i + 1 < f->pending.n; i++)
		assert_int_equal(sm_apply(f->b, f->pending.commits[i].ops, f->pending.commits[i].count, NULL, NULL,
					  NULL), 0);
	tu_capture_clear(&f->pending);
	assert_int_equal(sm_apply(f->b, first.ops, first.count, NULL, NULL, NULL), 0);
	assert_int_equal(tu_sm_put_str(f->a, "s", "two", vid), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "two", 3), 1);
	assert_int_equal(sm_apply(f->b, first.ops, first.count, NULL, NULL, NULL), -EBADMSG);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "two", 3), 1);
	tu_commit_free(&first);
	reopen_b(f);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "two", 3), 1);
}

/* A named key disabled on A stays disabled on B when an old copy of its
 * record (enabled) is put back. */
static void test_older_key_record_refused(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	struct tu_commit made = { 0 };
	assert_int_equal(sm_create(f->a, "s", 0600, 1000, 1000), 0);
	assert_int_equal(tu_sm_put_str(f->a, "s", "v", vid), 0);
	/* the first commit made the default key: keep a copy of its batch */
	assert_true(f->pending.n >= 2);
	assert_int_equal(tu_commit_copy(&made, &f->pending.commits[0]), 0);
	assert_int_equal(strncmp(made.ops[0].key, "key/", 4), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(keyring_set_enabled(sm_keyring(f->a), "alias/aws/secretsmanager", false),
			 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(sm_apply(f->b, made.ops, made.count, NULL, NULL, NULL), -EBADMSG);
	tu_commit_free(&made);
	/* B's key is still disabled: a new version cannot be sealed with it */
	assert_int_not_equal(tu_sm_put_str(f->b, "s", "w", vid), 0);
}

/* A folder's owner and mode cannot be put back to an older record either. */
static void test_older_folder_record_refused(void **state)
{
	struct fx *f = *state;
	struct tu_commit made = { 0 };
	assert_int_equal(sm_mkdir(f->a, "app", 0750, 1000, 1000), 0);
	assert_true(f->pending.n >= 1);
	assert_int_equal(tu_commit_copy(&made, &f->pending.commits[f->pending.n - 1]), 0);
	assert_int_equal(replicate(f), 0);
	uint32_t mode = 0700;
	assert_int_equal(sm_set_owner_mode(f->a, "app", &mode, NULL, NULL), 0);
	assert_int_equal(replicate(f), 0);
	struct sm_attr at;
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "app", &at), 0);
	assert_int_equal(at.mode, 0700);
	assert_int_equal(sm_apply(f->b, made.ops, made.count, NULL, NULL, NULL), -EBADMSG);
	tu_commit_free(&made);
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "app", &at), 0);
	assert_int_equal(at.mode, 0700);
}

/* A version record no secret record of its batch lists (put in etcd by
 * whoever can write there, no key needed: version records carry no tag a
 * replica checks before opening them) is refused with the whole batch; a
 * deletion of the header or of a named key is refused too. */
static void test_unlisted_version_and_deletions_refused(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	create_put_replicated(f, "s", "old");
	assert_int_equal(tu_sm_put_str(f->a, "s", "new", vid), 0);
	assert_int_equal(f->pending.n, 1);
	struct tu_commit *b = &f->pending.commits[0];
	struct store_op *ver = NULL;
	for (size_t i = 0; i < b->count; i++)
		if (strncmp(b->ops[i].key, "ver/", 4) == 0)
			ver = &b->ops[i];
	assert_non_null(ver);
	assert_int_equal(sm_apply(f->b, ver, 1, NULL, NULL, NULL), -EBADMSG);
	assert_int_equal(tu_sm_nversions(f->b, "s"), 1);
	struct store_op gone[] = { { .key = "sfs/header" } };
	assert_int_equal(sm_apply(f->b, gone, 1, NULL, NULL, NULL), -EPERM);
	reopen_b(f); /* the header is still there */
	assert_int_equal(replicate(f), 0);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "new", 3), 1);
}

/* A copy of A's last pending commit, kept aside (owned). */
static void keep_last(struct fx *f, struct tu_commit *out)
{
	assert_true(f->pending.n > 0);
	out->count = 0;
	assert_int_equal(tu_commit_copy(out, &f->pending.commits[f->pending.n - 1]), 0);
}

/* A secret deleted for good cannot come back by its old records put back
 * in etcd: its catalog bucket is older than the one B holds (the bucket's
 * change counter), and without the bucket the record is listed nowhere. */
static void test_purged_secret_put_back_refused(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	struct tu_commit made = { 0 };
	assert_int_equal(sm_create(f->a, "gone", 0600, 1000, 1000), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(tu_sm_put_str(f->a, "gone", "v", vid), 0);
	keep_last(f, &made);
	assert_int_equal(replicate(f), 0);
	/* its version deleted on its own, or beside its secret's record as B
	 * holds it (bytes B has: nothing applied), is refused */
	struct store_op pair[2] = { { 0 } };
	for (size_t i = 0; i < made.count; i++) {
		if (strncmp(made.ops[i].key, "ver/", 4) == 0)
			pair[0].key = made.ops[i].key;
		if (strncmp(made.ops[i].key, "secret/", 7) == 0)
			pair[1] = made.ops[i];
	}
	assert_non_null(pair[0].key);
	assert_non_null(pair[1].key);
	assert_int_equal(sm_apply(f->b, pair, 1, NULL, NULL, NULL), -EBADMSG);
	assert_int_equal(sm_apply(f->b, pair, 2, NULL, NULL, NULL), -EBADMSG);
	assert_int_equal(tu_sm_value_is(f->b, "gone", NULL, "v", 1), 1);
	assert_int_equal(sm_delete(f->a, "gone"), 0); /* recovery window 0: for good */
	assert_int_equal(replicate(f), 0);
	struct sm_attr at;
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "gone", &at), -ENOENT);

	/* the whole old commit (its bucket included): the bucket is older */
	assert_int_equal(sm_apply(f->b, made.ops, made.count, NULL, NULL, NULL), -EBADMSG);
	/* its records without the bucket: listed nowhere */
	struct tu_commit alone = { 0 };
	for (size_t i = 0; i < made.count; i++)
		if (strncmp(made.ops[i].key, "cat/", 4) != 0)
			alone.ops[alone.count++] = made.ops[i];
	assert_int_equal(sm_apply(f->b, alone.ops, alone.count, NULL, NULL, NULL), -EBADMSG);
	tu_commit_free(&made);
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "gone", &at), -ENOENT);
	reopen_b(f); /* and B's file still adds up */
	assert_int_equal(sm_attr(f->b, SM_VIEW_LIVE, "gone", &at), -ENOENT);
}

/* An older copy of a catalog bucket alone is refused too, and a bucket's
 * deletion: either would unlist a live secret. */
static void test_older_bucket_and_bucket_deletion_refused(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	struct tu_commit made = { 0 };
	assert_int_equal(sm_create(f->a, "s", 0600, 1000, 1000), 0);
	assert_int_equal(tu_sm_put_str(f->a, "s", "v", vid), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(sm_create(f->a, "t", 0600, 1000, 1000), 0);
	assert_int_equal(tu_sm_put_str(f->a, "t", "w", vid), 0); /* the commit that lists t */
	keep_last(f, &made);
	assert_int_equal(replicate(f), 0);
	struct store_op *bucket = NULL;
	for (size_t i = 0; i < made.count; i++)
		if (strncmp(made.ops[i].key, "cat/", 4) == 0)
			bucket = &made.ops[i];
	assert_non_null(bucket);
	/* a later change to the same bucket, then the older copy put back */
	assert_int_equal(sm_delete(f->a, "t"), 0);
	assert_int_equal(replicate(f), 0);
	assert_int_equal(sm_apply(f->b, bucket, 1, NULL, NULL, NULL), -EBADMSG);
	struct store_op gone = { .key = bucket->key };
	assert_int_equal(sm_apply(f->b, &gone, 1, NULL, NULL, NULL), -EPERM);
	tu_commit_free(&made);
	reopen_b(f);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v", 1), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_writes_reach_the_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deletion_reaches_the_replica, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_batches_change_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_record_of_another_store_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_local_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_declines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_key_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_older_folder_record_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unlisted_version_and_deletions_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_purged_secret_put_back_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_older_bucket_and_bucket_deletion_refused,
						setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
