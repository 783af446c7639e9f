/* Unit tests of secrets/names: the naming rules and UTF-8 detection. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/names.h"

static void expect_ok(const char *name)
{
	const char *why = "untouched";
	int rc = name_check(name, &why);
	if (rc != 0)
		fail_msg("name \"%s\" refused (%d): %s", name, rc, why);
}

static void expect_einval(const char *name)
{
	const char *why = NULL;
	int rc = name_check(name, &why);
	if (rc != -EINVAL)
		fail_msg("name \"%s\" gave %d, expected -EINVAL", name, rc);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
	/* why is optional */
	assert_int_equal(name_check(name, NULL), -EINVAL);
}

static void test_name_check_accepts(void **state)
{
	(void)state;
	expect_ok("a");
	expect_ok("Z");
	expect_ok("0");
	expect_ok("db");
	expect_ok("prod/db/password");
	expect_ok("app/.env");           /* '.' allowed below the top level */
	expect_ok("app/..env");
	expect_ok("app/...");            /* only "." and ".." are special */
	expect_ok("a.b");
	expect_ok("x..y");
	expect_ok("ABCxyz019_+=.@-");
	expect_ok("user@example.com/token");
	expect_ok("a-b_c+d=e.f@g/h");
	expect_ok("-leading-dash");
	expect_ok("a/b/c/d/e/f/g/h/i/j");
}

static void test_name_check_length(void **state)
{
	char name[SM_NAME_MAX + 2];
	(void)state;

	memset(name, 'a', SM_NAME_MAX);
	name[SM_NAME_MAX] = '\0';
	expect_ok(name);                        /* 512 bytes */
	name[SM_NAME_MAX] = 'a';
	name[SM_NAME_MAX + 1] = '\0';
	expect_einval(name);                    /* 513 bytes */

	/* 512 bytes made of many components, and one more byte. */
	for (size_t i = 0; i < SM_NAME_MAX; i++)
		name[i] = (i % 2) ? '/' : 'x';
	name[SM_NAME_MAX - 1] = 'y';
	name[SM_NAME_MAX] = '\0';
	expect_ok(name);
	name[SM_NAME_MAX] = 'z';
	name[SM_NAME_MAX + 1] = '\0';
	expect_einval(name);

	expect_einval("");                      /* 0 bytes */
}

