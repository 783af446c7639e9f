#include "secrets/schedule.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/timeutil.h"

#define HOUR_MS (3600LL * 1000LL)

struct field {
	const char *name;
	int min, max;
	const char *const *names; /* symbolic values, names[0] == min */
};

static const char *const months[] = { "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
				      "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL };
static const char *const days[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const struct field fields[6] = {
	{ "minutes", 0, 59, NULL },      { "hours", 0, 23, NULL },
	{ "day-of-month", 1, 31, NULL }, { "month", 1, 12, months },
	{ "day-of-week", 1, 7, days },   { "year", 1970, 2199, NULL },
};

static int parse_rate(const char *expr, int64_t *period_ms, const char **why)
{
	char unit[16];
	long n;
	int used = 0;
	if (sscanf(expr, "rate(%ld %15[a-z])%n", &n, unit, &used) != 2 || expr[used] != '\0') {
		*why = "a rate is rate(N hours) or rate(N days)";
		return -EINVAL;
	}
	bool hours = strcmp(unit, "hour") == 0 || strcmp(unit, "hours") == 0;
	bool dayu = strcmp(unit, "day") == 0 || strcmp(unit, "days") == 0;
	if (!hours && !dayu) {
		*why = "a rate counts hours or days";
		return -EINVAL;
	}
	if ((hours && (n < 4 || n > 24 * ROTATION_DAYS_MAX)) || (dayu && (n < 1 || n > ROTATION_DAYS_MAX))) {
		*why = "a rate is at least every 4 hours and at most every 1000 days";
		return -EINVAL;
	}
	*period_ms = n * (hours ? HOUR_MS : MS_PER_DAY);
	return 0;
}

static int value_of(const char *tok, size_t len, const struct field *f, int *out)
{
	char buf[16];
	if (len == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, tok, len);
	buf[len] = '\0';
	for (int i = 0; f->names && f->names[i]; i++)
		if (strcasecmp(buf, f->names[i]) == 0) {
			*out = f->min + i;
			return 0;
		}
	char *end;
	long v = strtol(buf, &end, 10);
	if (*end || v < f->min || v > f->max)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

/* Sets bits[v - min] for each value a field's text allows. */
static int parse_field(const char *text, const struct field *f, bool *bits)
{
	int span = f->max - f->min + 1;
	memset(bits, 0, (size_t)span * sizeof(*bits));
	if (strcmp(text, "*") == 0 || strcmp(text, "?") == 0) {
		for (int i = 0; i < span; i++)
			bits[i] = true;
		return 0;
	}
	const char *p = text;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		char part[32];
		if (len == 0 || len >= sizeof(part))
			return -EINVAL;
		memcpy(part, p, len);
		part[len] = '\0';
		int lo = f->min, hi = f->max, step = 1;
		char *slash = strchr(part, '/');
		if (slash) {
			*slash = '\0';
			char *end;
			long s = strtol(slash + 1, &end, 10);
			if (*end || s < 1 || s > span)
				return -EINVAL;
			step = (int)s;
		}
		if (strcmp(part, "*") != 0) {
			char *dash = strchr(part, '-');
			if (dash) {
				if (value_of(part, (size_t)(dash - part), f, &lo) ||
				    value_of(dash + 1, strlen(dash + 1), f, &hi) || lo > hi)
					return -EINVAL;
			} else {
				if (value_of(part, strlen(part), f, &lo))
					return -EINVAL;
				hi = slash ? f->max : lo;
			}
		}
		for (int v = lo; v <= hi; v += step)
			bits[v - f->min] = true;
		p += len + (comma ? 1 : 0);
		if (comma && !*p)
			return -EINVAL;
	}
	return 0;
}

struct cron {
	bool minute[60], hour[24], dom[31], month[12], dow[7], year[230];
	bool dom_any, dow_any;
};

static int parse_cron(const char *expr, struct cron *c, const char **why)
{
	char body[256], *tok[7], *save = NULL;
	size_t len = strlen(expr);
	int n = 0;
	if (len < 7 || strncmp(expr, "cron(", 5) != 0 || expr[len - 1] != ')' || len - 6 >= sizeof(body)) {
		*why = "a schedule is rate(...) or cron(...)";
		return -EINVAL;
	}
	memcpy(body, expr + 5, len - 6);
	body[len - 6] = '\0';
	for (char *t = strtok_r(body, " ", &save); t && n < 7; t = strtok_r(NULL, " ", &save))
		tok[n++] = t;
	if (n != 6) {
		*why = "cron() has six fields: minutes hours day-of-month month day-of-week year";
		return -EINVAL;
	}
	bool *bits[6] = { c->minute, c->hour, c->dom, c->month, c->dow, c->year };
	for (int i = 0; i < 6; i++) {
		if (parse_field(tok[i], &fields[i], bits[i])) {
			static char msg[96];
			snprintf(msg, sizeof(msg), "cron(): the %s field is not valid", fields[i].name);
			*why = msg;
			return -EINVAL;
		}
	}
	if (strcmp(tok[0], "0") != 0) {
		*why = "cron(): rotations start on the hour, so minutes must be 0";
		return -EINVAL;
	}
	c->dom_any = strcmp(tok[2], "*") == 0 || strcmp(tok[2], "?") == 0;
	c->dow_any = strcmp(tok[4], "*") == 0 || strcmp(tok[4], "?") == 0;
	return 0;
}

int schedule_check(const char *expr, const char **why)
{
	int64_t period;
	struct cron c;
	if (strncmp(expr, "rate(", 5) == 0)
		return parse_rate(expr, &period, why);
	return parse_cron(expr, &c, why);
}

/* Dates a schedule counts from: 1970 to the end of 2199 (cron's years). */
#define SCHEDULE_MAX_MS 7258118400000LL

int schedule_next(const char *expr, int64_t from_ms, int64_t *next_ms)
{
	const char *why;
	int64_t period;
	struct cron c;
	bool rate = strncmp(expr, "rate(", 5) == 0;
	if (rate ? parse_rate(expr, &period, &why) : parse_cron(expr, &c, &why))
		return -EINVAL;
	if (from_ms < 0 || from_ms > SCHEDULE_MAX_MS)
		return -ERANGE;
	if (rate) {
		*next_ms = from_ms + period;
		return 0;
	}
	/* Hour by hour (minutes are always 0) over five years at most. */
	time_t t = (time_t)(from_ms / 1000 / 3600 + 1) * 3600;
	for (int i = 0; i < 24 * 366 * 5; i++, t += 3600) {
		struct tm tm;
		gmtime_r(&t, &tm);
		int year = tm.tm_year + 1900;
		if (year > 2199)
			break;
		if (year < 1970)
			continue;
		bool day_ok;
		bool dom = c.dom[tm.tm_mday - 1], dow = c.dow[tm.tm_wday];
		/* As in cron: with both day fields restricted, either may match. */
		if (c.dom_any && c.dow_any)
			day_ok = true;
		else if (c.dom_any)
			day_ok = dow;
		else if (c.dow_any)
			day_ok = dom;
		else
			day_ok = dom || dow;
		if (c.year[year - 1970] && c.month[tm.tm_mon] && day_ok && c.hour[tm.tm_hour] && c.minute[0]) {
			*next_ms = (int64_t)t * 1000;
			return 0;
		}
	}
	return -ERANGE;
}
