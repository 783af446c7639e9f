/*
 * Unit tests of the service's requests as the API sends them (secrets.h,
 * "the service's requests": requests.c, ids.c), of ListSecrets' filters
 * (secrets/filters) and of base64 (util/base64).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/filters.h"
#include "secrets/secrets.h"
#include "util/base64.h"
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

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char keyfile[TU_PATH_MAX];
	if (!f || tu_mkdtemp(f->dir))
		goto fail;
	tu_path(f->store, f->dir, "store.tdb");
	tu_path(keyfile, f->dir, "master.key");
	if (tu_make_key(keyfile, f->key) || tu_create_store(f->store, f->key))
		goto fail;
	f->opt = tu_sm_options(30);
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

static struct sm_value str(const char *s)
{
	struct sm_value v = { (const uint8_t *)s, strlen(s), SM_VALUE_STRING };
	return v;
}

static int create(struct fx *f, const char *name, const char *value, const char *token,
		  char *version_id)
{
	char ignored[SM_VERSION_ID_MAX + 1];
	bool replayed;
	struct sm_value v = value ? str(value) : (struct sm_value){ 0 };
	struct sm_create_request req = { .name = name, .value = value ? &v : NULL, .token = token,
					 .mode = 0600, .uid = 1000, .gid = 1000 };
	return sm_create_secret(f->sm, &req, version_id ? version_id : ignored, &replayed);
}

static void assert_label(struct fx *f, const char *name, const char *label, const char *want)
{
	char id[SM_VERSION_ID_MAX + 1];
	assert_int_equal(tu_sm_label(f->sm, name, label, id), 0);
	assert_string_equal(id, want ? want : "");
}

#define TOKEN_A "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
#define TOKEN_B "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"

/* ---------- CreateSecret ---------- */

static void test_create_is_one_commit_with_everything(void **state)
{
	struct fx *f = *state;
	char id[SM_VERSION_ID_MAX + 1];
	struct sm_tag_arg tags[] = { { "env", "prod" }, { "team", "" } };
	struct sm_value v = str("hunter2");
	struct sm_create_request req = { .name = "prod/db/pw", .description = "the db",
					 .value = &v, .token = TOKEN_A, .tags = tags, .ntags = 2,
					 .mode = 0640, .uid = 7, .gid = 8 };
	bool replayed;
	assert_int_equal(sm_create_secret(f->sm, &req, id, &replayed), 0);
	assert_string_equal(id, TOKEN_A);
	assert_false(replayed);
	reopen(f);
	struct sm_secret *s;
	assert_int_equal(sm_secret_copy(f->sm, "prod/db/pw", &s), 0);
	assert_string_equal(s->description, "the db");
	assert_int_equal(s->ntags, 2);
	assert_int_equal(s->mode, 0640);
	assert_int_equal(s->uid, 7);
	assert_int_equal(s->nversions, 1);
	assert_false(s->versions[0].binary);
	secret_free(s);
	assert_int_equal(tu_sm_value_is(f->sm, "prod/db/pw", NULL, "hunter2", 7), 1);
	/* Its folders exist, as a mount shows them. */
	struct sm_attr a;
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "prod/db", &a), 0);
	assert_int_equal(a.kind, SM_KIND_FOLDER);
}

static void test_create_refusals_store_nothing(void **state)
{
	struct fx *f = *state;
	struct sm_tag_arg tags[] = { { "aws:reserved", "x" } };
	struct sm_value v = str("x");
	struct sm_create_request req = { .name = "tagged", .value = &v, .tags = tags, .ntags = 1 };
	char id[SM_VERSION_ID_MAX + 1];
	bool replayed;
	sm_refusal_clear();
	assert_int_equal(sm_create_secret(f->sm, &req, id, &replayed), -EINVAL);
	assert_non_null(strstr(sm_refusal(), "aws:"));
	struct sm_attr a;
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "tagged", &a), -ENOENT);
	req.tags = NULL;
	req.ntags = 0;
	req.kms_key_id = "alias/none-such";
	assert_int_equal(sm_create_secret(f->sm, &req, id, &replayed), -EINVAL);
	assert_int_equal(sm_attr(f->sm, SM_VIEW_LIVE, "tagged", &a), -ENOENT);
	assert_int_equal(create(f, "bad name", "x", NULL, NULL), -EINVAL);
}

