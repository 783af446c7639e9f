/*
 * schedule: rotation schedules as Secrets Manager writes them:
 * "rate(N hours)" / "rate(N days)" (N hours at least 4), and
 * "cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)" with *, ?, lists,
 * ranges, steps, month names JAN-DEC and day names SUN-SAT (1-7, SUN=1),
 * evaluated in UTC; the minutes field must be 0.
 */
#ifndef SECRETSFS_SECRETS_SCHEDULE_H
#define SECRETSFS_SECRETS_SCHEDULE_H

#include <stdint.h>

#define ROTATION_DAYS_MAX 1000

/* 0, or -EINVAL with *why. */
int schedule_check(const char *expr, const char **why);
/* The first time after from_ms the schedule fires; -ERANGE if none in 5 years. */
int schedule_next(const char *expr, int64_t from_ms, int64_t *next_ms);

#endif
