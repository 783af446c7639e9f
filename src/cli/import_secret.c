/*
 * The import of one secret's lines into a mount (cli/internal.h): each
 * version written as a PutSecretValue with its VersionId as the client
 * request token, so that a second import adds nothing; versions that are
 * not AWSCURRENT are written through .stages/ so that AWSCURRENT never
 * moves to an old value of a live secret. Every attribute is compared
 * before it is set: an import of what is already there changes nothing
 * (not even LastChangedDate).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/internal.h"
#include "util/files.h"
#include "secrets/names.h"

#define PATH_CAP 4096

/* MNT/NAME, MNT/.stages/LABEL/NAME (label) or MNT/.versions/NAME/ID (version). */
static int path_of(char path[PATH_CAP], const struct import_run *run, const char *label,
		   const char *version)
{
	int n = label     ? snprintf(path, PATH_CAP, "%s/.stages/%s/%s", run->mnt, label, run->name)
		: version ? snprintf(path, PATH_CAP, "%s/.versions/%s/%s", run->mnt, run->name, version)
			  : snprintf(path, PATH_CAP, "%s/%s", run->mnt, run->name);
	return n < 0 || n >= PATH_CAP ? -ENAMETOOLONG : 0;
}

static int make_parents(const struct import_run *run)
{
	char path[PATH_CAP];
	int rc = path_of(path, run, NULL, NULL);
	if (rc)
		return rc;
	for (char *p = path + strlen(run->mnt) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int set_fd(int fd, const char *name, const char *value)
{
	return fsetxattr(fd, name, value, strlen(value), 0) ? -errno : 0;
}

/* Sets an attribute unless it holds value already: 0 unchanged, 1 set. */
static int set_if_differs(const char *path, const char *name, const char *value)
{
	char *now = get_text_xattr(path, name);
	bool same = now && strcmp(now, value) == 0;
	free(now);
	if (same)
		return 0;
	return setxattr(path, name, value, strlen(value), 0) ? -errno : 1;
}

static int place_label(const char *path, const char *label, const char *version_id)
{
	char attr[300];
	snprintf(attr, sizeof(attr), "user.sm.stage.%s", label);
	return set_if_differs(path, attr, version_id);
}

static int remove_label(const char *path, const char *label)
{
	char attr[300];
	snprintf(attr, sizeof(attr), "user.sm.stage.%s", label);
	return removexattr(path, attr) != 0 && errno != ENODATA ? -errno : 0;
}

/* A setting of the secret could not be made: said, and the import fails. */
static void setting_failed(struct import_run *run, const char *what, int rc)
{
	cli_error("%s: %s not set: %s", run->name, what,
		  rc == -EINVAL ? "refused (the mount's log says why)" : strerror(-rc));
	run->failed++;
}

static bool exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

/* A secret that does not exist yet is made without a value (touch), with
 * its KMS key when one is given: every version is then sealed under it. */
static int create_empty(struct import_run *run, const char *main_path, const char *kms_key_id)
{
	int fd = open(main_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), rc = 0;
	if (fd < 0)
		return errno == EEXIST ? 0 : -errno;
	if (kms_key_id && (rc = set_fd(fd, "user.sm.kms_key_id", kms_key_id)))
		setting_failed(run, "KmsKeyId", rc);
	return close(fd) != 0 ? -errno : 0;
}

/* The KMS key before the first version is written under it. */
static int choose_key(struct import_run *run, const char *kms_key_id)
{
	char main_path[PATH_CAP];
	int rc = path_of(main_path, run, NULL, NULL);
	if (rc || run->kms_checked || !kms_key_id)
		return rc;
	run->kms_checked = true;
	if (!exists(main_path))
		return create_empty(run, main_path, kms_key_id);
	if ((rc = set_if_differs(main_path, "user.sm.kms_key_id", kms_key_id)) < 0)
		setting_failed(run, "KmsKeyId", rc);
	return 0;
}

static bool has_stage(const struct exchange_record *r, const char *stage)
{
	for (size_t i = 0; i < r->nstages; i++)
		if (strcmp(r->stages[i], stage) == 0)
			return true;
	return false;
}

static int write_version(struct import_run *run, const struct exchange_record *r,
			 const struct secbuf *value)
{
	char main_path[PATH_CAP], path[PATH_CAP];
	/* The id becomes a path component (.versions/NAME/ID) and the token:
	 * exchange_decode refused any other, and so does this. */
	if (r->version_id && name_check_version_id(r->version_id, NULL))
		return -EINVAL;
	bool token = r->version_id != NULL;
	/* Lines with VersionStages but no AWSCURRENT are older versions:
	 * written through their first label, or a temporary one. */
	bool older = r->has_stages && !has_stage(r, "AWSCURRENT");
	bool temporary = older && r->nstages == 0;
	const char *through = !older ? NULL : temporary ? IMPORT_LABEL : r->stages[0];
	int rc, fd;

	if ((rc = path_of(main_path, run, NULL, NULL)) || (rc = path_of(path, run, through, NULL)))
		return rc;
	char versions_path[PATH_CAP];
	bool existed = token && path_of(versions_path, run, NULL, r->version_id) == 0 &&
		       exists(versions_path);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return -errno;
	/* The date first: a refused one leaves no token behind. exchange_decode
	 * read it; whether it may be a version's date is the daemon's to say
	 * (its clock, its rule). Refused, the version is dated now, and that is
	 * said: for this caller once at the end (EACCES: the caller may not set
	 * dates, so none is tried again), for this date here and counted. */
	if (!existed && r->created && !run->dates_refused) {
		rc = set_fd(fd, "user.sm.import_created_date", r->created);
		if (rc == -EACCES)
			run->dates_refused = true;
		if (rc == -EINVAL) {
			cli_error("%s: CreatedDate %s refused (a version's date lies after 1970 "
				  "and not in the future): the version is dated now",
				  run->name, r->created);
			run->dates_invalid++;
		}
		if (rc == -EACCES || rc == -EINVAL)
			rc = 0;
	}
	if (!rc && token)
		rc = set_fd(fd, "user.sm.client_request_token", r->version_id);
	if (!rc)
		rc = files_write_all(fd, value->data, value->len);
	/* close() is the commit: its error is the line's. */
	if (close(fd) != 0 && !rc)
		rc = -errno;
	if (rc) {
		/* A refused commit leaves its token and date pending for a retry;
		 * the import does not retry, and the secret's next write, maybe
		 * another line's, must not take them. */
		removexattr(main_path, "user.sm.client_request_token");
		return rc;
	}
	run->versions++;
	if (!existed)
		run->added++;
	/* Every label of the line (a replay moved none). */
	for (size_t i = 0; token && i < r->nstages; i++) {
		if ((rc = place_label(main_path, r->stages[i], r->version_id)) < 0) {
			setting_failed(run, "a staging label", rc);
			break;
		}
	}
	if (temporary && (rc = remove_label(main_path, IMPORT_LABEL)))
		setting_failed(run, "removal of the label " IMPORT_LABEL, rc);
	return 0;
}

int import_line(struct import_run *run, struct exchange_record *r, const struct secbuf *value)
{
	char main_path[PATH_CAP];
	int rc;

	if (run->name && strcmp(run->name, r->name) != 0)
		import_finish(run);
	if (!run->name) {
		if (!(run->name = strdup(r->name))) {
			rc = -ENOMEM;
			goto out;
		}
		run->secrets++;
		run->kms_checked = false;
		if ((rc = make_parents(run)))
			goto out;
	}
	if ((rc = choose_key(run, r->kms_key_id)) || (rc = path_of(main_path, run, NULL, NULL)))
		goto out;
	rc = r->has_value ? write_version(run, r, value) : create_empty(run, main_path, NULL);
	/* The secret's own fields are set at its end even if this value failed. */
	if (exchange_record_describes_secret(r)) {
		if (run->have_own)
			exchange_record_free(&run->own);
		run->own = *r;
		run->have_own = true;
		memset(r, 0, sizeof(*r));
	}
out:
	exchange_record_free(r);
	return rc;
}

static int load_versions(const char *path, struct exchange_version **list, size_t *n)
{
	char *text = get_text_xattr(path, "user.sm.versions");
	int rc = text ? exchange_versions_parse(text, list, n) : -errno;
	free(text);
	return rc;
}

/* The labels as the Versions list has them, on the versions the store has. */
static void fix_labels(struct import_run *run, const char *path, const struct exchange_version *want,
		       size_t nwant)
{
	struct exchange_version *have = NULL;
	size_t nhave = 0;
	int rc;

	if ((rc = load_versions(path, &have, &nhave)))
		goto out;
	/* AWSCURRENT first: moving it puts AWSPREVIOUS on the old current. */
	for (size_t i = 0; !rc && i < nwant; i++)
		if (exchange_version_has(&want[i], "AWSCURRENT") &&
		    exchange_version_find(have, nhave, want[i].id))
			rc = place_label(path, "AWSCURRENT", want[i].id);
	for (size_t i = 0; rc >= 0 && i < nwant; i++) {
		if (!exchange_version_find(have, nhave, want[i].id)) {
			if (want[i].nstages)
				cli_error("%s: version %s is not in the store: its labels are not placed",
					  run->name, want[i].id);
			run->failed += want[i].nstages ? 1 : 0;
			continue;
		}
		for (size_t l = 0; rc >= 0 && l < want[i].nstages; l++)
			if (strcmp(want[i].stages[l], "AWSCURRENT") != 0)
				rc = place_label(path, want[i].stages[l], want[i].id);
	}
	if (rc < 0)
		goto out;
	/* What the import's own writes left elsewhere (AWSPREVIOUS, mostly). */
	exchange_versions_free(have, nhave);
	have = NULL;
	if ((rc = load_versions(path, &have, &nhave)))
		goto out;
	for (size_t i = 0; !rc && i < nwant; i++) {
		const struct exchange_version *h = exchange_version_find(have, nhave, want[i].id);
		for (size_t l = 0; h && !rc && l < h->nstages; l++)
			if (strcmp(h->stages[l], "AWSCURRENT") != 0 &&
			    !exchange_version_has(&want[i], h->stages[l]))
				rc = remove_label(path, h->stages[l]);
	}
out:
	if (rc < 0)
		setting_failed(run, "the staging labels", rc);
	exchange_versions_free(have, nhave);
}

static void set_setting(struct import_run *run, const char *path, const char *attr,
			const char *value)
{
	int rc = set_if_differs(path, attr, value);
	if (rc == -EACCES && strcmp(attr, "user.sm.rotation_command") == 0)
		cli_error("%s: rotation command not set: only root or the user who mounted the "
			  "store may set one", run->name);
	else if (rc < 0)
		setting_failed(run, attr, rc);
}

/* Owner and group, then mode: last, as they may take the caller's rights away. */
static void set_owner_and_mode(struct import_run *run, const char *path)
{
	const struct exchange_record *o = &run->own;
	struct stat sb;
	if (stat(path, &sb) != 0) {
		setting_failed(run, "owner and mode", -errno);
		return;
	}
	if (o->has_owner && (sb.st_uid != o->uid || sb.st_gid != o->gid) &&
	    chown(path, (uid_t)o->uid, (gid_t)o->gid) != 0) {
		if (errno == EPERM)
			run->owners_refused++;
		else
			setting_failed(run, "owner and group", -errno);
	}
	if (o->has_mode && (sb.st_mode & 07777) != o->mode && chmod(path, o->mode) != 0)
		setting_failed(run, "mode", -errno);
}

void import_finish(struct import_run *run)
{
	char path[PATH_CAP], text[300];
	const struct exchange_record *o = &run->own;

	if (!run->name)
		return;
	if (!run->have_own || path_of(path, run, NULL, NULL))
		goto out;
	if (o->description)
		set_setting(run, path, "user.sm.description", o->description);
	for (size_t i = 0; i < o->ntags; i++) {
		snprintf(text, sizeof(text), "user.tag.%s", o->tags[i].key);
		set_setting(run, path, text, o->tags[i].value);
	}
	if (o->has_versions)
		fix_labels(run, path, o->versions, o->nversions);
	if (o->rotation_days) {
		snprintf(text, sizeof(text), "%d", o->rotation_days);
		set_setting(run, path, "user.sm.rotation_days", text);
	}
	if (o->rotation_schedule)
		set_setting(run, path, "user.sm.rotation_schedule", o->rotation_schedule);
	if (o->rotation_command)
		set_setting(run, path, "user.sm.rotation_command", o->rotation_command);
	set_owner_and_mode(run, path);
out:
	if (run->have_own)
		exchange_record_free(&run->own);
	run->have_own = false;
	free(run->name);
	run->name = NULL;
}
