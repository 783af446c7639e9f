#include "fs/xattrs.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "fs/rotator.h"
#include "util/log.h"
#include "util/timeutil.h"

#define SM_PREFIX "user.sm."
#define TAG_PREFIX "user.tag."
#define STAGE_PREFIX "user.sm.stage."

/* A growable text buffer for attribute values and name lists. */
struct text {
	char *data;
	size_t len, cap;
	int error;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (t->error)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = (t->len + n + 1) * 2;
		char *d = realloc(t->data, cap);
		if (!d) {
			t->error = -ENOMEM;
			return;
		}
		t->data = d;
		t->cap = cap;
	}
	memcpy(t->data + t->len, s, n);
	t->len += n;
	t->data[t->len] = '\0';
}

static void text_printf(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(struct text *t, const char *fmt, ...)
{
	char *buf = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&buf, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->error = -ENOMEM;
		return;
	}
	text_add(t, buf, (size_t)n);
	free(buf);
}

/* Does the target show a secret's metadata? */
static bool has_secret(const struct target *t)
{
	return t->kind == T_SECRET || t->kind == T_VERSION || t->kind == T_STAGE_SECRET ||
	       t->kind == T_DELETED_SECRET;
}

/* The version id a target shows, or NULL. */
static const char *shown_version(const struct target *t, const struct sm_secret *s)
{
	if (t->kind == T_VERSION)
		return t->version_id;
	if (t->kind == T_STAGE_SECRET)
		return secret_label_version(s, t->label);
	return secret_label_version(s, "AWSCURRENT");
}

static void add_date(struct text *t, int64_t ms)
{
	char buf[40];
	time_format_iso8601(ms, buf, sizeof(buf));
	text_add(t, buf, strlen(buf));
}