static void test_create_existing_replay_and_deleted(void **state)
{
	struct fx *f = *state;
	char id[SM_VERSION_ID_MAX + 1];
	bool replayed;
	assert_int_equal(create(f, "s", "v", TOKEN_A, NULL), 0);
	struct sm_value v = str("v");
	struct sm_create_request req = { .name = "s", .value = &v, .token = TOKEN_A };
	assert_int_equal(sm_create_secret(f->sm, &req, id, &replayed), 0);
	assert_true(replayed);
	assert_string_equal(id, TOKEN_A);
	assert_int_equal(tu_sm_nversions(f->sm, "s"), 1);
	v = str("other");
	assert_int_equal(sm_create_secret(f->sm, &req, id, &replayed), -EEXIST);
	req.token = TOKEN_B;
	assert_int_equal(sm_create_secret(f->sm, &req, id, &replayed), -EEXIST);
	int64_t when;
	assert_int_equal(sm_delete_secret(f->sm, "s", 7, false, &when), 0);
	/* Unlike a file's create, the API's does not restore a deleted name. */
	assert_int_equal(create(f, "s", "w", NULL, NULL), -EBUSY);
}

static void test_create_places(void **state)
{
	struct fx *f = *state;
	assert_int_equal(create(f, "a", "x", NULL, NULL), 0);
	assert_int_equal(create(f, "a/b", "x", NULL, NULL), -ENOTDIR);
	assert_int_equal(create(f, "c/d", "x", NULL, NULL), 0);
	assert_int_equal(create(f, "c", "x", NULL, NULL), -ENOTDIR);
	/* A file being written through the mount holds its name. */
	assert_int_equal(sm_create(f->sm, "open", 0600, 0, 0), 0);
	assert_int_equal(create(f, "open", "x", NULL, NULL), -EEXIST);
	char name[SM_NAME_MAX + 1];
	bool deleted;
	assert_int_equal(sm_resolve_id(f->sm, "open", name, &deleted), -ENOENT);
}

static void test_create_without_value(void **state)
{
	struct fx *f = *state;
	char id[SM_VERSION_ID_MAX + 1] = "x";
	assert_int_equal(create(f, "empty", NULL, NULL, id), 0);
	assert_string_equal(id, "");
	reopen(f);
	assert_int_equal(tu_sm_nversions(f->sm, "empty"), 0);
}

/* ---------- PutSecretValue, UpdateSecret ---------- */

static void test_put_new_token_same_value_is_a_version(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1];
	assert_int_equal(create(f, "s", "same", NULL, v1), 0);
	struct sm_value v = str("same");
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, TOKEN_B, v2), 0);
	assert_string_equal(v2, TOKEN_B);
	assert_int_equal(tu_sm_nversions(f->sm, "s"), 2);
	assert_label(f, "s", "AWSCURRENT", TOKEN_B);
	assert_label(f, "s", "AWSPREVIOUS", v1);
	/* Replayed: nothing new. Another value or type: refused. */
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, TOKEN_B, v2), 0);
	assert_int_equal(tu_sm_nversions(f->sm, "s"), 2);
	v.type = SM_VALUE_BINARY;
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, TOKEN_B, v2), -EEXIST);
	v = str("else");
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, TOKEN_B, v2), -EEXIST);
	/* No token: a fresh UUID, also for the same value. */
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, NULL, v2), 0);
	assert_int_equal(strlen(v2), 36);
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, NULL, v2), 0);
	assert_int_equal(tu_sm_nversions(f->sm, "s"), 4);
}

