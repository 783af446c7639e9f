/*
 * timeutil: wall-clock times as milliseconds since the epoch, and their
 * ISO 8601 UTC form as Secrets Manager prints dates.
 */
#ifndef SECRETSFS_UTIL_TIMEUTIL_H
#define SECRETSFS_UTIL_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define MS_PER_DAY (86400LL * 1000LL)

int64_t time_now_ms(void);
/* "2026-11-27T20:44:36.123Z"; buf of at least 32 bytes. */
void time_format_iso8601(int64_t ms, char *buf, size_t len);
/* The reverse, for dates that come from outside (an import): a date and time
 * "YYYY-MM-DDTHH:MM:SS", an optional fraction of a second (milliseconds
 * kept), and "Z" or an offset "+HH:MM" / "-HH:MM" (the AWS CLI prints
 * "+00:00"). 0, or -EINVAL for anything else or a date before 1970. */
int time_parse_iso8601(const char *text, int64_t *ms);

#endif
