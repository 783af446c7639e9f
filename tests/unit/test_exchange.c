/* Unit tests of secrets/exchange: the lines of export and import. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/exchange.h"

static const char describe[] =
	"{\"ARN\":\"arn:aws:secretsmanager:us-east-1:000000000000:secret:app/db-AbCdEf\","
	"\"Name\":\"app/db\",\"Description\":\"the db\",\"KmsKeyId\":\"alias/app\","
	"\"LastChangedDate\":\"2024-01-02T00:00:00.000Z\",\"Tags\":[{\"Key\":\"team\",\"Value\":\"ops\"}],"
	"\"CreatedDate\":\"2024-01-01T00:00:00.000Z\"}";

static const char listing[] =
	"11111111-1111-1111-1111-111111111111 2024-01-01T00:00:00.001Z OLD,KEEP\n"
	"22222222-2222-2222-2222-222222222222 2024-01-01T00:00:00.002Z \n"
	"33333333-3333-3333-3333-333333333333 2024-01-01T00:00:00.003Z AWSCURRENT\n";

static void test_versions_listing_parsed(void **state)
{
	struct exchange_version *v;
	size_t n;
	(void)state;
	assert_int_equal(exchange_versions_parse(listing, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].id, "11111111-1111-1111-1111-111111111111");
	assert_string_equal(v[0].created, "2024-01-01T00:00:00.001Z");
	assert_int_equal(v[0].nstages, 2);
	assert_string_equal(v[0].stages[1], "KEEP");
	assert_int_equal(v[1].nstages, 0);
	assert_true(exchange_version_has(&v[2], "AWSCURRENT"));
	assert_ptr_equal(exchange_version_find(v, n, v[1].id), &v[1]);
	assert_null(exchange_version_find(v, n, "nope"));
	exchange_versions_free(v, n);
	assert_int_equal(exchange_versions_parse("", &v, &n), 0);
	assert_int_equal(n, 0);
	exchange_versions_free(v, n);
	assert_int_equal(exchange_versions_parse("no-spaces\n", &v, &n), -EINVAL);
}

/* The AWSCURRENT line of export, decoded by import: every field comes back. */
static void test_secret_line_round_trip(void **state)
{
	struct exchange_version *v;
	struct exchange_describe *d;
	size_t n;
	struct secbuf value = { 0 }, line = { 0 }, back = { 0 };
	struct exchange_record r;
	const char *why;
	(void)state;
	assert_int_equal(exchange_versions_parse(listing, &v, &n), 0);
	assert_int_equal(exchange_describe_parse(describe, &d), 0);
	struct exchange_secret s = { d, v, n, 1234, 2345, 0640, "/usr/bin/true", NULL, 30 };
	assert_int_equal(secbuf_reserve(&value, 16), 0);
	memcpy(value.data, "pw\n\"x\"", 6);
	value.len = 6;
	assert_int_equal(exchange_encode(&s, &v[2], &value, false, true, &line), 0);
	assert_int_equal(line.data[line.len - 1], '\n');
	assert_int_equal(exchange_decode(line.data, line.len - 1, &r, &back, &why), 0);
	assert_string_equal(r.name, "app/db");
	assert_string_equal(r.version_id, v[2].id);
	assert_true(r.has_stages);
	assert_int_equal(r.nstages, 1);
	assert_string_equal(r.created, "2024-01-01T00:00:00.003Z"); /* the version's */
	assert_string_equal(r.description, "the db");
	assert_string_equal(r.kms_key_id, "alias/app");
	assert_int_equal(r.ntags, 1);
	assert_true(r.has_owner && r.has_mode && r.has_versions);
	assert_int_equal(r.uid, 1234);
	assert_int_equal(r.gid, 2345);
	assert_int_equal(r.mode, 0640);
	assert_int_equal(r.nversions, 3);
	assert_int_equal(r.versions[0].nstages, 2);
	assert_string_equal(r.versions[1].created, "2024-01-01T00:00:00.002Z");
	assert_string_equal(r.rotation_command, "/usr/bin/true");
	assert_int_equal(r.rotation_days, 30);
	assert_true(exchange_record_describes_secret(&r));
	assert_int_equal(back.len, 6);
	assert_memory_equal(back.data, "pw\n\"x\"", 6);
	exchange_record_free(&r);

	/* An older version's line: its own fields only, and the key. */
	assert_int_equal(exchange_encode(&s, &v[1], &value, true, false, &line), 0);
	assert_int_equal(exchange_decode(line.data, line.len - 1, &r, &back, &why), 0);
	assert_true(r.binary && r.has_stages);
	assert_int_equal(r.nstages, 0);
	assert_string_equal(r.kms_key_id, "alias/app");
	assert_null(r.description);
	assert_false(exchange_record_describes_secret(&r));
	exchange_record_free(&r);
	exchange_describe_free(d);
	exchange_versions_free(v, n);
	secbuf_free(&value);
	secbuf_free(&line);
	secbuf_free(&back);
}

