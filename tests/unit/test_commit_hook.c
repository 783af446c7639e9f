/* Unit tests of store/store's commit hook: what a transaction changed,
 * seen before tdb commits it, and a refusal that lands nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "store/store.h"

struct fx {
	char dir[TU_PATH_MAX];
	char path[TU_PATH_MAX];
	struct store *st;
};

/* What the hook saw, as "key:old>new" lines ("!" for absent), and what it answers. */
struct seen {
	char text[1024];
	int calls;
	int answer;
	struct store *st; /* to look at the store from inside the hook */
	int inside_get;   /* store_get of "a" from inside the hook */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || tu_mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	tu_path(f->path, f->dir, "store.tdb");
	if (store_open(f->path, STORE_CREATE, &f->st)) {
		tu_rmrf(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->st);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

static int hook(void *ctx, const struct store_op *ops, size_t count)
{
	struct seen *s = ctx;
	s->calls++;
	for (size_t i = 0; i < count; i++) {
		size_t used = strlen(s->text);
		snprintf(s->text + used, sizeof(s->text) - used, "%s:%.*s%s>%.*s%s\n", ops[i].key,
			 (int)ops[i].old_len, ops[i].old ? (const char *)ops[i].old : "",
			 ops[i].old ? "" : "!", (int)ops[i].len,
			 ops[i].val ? (const char *)ops[i].val : "", ops[i].val ? "" : "!");
	}
	if (s->st) {
		uint8_t *v = NULL;
		size_t len;
		s->inside_get = store_get(s->st, "a", &v, &len);
		free(v);
	}
	return s->answer;
}

static void put(struct store *st, const char *key, const char *val)
{
	assert_int_equal(store_put(st, key, val, strlen(val)), 0);
}

static void assert_value(struct store *st, const char *key, const char *want)
{
	uint8_t *v = NULL;
	size_t len = 0;
	int rc = store_get(st, key, &v, &len);
	if (!want) {
		assert_int_equal(rc, -ENOENT);
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
	free(v);
}

static void commit_base(struct store *st)
{
	assert_int_equal(store_begin(st), 0);
	put(st, "a", "1");
	put(st, "gone", "x");
	assert_int_equal(store_commit(st), 0);
}

/* Each key once, sorted, with the value the transaction found and the one
 * it leaves; one put twice with its last value; a key put and deleted
 * again (absent before and after) is no change. */
static void test_hook_sees_final_changes(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };
	commit_base(f->st);
	store_set_commit_hook(f->st, hook, &s);
	assert_int_equal(store_begin(f->st), 0);
	put(f->st, "c", "first");
	put(f->st, "a", "2");
	put(f->st, "c", "last");
	put(f->st, "tmp", "t");
	assert_int_equal(store_delete(f->st, "tmp"), 0);
	assert_int_equal(store_delete(f->st, "gone"), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(s.calls, 1);
	assert_string_equal(s.text, "a:1>2\nc:!>last\ngone:x>!\n");
	assert_value(f->st, "a", "2");
	assert_value(f->st, "c", "last");
	assert_value(f->st, "gone", NULL);
}

/* A refusal is store_commit's result and nothing of the transaction lands. */
static void test_refusal_lands_nothing(void **state)
{
	struct fx *f = *state;
	struct seen s = { .answer = -ESTALE };
	commit_base(f->st);
	store_set_commit_hook(f->st, hook, &s);
	assert_int_equal(store_begin(f->st), 0);
	put(f->st, "a", "2");
	assert_int_equal(store_delete(f->st, "gone"), 0);
	assert_int_equal(store_commit(f->st), -ESTALE);
	assert_value(f->st, "a", "1");
	assert_value(f->st, "gone", "x");
	/* and the next transaction starts clean: it sees only its own keys */
	s.answer = 0;
	s.text[0] = '\0';
	assert_int_equal(store_begin(f->st), 0);
	put(f->st, "b", "3");
	assert_int_equal(store_commit(f->st), 0);
	assert_string_equal(s.text, "b:!>3\n");
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(f->path, 0, &f->st), 0);
	assert_value(f->st, "a", "1");
	assert_value(f->st, "b", "3");
}

/* A cancelled transaction and one that changed nothing call no hook; a
 * removed hook is not called; the hook may read the store it runs in. */
static void test_no_change_no_call_and_removal(void **state)
{
	struct fx *f = *state;
	struct seen s = { 0 };
	commit_base(f->st);
	s.st = f->st;
	store_set_commit_hook(f->st, hook, &s);
	assert_int_equal(store_begin(f->st), 0);
	put(f->st, "a", "9");
	store_cancel(f->st);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(s.calls, 0);
	assert_int_equal(store_begin(f->st), 0);
	put(f->st, "a", "2");
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.inside_get, 0);
	store_set_commit_hook(f->st, NULL, NULL);
	assert_int_equal(store_begin(f->st), 0);
	put(f->st, "a", "3");
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(s.calls, 1);
	assert_value(f->st, "a", "3");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hook_sees_final_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusal_lands_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_change_no_call_and_removal, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
