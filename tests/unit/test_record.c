/* Unit tests of secrets/record: metadata JSON, sealed version records, keys. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/record.h"

#define V1 "11111111-1111-4111-8111-111111111111"
#define V2 "22222222-2222-4222-8222-222222222222"
#define V3 "33333333333333333333333333333333333333333333333333333333333333ff" /* 64 */
#define KEYID "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"
#define UUID "0123456789abcdef0123456789abcdef"
#define NAME_JSON "\"name\":\"prod\\/db\\/password\""

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

/* A secret with three versions, four labels (one custom), two tags. */
static struct sm_secret *sample_secret(void)
{
	struct sm_secret *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->name = xstrdup("prod/db/password");
	snprintf(s->uuid, sizeof(s->uuid), "%s", UUID);
	snprintf(s->arn_suffix, sizeof(s->arn_suffix), "%s", "Ab3dE9");
	s->description = xstrdup("the \"main\" DB password\nline two \xc3\xa9");
	s->kms_key_id = xstrdup(KEYID);
	s->created_ms = 1700000000123LL;
	s->changed_ms = 1700000999456LL;
	s->accessed_ms = 1700001000000LL;
	s->deleted_ms = 1700002000000LL;
	s->purge_ms = 1700002000000LL + 30LL * 86400000LL;
	s->mode = 0640;
	s->uid = 1000;
	s->gid = 4294967294u;
	s->nversions = 3;
	s->versions = calloc(3, sizeof(*s->versions));
	assert_non_null(s->versions);
	const char *ids[3] = { V1, V2, V3 };
	for (int i = 0; i < 3; i++) {
		struct sm_version *v = &s->versions[i];
		snprintf(v->id, sizeof(v->id), "%s", ids[i]);
		v->key_id = record_key_id(KEYID);
		assert_non_null(v->key_id);
		v->created_ms = 1700000000000LL + i;
		v->size = (uint32_t)(i == 2 ? SM_VALUE_MAX : 10 * (i + 1));
		v->binary = i == 1;
	}
	assert_int_equal(secret_label_set(s, "AWSCURRENT", V3), 0);
	assert_int_equal(secret_label_set(s, "AWSPREVIOUS", V2), 0);
	assert_int_equal(secret_label_set(s, "AWSPENDING", V1), 0);
	assert_int_equal(secret_label_set(s, "Blue-Green_1", V3), 0);
	s->ntags = 2;
	s->tags = calloc(2, sizeof(*s->tags));
	assert_non_null(s->tags);
	s->tags[0].key = xstrdup("team");
	s->tags[0].value = xstrdup("payments");
	s->tags[1].key = xstrdup("env:tier");
	s->tags[1].value = xstrdup("");
	s->persisted = true;
	return s;
}

static struct sm_secret *minimal_secret(void);

static const char *tag_value(const struct sm_secret *s, const char *key)
{
	for (size_t i = 0; i < s->ntags; i++)
		if (strcmp(s->tags[i].key, key) == 0)
			return s->tags[i].value;
	return NULL;
}

static void assert_same_secret(const struct sm_secret *a, const struct sm_secret *b)
{
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->uuid, b->uuid);
	assert_string_equal(a->arn_suffix, b->arn_suffix);
	if (a->description)
		assert_string_equal(a->description, b->description);
	else
		assert_null(b->description);
	if (a->kms_key_id)
		assert_string_equal(a->kms_key_id, b->kms_key_id);
	else
		assert_null(b->kms_key_id);
	assert_true(a->created_ms == b->created_ms);
	assert_true(a->changed_ms == b->changed_ms);
	assert_true(a->accessed_ms == b->accessed_ms);
	assert_true(a->deleted_ms == b->deleted_ms);
	assert_true(a->purge_ms == b->purge_ms);
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->uid, b->uid);
	assert_int_equal(a->gid, b->gid);
	assert_int_equal(a->nversions, b->nversions);
	for (size_t i = 0; i < a->nversions; i++) { /* order kept: oldest first */
		assert_string_equal(a->versions[i].id, b->versions[i].id);
		assert_string_equal(a->versions[i].key_id, b->versions[i].key_id);
		assert_true(a->versions[i].created_ms == b->versions[i].created_ms);
		assert_int_equal(a->versions[i].size, b->versions[i].size);
		assert_int_equal(a->versions[i].binary, b->versions[i].binary);
	}
	assert_int_equal(a->nlabels, b->nlabels);
	for (size_t i = 0; i < a->nlabels; i++) {
		const char *id = secret_label_version(b, a->labels[i].name);
		assert_non_null(id);
		assert_string_equal(id, a->labels[i].version_id);
	}
	assert_int_equal(a->ntags, b->ntags);
	for (size_t i = 0; i < a->ntags; i++) {
		const char *v = tag_value(b, a->tags[i].key);
		assert_non_null(v);
		assert_string_equal(v, a->tags[i].value);
	}
}

