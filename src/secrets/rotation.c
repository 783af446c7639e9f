/*
 * Rotation's bookkeeping in the domain (reference §5.12): configuration,
 * the checks before RotateSecret, and the label moves after it. Running
 * the rotation command is the FUSE adapter's (fs/rotator), which can reach
 * the mount the command works through.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "secrets/fields.h"
#include "secrets/internal.h"
#include "secrets/schedule.h"
#include "util/log.h"
#include "util/timeutil.h"

struct engine_rule {
	const char *engine; /* exact, or a prefix ending in '*' */
	const char *required[6];
};

/* Reference §10: the keys each engine's rotation needs. */
static const struct engine_rule engines[] = {
	{ "mysql", { "host", "username", "password", NULL } },
	{ "aurora-mysql", { "host", "username", "password", NULL } },
	{ "mariadb", { "host", "username", "password", NULL } },
	{ "postgres", { "host", "username", "password", NULL } },
	{ "aurora-postgresql", { "host", "username", "password", NULL } },
	{ "oracle", { "host", "username", "password", "dbname", NULL } },
	{ "sqlserver", { "host", "username", "password", NULL } },
	{ "db2*", { "host", "username", "password", "masterarn", NULL } },
	{ "redshift", { "host", "username", "password", NULL } },
	{ "mongo", { "host", "username", "password", NULL } },
	{ "timestream-influxdb", { "username", "password", "dbIdentifier", NULL } },
};

static __thread char why_text[160];

static int has_field(const struct secbuf *v, const char *key)
{
	size_t a, b;
	return fields_span(v->data, v->len, key, &a, &b) == 0;
}

/* Is the value the JSON of a database secret its engine can rotate? */
static int check_database_secret(const struct secbuf *v, const char **why)
{
	struct secbuf engine = { 0 };
	size_t a, b;
	int rc = 0;

	*why = why_text;
	if (v->len == 0 || fields_span(v->data, v->len, "engine", &a, &b) == -EINVAL) {
		*why = "rotation needs the value to be the JSON of a database secret";
		return -EINVAL;
	}
	if (fields_span(v->data, v->len, "engine", &a, &b) == -ENOENT) {
		/* ElastiCache users carry no engine (reference §10). */
		if (has_field(v, "user_arn")) {
			static const char *const cache[] = { "username", "password", "user_arn" };
			for (size_t i = 0; i < 3; i++)
				if (!has_field(v, cache[i])) {
					snprintf(why_text, sizeof(why_text),
						 "the database secret has no \"%s\"", cache[i]);
					return -EINVAL;
				}
			return 0;
		}
		snprintf(why_text, sizeof(why_text), "the database secret has no \"engine\"");
		return -EINVAL;
	}
	if (v->data[a] != '"' || (rc = fields_get(v->data, v->len, "engine", &engine)))
		goto bad_engine;
	const struct engine_rule *rule = NULL;
	for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]) && !rule; i++) {
		size_t n = strlen(engines[i].engine);
		bool prefix = engines[i].engine[n - 1] == '*';
		if (prefix ? engine.len >= n - 1 && memcmp(engine.data, engines[i].engine, n - 1) == 0
			   : engine.len == n && memcmp(engine.data, engines[i].engine, n) == 0)
			rule = &engines[i];
	}
	if (!rule)
		goto bad_engine;
	for (size_t i = 0; rule->required[i]; i++)
		if (!has_field(v, rule->required[i])) {
			snprintf(why_text, sizeof(why_text), "the database secret has no \"%s\"",
				 rule->required[i]);
			rc = -EINVAL;
			goto out;
		}
	if (fields_span(v->data, v->len, "port", &a, &b) == 0 && v->data[a] != '"' &&
	    !(v->data[a] >= '0' && v->data[a] <= '9')) {
		snprintf(why_text, sizeof(why_text), "the database secret's \"port\" is not a number");
		rc = -EINVAL;
	}
	goto out;
bad_engine:
	snprintf(why_text, sizeof(why_text),
		 "the database secret's \"engine\" is not one Secrets Manager rotates");
	rc = -EINVAL;
out:
	secbuf_free(&engine);
	return rc;
}

static void schedule_from(struct sm_secret *s, int64_t from)
{
	int64_t next = 0;
	if (from < 0 || from > INT64_MAX / 2)
		from = time_now_ms(); /* a stored date out of any range: count from now */
	if (s->rotation_days)
		next = from + (int64_t)s->rotation_days * MS_PER_DAY;
	else if (s->rotation_schedule && schedule_next(s->rotation_schedule, from, &next))
		next = 0;
	s->next_rotation_ms = next;
}

