/* Unit tests of util/hashmap. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "util/hashmap.h"

static int A = 1, B = 2, C = 3;

static void test_put_get_replace_remove(void **state)
{
	struct hashmap *m = hashmap_new(0);
	void *old = &A;
	(void)state;

	assert_non_null(m);
	assert_int_equal(hashmap_count(m), 0);
	assert_null(hashmap_get(m, "x"));

	assert_int_equal(hashmap_put(m, "x", &A, &old), 0);
	assert_null(old); /* nothing replaced */
	assert_int_equal(hashmap_put(m, "y", &B, NULL), 0);
	assert_int_equal(hashmap_count(m), 2);
	assert_ptr_equal(hashmap_get(m, "x"), &A);
	assert_ptr_equal(hashmap_get(m, "y"), &B);
	assert_null(hashmap_get(m, "z"));
	assert_null(hashmap_get(m, "X"));  /* case matters */
	assert_null(hashmap_get(m, "xx")); /* whole key */

	/* Replace: same count, old value handed back. */
	assert_int_equal(hashmap_put(m, "x", &C, &old), 0);
	assert_ptr_equal(old, &A);
	assert_ptr_equal(hashmap_get(m, "x"), &C);
	assert_int_equal(hashmap_count(m), 2);
	/* Replace without asking for the old value. */
	assert_int_equal(hashmap_put(m, "x", &A, NULL), 0);
	assert_ptr_equal(hashmap_get(m, "x"), &A);
	assert_int_equal(hashmap_count(m), 2);

	assert_ptr_equal(hashmap_remove(m, "x"), &A);
	assert_null(hashmap_get(m, "x"));
	assert_int_equal(hashmap_count(m), 1);
	assert_null(hashmap_remove(m, "x")); /* absent now */
	assert_null(hashmap_remove(m, "never"));
	assert_int_equal(hashmap_count(m), 1);
	assert_ptr_equal(hashmap_get(m, "y"), &B);

	/* A NULL value is stored like any other. */
	assert_int_equal(hashmap_put(m, "null", NULL, NULL), 0);
	assert_int_equal(hashmap_count(m), 2);
	hashmap_free(m);
	hashmap_free(NULL);
}

static void test_keys_are_copied(void **state)
{
	struct hashmap *m = hashmap_new(4);
	char key[16];
	(void)state;
	assert_non_null(m);
	strcpy(key, "mutable");
	assert_int_equal(hashmap_put(m, key, &A, NULL), 0);
	strcpy(key, "changed");
	assert_ptr_equal(hashmap_get(m, "mutable"), &A);
	assert_null(hashmap_get(m, "changed"));
	/* The empty string is a key like any other. */
	assert_int_equal(hashmap_put(m, "", &B, NULL), 0);
	assert_ptr_equal(hashmap_get(m, ""), &B);
	assert_int_equal(hashmap_count(m), 2);
	hashmap_free(m);
}

struct visit_log {
	size_t calls;
	size_t sum;
	int stop_after;
};

static int visit(const char *key, void *value, void *ctx)
{
	struct visit_log *v = ctx;
	v->calls++;
	v->sum += (size_t)(uintptr_t)value;
	assert_int_equal((int)strtol(key + 1, NULL, 10), (int)(uintptr_t)value);
	if (v->stop_after && (int)v->calls == v->stop_after)
		return 42;
	return 0;
}

static void test_foreach(void **state)
{
	struct hashmap *m = hashmap_new(16);
	char key[32];
	size_t expect = 0;
	(void)state;
	assert_non_null(m);
	for (int i = 1; i <= 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(hashmap_put(m, key, (void *)(uintptr_t)i, NULL), 0);
		expect += (size_t)i;
	}
	struct visit_log all = { 0, 0, 0 };
	assert_int_equal(hashmap_foreach(m, visit, &all), 0);
	assert_int_equal(all.calls, 100);
	assert_int_equal(all.sum, expect); /* every entry once */

	struct visit_log some = { 0, 0, 7 };
	assert_int_equal(hashmap_foreach(m, visit, &some), 42);
	assert_int_equal(some.calls, 7);

	struct hashmap *empty = hashmap_new(0);
	struct visit_log none = { 0, 0, 0 };
	assert_int_equal(hashmap_foreach(empty, visit, &none), 0);
	assert_int_equal(none.calls, 0);
	hashmap_free(empty);
	hashmap_free(m);
}

static void test_growth_10k(void **state)
{
	enum { N = 10000 };
	struct hashmap *m = hashmap_new(1);
	char key[64];
	(void)state;
	assert_non_null(m);
	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "secret/prod/app-%lu/password", (unsigned long)i);
		assert_int_equal(hashmap_put(m, key, (void *)(i + 1), NULL), 0);
		assert_int_equal(hashmap_count(m), i + 1);
	}
	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "secret/prod/app-%lu/password", (unsigned long)i);
		assert_ptr_equal(hashmap_get(m, key), (void *)(i + 1));
	}
	for (uintptr_t i = 0; i < N; i += 2) {
		snprintf(key, sizeof(key), "secret/prod/app-%lu/password", (unsigned long)i);
		assert_ptr_equal(hashmap_remove(m, key), (void *)(i + 1));
	}
	assert_int_equal(hashmap_count(m), N / 2);
	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "secret/prod/app-%lu/password", (unsigned long)i);
		if (i % 2)
			assert_ptr_equal(hashmap_get(m, key), (void *)(i + 1));
		else
			assert_null(hashmap_get(m, key));
	}
	/* Put the removed ones back with new values; replace the others. */
	for (uintptr_t i = 0; i < N; i++) {
		void *old = NULL;
		snprintf(key, sizeof(key), "secret/prod/app-%lu/password", (unsigned long)i);
		assert_int_equal(hashmap_put(m, key, (void *)(i + 7), &old), 0);
		if (i % 2)
			assert_ptr_equal(old, (void *)(i + 1));
		else
			assert_null(old);
	}
	assert_int_equal(hashmap_count(m), N);
	hashmap_free(m);
}

static int count_entries(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)value;
	(*(size_t *)ctx)++;
	return 0;
}

static void test_growth_foreach_sees_all(void **state)
{
	enum { N = 10000 };
	struct hashmap *m = hashmap_new(16);
	char key[32];
	size_t n = 0;
	(void)state;
	assert_non_null(m);
	for (int i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "%d", i);
		assert_int_equal(hashmap_put(m, key, NULL, NULL), 0);
	}
	assert_int_equal(hashmap_foreach(m, count_entries, &n), 0);
	assert_int_equal(n, N);
	hashmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_replace_remove),
		cmocka_unit_test(test_keys_are_copied),
		cmocka_unit_test(test_foreach),
		cmocka_unit_test(test_growth_10k),
		cmocka_unit_test(test_growth_foreach_sees_all),
	};
	return tu_run_group("hashmap", tests, NULL, NULL);
}
