/*
 * fuzz_schedule: rotation schedules (include/secrets/schedule.h),
 * schedule_check and schedule_next, on arbitrary expressions and times.
 *
 * Input: the expression, then optionally a NUL and 8 bytes (little-endian)
 * of the time to count from, in epoch milliseconds; without them the time is
 * 2025-11-27T19:00:00Z. Any int64 is fair: schedule_next counts from a
 * secret's last rotation, which record_decode_secret reads from the store
 * without a range check.
 *
 * Properties, besides "no crash, leak or undefined behaviour":
 *  - schedule_check is 0 or -EINVAL with a reason; schedule_next refuses
 *    what schedule_check refuses and takes what it takes (0 or -ERANGE);
 *  - the next time is after from_ms; a rate's is a whole number of hours
 *    (4 hours to 1000 days) later; a cron()'s is on the hour, within five
 *    years (and a day), and counting again from just before it finds it.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "secrets/schedule.h"

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
#define DEFAULT_FROM_MS 1764270000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *expr = fuzz_cstring(data, size);
	size_t elen = strlen(expr);
	int64_t from = DEFAULT_FROM_MS, next = 0;

	if (elen + 1 + 8 <= size) {
		uint64_t u = 0;
		for (int i = 7; i >= 0; i--)
			u = u << 8 | data[elen + 1 + (size_t)i];
		memcpy(&from, &u, sizeof(from));
	}

	const char *why = NULL;
	int check = schedule_check(expr, &why);
	FUZZ_CHECK(check == 0 || check == -EINVAL);
	if (check)
		FUZZ_CHECK(why != NULL && why[0] != '\0');

	int rc = schedule_next(expr, from, &next);
	if (check) {
		FUZZ_CHECK(rc == -EINVAL);
	} else {
		FUZZ_CHECK(rc == 0 || rc == -ERANGE);
	}
	if (rc == 0) {
		FUZZ_CHECK(next > from);
		if (strncmp(expr, "rate(", 5) == 0) {
			FUZZ_CHECK(next - from >= 4 * HOUR_MS && next - from <= 1000 * DAY_MS);
			FUZZ_CHECK((next - from) % HOUR_MS == 0);
		} else {
			int64_t again = 0;
			FUZZ_CHECK(next % HOUR_MS == 0);
			FUZZ_CHECK(next - from <= (5 * 366 + 1) * DAY_MS);
			FUZZ_CHECK(schedule_next(expr, next - 1, &again) == 0 && again == next);
		}
	}
	free(expr);
	return 0;
}
