/*
 * Tamper tests of the secrets domain: sealed version records changed, moved,
 * cut or brought from another store, directly in the tdb file while the
 * domain is closed. Each must fail to open with -EIO, and harm nothing else.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/secrets.h"

/* Same-length values, so that only the cryptographic binding can tell records apart. */
#define A1 "alpha-version-01"
#define A2 "alpha-version-02"
#define B1 "beta--version-01"

struct fx {
	char dir[TU_PATH_MAX];
	char store[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm_options opt;
	struct sm *sm;
	char a_uuid[SM_UUID_HEX_LEN + 1], b_uuid[SM_UUID_HEX_LEN + 1];
	char a1[SM_VERSION_ID_MAX + 1], a2[SM_VERSION_ID_MAX + 1], b1[SM_VERSION_ID_MAX + 1];
	char a1_key[160], a2_key[160], b1_key[160];
};

static int group_setup(void **state)
{
	(void)state;
	return tu_crypto_init();
}

static int uuid_of(struct sm *sm, const char *name, char out[SM_UUID_HEX_LEN + 1])
{
	struct sm_secret *s;
	int rc = sm_secret_copy(sm, name, &s);
	if (rc)
		return rc;
	snprintf(out, SM_UUID_HEX_LEN + 1, "%s", s->uuid);
	secret_free(s);
	return 0;
}

/* A store holding alpha (A1, then A2 current) and beta (B1); the domain left closed. */
static int make_store(const char *dir, const char *name, const uint8_t key[CRYPTO_KEY_LEN],
		      struct fx *f)
{
	struct sm *sm;
	tu_path(f->store, dir, name);
	f->opt = tu_sm_options(30);
	f->opt.skip_damaged = true; /* a damaged version is EIO for its reads */
	if (tu_create_store(f->store, key) || tu_open_sm(f->store, key, &f->opt, &sm))
		return -1;
	int rc = sm_create(sm, "alpha", 0600, 0, 0);
	if (!rc)
		rc = tu_sm_put_str(sm, "alpha", A1, f->a1);
	if (!rc)
		rc = tu_sm_put_str(sm, "alpha", A2, f->a2);
	if (!rc)
		rc = sm_create(sm, "beta", 0600, 0, 0);
	if (!rc)
		rc = tu_sm_put_str(sm, "beta", B1, f->b1);
	if (!rc)
		rc = uuid_of(sm, "alpha", f->a_uuid);
	if (!rc)
		rc = uuid_of(sm, "beta", f->b_uuid);
	sm_close(sm);
	if (rc)
		return rc;
	record_key_version(f->a_uuid, f->a1, f->a1_key, sizeof(f->a1_key));
	record_key_version(f->a_uuid, f->a2, f->a2_key, sizeof(f->a2_key));
	record_key_version(f->b_uuid, f->b1, f->b1_key, sizeof(f->b1_key));
	return 0;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char keyfile[TU_PATH_MAX];
	if (!f || tu_mkdtemp(f->dir))
		goto fail;
	tu_path(keyfile, f->dir, "master.key");
	if (tu_make_key(keyfile, f->key) || make_store(f->dir, "store.tdb", f->key, f))
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
	sm_close(f->sm);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static void open_domain(struct fx *f)
{
	int rc = tu_open_sm(f->store, f->key, &f->opt, &f->sm);
	if (rc)
		fail_msg("opening the domain gave %d", rc);
}

static void close_domain(struct fx *f)
{
	sm_close(f->sm);
	f->sm = NULL;
}

/* The snapshot-then-decrypt result for a secret's current value (or version). */
static int read_result(struct fx *f, const char *name, const char *version, struct secbuf *buf)
{
	struct sm_snapshot *snap;
	int rc = version ? sm_snapshot_version(f->sm, name, version, &snap)
			 : sm_snapshot_current(f->sm, name, &snap);
	if (rc)
		return rc;
	rc = sm_snapshot_decrypt(f->sm, snap, buf);
	sm_snapshot_free(snap);
	return rc;
}

static void assert_eio(struct fx *f, const char *name, const char *version, const char *what)
{
	struct secbuf buf = { 0 };
	int rc = read_result(f, name, version, &buf);
	if (rc != -EIO)
		fail_msg("%s: reading %s%s%s gave %d, expected -EIO", what, name,
			 version ? " version " : "", version ? version : "", rc);
	assert_int_equal(buf.len, 0); /* nothing of the value handed out */
	secbuf_free(&buf);
}

static void assert_reads(struct fx *f, const char *name, const char *version, const char *want,
			 const char *what)
{
	int rc = tu_sm_value_is(f->sm, name, version, want, strlen(want));
	if (rc != 1)
		fail_msg("%s: %s%s%s does not read \"%s\" (%d)", what, name,
			 version ? " version " : "", version ? version : "", want, rc);
}

/* Everything not tampered with still reads. */
static void assert_rest_intact(struct fx *f, bool a1_ok, bool a2_ok, bool b1_ok, const char *what)
{
	if (a1_ok)
		assert_reads(f, "alpha", f->a1, A1, what);
	if (a2_ok)
		assert_reads(f, "alpha", NULL, A2, what);
	if (b1_ok)
		assert_reads(f, "beta", NULL, B1, what);
}

static void get_record(struct fx *f, const char *key, uint8_t **rec, size_t *len)
{
	assert_int_equal(tu_get_record(f->store, key, rec, len), 0);
}

static void set_record(struct fx *f, const char *key, const void *rec, size_t len)
{
	int rc = tu_set_record(f->store, key, rec, len);
	if (rc)
		fail_msg("writing %s directly gave %d", key, rc);
}

/* (1) A flipped bit anywhere in alpha's current record. */
static void test_flipped_byte(void **state)
{
	struct fx *f = *state;
	uint8_t *rec;
	size_t len;
	char what[64];

	get_record(f, f->a2_key, &rec, &len);
	assert_true(len > strlen(A2) + CRYPTO_SEAL_OVERHEAD);
	for (size_t i = 0; i < len; i++) {
		rec[i] ^= 0x01;
		set_record(f, f->a2_key, rec, len);
		rec[i] ^= 0x01;
		snprintf(what, sizeof(what), "byte %zu of %zu flipped", i, len);
		open_domain(f);
		assert_eio(f, "alpha", NULL, what);
		assert_rest_intact(f, true, false, true, what);
		close_domain(f);
	}
	/* Put back, it reads again. */
	set_record(f, f->a2_key, rec, len);
	open_domain(f);
	assert_rest_intact(f, true, true, true, "restored");
	free(rec);
}

/* (2) A record copied over another secret's, both ways. */
static void test_copied_to_other_secret(void **state)
{
	struct fx *f = *state;
	uint8_t *a_rec, *b_rec;
	size_t a_len, b_len;

	get_record(f, f->a2_key, &a_rec, &a_len);
	get_record(f, f->b1_key, &b_rec, &b_len);
	assert_int_equal(a_len, b_len);
	set_record(f, f->b1_key, a_rec, a_len);
	open_domain(f);
	assert_eio(f, "beta", NULL, "alpha's record under beta's key");
	assert_rest_intact(f, true, true, false, "alpha's record under beta's key");
	close_domain(f);
	/* beta's own record onto alpha's older version. */
	set_record(f, f->a1_key, b_rec, b_len);
	open_domain(f);
	assert_eio(f, "alpha", f->a1, "beta's record under alpha v1's key");
	assert_reads(f, "alpha", NULL, A2, "alpha current after its v1 was replaced");
	free(a_rec);
	free(b_rec);
}

/* (3) version 1's record copied onto version 2's key (another version of the same secret). */
static void test_copied_to_other_version(void **state)
{
	struct fx *f = *state;
	uint8_t *rec;
	size_t len;

	get_record(f, f->a1_key, &rec, &len);
	set_record(f, f->a2_key, rec, len);
	open_domain(f);
	assert_eio(f, "alpha", NULL, "v1's record under v2's key");
	assert_eio(f, "alpha", f->a2, "v1's record under v2's key");
	assert_rest_intact(f, true, false, true, "v1's record under v2's key");
	free(rec);
}

/* (4) A record from another store (its own keyring) under a valid key of this one. */
static void test_copied_from_other_store(void **state)
{
	struct fx *f = *state;
	struct fx *other = calloc(1, sizeof(*other));
	uint8_t *rec;
	size_t len;
	assert_non_null(other);

	/* Same key file, same names, same values: only the stores differ. */
	assert_int_equal(make_store(f->dir, "other.tdb", f->key, other), 0);
	get_record(other, other->a2_key, &rec, &len);
	set_record(f, f->a2_key, rec, len);
	free(rec);
	open_domain(f);
	assert_eio(f, "alpha", NULL, "another store's record");
	assert_rest_intact(f, true, false, true, "another store's record");
	close_domain(f);

	/* Another store opened with another key file, too. */
	char keyfile[TU_PATH_MAX];
	uint8_t key2[CRYPTO_KEY_LEN];
	tu_path(keyfile, f->dir, "other.key");
	assert_int_equal(tu_make_key(keyfile, key2), 0);
	struct fx *third = calloc(1, sizeof(*third));
	assert_non_null(third);
	assert_int_equal(make_store(f->dir, "third.tdb", key2, third), 0);
	get_record(third, third->b1_key, &rec, &len);
	set_record(f, f->b1_key, rec, len);
	free(rec);
	open_domain(f);
	assert_eio(f, "beta", NULL, "a record of a store with another key file");
	assert_reads(f, "alpha", f->a1, A1, "a record of a store with another key file");
	free(third);
	free(other);
}

/* (5) alpha's current record cut short at every length. */
static void test_truncated(void **state)
{
	struct fx *f = *state;
	uint8_t *rec;
	size_t len;
	char what[64];

	get_record(f, f->a2_key, &rec, &len);
	for (size_t cut = 0; cut < len; cut++) {
		set_record(f, f->a2_key, rec, cut);
		snprintf(what, sizeof(what), "record cut to %zu of %zu bytes", cut, len);
		open_domain(f);
		assert_eio(f, "alpha", NULL, what);
		assert_rest_intact(f, true, false, true, what);
		close_domain(f);
	}
	/* One byte too many. */
	uint8_t *longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, rec, len);
	longer[len] = 0;
	set_record(f, f->a2_key, longer, len + 1);
	open_domain(f);
	assert_eio(f, "alpha", NULL, "one byte appended");
	free(longer);
	free(rec);
}

/* A missing record reads as -EIO too, and the rest is fine. */
static void test_missing_record(void **state)
{
	struct fx *f = *state;
	set_record(f, f->a2_key, NULL, 0);
	open_domain(f);
	assert_eio(f, "alpha", NULL, "record deleted");
	assert_rest_intact(f, true, false, true, "record deleted");
}

/*
 * "A failed open is EIO for that read ... and harms nothing else": a secret
 * whose current record is damaged can still be given a new value, of any
 * length, so that the owner can repair it by writing it again.
 */
static void test_put_over_damaged_current(void **state)
{
	struct fx *f = *state;
	uint8_t *rec;
	size_t len;
	char id[SM_VERSION_ID_MAX + 1];

	get_record(f, f->a2_key, &rec, &len);
	rec[len - 1] ^= 0x80; /* the tag */
	set_record(f, f->a2_key, rec, len);
	free(rec);
	open_domain(f);
	assert_eio(f, "alpha", NULL, "damaged tag");

	/* Another length: no need to read the old value. */
	assert_int_equal(tu_sm_put_str(f->sm, "alpha", "a longer replacement value", id), 0);
	assert_reads(f, "alpha", NULL, "a longer replacement value", "after the repair");
	assert_eio(f, "alpha", f->a2, "the damaged version itself");

	/* Damage the new current too, then repair with a value of the same length. */
	char key[160];
	record_key_version(f->a_uuid, id, key, sizeof(key));
	close_domain(f);
	get_record(f, key, &rec, &len);
	rec[len - 1] ^= 0x80;
	set_record(f, key, rec, len);
	free(rec);
	open_domain(f);
	assert_eio(f, "alpha", NULL, "damaged tag");
	int rc = tu_sm_put_str(f->sm, "alpha", "a longer replacement VALUE", id);
	if (rc != 0)
		fail_msg("a same-length write over an unreadable current version gave %d", rc);
	assert_reads(f, "alpha", NULL, "a longer replacement VALUE", "after the same-length repair");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_flipped_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copied_to_other_secret, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copied_to_other_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copied_from_other_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_over_damaged_current, setup, teardown),
	};
	return tu_run_group("tamper", tests, group_setup, NULL);
}