static int get_secret_attr(struct sm *sm, const struct target *t, const struct sm_secret *s,
			   const char *name, struct text *out)
{
	const char *vid = shown_version(t, s);
	if (strncmp(name, TAG_PREFIX, strlen(TAG_PREFIX)) == 0) {
		for (size_t i = 0; i < s->ntags; i++)
			if (strcmp(s->tags[i].key, name + strlen(TAG_PREFIX)) == 0) {
				text_add(out, s->tags[i].value, strlen(s->tags[i].value));
				return 0;
			}
		return -ENODATA;
	}
	if (strncmp(name, SM_PREFIX, strlen(SM_PREFIX)) != 0)
		return -ENODATA;
	const char *a = name + strlen(SM_PREFIX);
	if (strcmp(a, "arn") == 0) {
		char arn[SM_NAME_MAX + 128];
		sm_arn(sm, s, arn, sizeof(arn));
		text_add(out, arn, strlen(arn));
	} else if (strcmp(a, "name") == 0) {
		text_add(out, s->name, strlen(s->name));
	} else if (strcmp(a, "description") == 0) {
		if (!s->description)
			return -ENODATA;
		text_add(out, s->description, strlen(s->description));
	} else if (strcmp(a, "kms_key_id") == 0) {
		if (s->kms_key_id)
			text_add(out, s->kms_key_id, strlen(s->kms_key_id));
	} else if (strcmp(a, "version_id") == 0) {
		if (!vid)
			return -ENODATA;
		text_add(out, vid, strlen(vid));
	} else if (strcmp(a, "version_stages") == 0) {
		char labels[SM_MAX_LABELS * (SM_LABEL_MAX + 1) + 1];
		if (!vid)
			return -ENODATA;
		secret_version_labels(s, vid, labels, sizeof(labels));
		text_add(out, labels, strlen(labels));
	} else if (strcmp(a, "versions") == 0) {
		for (size_t i = 0; i < s->nversions; i++) {
			char labels[SM_MAX_LABELS * (SM_LABEL_MAX + 1) + 1], date[40];
			secret_version_labels(s, s->versions[i].id, labels, sizeof(labels));
			time_format_iso8601(s->versions[i].created_ms, date, sizeof(date));
			text_printf(out, "%s %s %s\n", s->versions[i].id, date, labels);
		}
	} else if (strncmp(name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0) {
		const char *holder = secret_label_version(s, name + strlen(STAGE_PREFIX));
		if (!holder)
			return -ENODATA;
		text_add(out, holder, strlen(holder));
	} else if (strcmp(a, "created_date") == 0) {
		add_date(out, s->created_ms);
	} else if (strcmp(a, "last_changed_date") == 0) {
		add_date(out, s->changed_ms);
	} else if (strcmp(a, "last_accessed_date") == 0) {
		if (!s->accessed_ms)
			return -ENODATA;
		add_date(out, s->accessed_ms);
	} else if (strcmp(a, "deleted_date") == 0) {
		if (!s->deleted_ms)
			return -ENODATA;
		add_date(out, s->purge_ms);
	} else if (strcmp(a, "rotation_command") == 0) {
		if (!s->rotation_command)
			return -ENODATA;
		text_add(out, s->rotation_command, strlen(s->rotation_command));
	} else if (strcmp(a, "rotation_days") == 0) {
		if (!s->rotation_days)
			return -ENODATA;
		text_printf(out, "%d", s->rotation_days);
	} else if (strcmp(a, "rotation_schedule") == 0) {
		if (!s->rotation_schedule)
			return -ENODATA;
		text_add(out, s->rotation_schedule, strlen(s->rotation_schedule));
	} else if (strcmp(a, "rotation_status") == 0) {
		if (s->rotation_status) {
			text_add(out, s->rotation_status, strlen(s->rotation_status));
		} else if (s->last_rotated_ms) {
			text_add(out, "succeeded ", 10); /* before this daemon started */
			add_date(out, s->last_rotated_ms);
		} else {
			text_add(out, "never", 5);
		}
	} else if (strcmp(a, "describe") == 0) {
		char *json;
		int rc = sm_describe(sm, s->name, &json);
		if (rc)
			return rc;
		text_add(out, json, strlen(json));
		free(json);
	} else {
		return -ENODATA;
	}
	return out->error;
}

static int get_keys(struct sm *sm, struct text *out)
{
	struct keyring_key_info *keys;
	size_t n;
	int rc = keyring_list(sm_keyring(sm), &keys, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++) {
		char arn[128], date[40];
		keyring_key_arn(sm_keyring(sm), keys[i].id, arn, sizeof(arn));
		time_format_iso8601(keys[i].created_ms, date, sizeof(date));
		text_printf(out, "%s alias/%s %s %s\n", arn, keys[i].alias,
			    keys[i].enabled ? "Enabled" : "Disabled", date);
	}
	free(keys);
	return out->error;
}

int xattr_get(struct sm *sm, const struct target *t, const char *name, char **value, size_t *len)
{
	struct text out = { 0 };
	struct sm_secret *s = NULL;
	int rc;

	*value = NULL;
	*len = 0;
	if (t->kind == T_ROOT && strcmp(name, "user.sm.keys") == 0) {
		rc = get_keys(sm, &out);
	} else if (!has_secret(t)) {
		rc = -ENODATA;
	} else if ((rc = sm_secret_copy(sm, t->name, &s)) == 0) {
		rc = get_secret_attr(sm, t, s, name, &out);
		secret_free(s);
	}
	if (rc) {
		free(out.data);
		return rc;
	}
	*value = out.data;
	*len = out.len;
	return 0;
}

static void add_name(struct text *t, const char *prefix, const char *name)
{
	text_add(t, prefix, strlen(prefix));
	text_add(t, name, strlen(name) + 1); /* with its NUL */
}

int xattr_list(struct sm *sm, const struct target *t, char **names, size_t *len)
{
	struct text out = { 0 };
	struct sm_secret *s;
	int rc = 0;

	*names = NULL;
	*len = 0;
	if (t->kind == T_ROOT) {
		add_name(&out, SM_PREFIX, "keys");
	} else if (has_secret(t) && (rc = sm_secret_copy(sm, t->name, &s)) == 0) {
		const char *vid = shown_version(t, s);
		static const char *const always[] = { "arn", "name", "versions", "created_date",
						      "last_changed_date", "describe" };
		for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
			add_name(&out, SM_PREFIX, always[i]);
		if (s->description)
			add_name(&out, SM_PREFIX, "description");
		if (s->kms_key_id)
			add_name(&out, SM_PREFIX, "kms_key_id");
		if (vid) {
			add_name(&out, SM_PREFIX, "version_id");
			add_name(&out, SM_PREFIX, "version_stages");
		}
		if (s->accessed_ms)
			add_name(&out, SM_PREFIX, "last_accessed_date");
		if (s->deleted_ms)
			add_name(&out, SM_PREFIX, "deleted_date");
		if (s->rotation_command) {
			add_name(&out, SM_PREFIX, "rotation_command");
			add_name(&out, SM_PREFIX, "rotation_status");
		}
		if (s->rotation_days)
			add_name(&out, SM_PREFIX, "rotation_days");
		if (s->rotation_schedule)
			add_name(&out, SM_PREFIX, "rotation_schedule");
		/* user.sm.stage.LABEL is a family read by name, not listed: sync
		 * tools (rsync -X) remove listed attributes the source lacks,
		 * and AWSCURRENT cannot be removed. version_stages lists them. */
		for (size_t i = 0; i < s->ntags; i++)
			add_name(&out, TAG_PREFIX, s->tags[i].key);
		secret_free(s);
	}
	if (rc || out.error) {
		free(out.data);
		return rc ? rc : out.error;
	}
	*names = out.data;
	*len = out.len;
	return 0;
}

static bool is_read_only(const char *a)
{
	static const char *const ro[] = { "arn", "name", "version_id", "version_stages",
					  "versions", "created_date", "last_changed_date",
					  "last_accessed_date", "deleted_date", "describe", "keys",
					  "rotation_status" };
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++)
		if (strcmp(a, ro[i]) == 0)
			return true;
	return false;
}