/* user.sm.describe is parsed once per secret; anything but an object is refused. */
static void test_describe_is_an_object(void **state)
{
	static const char *const bad[] = { "", "[]", "\"x\"", "{\"Name\":", "nope" };
	struct exchange_describe *d = (struct exchange_describe *)&d; /* any non-NULL */
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(exchange_describe_parse(bad[i], &d), -EINVAL);
		assert_null(d);
	}
	exchange_describe_free(NULL);
}

static void test_dates_from_elsewhere(void **state)
{
	struct secbuf value = { 0 };
	struct exchange_record r;
	const char *why;
	(void)state;
	const char *aws = "{\"Name\":\"a\",\"CreatedDate\":\"2023-05-01T12:34:56.789000+00:00\"}";
	assert_int_equal(exchange_decode((const uint8_t *)aws, strlen(aws), &r, &value, &why), 0);
	assert_string_equal(r.created, "2023-05-01T12:34:56.789Z");
	exchange_record_free(&r);
	const char *epoch = "{\"Name\":\"a\",\"CreatedDate\":1682944496.5}";
	assert_int_equal(exchange_decode((const uint8_t *)epoch, strlen(epoch), &r, &value, &why), 0);
	assert_string_equal(r.created, "2023-05-01T12:34:56.500Z");
	exchange_record_free(&r);
	secbuf_free(&value);
}

/* What import decoded exports again, dates missing included (fuzz_exchange). */
static void test_decoded_record_encodes_again(void **state)
{
	static const char in[] =
		"{\"Name\":\"a\",\"VersionId\":\"44444444-4444-4444-4444-444444444444\","
		"\"Secretsfs\":{\"Versions\":[{\"VersionId\":\"33333333-3333-3333-3333-333333333333\"}]}}";
	struct secbuf value = { 0 }, line = { 0 };
	struct exchange_record r, back;
	struct exchange_describe *d;
	const char *why;
	(void)state;
	assert_int_equal(exchange_decode((const uint8_t *)in, strlen(in), &r, &value, &why), 0);
	assert_null(r.created);
	assert_int_equal(r.nversions, 1);
	assert_null(r.versions[0].created);
	assert_int_equal(exchange_describe_parse("{\"Name\":\"a\"}", &d), 0);
	const struct exchange_version v = { r.version_id, r.created, r.stages, r.nstages };
	const struct exchange_secret s = { d, r.versions, r.nversions, 0, 0, 0600, NULL, NULL, 0 };
	assert_int_equal(exchange_encode(&s, &v, NULL, false, true, &line), 0);
	assert_int_equal(exchange_decode(line.data, line.len - 1, &back, &value, &why), 0);
	assert_string_equal(back.version_id, "44444444-4444-4444-4444-444444444444");
	assert_null(back.created);
	assert_int_equal(back.nversions, 1);
	assert_null(back.versions[0].created);
	exchange_describe_free(d);
	exchange_record_free(&back);
	exchange_record_free(&r);
	secbuf_free(&line);
	secbuf_free(&value);
}

/* A line's VersionId becomes .versions/NAME/ID and the client request
 * token: one that names.h refuses refuses the line, with the rule as reason. */