static void test_name_check_charset(void **state)
{
	static const char *bad[] = {
		"a b", " a", "a ", "a\tb", "a\nb", "a*b", "a?b", "a:b", "a,b", "a;b",
		"a\\b", "a|b", "a\"b", "a'b", "a<b", "a>b", "a#b", "a%b", "a&b", "a(b",
		"a)b", "a[b", "a]b", "a{b", "a}b", "a~b", "a!b", "a$b", "a^b", "a`b",
		"caf\xc3\xa9", "\x7f", "a\x01", "\xff",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_einval(bad[i]);
	/* Every allowed byte accepted on its own (as a non-top-level component). */
	for (int c = 1; c < 256; c++) {
		char name[4] = { 'd', '/', (char)c, '\0' };
		bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			       (c >= '0' && c <= '9') || strchr("_+=.@-", c);
		if (c == '/' || c == '.')
			continue; /* "d//" and "d/." break component rules instead */
		if (allowed)
			expect_ok(name);
		else
			expect_einval(name);
	}
}

static void test_name_check_components(void **state)
{
	(void)state;
	expect_einval("/a");            /* leading slash: empty first component */
	expect_einval("a/");            /* trailing slash */
	expect_einval("/");
	expect_einval("//");
	expect_einval("a//b");
	expect_einval(".");
	expect_einval("..");
	expect_einval("./a");
	expect_einval("../a");
	expect_einval("a/.");
	expect_einval("a/..");
	expect_einval("a/./b");
	expect_einval("a/../b");
	/* Top-level names beginning with '.' belong to secretsfs. */
	expect_einval(".versions");
	expect_einval(".versions/db");
	expect_einval(".deleted/x");
	expect_einval(".env");
	expect_einval("...");
}

static void test_name_check_component(void **state)
{
	const char *why = NULL;
	(void)state;
	assert_int_equal(name_check_component("db", true, &why), 0);
	assert_int_equal(name_check_component("db", false, &why), 0);
	assert_int_equal(name_check_component(".env", false, &why), 0);
	assert_int_equal(name_check_component(".env", true, &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(name_check_component("", false, NULL), -EINVAL);
	assert_int_equal(name_check_component(".", false, NULL), -EINVAL);
	assert_int_equal(name_check_component("..", false, NULL), -EINVAL);
	assert_int_equal(name_check_component("a/b", false, NULL), -EINVAL);
	assert_int_equal(name_check_component("a b", false, NULL), -EINVAL);
}

static void test_name_check_version_id(void **state)
{
	char id[SM_VERSION_ID_MAX + 2];
	const char *why = NULL;
	(void)state;

	assert_int_equal(name_check_version_id("0b7f4b3c-6a8e-4d57-9b3e-2f1d0c9a8e7b", &why), 0);
	memset(id, 'a', sizeof(id));
	id[SM_VERSION_ID_MIN] = '\0';
	assert_int_equal(name_check_version_id(id, NULL), 0);           /* 32 */
	id[SM_VERSION_ID_MIN - 1] = '\0';
	assert_int_equal(name_check_version_id(id, &why), -EINVAL);     /* 31 */
	assert_non_null(why);
	memset(id, 'a', sizeof(id));
	id[SM_VERSION_ID_MAX] = '\0';
	assert_int_equal(name_check_version_id(id, NULL), 0);           /* 64 */
	id[SM_VERSION_ID_MAX] = 'a';
	id[SM_VERSION_ID_MAX + 1] = '\0';
	assert_int_equal(name_check_version_id(id, NULL), -EINVAL);     /* 65 */
	assert_int_equal(name_check_version_id("", NULL), -EINVAL);

	/* Printable ASCII without '/', spaces or DEL. */
	memset(id, 'b', sizeof(id));
	id[40] = '\0';
	id[10] = '/';
	assert_int_equal(name_check_version_id(id, NULL), -EINVAL);
	id[10] = ' ';
	assert_int_equal(name_check_version_id(id, NULL), -EINVAL);
	id[10] = '\x7f';
	assert_int_equal(name_check_version_id(id, NULL), -EINVAL);
	id[10] = '\t';
	assert_int_equal(name_check_version_id(id, NULL), -EINVAL);
	id[10] = (char)0xc3;
	assert_int_equal(name_check_version_id(id, NULL), -EINVAL);
	id[10] = '~';
	assert_int_equal(name_check_version_id(id, NULL), 0);
}

static void test_name_parent(void **state)
{
	char buf[SM_NAME_MAX + 1];
	(void)state;
	assert_string_equal(name_parent("a/b/c", buf, sizeof(buf)), "a/b");
	assert_string_equal(name_parent("a/b", buf, sizeof(buf)), "a");
	assert_string_equal(name_parent("a", buf, sizeof(buf)), "");
	assert_ptr_equal(name_parent("x/y", buf, sizeof(buf)), buf);
	assert_string_equal(name_parent("prod/db/password", buf, sizeof(buf)), "prod/db");
	assert_string_equal(name_parent("app/.env", buf, sizeof(buf)), "app");
	/* A short buffer is never overrun and stays terminated. */
	char small[4] = { 'Z', 'Z', 'Z', 'Z' };
	name_parent("abcdef/g", small, sizeof(small));
	assert_int_equal(small[3], '\0');
	assert_string_equal(small, "abc");
}

static void test_name_join(void **state)
{
	char buf[SM_NAME_MAX + 1];
	(void)state;
	assert_int_equal(name_join("a/b", "c", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "a/b/c");
	assert_int_equal(name_join("", "c", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "c");
	assert_int_equal(name_join("prod", "db", buf, sizeof(buf)), 0);
	assert_string_equal(buf, "prod/db");

	char small[4];
	assert_int_equal(name_join("a", "b", small, sizeof(small)), 0); /* "a/b" fits */
	assert_string_equal(small, "a/b");
	assert_int_equal(name_join("a", "bc", small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(name_join("", "abcd", small, sizeof(small)), -ENAMETOOLONG);
	assert_int_equal(name_join("", "abc", small, sizeof(small)), 0);
	assert_string_equal(small, "abc");
}

static void test_name_is_below(void **state)
{
	(void)state;
	assert_true(name_is_below("a/b", "a"));
	assert_true(name_is_below("a", "a"));
	assert_true(name_is_below("a/b/c", "a"));
	assert_true(name_is_below("a/b/c", "a/b"));
	assert_true(name_is_below("x", ""));
	assert_true(name_is_below("x/y", ""));
	assert_false(name_is_below("ab", "a"));
	assert_false(name_is_below("a/bc", "a/b"));
	assert_false(name_is_below("a", "a/b"));
	assert_false(name_is_below("b/a", "a"));
	assert_false(name_is_below("", "a"));
}

static bool is_str(const char *bytes, size_t len)
{
	return value_is_string((const unsigned char *)bytes, len);
}

#define STR(lit) is_str(lit, sizeof(lit) - 1)

static void test_value_is_string_valid(void **state)
{
	(void)state;
	assert_true(is_str("", 0));
	assert_true(STR("hello"));
	assert_true(STR("{\"username\":\"admin\",\"password\":\"p@ss\"}\n"));
	assert_true(STR("caf\xc3\xa9"));                /* U+00E9 */
	assert_true(STR("\xc2\x80"));                   /* U+0080, smallest 2-byte */
	assert_true(STR("\xdf\xbf"));                   /* U+07FF */
	assert_true(STR("\xe0\xa0\x80"));               /* U+0800, smallest 3-byte */
	assert_true(STR("\xe2\x82\xac"));               /* U+20AC euro */
	assert_true(STR("\xed\x9f\xbf"));               /* U+D7FF, just below surrogates */
	assert_true(STR("\xee\x80\x80"));               /* U+E000, just above */
	assert_true(STR("\xef\xbf\xbf"));               /* U+FFFF */
	assert_true(STR("\xf0\x90\x80\x80"));           /* U+10000, smallest 4-byte */
	assert_true(STR("\xf0\x9f\x98\x80"));           /* U+1F600 */
	assert_true(STR("\xf4\x8f\xbf\xbf"));           /* U+10FFFF, the last */
	assert_true(STR("a\xc3\xa9z\xe2\x82\xac!\xf0\x9f\x98\x80."));
	assert_true(STR("\x01\x7f"));                   /* controls other than NUL are text */
}

static void test_value_is_string_invalid(void **state)
{
	(void)state;
	/* NUL bytes make a value binary, wherever they are. */
	assert_false(STR("\0"));
	assert_false(STR("a\0b"));
	assert_false(STR("abc\0"));
	/* Overlong forms. */
	assert_false(STR("\xc0\x80"));
	assert_false(STR("\xc0\xaf"));
	assert_false(STR("\xc1\xbf"));
	assert_false(STR("\xe0\x80\x80"));
	assert_false(STR("\xe0\x9f\xbf"));              /* U+07FF in 3 bytes */
	assert_false(STR("\xf0\x80\x80\x80"));
	assert_false(STR("\xf0\x8f\xbf\xbf"));          /* U+FFFF in 4 bytes */
	/* UTF-16 surrogates. */
	assert_false(STR("\xed\xa0\x80"));              /* U+D800 */
	assert_false(STR("\xed\xbf\xbf"));              /* U+DFFF */
	assert_false(STR("\xed\xa0\xbd\xed\xb8\x80"));  /* CESU-8 pair */
	/* Past U+10FFFF, and bytes that never occur. */
	assert_false(STR("\xf4\x90\x80\x80"));
	assert_false(STR("\xf5\x80\x80\x80"));
	assert_false(STR("\xf7\xbf\xbf\xbf"));
	assert_false(STR("\xf8\x88\x80\x80\x80"));
	assert_false(STR("\xfc\x84\x80\x80\x80\x80"));
	assert_false(STR("\xfe"));
	assert_false(STR("\xff"));
	/* Lone or misplaced continuation bytes. */
	assert_false(STR("\x80"));
	assert_false(STR("a\xbf"));
	assert_false(STR("\xc3\x28"));
	assert_false(STR("\xe2\x28\xa1"));
	assert_false(STR("\xe2\x82\x28"));
	assert_false(STR("\xf0\x28\x8c\xbc"));
	/* Truncated sequences, at the end and in the middle. */
	assert_false(STR("\xc3"));
	assert_false(STR("abc\xc3"));
	assert_false(STR("\xe2\x82"));
	assert_false(STR("\xe2"));
	assert_false(STR("\xf0\x9f\x98"));
	assert_false(STR("\xf0\x9f"));
	assert_false(STR("\xf0"));
	assert_false(STR("\xe2\x82z"));
	/* len is honoured: a sequence cut by len is truncated. */
	assert_false(is_str("ab\xc3\xa9", 3));
	assert_true(is_str("ab\xc3\xa9", 2));
	assert_false(is_str("\xf0\x9f\x98\x80", 3));
}

static void test_name_scratch_owner(void **state)
{
	char buf[SM_NAME_MAX + 1];
	(void)state;
	static const char *const cases[][2] = {
		{ "db~", "db" },
		{ "prod/db~", "prod/db" },
		{ ".db.swp", "db" },
		{ "prod/.db.swp", "prod/db" },
		{ "prod/.db.swo", "prod/db" },
		{ "a/b/.x.y.swa", "a/b/x.y" },
		{ "prod/.env~", "prod/.env" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf[0] = '\0';
		if (!name_scratch_owner(cases[i][0], buf, sizeof(buf)))
			fail_msg("%s: no owner", cases[i][0]);
		assert_string_equal(buf, cases[i][1]);
	}
	/* Not scratch, or scratch standing for no secret name. */
	static const char *const none[] = { "db", "prod/db", ".db.AbC123", ".hidden",
					    "prod/.swp", ".db.swpx", "~", ".x~" };
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		if (name_scratch_owner(none[i], buf, sizeof(buf)))
			fail_msg("%s: owner \"%s\"", none[i], buf);
	/* Too small a buffer is no owner, not a cut name. */
	assert_false(name_scratch_owner("prod/db~", buf, 7));
	assert_true(name_scratch_owner("prod/db~", buf, 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check_accepts),
		cmocka_unit_test(test_name_check_length),
		cmocka_unit_test(test_name_check_charset),
		cmocka_unit_test(test_name_check_components),
		cmocka_unit_test(test_name_check_component),
		cmocka_unit_test(test_name_check_version_id),
		cmocka_unit_test(test_name_parent),
		cmocka_unit_test(test_name_join),
		cmocka_unit_test(test_name_is_below),
		cmocka_unit_test(test_value_is_string_valid),
		cmocka_unit_test(test_value_is_string_invalid),
		cmocka_unit_test(test_name_scratch_owner),
	};
	return tu_run_group("names", tests, NULL, NULL);
}