static int foreign_namespace(const char *name)
{
	if (strncmp(name, "user.", 5) == 0)
		return 0;
	return -EOPNOTSUPP; /* security.*, system.*, trusted.*: not ours */
}

/* Root and the user who mounted the store: the daemon's own authority
 * (named keys, backups, commands the daemon runs, dates it records). */
static bool is_mount_admin(const struct xattr_caller *who)
{
	return who->uid == 0 || who->uid == who->owner;
}

static int manage_keys(struct sm *sm, const struct xattr_caller *who, const char *a,
		       const char *value, size_t len)
{
	char spec[4096], key_id[SM_KEY_ID_LEN + 1];
	if (!is_mount_admin(who))
		return -EACCES;
	if (len == 0 || len >= sizeof(spec))
		return -EINVAL;
	memcpy(spec, value, len);
	spec[len] = '\0';
	spec[strcspn(spec, "\n")] = '\0';
	struct keyring *kr = sm_keyring(sm);
	int rc;
	if (strcmp(a, "key.create") == 0) {
		rc = keyring_create_key(kr, spec, key_id);
		if (rc == -EINVAL)
			log_warn("key %s: refused: an alias is alias/NAME with letters, digits, /_- "
				 "and not under alias/aws/", spec);
	} else if (strcmp(a, "backup") == 0) {
		/* secretsfs backup of a mounted store: the daemon holds it. */
		rc = spec[0] == '/' ? sm_backup(sm, spec) : -EINVAL;
		if (rc)
			log_warn("backup to %s failed: %s", spec, strerror(-rc));
		else
			log_info("backup written to %s", spec);
	} else if (strcmp(a, "key.enable") == 0 || strcmp(a, "key.disable") == 0) {
		rc = keyring_set_enabled(kr, spec, strcmp(a, "key.enable") == 0);
		if (rc == -ENOENT)
			rc = -EINVAL;
	} else {
		rc = -EPERM;
	}
	return rc;
}

