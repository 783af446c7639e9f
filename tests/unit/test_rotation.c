/* Rotation bookkeeping in the domain: schedules, due rotations, label moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

#include "secrets/schedule.h"

struct fx {
	char dir[TU_PATH_MAX], path[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm *sm;
};

static const char *const db_json =
	"{\"engine\":\"postgres\",\"host\":\"h\",\"username\":\"u\",\"password\":\"p\"}";

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || tu_new_sm(f->dir, f->path, f->key, 30, &f->sm))
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

static void create(struct fx *f, const char *name, const char *value)
{
	assert_int_equal(sm_create(f->sm, name, 0600, 0, 0), 0);
	assert_int_equal(tu_sm_put_str(f->sm, name, value, NULL), 0);
}

static void test_schedules(void **state)
{
	const char *why;
	int64_t next;
	(void)state;
	assert_int_equal(schedule_check("rate(4 hours)", &why), 0);
	assert_int_equal(schedule_check("rate(1 day)", &why), 0);
	assert_int_equal(schedule_check("rate(3 hours)", &why), -EINVAL);
	assert_int_equal(schedule_check("rate(1001 days)", &why), -EINVAL);
	assert_int_equal(schedule_check("cron(0 3 ? * MON *)", &why), 0);
	assert_int_equal(schedule_check("cron(15 3 * * ? *)", &why), -EINVAL);
	assert_int_equal(schedule_check("cron(0 25 * * ? *)", &why), -EINVAL);
	assert_int_equal(schedule_check("cron(0 3 * *)", &why), -EINVAL);
	assert_int_equal(schedule_next("rate(12 hours)", 1000, &next), 0);
	assert_true(next == 1000 + 12 * 3600 * 1000LL);
	/* Friday 2026-11-27 12:00 UTC -> Monday 2026-11-30 03:00 UTC. */
	assert_int_equal(schedule_next("cron(0 3 ? * MON *)", 1795780800000LL, &next), 0);
	assert_true(next == 1796007600000LL);
	/* The first of each month at 01:00. */
	assert_int_equal(schedule_next("cron(0 1 1 * ? *)", 1795780800000LL, &next), 0);
	assert_true(next == 1796086800000LL);
}

/* Any value rotates (the command checks what it can rotate); removing the
 * command (CancelRotateSecret) keeps the rules, and only a command there
 * can be removed. */
static void test_any_secret_rotates_and_cancel_keeps_rules(void **state)
{
	struct fx *f = *state;
	struct sm_options o = tu_sm_options(30);
	struct sm_secret *s;
	char *json;
	create(f, "plain", "not json");
	assert_int_equal(sm_set_rotation_command(f->sm, "plain", "/bin/true"), 0);
	assert_int_equal(sm_set_rotation_rules(f->sm, "plain", 1001, NULL), -EINVAL);
	assert_int_equal(sm_set_rotation_rules(f->sm, "plain", 30, NULL), 0);
	assert_int_equal(sm_describe(f->sm, "plain", &json), 0);
	assert_non_null(strstr(json, "\"RotationEnabled\":true"));
	free(json);
	assert_int_equal(sm_set_rotation_command(f->sm, "plain", ""), 0);
	assert_int_equal(sm_set_rotation_command(f->sm, "plain", ""), -ENODATA);

	sm_close(f->sm);
	assert_int_equal(tu_open_sm(f->path, f->key, &o, &f->sm), 0);
	assert_int_equal(sm_secret_copy(f->sm, "plain", &s), 0);
	assert_null(s->rotation_command);
	assert_int_equal(s->rotation_days, 30);
	assert_int_equal(s->next_rotation_ms, 0);
	secret_free(s);
	assert_int_equal(sm_describe(f->sm, "plain", &json), 0);
	assert_non_null(strstr(json, "\"RotationEnabled\":false"));
	assert_non_null(strstr(json, "\"AutomaticallyAfterDays\":30"));
	assert_null(strstr(json, "NextRotationDate"));
	free(json);
}