/* Rotation settings are stored, and do not move LastChangedDate. */
static int edit_rotation(struct sm *sm, const char *name, edit_fn edit, void *ctx)
{
	return edit_secret(sm, name, edit, ctx, EDIT_SILENT);
}

/* Enabling rotation checks the value, as the service's templates need it. */
static int require_database_secret(struct sm *sm, const struct sm_secret *s)
{
	struct secbuf value = { 0 };
	const char *why;
	int rc = read_current(sm, s, &value);
	if (!rc && (rc = check_database_secret(&value, &why)) == -EINVAL)
		log_warn("%s: rotation refused: %s", s->name, why);
	secbuf_free(&value);
	return rc;
}

static int edit_command(struct sm *sm, struct sm_secret *s, void *ctx)
{
	const char *path = ctx;
	if (!path[0]) {
		free(s->rotation_command);
		s->rotation_command = NULL;
		s->next_rotation_ms = 0;
		return 0;
	}
	if (path[0] != '/' || access(path, X_OK) != 0)
		return refuse(-EINVAL, s->name, "a rotation command is the absolute path of an executable");
	int rc = require_database_secret(sm, s);
	if (rc)
		return rc;
	char *copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	free(s->rotation_command);
	s->rotation_command = copy;
	schedule_from(s, s->last_rotated_ms ? s->last_rotated_ms : time_now_ms());
	return 0;
}

int sm_set_rotation_command(struct sm *sm, const char *name, const char *path)
{
	return edit_rotation(sm, name, edit_command, (void *)path);
}

struct rules_arg {
	int days;
	const char *schedule;
};

static int edit_rules(struct sm *sm, struct sm_secret *s, void *ctx)
{
	struct rules_arg *a = ctx;
	const char *why;
	if (a->days && (a->days < 1 || a->days > ROTATION_DAYS_MAX))
		return refuse(-EINVAL, s->name, "AutomaticallyAfterDays is 1 to 1000");
	if (a->schedule && schedule_check(a->schedule, &why))
		return refuse(-EINVAL, s->name, why);
	if ((a->days || a->schedule) && s->rotation_command) {
		int rc = require_database_secret(sm, s);
		if (rc)
			return rc;
	}
	char *copy = a->schedule ? strdup(a->schedule) : NULL;
	if (a->schedule && !copy)
		return -ENOMEM;
	/* AutomaticallyAfterDays and ScheduleExpression exclude each other. */
	free(s->rotation_schedule);
	s->rotation_schedule = copy;
	s->rotation_days = a->days;
	schedule_from(s, s->last_rotated_ms ? s->last_rotated_ms : time_now_ms());
	return 0;
}

int sm_set_rotation_rules(struct sm *sm, const char *name, int days, const char *schedule)
{
	struct rules_arg a = { days, schedule };
	return edit_rotation(sm, name, edit_rules, &a);
}

/* Memory-only status changes, under the writer lock. */
static int set_status(struct sm *sm, const char *name, const char *status, const char *token,
		      bool clear_token)
{
	struct sm_secret *old = find_secret(sm, name), *s;
	if (!old)
		return -ENOENT;
	if (!(s = secret_clone(old)))
		return -ENOMEM;
	free(s->rotation_status);
	s->rotation_status = status ? strdup(status) : NULL;
	if (token) {
		free(s->request_token);
		s->request_token = strdup(token);
	}
	if (clear_token) {
		free(s->request_token);
		s->request_token = NULL;
	}
	index_replace(sm, name, s);
	return 0;
}

int sm_rotation_start(struct sm *sm, const char *name, char token[37], char *command, size_t cap)
{
	int rc = 0;
	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *s = find_secret(sm, name);
	if (!is_live(s) || s->scratch || !s->persisted) {
		rc = -ENOENT;
		goto out;
	}
	if (!s->rotation_command) {
		rc = refuse(-EINVAL, name, "RotateSecret needs user.sm.rotation_command");
		goto out;
	}
	if (s->rotation_status && strncmp(s->rotation_status, "running", 7) == 0) {
		rc = refuse(-EBUSY, name, "a rotation is running");
		goto out;
	}
	const char *pending = secret_label_version(s, "AWSPENDING");
	const char *current = secret_label_version(s, "AWSCURRENT");
	if (pending && (!current || strcmp(pending, current) != 0)) {
		rc = refuse(-EBUSY, name,
			    "a previous rotation is not complete: AWSPENDING sits on a version that "
			    "is not AWSCURRENT (remove it with setfattr -x user.sm.stage.AWSPENDING)");
		goto out;
	}
	if (!current) {
		rc = refuse(-EINVAL, name, "RotateSecret needs a current value");
		goto out;
	}
	if ((rc = require_database_secret(sm, s)))
		goto out;
	if ((size_t)snprintf(command, cap, "%s", s->rotation_command) >= cap) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	keyring_new_uuid(token);
	rc = set_status(sm, name, "running createSecret", token, false);
	if (!rc)
		log_info("%s: RotateSecret started, token %s", name, token);
out:
	pthread_mutex_unlock(&sm->write_lock);
	return rc;
}