static int set_rotation(struct sm *sm, const struct xattr_caller *who, const char *secret,
			const char *a, const char *value, size_t len)
{
	char text[4097], *end;
	if (len >= sizeof(text))
		return -E2BIG;
	memcpy(text, value, len);
	text[len] = '\0';
	text[strcspn(text, "\n")] = '\0';
	if (strcmp(a, "rotation_command") == 0) {
		/* Stored resolved: what each run checks again is what was set. */
		char resolved[PATH_MAX];
		if (!text[0])
			return sm_set_rotation_command(sm, secret, "");
		int rc = rotator_check_command(who->rotator, secret, text, resolved);
		return rc ? rc : sm_set_rotation_command(sm, secret, resolved);
	}
	if (strcmp(a, "rotation_schedule") == 0)
		return sm_set_rotation_rules(sm, secret, 0, text[0] ? text : NULL);
	long days = strtol(text, &end, 10);
	if (!text[0] || *end || days < 1 || days > 1000) {
		log_warn("%s: refused: rotation_days is 1 to 1000", secret);
		return -EINVAL;
	}
	return sm_set_rotation_rules(sm, secret, (int)days, NULL);
}

/* user.sm.import_created_date: an ISO 8601 date for the next commit's version. */
static int set_request_created(struct sm *sm, const char *secret, const char *value, size_t len)
{
	char text[64];
	int64_t ms;
	if (len >= sizeof(text))
		return -EINVAL;
	memcpy(text, value, len);
	text[len] = '\0';
	text[strcspn(text, "\n")] = '\0';
	if (time_parse_iso8601(text, &ms)) {
		log_warn("%s: refused: user.sm.import_created_date is an ISO 8601 date such as "
			 "2024-01-31T12:00:00.000Z", secret);
		return -EINVAL;
	}
	return sm_set_request_created(sm, secret, ms);
}

