/*
 * Unit tests of the domain's cluster hooks (sm_set_cluster_hooks,
 * secrets/writer.c): a commit the store's commit hook refuses as stale
 * (-ESTALE, as a replica does when another host changed the records) is
 * planned again after waiting for the replica, at most 5 times, then
 * -EBUSY; a writable hook that says -EROFS refuses every kind of stored
 * change before anything is written, and reads go on.
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
	char dir[TU_PATH_MAX], path[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm *sm;
	int stale_left;   /* commits the fake replica refuses as stale */
	int commits;      /* commits the hook saw */
	int refused;      /* of them, refused */
	int waits;        /* wait_applied calls */
	long wait_ms;     /* the timeout the last wait was given */
	int writable_rc;  /* what writable says */
	int writable_asks;
};

/* The replica's commit hook, faked: -ESTALE stale_left times, then 0. */
static int fake_commit(void *ctx, const struct store_op *ops, size_t count)
{
	struct fx *f = ctx;
	(void)ops;
	(void)count;
	f->commits++;
	if (f->stale_left > 0) {
		f->stale_left--;
		f->refused++;
		return -ESTALE;
	}
	return 0;
}

static int fake_writable(void *ctx)
{
	struct fx *f = ctx;
	f->writable_asks++;
	return f->writable_rc;
}

static int fake_wait(void *ctx, long timeout_ms)
{
	struct fx *f = ctx;
	f->waits++;
	f->wait_ms = timeout_ms;
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct sm_options opt = tu_sm_options(30);
	if (!f || tu_crypto_init() || tu_mkdtemp(f->dir))
		goto fail;
	tu_path(f->path, f->dir, "store.tdb");
	crypto_random_key(f->key, CRYPTO_KEY_LEN, false);
	if (tu_create_store(f->path, f->key) ||
	    tu_open_sm_hooked(f->path, f->key, &opt, fake_commit, f, &f->sm))
		goto fail;
	sm_set_cluster_hooks(f->sm, fake_writable, fake_wait, f);
	/* A secret with a value (the default named key made on the way). */
	char vid[SM_VERSION_ID_MAX + 1];
	if (sm_mkdir(f->sm, "app", 0750, 1000, 1000) ||
	    sm_create(f->sm, "app/db", 0600, 1000, 1000) ||
	    tu_sm_put_str(f->sm, "app/db", "first", vid))
		goto fail;
	f->commits = 0;
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
	sm_close(f->sm);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void reset(struct fx *f, int stale)
{
	f->stale_left = stale;
	f->commits = f->refused = f->waits = 0;
	f->wait_ms = 0;
}

static void test_put_value_planned_again(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1], cur[SM_VERSION_ID_MAX + 1];

	reset(f, SM_STALE_RETRIES); /* the most that is tried again */
	assert_int_equal(tu_sm_put_str(f->sm, "app/db", "second", vid), 0);
	assert_int_equal(f->commits, SM_STALE_RETRIES + 1);
	assert_int_equal(f->waits, SM_STALE_RETRIES);
	assert_int_equal(f->wait_ms, 2000);
	assert_int_equal(tu_sm_value_is(f->sm, "app/db", NULL, "second", 6), 1);
	assert_int_equal(tu_sm_label(f->sm, "app/db", "AWSCURRENT", cur), 0);
	assert_string_equal(cur, vid);
	assert_int_equal(tu_sm_nversions(f->sm, "app/db"), 2);

	reset(f, SM_STALE_RETRIES + 1); /* one more: given up */
	assert_int_equal(tu_sm_put_str(f->sm, "app/db", "third", vid), -EBUSY);
	assert_int_equal(f->commits, SM_STALE_RETRIES + 1);
	assert_int_equal(f->waits, SM_STALE_RETRIES);
	assert_int_equal(tu_sm_value_is(f->sm, "app/db", NULL, "second", 6), 1);
	assert_int_equal(tu_sm_nversions(f->sm, "app/db"), 2);
	/* Nothing was left behind: the next write goes through. */
	reset(f, 0);
	assert_int_equal(tu_sm_put_str(f->sm, "app/db", "third", vid), 0);
	assert_int_equal(tu_sm_value_is(f->sm, "app/db", NULL, "third", 5), 1);
}