static int decode_text(const char *text, struct sm_secret **out)
{
	return record_decode_secret((const uint8_t *)text, strlen(text), out);
}

static void test_secret_round_trip(void **state)
{
	struct sm_secret *s = sample_secret(), *d = NULL;
	(void)state;
	char *text = record_encode_secret(s);
	assert_non_null(text);
	assert_int_equal(decode_text(text, &d), 0);
	assert_non_null(d);
	assert_same_secret(s, d);
	assert_true(d->persisted);
	/* Stable: encoding the decoded copy decodes to the same again. */
	char *again = record_encode_secret(d);
	struct sm_secret *d2 = NULL;
	assert_int_equal(decode_text(again, &d2), 0);
	assert_same_secret(s, d2);
	secret_free(d2);
	free(again);
	secret_free(d);
	free(text);
	secret_free(s);
}

static void test_secret_round_trip_minimal(void **state)
{
	struct sm_secret *s = minimal_secret(), *d = NULL;
	(void)state;
	char *text = record_encode_secret(s);
	assert_non_null(text);
	assert_int_equal(decode_text(text, &d), 0);
	assert_same_secret(s, d);
	assert_null(d->description);
	assert_null(d->kms_key_id);
	assert_int_equal(d->nversions, 0);
	assert_int_equal(d->nlabels, 0);
	assert_int_equal(d->ntags, 0);
	assert_true(d->deleted_ms == 0);
	assert_null(secret_current(d));
	secret_free(d);
	free(text);
	secret_free(s);
}

static void test_secret_decode_rejects_truncation(void **state)
{
	struct sm_secret *s = sample_secret(), *d = NULL;
	(void)state;
	char *text = record_encode_secret(s);
	size_t len = strlen(text);
	for (size_t cut = 0; cut < len; cut++) {
		d = (struct sm_secret *)1;
		int rc = record_decode_secret((const uint8_t *)text, cut, &d);
		if (rc != -EIO)
			fail_msg("truncated to %zu of %zu bytes: %d", cut, len, rc);
		assert_null(d);
	}
	/* Trailing bytes after the object are refused too. */
	char *longer = malloc(len + 2);
	assert_non_null(longer);
	memcpy(longer, text, len);
	longer[len] = 'x';
	assert_int_equal(record_decode_secret((const uint8_t *)longer, len + 1, &d), -EIO);
	longer[len] = '\0';
	assert_int_equal(record_decode_secret((const uint8_t *)longer, len + 1, &d), -EIO);
	free(longer);
	free(text);
	secret_free(s);
}

/* A secret with no description, versions, labels or tags. */
static struct sm_secret *minimal_secret(void)
{
	struct sm_secret *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->name = xstrdup("a");
	snprintf(s->uuid, sizeof(s->uuid), "%s", UUID);
	snprintf(s->arn_suffix, sizeof(s->arn_suffix), "%s", "zzzzzz");
	s->created_ms = s->changed_ms = 5;
	s->mode = 0600;
	return s;
}

/* A secret's JSON with one substring replaced: must be refused. */
static void expect_rejected_edit_of(struct sm_secret *s, const char *from, const char *to)
{
	struct sm_secret *d = (struct sm_secret *)1;
	char *text = record_encode_secret(s);
	char *at = strstr(text, from);
	if (!at)
		fail_msg("\"%s\" not in %s", from, text);
	size_t flen = strlen(from), tlen = strlen(to), len = strlen(text);
	char *edited = malloc(len - flen + tlen + 1);
	assert_non_null(edited);
	size_t pre = (size_t)(at - text);
	memcpy(edited, text, pre);
	memcpy(edited + pre, to, tlen);
	memcpy(edited + pre + tlen, at + flen, len - pre - flen + 1);
	int rc = decode_text(edited, &d);
	if (rc != -EIO)
		fail_msg("edit \"%s\" -> \"%s\" accepted (%d): %s", from, to, rc, edited);
	assert_null(d);
	free(edited);
	free(text);
	secret_free(s);
}