int xattr_set(struct sm *sm, const struct target *t, const struct xattr_caller *who,
	      const char *name, const char *value, size_t len, int flags)
{
	int rc = foreign_namespace(name);
	if (rc)
		return rc;
	const char *a = strncmp(name, SM_PREFIX, strlen(SM_PREFIX)) == 0 ? name + strlen(SM_PREFIX) : NULL;
	if (t->kind == T_ROOT && a && (strncmp(a, "key.", 4) == 0 || strcmp(a, "backup") == 0))
		return manage_keys(sm, who, a, value, len);
	if (t->kind == T_ROOT && a && strcmp(a, "keys") == 0)
		return -EPERM; /* read-only, like every listing attribute */
	bool tag = strncmp(name, TAG_PREFIX, strlen(TAG_PREFIX)) == 0;
	/* A rotation command runs as the daemon: only its owner may name one.
	 * A version's date is history the daemon vouches for: the same. */
	if (a && (strcmp(a, "rotation_command") == 0 || strcmp(a, "import_created_date") == 0) &&
	    !is_mount_admin(who)) {
		log_warn("%s: refused: only root or the user who mounted the store may set %s",
			 t->name, name);
		return -EACCES;
	}
	if (!a && !tag)
		return -EOPNOTSUPP; /* other user.* attributes have no home here */
	if (t->kind == T_STAGE_SECRET && a && strcmp(a, "client_request_token") == 0)
		return sm_set_request_token(sm, t->name, value, len);
	if ((t->kind == T_SECRET || t->kind == T_STAGE_SECRET) && a &&
	    strcmp(a, "import_created_date") == 0)
		return set_request_created(sm, t->name, value, len);
	if (t->kind != T_SECRET)
		return has_secret(t) ? -EPERM : -EOPNOTSUPP;
	if (tag) {
		char key[1024];
		size_t klen = strlen(name + strlen(TAG_PREFIX));
		if (klen >= sizeof(key))
			return -EINVAL;
		memcpy(key, name + strlen(TAG_PREFIX), klen + 1);
		return sm_set_tag(sm, t->name, key, value, len,
				  (flags & XATTR_CREATE ? SM_SET_CREATE : 0) |
				  (flags & XATTR_REPLACE ? SM_SET_REPLACE : 0));
	}
	if (strcmp(a, "description") == 0)
		return sm_set_description(sm, t->name, value, len);
	if (strcmp(a, "kms_key_id") == 0)
		return sm_set_kms_key(sm, t->name, value, len);
	if (strcmp(a, "client_request_token") == 0)
		return sm_set_request_token(sm, t->name, value, len);
	if (strcmp(a, "rotation_command") == 0 || strcmp(a, "rotation_days") == 0 ||
	    strcmp(a, "rotation_schedule") == 0)
		return set_rotation(sm, who, t->name, a, value, len);
	if (strncmp(name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0) {
		char version_id[SM_VERSION_ID_MAX + 2];
		if (len == 0 || len > SM_VERSION_ID_MAX)
			return -EINVAL;
		memcpy(version_id, value, len);
		version_id[len] = '\0';
		version_id[strcspn(version_id, "\n")] = '\0';
		return sm_update_stage(sm, t->name, name + strlen(STAGE_PREFIX), version_id);
	}
	if (is_read_only(a)) {
		log_warn("%s: refused: %s is read-only", t->name, name);
		return -EPERM;
	}
	return -EOPNOTSUPP;
}

int xattr_remove(struct sm *sm, const struct target *t, const struct xattr_caller *who,
		 const char *name)
{
	int rc = foreign_namespace(name);
	if (rc)
		return rc == -EOPNOTSUPP ? -ENODATA : rc;
	if (t->kind == T_ROOT && strcmp(name, SM_PREFIX "keys") == 0)
		return 0; /* derived, like the secrets' read-only attributes below */
	if (t->kind != T_SECRET)
		return has_secret(t) ? -EPERM : -ENODATA;
	if (strncmp(name, TAG_PREFIX, strlen(TAG_PREFIX)) == 0)
		return sm_remove_tag(sm, t->name, name + strlen(TAG_PREFIX));
	if (strcmp(name, SM_PREFIX "description") == 0)
		return sm_remove_description(sm, t->name);
	if (strcmp(name, SM_PREFIX "kms_key_id") == 0)
		return sm_remove_kms_key(sm, t->name);
	if (strncmp(name, STAGE_PREFIX, strlen(STAGE_PREFIX)) == 0)
		return sm_update_stage(sm, t->name, name + strlen(STAGE_PREFIX), NULL);
	/* A refused commit leaves them pending for a retry: this gives it up. */
	if (strcmp(name, SM_PREFIX "client_request_token") == 0 ||
	    strcmp(name, SM_PREFIX "import_created_date") == 0)
		return sm_set_request_token(sm, t->name, NULL, 0);
	if (strcmp(name, SM_PREFIX "rotation_command") == 0)
		return !is_mount_admin(who) ? -EACCES : sm_set_rotation_command(sm, t->name, "");
	if (strcmp(name, SM_PREFIX "rotation_days") == 0 ||
	    strcmp(name, SM_PREFIX "rotation_schedule") == 0)
		return sm_set_rotation_rules(sm, t->name, 0, NULL);
	/* Derived attributes are recomputed, so removing one changes nothing;
	 * sync tools remove what their source lacks and must not fail on it. */
	if (strncmp(name, SM_PREFIX, strlen(SM_PREFIX)) == 0 && is_read_only(name + strlen(SM_PREFIX)))
		return 0;
	return -ENODATA;
}