static void test_put_type_is_the_requests(void **state)
{
	struct fx *f = *state;
	struct sm_value v = { (const uint8_t *)"text", 4, SM_VALUE_BINARY };
	char id[SM_VERSION_ID_MAX + 1];
	assert_int_equal(create(f, "s", "x", NULL, NULL), 0);
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, NULL, id), 0);
	struct sm_snapshot *snap;
	assert_int_equal(sm_snapshot_current(f->sm, "s", &snap), 0);
	assert_true(sm_snapshot_binary(snap));
	assert_string_equal(sm_snapshot_stage(snap, 0), "AWSCURRENT");
	assert_null(sm_snapshot_stage(snap, 1));
	assert_true(sm_snapshot_created_ms(snap) > 0);
	sm_snapshot_free(snap);
	/* A string with a NUL is a string when the request says so. */
	struct sm_value nul = { (const uint8_t *)"a\0b", 3, SM_VALUE_STRING };
	assert_int_equal(sm_put_secret_value(f->sm, "s", &nul, NULL, 0, NULL, id), 0);
	assert_int_equal(sm_snapshot_current(f->sm, "s", &snap), 0);
	assert_false(sm_snapshot_binary(snap));
	sm_snapshot_free(snap);
}

static void test_put_keeps_the_mounts_pending_token(void **state)
{
	struct fx *f = *state;
	char id[SM_VERSION_ID_MAX + 1];
	assert_int_equal(create(f, "s", "x", NULL, NULL), 0);
	assert_int_equal(sm_set_request_token(f->sm, "s", TOKEN_A, strlen(TOKEN_A)), 0);
	struct sm_value v = str("api");
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, NULL, 0, TOKEN_B, id), 0);
	/* The file's next commit still gets the token set for it. */
	assert_int_equal(tu_sm_put_str(f->sm, "s", "file", id), 0);
	assert_string_equal(id, TOKEN_A);
}

static void test_update_is_all_or_nothing(void **state)
{
	struct fx *f = *state;
	char id[SM_VERSION_ID_MAX + 1];
	assert_int_equal(create(f, "s", "x", NULL, NULL), 0);
	struct sm_value v = str("new");
	struct sm_update_request req = { .description = "d", .kms_key_id = "alias/none-such",
					 .value = &v, .token = TOKEN_A };
	assert_int_equal(sm_update_secret(f->sm, "s", &req, id), -EINVAL);
	struct sm_secret *s;
	assert_int_equal(sm_secret_copy(f->sm, "s", &s), 0);
	assert_null(s->description);
	assert_int_equal(s->nversions, 1);
	secret_free(s);
	req.kms_key_id = NULL;
	assert_int_equal(sm_update_secret(f->sm, "s", &req, id), 0);
	assert_string_equal(id, TOKEN_A);
	reopen(f);
	assert_int_equal(sm_secret_copy(f->sm, "s", &s), 0);
	assert_string_equal(s->description, "d");
	assert_int_equal(s->nversions, 2);
	secret_free(s);
	/* Description alone: no version. */
	struct sm_update_request only = { .description = "" };
	assert_int_equal(sm_update_secret(f->sm, "s", &only, id), 0);
	assert_string_equal(id, "");
	assert_int_equal(tu_sm_nversions(f->sm, "s"), 2);
}

/* ---------- tags, stages, deletion ---------- */

static void test_tags_all_or_nothing(void **state)
{
	struct fx *f = *state;
	assert_int_equal(create(f, "s", "x", NULL, NULL), 0);
	struct sm_tag_arg ok[] = { { "a", "1" }, { "a", "2" }, { "b", "" } };
	assert_int_equal(sm_tag_secret(f->sm, "s", ok, 3), 0);
	struct sm_tag_arg bad[] = { { "c", "3" }, { "aws:x", "" } };
	assert_int_equal(sm_tag_secret(f->sm, "s", bad, 2), -EINVAL);
	struct sm_secret *s;
	assert_int_equal(sm_secret_copy(f->sm, "s", &s), 0);
	assert_int_equal(s->ntags, 2);
	assert_string_equal(s->tags[0].value, "2");
	secret_free(s);
	const char *keys[] = { "a", "zzz" };
	assert_int_equal(sm_untag_secret(f->sm, "s", keys, 2), 0);
	assert_int_equal(sm_untag_secret(f->sm, "s", keys + 1, 1), 0);
	assert_int_equal(sm_secret_copy(f->sm, "s", &s), 0);
	assert_int_equal(s->ntags, 1);
	secret_free(s);
}

