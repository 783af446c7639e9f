/* Unit tests of rekey (secrets/rekey.c, keyring_next.c): new master and
 * named keys, data keys re-wrapped, records tagged anew, old keys useless. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

struct fx {
	char dir[TU_PATH_MAX], path[TU_PATH_MAX], old[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm *sm;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || tu_new_sm(f->dir, f->path, f->key, 30, &f->sm))
		return -1;
	tu_path(f->old, f->dir, "before-rekey.tdb");
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
	struct sm_options o = tu_sm_options(30);
	sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(tu_open_sm(f->path, f->key, &o, &f->sm), 0);
}

/* The data key of name's current version, as stored: does keyring kr open it? */
static int unwraps(struct keyring *kr, struct sm *sm, const char *name)
{
	struct sm_secret *s;
	uint8_t *rec, dek[CRYPTO_KEY_LEN];
	size_t len;
	char rkey[128], aad[256];
	struct sealed_version sv;
	assert_int_equal(sm_secret_copy(sm, name, &s), 0);
	const struct sm_version *v = secret_current(s);
	assert_non_null(v);
	record_key_version(s->uuid, v->id, rkey, sizeof(rkey));
	assert_int_equal(authstore_get(keyring_authstore(sm_keyring(sm)), rkey, &rec, &len), 0);
	assert_int_equal(record_decode_version(rec, len, &sv), 0);
	/* The data key's binding (docs/store-format.md). */
	int n = snprintf(aad, sizeof(aad), "secretsfs/dek/v1%c%s%c%s%c%s%c%s", 0,
			 keyring_store_id(kr), 0, s->uuid, 0, v->id, 0, sv.key_id);
	int rc = keyring_unwrap(kr, sv.key_id, aad, (size_t)n, sv.wrapped_dek, sv.wrapped_dek_len,
				dek);
	free(rec);
	secret_free(s);
	return rc;
}

static void test_rekey_moves_every_key(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1];
	uint64_t n = 0;
	struct unlock_secret u = tu_key_unlock(f->key);

	assert_int_equal(sm_create(f->sm, "a", 0600, 0, 0), 0);
	assert_int_equal(tu_sm_put_str(f->sm, "a", "one", v1), 0);
	assert_int_equal(sm_create(f->sm, "b", 0600, 0, 0), 0);
	assert_int_equal(tu_sm_put_str(f->sm, "b", "bee", NULL), 0);
	char kid[SM_KEY_ID_LEN + 1];
	assert_int_equal(keyring_create_key(sm_keyring(f->sm), "alias/cust", kid), 0);
	assert_int_equal(sm_set_kms_key(f->sm, "b", "alias/cust", 10), 0);
	assert_int_equal(tu_sm_put_str(f->sm, "b", "bee2", NULL), 0);
	assert_int_equal(keyring_set_enabled(sm_keyring(f->sm), "alias/cust", false), 0);
	assert_int_equal(sm_backup(f->sm, f->old), 0);

	assert_int_equal(sm_rekey(f->sm, &u, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(tu_sm_put_str(f->sm, "a", "two", NULL), 0);
	assert_int_equal(tu_sm_value_is(f->sm, "a", v1, "one", 3), 1);
	assert_int_equal(tu_sm_value_is(f->sm, "a", NULL, "two", 3), 1);

	/* Reopened: everything checks and reads; the disabled key stays disabled. */
	reopen(f);
	assert_int_equal(tu_sm_value_is(f->sm, "a", v1, "one", 3), 1);
	assert_int_equal(tu_sm_value_is(f->sm, "a", NULL, "two", 3), 1);
	assert_int_equal(keyring_key_state(sm_keyring(f->sm), kid), -EACCES);
	assert_int_equal(keyring_set_enabled(sm_keyring(f->sm), "alias/cust", true), 0);
	assert_int_equal(tu_sm_value_is(f->sm, "b", NULL, "bee2", 4), 1);

	/* Whoever kept the old master key (a copy of the store as it was, with
	 * the key that opened it) opens no data key of the rekeyed store: not
	 * the version written after, not the ones re-wrapped. */
	struct store *st;
	struct keyring *old;
	assert_int_equal(store_open(f->old, STORE_READONLY, &st), 0);
	assert_int_equal(keyring_unlock(st, &u, &old), 0);
	assert_string_equal(keyring_store_id(old), keyring_store_id(sm_keyring(f->sm)));
	assert_int_equal(unwraps(sm_keyring(f->sm), f->sm, "a"), 0);
	assert_int_equal(unwraps(old, f->sm, "a"), -EBADMSG);
	assert_int_equal(unwraps(old, f->sm, "b"), -EBADMSG); /* disabled there too */
	keyring_free(old);
	store_close(st);
}

static void test_rekey_refuses_a_damaged_store(void **state)
{
	struct fx *f = *state;
	struct unlock_secret u = tu_key_unlock(f->key);
	uint64_t n;
	uint8_t *before;
	size_t len;
	assert_int_equal(sm_create(f->sm, "a", 0600, 0, 0), 0);
	assert_int_equal(tu_sm_put_str(f->sm, "a", "one", NULL), 0);
	sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(tu_set_record(f->path, "secret/a", "SFA3junk", 8), 0);
	struct sm_options o = tu_sm_options(30);
	o.skip_damaged = true;
	assert_int_equal(tu_open_sm(f->path, f->key, &o, &f->sm), 0);
	assert_int_equal(tu_read_file(f->path, &before, &len), 0);
	assert_int_equal(sm_rekey(f->sm, &u, &n), -EBADMSG);
	sm_close(f->sm);
	f->sm = NULL;
	assert_int_equal(tu_file_equals(f->path, before, len), 1);
	free(before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rekey_moves_every_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_refuses_a_damaged_store, setup, teardown),
	};
	return tu_run_group("rekey", tests, NULL, NULL);
}