static void test_bad_version_id_refuses_the_line(void **state)
{
	static const char *const ids[] = {
		"x", "../x", "a b",
		"../../../../tmp/secretsfs-escape-0001",  /* 37 characters, with '/' */
		"44444444-4444-4444 4444-444444444444",   /* 36, with a space */
		"44444444-4444-4444-4444-44444444444\\u0009", /* a tab, escaped */
		"4444444444444444444444444444444444444444444444444444444444444444x", /* 65 */
	};
	struct secbuf value = { 0 };
	struct exchange_record r;
	char line[256];
	(void)state;
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		const char *why = NULL;
		snprintf(line, sizeof(line),
			 "{\"Name\":\"a\",\"VersionId\":\"%s\",\"SecretString\":\"v\"}", ids[i]);
		int rc = exchange_decode((const uint8_t *)line, strlen(line), &r, &value, &why);
		if (rc != -EINVAL || !why || !strstr(why, "version id"))
			fail_msg("%s: gave %d (%s)", line, rc, why ? why : "no reason");
		assert_null(r.name);
		assert_null(r.version_id);
		assert_int_equal(value.len, 0);
	}
	secbuf_free(&value);
}

/* AWS's DescribeSecret shows AutomaticallyAfterDays beside the schedule it
 * comes from; the two exclude each other, and the schedule is the setting. */
static void test_rotation_rules_both_take_schedule(void **state)
{
	static const char in[] =
		"{\"Name\":\"a\",\"Secretsfs\":{\"RotationRules\":"
		"{\"AutomaticallyAfterDays\":7,\"ScheduleExpression\":\"rate(7 days)\"}}}";
	struct secbuf value = { 0 };
	struct exchange_record r;
	const char *why;
	(void)state;
	assert_int_equal(exchange_decode((const uint8_t *)in, strlen(in), &r, &value, &why), 0);
	assert_string_equal(r.rotation_schedule, "rate(7 days)");
	assert_int_equal(r.rotation_days, 0);
	exchange_record_free(&r);
	secbuf_free(&value);
}

static void test_bad_fields_refused(void **state)
{
	static const char *const bad[] = {
		"{\"Name\":\"a\",\"CreatedDate\":\"yesterday\"}",
		"{\"Name\":\"a\",\"VersionStages\":\"AWSCURRENT\"}",
		"{\"Name\":\"a\",\"VersionStages\":[\"a/b\"]}",
		"{\"Name\":\"a\",\"Secretsfs\":[]}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"Owner\":1}}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"Owner\":-1,\"Group\":0}}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"Mode\":\"0999\"}}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"Mode\":384}}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"Versions\":{}}}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"Versions\":[{\"VersionId\":\"short\"}]}}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"RotationRules\":{\"AutomaticallyAfterDays\":0}}}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"RotationCommand\":1}}",
		"{\"Name\":\"a\",\"Tags\":[\"x\"]}",
		"{\"Name\":\"a\",\"VersionId\":\"short\"}",
		"{\"Name\":\"a\",\"VersionId\":\"44444444-4444-4444-4444-44444444/444\"}",
		"{\"Name\":\"a\",\"VersionId\":7}",
		"{\"Name\":\"../a\"}",
		"{\"Name\":\"a/../b\"}",
		/* An escaped NUL would cut the string short. */
		"{\"Name\":\"a\\u0000/../../b\"}",
		"{\"Name\":\"a\",\"Description\":\"x\\u0000y\"}",
		"{\"Name\":\"a\",\"Tags\":[{\"Key\":\"k\\u0000\",\"Value\":\"v\"}]}",
		"{\"Name\":\"a\",\"Secretsfs\":{\"RotationCommand\":\"/bin/true\\u0000x\"}}",
	};
	struct secbuf value = { 0 };
	struct exchange_record r;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		int rc = exchange_decode((const uint8_t *)bad[i], strlen(bad[i]), &r, &value, &why);
		if (rc != -EINVAL || !why)
			fail_msg("%s: gave %d without a reason", bad[i], rc);
	}
	secbuf_free(&value);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_versions_listing_parsed),
		cmocka_unit_test(test_secret_line_round_trip),
		cmocka_unit_test(test_describe_is_an_object),
		cmocka_unit_test(test_dates_from_elsewhere),
		cmocka_unit_test(test_bad_fields_refused),
		cmocka_unit_test(test_decoded_record_encodes_again),
		cmocka_unit_test(test_bad_version_id_refuses_the_line),
		cmocka_unit_test(test_rotation_rules_both_take_schedule),
	};
	return tu_run_group("exchange", tests, tu_group_crypto, NULL);
}