static void test_move_stage_checks(void **state)
{
	struct fx *f = *state;
	char v1[SM_VERSION_ID_MAX + 1], v2[SM_VERSION_ID_MAX + 1];
	assert_int_equal(create(f, "s", "1", NULL, v1), 0);
	struct sm_value v = str("2");
	const char *pending[] = { "AWSPENDING" };
	assert_int_equal(sm_put_secret_value(f->sm, "s", &v, pending, 1, NULL, v2), 0);
	sm_refusal_clear();
	assert_int_equal(sm_move_stage(f->sm, "s", "AWSCURRENT", NULL, v2), -EINVAL);
	assert_non_null(strstr(sm_refusal(), v1));
	assert_int_equal(sm_move_stage(f->sm, "s", "AWSCURRENT", v2, v2), -EINVAL);
	assert_int_equal(sm_move_stage(f->sm, "s", "AWSCURRENT", NULL, NULL), -EINVAL);
	assert_int_equal(sm_move_stage(f->sm, "s", "AWSCURRENT", v1, v2), 0);
	assert_label(f, "s", "AWSCURRENT", v2);
	assert_label(f, "s", "AWSPENDING", v2);
	assert_label(f, "s", "AWSPREVIOUS", v1);
	assert_int_equal(sm_move_stage(f->sm, "s", "AWSPENDING", v2, NULL), 0);
	assert_label(f, "s", "AWSPENDING", NULL);
	assert_int_equal(sm_move_stage(f->sm, "s", "NEW", NULL, v1), 0);
	assert_label(f, "s", "NEW", v1);
}

static void test_delete_windows_and_force(void **state)
{
	struct fx *f = *state;
	int64_t when;
	assert_int_equal(create(f, "s", "x", NULL, NULL), 0);
	assert_int_equal(sm_delete_secret(f->sm, "s", 6, false, &when), -EINVAL);
	assert_int_equal(sm_delete_secret(f->sm, "s", 7, false, &when), 0);
	int64_t days = (when - time_now_ms()) / (24 * 3600 * 1000LL);
	assert_true(days == 6 || days == 7);
	assert_int_equal(sm_delete_secret(f->sm, "s", 7, false, &when), -EBUSY);
	char name[SM_NAME_MAX + 1];
	bool deleted;
	assert_int_equal(sm_resolve_id(f->sm, "s", name, &deleted), 0);
	assert_true(deleted);
	assert_int_equal(sm_delete_secret(f->sm, "s", 0, true, &when), 0);
	assert_int_equal(sm_resolve_id(f->sm, "s", name, &deleted), -ENOENT);
	/* A secret without a version is scheduled too, as the service does. */
	assert_int_equal(create(f, "e", NULL, NULL, NULL), 0);
	assert_int_equal(sm_delete_secret(f->sm, "e", 30, false, &when), 0);
	reopen(f);
	assert_int_equal(sm_resolve_id(f->sm, "e", name, &deleted), 0);
	assert_true(deleted);
}

/* ---------- SecretId ---------- */

static void test_resolve_ids(void **state)
{
	struct fx *f = *state;
	char arn[SM_NAME_MAX + 128], name[SM_NAME_MAX + 1], id[SM_NAME_MAX + 160];
	bool deleted;
	assert_int_equal(create(f, "app/db", "x", NULL, NULL), 0);
	assert_int_equal(create(f, "tail-abc123", "x", NULL, NULL), 0);
	assert_int_equal(sm_arn_of(f->sm, "app/db", arn, sizeof(arn)), 0);
	assert_int_equal(sm_resolve_id(f->sm, arn, name, &deleted), 0);
	assert_string_equal(name, "app/db");
	assert_false(deleted);
	snprintf(id, sizeof(id), "%.*s", (int)strlen(arn) - 7, arn);
	assert_int_equal(sm_resolve_id(f->sm, id, name, &deleted), 0);
	assert_string_equal(name, "app/db");
	snprintf(id, sizeof(id), "%.*sZZZZZZ", (int)strlen(arn) - 6, arn);
	assert_int_equal(sm_resolve_id(f->sm, id, name, &deleted), -ENOENT);
	/* Another region's or account's ARN is not this store's. */
	assert_int_equal(sm_resolve_id(f->sm, "arn:aws:secretsmanager:eu-west-1:000000000000:"
				       "secret:app/db", name, &deleted), -ENOENT);
	/* A name ending like a suffix: its full ARN finds it, its partial one not. */
	assert_int_equal(sm_arn_of(f->sm, "tail-abc123", arn, sizeof(arn)), 0);
	assert_int_equal(sm_resolve_id(f->sm, arn, name, &deleted), 0);
	snprintf(id, sizeof(id), "%.*s", (int)strlen(arn) - 7, arn);
	assert_int_equal(sm_resolve_id(f->sm, id, name, &deleted), -ENOENT);
	struct sm_listing l;
	assert_int_equal(sm_secret_names(f->sm, false, &l), 0);
	assert_int_equal(l.count, 2);
	sm_listing_free(&l);
}