static void expect_rejected_edit(const char *from, const char *to)
{
	expect_rejected_edit_of(sample_secret(), from, to);
}

static void test_secret_decode_rejects_wrong_types(void **state)
{
	(void)state;
	expect_rejected_edit(NAME_JSON, "\"name\":5");
	expect_rejected_edit("\"id\":\"" UUID "\"", "\"id\":[]");
	expect_rejected_edit("\"mode\":416", "\"mode\":\"416\"");
	expect_rejected_edit("\"mode\":416", "\"mode\":4.5");
	expect_rejected_edit("\"uid\":1000", "\"uid\":null");
	expect_rejected_edit("\"created\":1700000000123", "\"created\":\"yesterday\"");
	expect_rejected_edit("\"description\":\"", "\"description\":7,\"x\":\"");
	expect_rejected_edit_of(minimal_secret(), "\"versions\":[]", "\"versions\":{}");
	expect_rejected_edit_of(minimal_secret(), "\"versions\":[]", "\"versions\":[1]");
	expect_rejected_edit_of(minimal_secret(), "\"labels\":{}", "\"labels\":[]");
	expect_rejected_edit_of(minimal_secret(), "\"tags\":{}", "\"tags\":\"x\"");
	expect_rejected_edit_of(minimal_secret(), "\"tags\":{}", "\"tags\":null");
	expect_rejected_edit("\"tags\":{\"", "\"tags\":{\"n\":1,\"");
	expect_rejected_edit("\"size\":10,", "\"size\":\"10\",");
	expect_rejected_edit("\"binary\":false", "\"binary\":0");
	expect_rejected_edit("\"key\":\"" KEYID "\"", "\"key\":{}");
}

static void test_secret_decode_rejects_bad_values(void **state)
{
	(void)state;
	/* A label pointing to a version the secret does not have. */
	expect_rejected_edit("\"AWSPREVIOUS\":\"" V2 "\"",
			     "\"AWSPREVIOUS\":\"44444444-4444-4444-8444-444444444444\"");
	expect_rejected_edit("\"AWSPREVIOUS\":\"" V2 "\"", "\"AWSPREVIOUS\":7");
	/* Names that break the naming rules. */
	expect_rejected_edit(NAME_JSON, "\"name\":\"prod/db pass\"");
	expect_rejected_edit(NAME_JSON, "\"name\":\".hidden\"");
	expect_rejected_edit(NAME_JSON, "\"name\":\"prod//db\"");
	expect_rejected_edit(NAME_JSON, "\"name\":\"\"");
	expect_rejected_edit(NAME_JSON, "\"name\":\"../x\"");
	/* Ids of the wrong shape. */
	expect_rejected_edit("\"id\":\"" UUID "\"", "\"id\":\"0123\"");
	expect_rejected_edit("\"arn_suffix\":\"Ab3dE9\"", "\"arn_suffix\":\"Ab3\"");
	expect_rejected_edit("\"id\":\"" V1 "\"", "\"id\":\"short\"");
	expect_rejected_edit("\"id\":\"" V1 "\"", "\"id\":\"11111111/1111-4111-8111-111111111111\"");
	expect_rejected_edit("\"key\":\"" KEYID "\"", "\"key\":\"aws/secretsmanager\"");
	/* Out-of-range numbers. */
	expect_rejected_edit("\"mode\":416", "\"mode\":-1");
	expect_rejected_edit("\"mode\":416", "\"mode\":65536");
	expect_rejected_edit("\"uid\":1000", "\"uid\":-5");
	expect_rejected_edit("\"uid\":1000", "\"uid\":4294967296");
	expect_rejected_edit("\"size\":10,", "\"size\":0,");
	expect_rejected_edit("\"size\":65536,", "\"size\":65537,");
	/* Required members missing. */
	expect_rejected_edit(NAME_JSON ",", "");
	expect_rejected_edit("\"mode\":416,", "");
}

