/*
 * secretsfs export MOUNTPOINT [PREFIX] and secretsfs import MOUNTPOINT:
 * secrets with their whole history as JSON lines (secrets/exchange.h),
 * through a mounted store, so every read and write is the daemon's ordinary
 * GetSecretValue and PutSecretValue, and every rule of the mount applies
 * (import_secret.c writes). Values pass only through this process's locked
 * memory, standard input and standard output. Each ends with a one-line
 * summary on standard error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/internal.h"
#include "util/files.h"
#include "crypto/crypto.h"
#include "secrets/exchange.h"
#include "secrets/names.h"

static const char export_usage[] =
	"usage: secretsfs export MOUNTPOINT [PREFIX]\n"
	"\n"
	"Writes every secret under MOUNTPOINT (or under the folder or name PREFIX)\n"
	"to standard output, one JSON object per version, oldest first: the AWS CLI's\n"
	"get-secret-value output (SecretString, or SecretBinary in base64) with\n"
	"describe-secret's KmsKeyId. The AWSCURRENT version's line also has the\n"
	"Description and Tags, and under \"Secretsfs\" the owner, group, mode, every\n"
	"version's labels and date, and the rotation settings. Redirect it to a file\n"
	"only you can read. Ends with a summary on standard error.\n";

static const char import_usage[] =
	"usage: secretsfs import MOUNTPOINT < FILE\n"
	"\n"
	"Reads JSON lines as export writes them (or as the AWS CLI prints\n"
	"get-secret-value merged with describe-secret) from standard input and\n"
	"creates or updates each secret under MOUNTPOINT: its versions in order with\n"
	"their VersionIds and labels, description, KMS key, tags, rotation settings,\n"
	"owner, group and mode. Versions keep their dates, and rotation commands are\n"
	"set, only for root or the user who mounted the store. Importing the same\n"
	"file twice changes nothing. Ends with a summary on standard error.\n";

/* Progress on a terminal only; never any value. */
static void progress(const char *verb, size_t done, size_t total, int final)
{
	if (!isatty(STDERR_FILENO))
		return;
	if (total) {
		int width = 30, filled = (int)(done * (size_t)width / total);
		fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu", verb, filled,
			"##############################", width - filled, "", done, total);
	} else {
		fprintf(stderr, "\r%s %zu", verb, done);
	}
	if (final)
		fputc('\n', stderr);
}