int sm_rotation_step(struct sm *sm, const char *name, const char *step)
{
	char status[64];
	snprintf(status, sizeof(status), "running %s", step);
	pthread_mutex_lock(&sm->write_lock);
	int rc = set_status(sm, name, status, NULL, false);
	pthread_mutex_unlock(&sm->write_lock);
	return rc;
}

int sm_rotation_end(struct sm *sm, const char *name, const char *token, const char *failure)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	char status[300], date[40];
	int rc = 0;

	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *old = find_secret(sm, name);
	if (!old) {
		rc = -ENOENT;
		goto out;
	}
	if (!failure && !secret_find_version(old, token))
		failure = "createSecret: no AWSPENDING value was written";
	if (failure) {
		/* AWSCURRENT stays; AWSPENDING stays where the steps left it. */
		snprintf(status, sizeof(status), "failed %s", failure);
		log_warn("%s: rotation failed: %s", name, failure);
		rc = set_status(sm, name, status, NULL, true);
		/* A scheduled rotation that failed is tried again in an hour, not
		 * every minute (memory only: a restart tries at once). */
		struct sm_secret *now = find_secret(sm, name);
		if (!rc && now && now->next_rotation_ms)
			now->next_rotation_ms = time_now_ms() + 3600 * 1000;
		goto out;
	}
	if (!(s = secret_clone(old))) {
		rc = -ENOMEM;
		goto out;
	}
	const char *current = secret_label_version(s, "AWSCURRENT");
	if (current && strcmp(current, token) != 0) {
		char old_current[SM_VERSION_ID_MAX + 1];
		snprintf(old_current, sizeof(old_current), "%s", current);
		if ((rc = secret_label_set(s, "AWSPREVIOUS", old_current)))
			goto out;
	}
	if ((rc = secret_label_set(s, "AWSCURRENT", token)))
		goto out;
	const char *pending = secret_label_version(s, "AWSPENDING");
	if (pending && strcmp(pending, token) == 0)
		secret_label_remove(s, "AWSPENDING");
	free(s->request_token);
	s->request_token = NULL;
	s->last_rotated_ms = s->changed_ms = time_now_ms();
	schedule_from(s, s->last_rotated_ms);
	time_format_iso8601(s->last_rotated_ms, date, sizeof(date));
	snprintf(status, sizeof(status), "succeeded %s", date);
	free(s->rotation_status);
	s->rotation_status = strdup(status);
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_info("%s: rotation succeeded; AWSCURRENT is version %s", name, token);
	index_replace(sm, name, s);
	s = NULL;
out:
	pthread_mutex_unlock(&sm->write_lock);
	secret_free(s);
	change_free(&c);
	return rc;
}

struct due_ctx {
	int64_t now;
	struct sm_listing *out;
	int rc;
};

static int collect_due(const char *name, void *value, void *ctx)
{
	struct due_ctx *d = ctx;
	const struct sm_secret *s = value;
	if (!is_live(s) || !s->rotation_command || !s->next_rotation_ms ||
	    (!s->rotation_days && !s->rotation_schedule) || s->next_rotation_ms > d->now ||
	    (s->rotation_status && strncmp(s->rotation_status, "running", 7) == 0))
		return 0;
	struct sm_dirent *e = realloc(d->out->entries, (d->out->count + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	d->out->entries = e;
	if (!(e[d->out->count].name = strdup(name)))
		return -ENOMEM;
	e[d->out->count++].kind = SM_KIND_SECRET;
	return 0;
}

int sm_rotations_due(struct sm *sm, struct sm_listing *out)
{
	struct due_ctx d = { time_now_ms(), out, 0 };
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&sm->index_lock);
	int rc = hashmap_foreach(sm->secrets, collect_due, &d);
	pthread_rwlock_unlock(&sm->index_lock);
	if (rc)
		sm_listing_free(out);
	return rc;
}