static void test_create_planned_again(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1];
	struct sm_attr at;

	assert_int_equal(sm_create(f->sm, "app/new", 0600, 1000, 1000), 0);
	reset(f, 2);
	assert_int_equal(tu_sm_put_str(f->sm, "app/new", "v", vid), 0);
	assert_int_equal(f->waits, 2);
	assert_int_equal(tu_sm_value_is(f->sm, "app/new", NULL, "v", 1), 1);

	assert_int_equal(sm_create(f->sm, "app/touched", 0600, 1000, 1000), 0);
	reset(f, 1);
	assert_int_equal(sm_commit_created(f->sm, "app/touched"), 0);
	assert_int_equal(f->waits, 1);
	sm_close(f->sm); /* stored: it is there after a reopen */
	struct sm_options opt = tu_sm_options(30);
	assert_int_equal(tu_open_sm(f->path, f->key, &opt, &f->sm), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app/touched", &at), 0);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app/new", &at), 0);
}

static void test_rename_planned_again(void **state)
{
	struct fx *f = *state;
	struct sm_attr at;

	reset(f, 3);
	assert_int_equal(sm_rename(f->sm, "app/db", "app/db2", false, NULL, NULL), 0);
	assert_int_equal(f->waits, 3);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app/db", &at), -ENOENT);
	assert_int_equal(tu_sm_value_is(f->sm, "app/db2", NULL, "first", 5), 1);

	reset(f, SM_STALE_RETRIES + 1);
	assert_int_equal(sm_rename(f->sm, "app/db2", "app/db3", false, NULL, NULL), -EBUSY);
	assert_int_equal(f->waits, SM_STALE_RETRIES);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "app/db3", &at), -ENOENT);
	assert_int_equal(tu_sm_value_is(f->sm, "app/db2", NULL, "first", 5), 1);
}

static void test_label_planned_again(void **state)
{
	struct fx *f = *state;
	char cur[SM_VERSION_ID_MAX + 1], got[SM_VERSION_ID_MAX + 1];

	assert_int_equal(tu_sm_label(f->sm, "app/db", "AWSCURRENT", cur), 0);
	reset(f, 4);
	assert_int_equal(sm_update_stage(f->sm, "app/db", "blue", cur), 0);
	assert_int_equal(f->waits, 4);
	assert_int_equal(tu_sm_label(f->sm, "app/db", "blue", got), 0);
	assert_string_equal(got, cur);

	reset(f, SM_STALE_RETRIES + 1);
	assert_int_equal(sm_update_stage(f->sm, "app/db", "green", cur), -EBUSY);
	assert_int_equal(tu_sm_label(f->sm, "app/db", "green", got), 0);
	assert_string_equal(got, "");
	/* Metadata edits share the path (edit_secret): a tag too. */
	reset(f, 1);
	assert_int_equal(sm_set_tag(f->sm, "app/db", "team", "x", 1, 0), 0);
	assert_int_equal(f->waits, 1);
}

/* A wait that fails for another reason than its timeout ends the retries. */
static int failing_wait(void *ctx, long timeout_ms)
{
	struct fx *f = ctx;
	(void)timeout_ms;
	f->waits++;
	return -EROFS;
}

static void test_wait_failure_ends_retries(void **state)
{
	struct fx *f = *state;
	sm_set_cluster_hooks(f->sm, fake_writable, failing_wait, f);
	reset(f, 3);
	assert_int_equal(sm_mkdir(f->sm, "other", 0750, 1000, 1000), -EROFS);
	assert_int_equal(f->commits, 1);
	assert_int_equal(f->waits, 1);
	struct sm_attr at;
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "other", &at), -ENOENT);
}