static void test_secret_decode_rejects_garbage(void **state)
{
	struct sm_secret *d = (struct sm_secret *)1;
	static const char *bad[] = {
		"", "null", "[]", "\"text\"", "42", "{}", "{\"name\":\"a\"}", "not json",
		"\xff\xfe\x00",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = (struct sm_secret *)1;
		assert_int_equal(decode_text(bad[i], &d), -EIO);
		assert_null(d);
	}
	/* Embedded NUL inside the given length. */
	static const char nul[] = "{\"name\":\"a\0b\"}";
	assert_int_equal(record_decode_secret((const uint8_t *)nul, sizeof(nul) - 1, &d), -EIO);
}

static void test_folder_round_trip_and_rejects(void **state)
{
	struct sm_folder f = { .path = "prod/db", .mode = 0750, .uid = 7, .gid = 8,
			       .created_ms = 111, .changed_ms = 222, .persisted = false };
	struct sm_folder *d = NULL;
	(void)state;
	char *text = record_encode_folder(&f);
	assert_non_null(text);
	assert_int_equal(record_decode_folder("prod/db", (const uint8_t *)text, strlen(text), &d), 0);
	assert_non_null(d);
	assert_string_equal(d->path, "prod/db");
	assert_int_equal(d->mode, 0750);
	assert_int_equal(d->uid, 7);
	assert_int_equal(d->gid, 8);
	assert_true(d->created_ms == 111);
	assert_true(d->changed_ms == 222);
	assert_true(d->persisted);
	folder_free(d);
	/* The top folder is "". */
	assert_int_equal(record_decode_folder("", (const uint8_t *)text, strlen(text), &d), 0);
	assert_string_equal(d->path, "");
	folder_free(d);
	/* Bad path, truncation, wrong types. */
	d = (struct sm_folder *)1;
	assert_int_equal(record_decode_folder("a b", (const uint8_t *)text, strlen(text), &d), -EIO);
	assert_null(d);
	assert_int_equal(record_decode_folder(".versions", (const uint8_t *)text, strlen(text), &d),
			 -EIO);
	for (size_t cut = 0; cut < strlen(text); cut++)
		assert_int_equal(record_decode_folder("x", (const uint8_t *)text, cut, &d), -EIO);
	const char *wrong = "{\"mode\":\"0750\",\"uid\":7,\"gid\":8,\"created\":1,\"changed\":2}";
	assert_int_equal(record_decode_folder("x", (const uint8_t *)wrong, strlen(wrong), &d), -EIO);
	const char *missing = "{\"mode\":488,\"uid\":7,\"gid\":8,\"created\":1}";
	assert_int_equal(record_decode_folder("x", (const uint8_t *)missing, strlen(missing), &d),
			 -EIO);
	free(text);
}