/* A scheduled rotation whose date has passed is due; others are not. */
static void test_due_rotations(void **state)
{
	struct fx *f = *state;
	struct sm_listing due;
	struct sm_options o = tu_sm_options(30);
	create(f, "db", db_json);
	create(f, "later", db_json);
	assert_int_equal(sm_set_rotation_command(f->sm, "db", "/bin/true"), 0);
	assert_int_equal(sm_set_rotation_rules(f->sm, "db", 30, NULL), 0);
	assert_int_equal(sm_set_rotation_command(f->sm, "later", "/bin/true"), 0);
	assert_int_equal(sm_set_rotation_rules(f->sm, "later", 30, NULL), 0);
	assert_int_equal(sm_rotations_due(f->sm, &due), 0);
	assert_int_equal(due.count, 0);
	sm_listing_free(&due);

	/* Move db's NextRotationDate into the past, as time would. */
	sm_close(f->sm);
	f->sm = NULL;
	uint8_t *rec;
	size_t len;
	struct sm_secret *s;
	assert_int_equal(tu_get_record_keyed(f->path, f->key, "secret/db", &rec, &len), 0);
	assert_int_equal(record_decode_secret(rec, len, &s), 0);
	free(rec);
	s->next_rotation_ms = 1000;
	char *text = record_encode_secret(s);
	assert_non_null(text);
	assert_int_equal(tu_set_record_keyed(f->path, f->key, "secret/db", text, strlen(text)), 0);
	free(text);
	secret_free(s);
	assert_int_equal(tu_open_sm(f->path, f->key, &o, &f->sm), 0);

	assert_int_equal(sm_rotations_due(f->sm, &due), 0);
	assert_int_equal(due.count, 1);
	assert_string_equal(due.entries[0].name, "db");
	sm_listing_free(&due);

	/* Started: no longer due; a failure pushes the retry an hour out. */
	char token[37], command[64];
	assert_int_equal(sm_rotation_start(f->sm, "db", token, command, sizeof(command)), 0);
	assert_string_equal(command, "/bin/true");
	assert_int_equal(sm_rotations_due(f->sm, &due), 0);
	assert_int_equal(due.count, 0);
	sm_listing_free(&due);
	assert_int_equal(sm_rotation_start(f->sm, "db", token, command, sizeof(command)), -EBUSY);
	assert_int_equal(sm_rotation_end(f->sm, "db", token, "testSecret: exit status 1"), 0);
	assert_int_equal(sm_rotations_due(f->sm, &due), 0);
	assert_int_equal(due.count, 0);
	sm_listing_free(&due);
}

/* The pending version becomes current, the old current previous. */
static void test_rotation_end_moves_labels(void **state)
{
	struct fx *f = *state;
	char token[37], command[64], old[SM_VERSION_ID_MAX + 1], now[SM_VERSION_ID_MAX + 1];
	create(f, "db", db_json);
	assert_int_equal(tu_sm_label(f->sm, "db", "AWSCURRENT", old), 0);
	assert_int_equal(sm_set_rotation_command(f->sm, "db", "/bin/true"), 0);
	assert_int_equal(sm_rotation_start(f->sm, "db", token, command, sizeof(command)), 0);
	/* createSecret's write: PutSecretValue with VersionStages=[AWSPENDING]. */
	const char *stages[] = { "AWSPENDING" };
	const char *pending = "{\"engine\":\"postgres\",\"host\":\"h\",\"username\":\"u\",\"password\":\"q\"}";
	char vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(sm_put_value_staged(f->sm, "db", (const uint8_t *)pending, strlen(pending),
					     stages, 1, vid), 0);
	assert_string_equal(vid, token);
	assert_int_equal(tu_sm_label(f->sm, "db", "AWSCURRENT", now), 0);
	assert_string_equal(now, old); /* AWSCURRENT has not moved yet */
	assert_int_equal(sm_rotation_end(f->sm, "db", token, NULL), 0);
	assert_int_equal(tu_sm_label(f->sm, "db", "AWSCURRENT", now), 0);
	assert_string_equal(now, token);
	assert_int_equal(tu_sm_label(f->sm, "db", "AWSPREVIOUS", now), 0);
	assert_string_equal(now, old);
	assert_int_equal(tu_sm_label(f->sm, "db", "AWSPENDING", now), 0);
	assert_string_equal(now, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedules),
		cmocka_unit_test_setup_teardown(test_any_secret_rotates_and_cancel_keeps_rules, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_due_rotations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_end_moves_labels, setup, teardown),
	};
	return tu_run_group("rotation", tests, NULL, NULL);
}