static void test_offline_refuses_every_change(void **state)
{
	struct fx *f = *state;
	char vid[SM_VERSION_ID_MAX + 1], cur[SM_VERSION_ID_MAX + 1], token[37], cmd[256];
	uint32_t mode = 0640;
	struct sm_attr at;
	uint64_t versions;

	/* Prepared while online: a deleted secret, an empty folder, a
	 * rotation command, a created (not yet stored) name. */
	assert_int_equal(sm_create(f->sm, "app/old", 0600, 1000, 1000), 0);
	assert_int_equal(tu_sm_put_str(f->sm, "app/old", "x", vid), 0);
	assert_int_equal(sm_delete(f->sm, "app/old"), 0);
	assert_int_equal(sm_mkdir(f->sm, "empty", 0750, 1000, 1000), 0);
	assert_int_equal(sm_set_rotation_command(f->sm, "app/db", "/bin/true"), 0);
	assert_int_equal(sm_create(f->sm, "app/pending", 0600, 1000, 1000), 0);
	assert_int_equal(tu_sm_label(f->sm, "app/db", "AWSCURRENT", cur), 0);

	reset(f, 0);
	f->writable_rc = -EROFS;
	f->writable_asks = 0;
	assert_int_equal(sm_create(f->sm, "app/x", 0600, 1000, 1000), -EROFS);
	assert_int_equal(tu_sm_put_str(f->sm, "app/db", "second", vid), -EROFS);
	const char *stages[] = { "blue" };
	assert_int_equal(sm_put_value_staged(f->sm, "app/db", (const uint8_t *)"s", 1, stages, 1,
					     vid), -EROFS);
	assert_int_equal(sm_commit_created(f->sm, "app/pending"), -EROFS);
	assert_int_equal(sm_delete(f->sm, "app/db"), -EROFS);
	assert_int_equal(sm_restore(f->sm, "app/old", "app/old"), -EROFS);
	assert_int_equal(sm_purge_deleted(f->sm, "app/old"), -EROFS);
	assert_int_equal(sm_rename(f->sm, "app/db", "app/db2", false, NULL, NULL), -EROFS);
	assert_int_equal(sm_rename(f->sm, "app", "app2", false, NULL, NULL), -EROFS);
	assert_int_equal(sm_mkdir(f->sm, "more", 0750, 1000, 1000), -EROFS);
	assert_int_equal(sm_rmdir(f->sm, "empty"), -EROFS);
	assert_int_equal(sm_set_owner_mode(f->sm, "app/db", &mode, NULL, NULL), -EROFS);
	assert_int_equal(sm_set_owner_mode(f->sm, "app", &mode, NULL, NULL), -EROFS);
	assert_int_equal(sm_set_description(f->sm, "app/db", "d", 1), -EROFS);
	assert_int_equal(sm_remove_description(f->sm, "app/db"), -EROFS);
	assert_int_equal(sm_set_tag(f->sm, "app/db", "team", "x", 1, 0), -EROFS);
	assert_int_equal(sm_remove_tag(f->sm, "app/db", "team"), -EROFS);
	assert_int_equal(sm_update_stage(f->sm, "app/db", "blue", cur), -EROFS);
	assert_int_equal(sm_set_kms_key(f->sm, "app/db", "alias/aws/secretsmanager", 24), -EROFS);
	assert_int_equal(sm_remove_kms_key(f->sm, "app/db"), -EROFS);
	assert_int_equal(sm_set_rotation_rules(f->sm, "app/db", 7, NULL), -EROFS);
	assert_int_equal(sm_set_rotation_command(f->sm, "app/db", ""), -EROFS);
	assert_int_equal(sm_rotation_start(f->sm, "app/db", token, cmd, sizeof(cmd)), -EROFS);
	struct unlock_secret u = tu_key_unlock(f->key);
	assert_int_equal(sm_rekey(f->sm, &u, &versions), -EROFS);
	assert_int_equal(f->writable_asks, 24); /* each change asked once */
	/* Nothing reached the store. */
	assert_int_equal(f->commits, 0);
	/* Background upkeep waits quietly for the store to be writable. */
	assert_int_equal(sm_purge_expired(f->sm), 0);
	assert_int_equal(f->commits, 0);

	/* Reads go on; what stays in memory (a request token, the undoing
	 * of a create) is not the cluster's to refuse. */
	assert_int_equal(tu_sm_value_is(f->sm, "app/db", NULL, "first", 5), 1);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_DELETED, "app/old", &at), 0);
	assert_int_equal(sm_set_request_token(f->sm, "app/db", "0123456789abcdef0123456789abcdef",
					      32), 0);
	assert_int_equal(sm_set_request_token(f->sm, "app/db", NULL, 0), 0);
	assert_int_equal(sm_discard_created(f->sm, "app/pending"), 1);
	assert_int_equal(f->commits, 0);

	/* Back online: writes work. */
	f->writable_rc = 0;
	assert_int_equal(tu_sm_put_str(f->sm, "app/db", "second", vid), 0);
	assert_int_equal(f->commits, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_value_planned_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_planned_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_planned_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_label_planned_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wait_failure_ends_retries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_refuses_every_change, setup,
						teardown),
	};
	return tu_run_group("cluster_hooks", tests, NULL, NULL);
}