char *get_text_xattr(const char *path, const char *name)
{
	ssize_t n = getxattr(path, name, NULL, 0);
	if (n < 0)
		return NULL;
	char *buf = malloc((size_t)n + 1);
	if (!buf)
		return NULL;
	n = getxattr(path, name, buf, (size_t)n);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/* The whole value of path into out (secure memory). */
static int read_value(const char *path, struct secbuf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = 0;
	if (fd < 0)
		return -errno;
	out->len = 0;
	if ((rc = secbuf_reserve(out, 65536 + 1)))
		goto out;
	for (;;) {
		ssize_t n = read(fd, out->data + out->len, out->cap - out->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		if (out->len == out->cap) {
			rc = -EFBIG;
			break;
		}
	}
out:
	close(fd);
	return rc;
}

struct export_state {
	const char *mnt;
	struct secbuf value, line;
	size_t secrets, versions, skipped;
};

static int emit(struct export_state *st)
{
	int rc = files_write_all(STDOUT_FILENO, st->line.data, st->line.len);
	crypto_wipe(st->line.data, st->line.len);
	return rc;
}

/* One version's line: its value read from .versions/NAME/ID. */
static int export_version(struct export_state *st, const struct exchange_secret *src,
			  const char *name, const struct exchange_version *v, bool full)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/.versions/%s/%s", st->mnt, name, v->id);
	int rc = n < 0 || (size_t)n >= sizeof(path) ? -ENAMETOOLONG : read_value(path, &st->value);
	if (!rc)
		rc = exchange_encode(src, v, &st->value,
				     !value_is_string(st->value.data, st->value.len), full, &st->line);
	crypto_wipe(st->value.data, st->value.len);
	return rc ? rc : emit(st);
}

static void export_secret(struct export_state *st, const char *path, const struct stat *sb)
{
	const char *name = path + strlen(st->mnt) + 1;
	char *describe = get_text_xattr(path, "user.sm.describe");
	char *listing = describe ? get_text_xattr(path, "user.sm.versions") : NULL;
	/* Their errno before the reads below (absent attributes) change it. */
	int rc = !listing ? (errno ? -errno : -EIO) : 0;
	char *command = get_text_xattr(path, "user.sm.rotation_command");
	char *days = get_text_xattr(path, "user.sm.rotation_days");
	char *schedule = get_text_xattr(path, "user.sm.rotation_schedule");
	struct exchange_describe *parsed = NULL;
	struct exchange_version *versions = NULL;
	size_t n = 0, own = 0;
	bool own_written = false, any = false;
	if (!rc)
		rc = exchange_versions_parse(listing, &versions, &n);
	/* Once for all of the secret's lines. */
	if (!rc)
		rc = exchange_describe_parse(describe, &parsed);

	if (rc) {
		cli_error("%s: cannot export: %s", path, strerror(-rc));
		st->skipped++;
		goto out;
	}
	struct exchange_secret src = { parsed, versions, n, sb->st_uid, sb->st_gid,
				       sb->st_mode & 07777, command, schedule, days ? atoi(days) : 0 };
	/* The secret's own fields go on its AWSCURRENT line. */
	for (size_t i = 0; i < n; i++)
		if (exchange_version_has(&versions[i], "AWSCURRENT"))
			own = i;
	for (size_t i = 0; i < n; i++) {
		if ((rc = export_version(st, &src, name, &versions[i], i == own))) {
			cli_error("%s: version %s: cannot export: %s", path, versions[i].id,
				  strerror(-rc));
			st->skipped++;
			continue;
		}
		st->versions++;
		any = true;
		own_written |= i == own;
	}
	/* A secret without a value, or whose current value cannot be read: its
	 * own fields still travel, on a line without a value. */
	if (!own_written) {
		rc = exchange_encode(&src, NULL, NULL, false, true, &st->line);
		if (!rc)
			rc = emit(st);
		if (rc) {
			cli_error("%s: cannot export: %s", path, strerror(-rc));
			st->skipped++;
		}
		any |= !rc;
	}
	if (any)
		progress("exported", ++st->secrets, 0, 0);
out:
	exchange_versions_free(versions, n);
	exchange_describe_free(parsed);
	free(describe);
	free(listing);
	free(command);
	free(days);
	free(schedule);
}

static void export_tree(struct export_state *st, const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0) {
		cli_error("%s: %s", path, strerror(errno));
		st->skipped++;
		return;
	}
	if (S_ISREG(sb.st_mode)) {
		export_secret(st, path, &sb);
		return;
	}
	if (!S_ISDIR(sb.st_mode))
		return;
	DIR *d = opendir(path);
	if (!d) {
		cli_error("%s: %s", path, strerror(errno));
		st->skipped++;
		return;
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char *child;
		if (asprintf(&child, "%s/%s", path, e->d_name) < 0)
			continue;
		export_tree(st, child);
		free(child);
	}
	closedir(d);
}

int cmd_export(int argc, char **argv)
{
	cli_harden_process();
	int parsed = cli_help_only(argc, argv, export_usage);
	if (parsed >= 0)
		return parsed;
	if (argc - optind < 1 || argc - optind > 2) {
		fputs(export_usage, stderr);
		return EXIT_MISUSE;
	}
	const char *mnt = argv[optind], *prefix = argc - optind == 2 ? argv[optind + 1] : "";
	if (getxattr(mnt, "user.sm.keys", NULL, 0) < 0) {
		cli_error("%s: not the mount point of a secretsfs store", mnt);
		return 1;
	}
	if (crypto_init(1 << 20))
		return 1;
	struct export_state st = { .mnt = mnt };
	char *root;
	if (asprintf(&root, "%s%s%s", mnt, prefix[0] ? "/" : "", prefix) < 0)
		return 1;
	export_tree(&st, root);
	progress("exported", st.secrets, 0, 1);
	free(root);
	secbuf_free(&st.value);
	secbuf_free(&st.line);
	crypto_shutdown();
	fprintf(stderr, "secretsfs export: %zu secrets, %zu versions, %zu skipped\n", st.secrets,
		st.versions, st.skipped);
	return st.skipped ? 1 : 0;
}