static void test_record_keys(void **state)
{
	char buf[256], small[10];
	(void)state;
	assert_int_equal(record_key_secret("prod/db", buf, sizeof(buf)), 0);
	assert_string_equal(buf, RECORD_PREFIX_SECRET "prod/db");
	assert_int_equal(record_key_folder("prod", buf, sizeof(buf)), 0);
	assert_string_equal(buf, RECORD_PREFIX_FOLDER "prod");
	assert_int_equal(record_key_folder("", buf, sizeof(buf)), 0);
	assert_string_equal(buf, RECORD_PREFIX_FOLDER);
	assert_int_equal(record_key_version(UUID, V1, buf, sizeof(buf)), 0);
	assert_string_equal(buf, RECORD_PREFIX_VERSION UUID "/" V1);
	assert_int_equal(record_key_secret("a-long-name", small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(record_key_folder("a-long-name", small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(record_key_version(UUID, V1, small, sizeof(small)), -ENAMETOOLONG);
}

static void test_labels_and_clone(void **state)
{
	struct sm_secret *s = sample_secret();
	char buf[128];
	(void)state;
	assert_string_equal(secret_label_version(s, "AWSCURRENT"), V3);
	assert_null(secret_label_version(s, "NOPE"));
	assert_string_equal(secret_current(s)->id, V3);
	assert_non_null(secret_find_version(s, V2));
	assert_null(secret_find_version(s, "x"));
	secret_version_labels(s, V3, buf, sizeof(buf));
	assert_string_equal(buf, "AWSCURRENT,Blue-Green_1");
	secret_version_labels(s, V2, buf, sizeof(buf));
	assert_string_equal(buf, "AWSPREVIOUS");
	/* A label sits on one version only: moving it takes it off the other. */
	assert_int_equal(secret_label_set(s, "AWSPREVIOUS", V1), 0);
	secret_version_labels(s, V2, buf, sizeof(buf));
	assert_string_equal(buf, "");
	assert_int_equal(s->nlabels, 4);
	secret_label_remove(s, "AWSPENDING");
	secret_label_remove(s, "NOT-THERE");
	assert_int_equal(s->nlabels, 3);
	assert_null(secret_label_version(s, "AWSPENDING"));

	struct sm_secret *c = secret_clone(s);
	assert_non_null(c);
	assert_same_secret(s, c);
	assert_ptr_not_equal(c->name, s->name);
	assert_ptr_not_equal(c->versions, s->versions);
	assert_ptr_not_equal(c->labels, s->labels);
	/* Deep: changing the copy leaves the original alone. */
	assert_int_equal(secret_label_set(c, "AWSCURRENT", V1), 0);
	c->versions[0].size = 1;
	c->tags[0].value[0] = 'X';
	assert_string_equal(secret_label_version(s, "AWSCURRENT"), V3);
	assert_int_equal(s->versions[0].size, 10);
	assert_string_equal(s->tags[0].value, "payments");
	secret_free(c);
	secret_free(s);
	secret_free(NULL);
	folder_free(NULL);
}

/* ---------- sealed version records ---------- */

static uint8_t dek[KEYRING_WRAPPED_DEK_LEN];
static uint8_t val[100 + CRYPTO_SEAL_OVERHEAD];

static void encode_sample(bool binary, uint8_t **out, size_t *len)
{
	struct sealed_version v = { 0 };
	for (size_t i = 0; i < sizeof(dek); i++)
		dek[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < sizeof(val); i++)
		val[i] = (uint8_t)(255 - i);
	v.binary = binary;
	snprintf(v.key_id, sizeof(v.key_id), "%s", KEYID);
	v.wrapped_dek = dek;
	v.wrapped_dek_len = sizeof(dek);
	v.sealed_value = val;
	v.sealed_value_len = sizeof(val);
	assert_int_equal(record_encode_version(&v, out, len), 0);
	assert_non_null(*out);
}

static void test_shared_key_ids_and_labels(void **state)
{
	(void)state;
	char other[SM_KEY_ID_LEN + 1];
	memcpy(other, KEYID, sizeof(other));
	other[0] = other[0] == 'a' ? 'b' : 'a';
	const char *a = record_key_id(KEYID), *b = record_key_id(KEYID), *c = record_key_id(other);
	assert_non_null(a);
	assert_ptr_equal(a, b);
	assert_string_equal(c, other);
	assert_ptr_not_equal(a, c);
	/* AWS labels are shared, custom ones owned: both survive clone and free. */
	struct sm_secret *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->versions = calloc(1, sizeof(*s->versions));
	assert_non_null(s->versions);
	s->nversions = 1;
	snprintf(s->versions[0].id, sizeof(s->versions[0].id), "%s", "v1-0123456789abcdef0123456789abcd");
	s->versions[0].key_id = a;
	assert_int_equal(secret_label_set(s, "AWSCURRENT", s->versions[0].id), 0);
	assert_int_equal(secret_label_set(s, "blue", s->versions[0].id), 0);
	struct sm_secret *copy = secret_clone(s);
	assert_non_null(copy);
	secret_label_remove(s, "AWSCURRENT");
	secret_label_remove(s, "blue");
	secret_free(s);
	char labels[64];
	secret_version_labels(copy, copy->versions[0].id, labels, sizeof(labels));
	assert_string_equal(labels, "AWSCURRENT,blue");
	assert_ptr_equal(copy->versions[0].key_id, a);
	secret_free(copy);
}

static void test_version_round_trip(void **state)
{
	uint8_t *rec;
	size_t len;
	struct sealed_version d;
	(void)state;
	for (int binary = 0; binary < 2; binary++) {
		encode_sample(binary, &rec, &len);
		assert_int_equal(len, 4 + 1 + 1 + SM_KEY_ID_LEN + 2 + sizeof(dek) + 4 + sizeof(val));
		assert_int_equal(record_decode_version(rec, len, &d), 0);
		assert_int_equal(d.binary, binary);
		assert_string_equal(d.key_id, KEYID);
		assert_int_equal(d.wrapped_dek_len, sizeof(dek));
		assert_memory_equal(d.wrapped_dek, dek, sizeof(dek));
		assert_int_equal(d.sealed_value_len, sizeof(val));
		assert_memory_equal(d.sealed_value, val, sizeof(val));
		/* Points into the record. */
		assert_true(d.wrapped_dek >= rec && d.wrapped_dek < rec + len);
		assert_true(d.sealed_value >= rec && d.sealed_value + d.sealed_value_len == rec + len);
		free(rec);
	}
}

static void test_version_rejects_truncation(void **state)
{
	uint8_t *rec;
	size_t len;
	struct sealed_version d;
	(void)state;
	encode_sample(false, &rec, &len);
	for (size_t cut = 0; cut < len; cut++) {
		int rc = record_decode_version(rec, cut, &d);
		if (rc != -EIO)
			fail_msg("truncated to %zu of %zu bytes: %d", cut, len, rc);
	}
	/* One byte too many. */
	uint8_t *longer = malloc(len + 1);
	assert_non_null(longer);
	memcpy(longer, rec, len);
	longer[len] = 0;
	assert_int_equal(record_decode_version(longer, len + 1, &d), -EIO);
	free(longer);
	free(rec);
}

static void test_version_rejects_bad_header(void **state)
{
	uint8_t *rec;
	size_t len;
	struct sealed_version d;
	(void)state;
	encode_sample(false, &rec, &len);
	for (int i = 0; i < 4; i++) { /* magic "SFV1" */
		rec[i] ^= 0x01;
		assert_int_equal(record_decode_version(rec, len, &d), -EIO);
		rec[i] ^= 0x01;
	}
	rec[4] = 2; /* type byte: 0 string, 1 binary */
	assert_int_equal(record_decode_version(rec, len, &d), -EIO);
	rec[4] = 0;
	rec[5] = SM_KEY_ID_LEN - 1; /* key id length */
	assert_int_equal(record_decode_version(rec, len, &d), -EIO);
	rec[5] = SM_KEY_ID_LEN;
	size_t dek_at = 6 + SM_KEY_ID_LEN;
	rec[dek_at] ^= 0x01; /* wrapped key length off by one */
	assert_int_equal(record_decode_version(rec, len, &d), -EIO);
	rec[dek_at] ^= 0x01;
	rec[dek_at + 1] = 0xff;
	assert_int_equal(record_decode_version(rec, len, &d), -EIO);
	rec[dek_at + 1] = 0;
	size_t vlen_at = dek_at + 2 + sizeof(dek);
	rec[vlen_at + 3] = 0x80; /* value length huge */
	assert_int_equal(record_decode_version(rec, len, &d), -EIO);
	rec[vlen_at + 3] = 0;
	rec[vlen_at] ^= 0x01;
	assert_int_equal(record_decode_version(rec, len, &d), -EIO);
	rec[vlen_at] ^= 0x01;
	assert_int_equal(record_decode_version(rec, len, &d), 0);
	free(rec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_secret_round_trip),
		cmocka_unit_test(test_secret_round_trip_minimal),
		cmocka_unit_test(test_secret_decode_rejects_truncation),
		cmocka_unit_test(test_secret_decode_rejects_wrong_types),
		cmocka_unit_test(test_secret_decode_rejects_bad_values),
		cmocka_unit_test(test_secret_decode_rejects_garbage),
		cmocka_unit_test(test_folder_round_trip_and_rejects),
		cmocka_unit_test(test_record_keys),
		cmocka_unit_test(test_labels_and_clone),
		cmocka_unit_test(test_shared_key_ids_and_labels),
		cmocka_unit_test(test_version_round_trip),
		cmocka_unit_test(test_version_rejects_truncation),
		cmocka_unit_test(test_version_rejects_bad_header),
	};
	return tu_run_group("record", tests, NULL, NULL);
}
