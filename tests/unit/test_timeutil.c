/* Unit tests of util/timeutil: ISO 8601 dates out and back in. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "util/timeutil.h"

static void assert_parses(const char *text, int64_t want)
{
	int64_t ms = -1;
	int rc = time_parse_iso8601(text, &ms);
	if (rc)
		fail_msg("%s: refused (%d)", text, rc);
	if (ms != want)
		fail_msg("%s: %lld, expected %lld", text, (long long)ms, (long long)want);
}

static void test_round_trip_of_our_own_format(void **state)
{
	char buf[40];
	(void)state;
	int64_t samples[] = { 0, 1, 999, 1000, 1700000000123LL, 4102444799999LL };
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		time_format_iso8601(samples[i], buf, sizeof(buf));
		assert_parses(buf, samples[i]);
	}
}

static void test_forms_from_elsewhere(void **state)
{
	(void)state;
	/* 2023-05-01T12:34:56Z = 1682944496 s */
	assert_parses("2023-05-01T12:34:56Z", 1682944496000LL);
	assert_parses("2023-05-01T12:34:56.7Z", 1682944496700LL);
	/* the AWS CLI's microseconds and offset */
	assert_parses("2023-05-01T12:34:56.789000+00:00", 1682944496789LL);
	assert_parses("2023-05-01T14:34:56+02:00", 1682944496000LL);
	assert_parses("2023-05-01T10:04:56-0230", 1682944496000LL);
}

static void test_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "2023-05-01", "2023-05-01T12:34:56", "2023-05-01 12:34:56Z",
		"2023-13-01T00:00:00Z", "2023-04-31T00:00:00Z", "2023-05-01T24:00:00Z",
		"2023-05-01T12:34:56.Z", "2023-05-01T12:34:56Zjunk", "1969-12-31T23:59:59Z",
		"2023-05-01T12:34:56+2:00", "2023-5-01T12:34:56Z", "now",
	};
	int64_t ms = 42;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (time_parse_iso8601(bad[i], &ms) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
	}
	assert_int_equal(ms, 42); /* untouched */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_of_our_own_format),
		cmocka_unit_test(test_forms_from_elsewhere),
		cmocka_unit_test(test_refused),
	};
	return tu_run_group("timeutil", tests, NULL, NULL);
}