/* --- import --- */

int cmd_import(int argc, char **argv)
{
	cli_harden_process();
	int parsed = cli_help_only(argc, argv, import_usage);
	if (parsed >= 0)
		return parsed;
	if (argc - optind != 1) {
		fputs(import_usage, stderr);
		return EXIT_MISUSE;
	}
	const char *mnt = argv[optind];
	if (getxattr(mnt, "user.sm.keys", NULL, 0) < 0) {
		cli_error("%s: not the mount point of a secretsfs store", mnt);
		return 1;
	}
	if (crypto_init(4 << 20))
		return 1;
	struct secbuf buf = { 0 }, value = { 0 };
	struct stat sb;
	size_t total = fstat(STDIN_FILENO, &sb) == 0 && S_ISREG(sb.st_mode) ? (size_t)sb.st_size : 0;
	size_t consumed = 0, lineno = 0;
	struct import_run run = { .mnt = mnt };
	int status = 0, eof = 0;

	if (secbuf_reserve(&buf, EXCHANGE_LINE_MAX + 1)) {
		cli_error("out of secure memory");
		return 1;
	}
	while (!eof || buf.len) {
		uint8_t *nl = buf.len ? memchr(buf.data, '\n', buf.len) : NULL;
		if (!nl && !eof) {
			if (buf.len == buf.cap) {
				cli_error("line %zu: longer than %u bytes", lineno + 1, EXCHANGE_LINE_MAX);
				status = 1;
				break;
			}
			ssize_t n = read(STDIN_FILENO, buf.data + buf.len, buf.cap - buf.len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				cli_error("reading standard input: %s", strerror(errno));
				status = 1;
				break;
			}
			if (n == 0)
				eof = 1;
			buf.len += (size_t)n;
			continue;
		}
		size_t len = nl ? (size_t)(nl - buf.data) : buf.len;
		lineno++;
		if (len > 0) {
			struct exchange_record r;
			const char *why = NULL;
			char name[600];
			int rc = exchange_decode(buf.data, len, &r, &value, &why);
			if (rc == 0) {
				snprintf(name, sizeof(name), "%s", r.name);
				if ((rc = import_line(&run, &r, &value)))
					cli_error("line %zu: %s: %s", lineno, name,
						  rc == -EEXIST ? "its VersionId is already used for another value"
								: strerror(-rc));
			} else {
				cli_error("line %zu: %s", lineno, why ? why : strerror(-rc));
			}
			crypto_wipe(value.data, value.cap);
			run.skipped += rc ? 1 : 0;
		}
		/* Drop the line, wiping what moves past it. */
		size_t used = nl ? len + 1 : len;
		consumed += used;
		memmove(buf.data, buf.data + used, buf.len - used);
		crypto_wipe(buf.data + buf.len - used, used);
		buf.len -= used;
		progress("imported", total ? consumed : run.secrets, total, 0);
	}
	import_finish(&run);
	progress("imported", total ? consumed : run.secrets, total, 1);
	secbuf_free(&buf);
	secbuf_free(&value);
	crypto_shutdown();
	if (run.dates_refused)
		cli_error("version dates not restored: only root or the user who mounted the store "
			  "may set them; the versions are dated now");
	if (run.dates_invalid)
		cli_error("version dates not kept (in the future, or not after 1970): %zu version%s, "
			  "dated now", run.dates_invalid, run.dates_invalid == 1 ? "" : "s");
	if (run.owners_refused)
		cli_error("owner and group not restored (only root may give a secret to another "
			  "user or group): %zu secret%s", run.owners_refused,
			  run.owners_refused == 1 ? "" : "s");
	fprintf(stderr, "secretsfs import: %zu secrets, %zu versions (%zu new), %zu skipped\n",
		run.secrets, run.versions, run.added, run.skipped);
	return status || run.skipped || run.failed || run.dates_invalid ? 1 : 0;
}