/* ---------- filters ---------- */

static bool match(struct sm_secret *s, enum filter_key key, const char *value)
{
	const char *values[] = { value };
	struct sm_filter flt = { key, values, 1 };
	return filter_matches(s, &flt, 1);
}

static void test_filters(void **state)
{
	(void)state;
	struct sm_tag tags[] = { { "Team", "data-eng" } };
	struct sm_secret s = { .name = "prod/COMPANYthings", .description = "the main Database",
			       .tags = tags, .ntags = 1 };
	assert_true(match(&s, FILTER_NAME, "prod/"));
	assert_false(match(&s, FILTER_NAME, "Prod/"));
	assert_true(match(&s, FILTER_NAME, "!dev/"));
	assert_true(match(&s, FILTER_DESCRIPTION, "MAIN data"));
	assert_false(match(&s, FILTER_DESCRIPTION, "ain"));
	assert_true(match(&s, FILTER_TAG_KEY, "Te"));
	assert_false(match(&s, FILTER_TAG_KEY, "te"));
	assert_true(match(&s, FILTER_TAG_VALUE, "data-"));
	assert_true(match(&s, FILTER_ALL, "ythings"));
	assert_true(match(&s, FILTER_ALL, "compan"));
	assert_false(match(&s, FILTER_ALL, "things"));
	assert_true(match(&s, FILTER_ALL, "eng"));
	assert_false(match(&s, FILTER_PRIMARY_REGION, "us"));
	assert_true(match(&s, FILTER_OWNING_SERVICE, "!rds"));
	struct sm_secret mixed = { .name = "prod-AppBeta/x" };
	assert_false(match(&mixed, FILTER_ALL, "AppBeta"));
	assert_true(match(&mixed, FILTER_ALL, "prod-app"));
	const char *why;
	enum filter_key k;
	assert_int_equal(filter_key_parse("tag-value", &k), 0);
	assert_int_equal(k, FILTER_TAG_VALUE);
	assert_int_equal(filter_key_parse("colour", &k), -EINVAL);
	assert_int_equal(filter_value_check("ok value:/_+=.@-!", &why), 0);
	assert_int_equal(filter_value_check("no*", &why), -EINVAL);
}

/* ---------- base64 ---------- */

static void test_base64(void **state)
{
	(void)state;
	uint8_t out[16];
	char text[16];
	size_t n;
	base64_encode((const uint8_t *)"\x00\x01\x02\xff", 4, text);
	assert_memory_equal(text, "AAEC/w==", 8);
	assert_int_equal(base64_encoded_len(4), 8);
	assert_int_equal(base64_decode("AAEC/w==", 8, out, &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "\x00\x01\x02\xff", 4);
	assert_int_equal(base64_decode("", 0, out, &n), 0);
	assert_int_equal(n, 0);
	static const char *const bad[] = { "AAEC/w=", "AAEC/x==", "A===", "AA=A", "AAEC_w==",
					   "AAE\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(base64_decode(bad[i], strlen(bad[i]), out, &n), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_is_one_commit_with_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_refusals_store_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_existing_replay_and_deleted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_places, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_without_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_new_token_same_value_is_a_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_type_is_the_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_put_keeps_the_mounts_pending_token, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_is_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tags_all_or_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_move_stage_checks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_windows_and_force, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve_ids, setup, teardown),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_base64),
	};
	return tu_run_group("requests", tests, group_setup, NULL);
}
