/*
 * Rotation's bookkeeping in the domain (reference §5.12): configuration,
 * the checks before RotateSecret, and the label moves after it. Running
 * the rotation command is the FUSE adapter's (fs/rotator), which can reach
 * the mount the command works through.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "secrets/schedule.h"
#include "util/log.h"
#include "util/timeutil.h"

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

/*
 * Any secret may rotate: the service only calls the rotation function, and
 * the function checks the value it knows how to rotate (scripts/rotate-
 * postgres checks for a PostgreSQL database secret). Which paths may be
 * named is the FUSE adapter's check (fs/rotator), made before this.
 */
static int edit_command(struct sm *sm, struct sm_secret *s, void *ctx)
{
	const char *path = ctx;
	(void)sm;
	if (!path[0]) {
		/* CancelRotateSecret: the rules and LastRotatedDate stay. */
		if (!s->rotation_command)
			return -ENODATA;
		free(s->rotation_command);
		s->rotation_command = NULL;
		s->next_rotation_ms = 0;
		return 0;
	}
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
	(void)sm;
	if (a->days && (a->days < 1 || a->days > ROTATION_DAYS_MAX))
		return refuse(-EINVAL, s->name, "AutomaticallyAfterDays is 1 to 1000");
	if (a->schedule && schedule_check(a->schedule, &why))
		return refuse(-EINVAL, s->name, why);
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

/* given: the token to rotate to (the API's ClientRequestToken), or NULL
 * for a new one; token gets the one used. */
static int rotation_start_once(struct sm *sm, const char *name, const char *given,
			       char *token, char *command, size_t cap)
{
	const char *why;
	int rc;
	if (given && name_check_version_id(given, &why))
		return refuse(-EINVAL, name, why);
	if ((rc = write_begin(sm)))
		return rc;
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
	if ((size_t)snprintf(command, cap, "%s", s->rotation_command) >= cap) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	if (given && secret_find_version(s, given)) {
		rc = refuse(-EEXIST, name, "the ClientRequestToken names a version of this secret "
			    "already");
		goto out;
	}
	if (given)
		snprintf(token, SM_VERSION_ID_MAX + 1, "%s", given);
	else
		keyring_new_uuid(token);
	rc = set_status(sm, name, "running createSecret", token, false);
	if (!rc)
		log_info("%s: RotateSecret started, token %s", name, token);
out:
	write_end(sm);
	return rc;
}

int sm_rotation_start(struct sm *sm, const char *name, char token[37], char *command, size_t cap)
{
	/* Memory only (the status): no commit, so never stale. */
	return rotation_start_once(sm, name, NULL, token, command, cap);
}

int sm_rotation_start_as(struct sm *sm, const char *name, const char *token, char *command,
			 size_t cap)
{
	char used[SM_VERSION_ID_MAX + 1];
	return rotation_start_once(sm, name, token, used, command, cap);
}

/* Memory only, as the end of a failed rotation: neither asks the cluster,
 * so a rotation that began always ends (its writes were refused). */
int sm_rotation_step(struct sm *sm, const char *name, const char *step)
{
	char status[64];
	snprintf(status, sizeof(status), "running %s", step);
	int rc = write_begin_local(sm);
	if (rc)
		return rc;
	rc = set_status(sm, name, status, NULL, false);
	write_end(sm);
	return rc;
}

static int rotation_end_once(struct sm *sm, const char *name, const char *token,
			     const char *failure)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	char status[PATH_MAX + 300], date[40];
	int rc = write_begin_local(sm);
	if (rc)
		return rc;
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
	write_end(sm);
	secret_free(s);
	change_free(&c);
	return rc;
}

int sm_rotation_end(struct sm *sm, const char *name, const char *token, const char *failure)
{
	int rc, tries = 0;
	do
		rc = rotation_end_once(sm, name, token, failure);
	while (write_again(sm, name, &rc, &tries));
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
