/*
 * secretsfs export MOUNTPOINT [PREFIX] and secretsfs import MOUNTPOINT:
 * secrets as JSON lines (secrets/exchange.h), through a mounted store, so
 * every read and write is the daemon's ordinary GetSecretValue and
 * PutSecretValue. Values pass only through this process's locked memory,
 * standard input and standard output.
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
#include "crypto/crypto.h"
#include "secrets/exchange.h"
#include "secrets/names.h"

static const char export_usage[] =
	"usage: secretsfs export MOUNTPOINT [PREFIX]\n"
	"\n"
	"Writes every secret under MOUNTPOINT (or under the folder or name PREFIX)\n"
	"to standard output, one JSON object per line: the AWS CLI's get-secret-value\n"
	"output (SecretString, or SecretBinary in base64) with describe-secret's\n"
	"Name, Description, KmsKeyId and Tags. Redirect it to a file only you can read.\n";

static const char import_usage[] =
	"usage: secretsfs import MOUNTPOINT < FILE\n"
	"\n"
	"Reads JSON lines as export writes them (or as the AWS CLI prints\n"
	"get-secret-value merged with describe-secret) from standard input and\n"
	"creates or updates each secret under MOUNTPOINT, with its description, KMS\n"
	"key and tags. A line's VersionId becomes the new version's id, so importing\n"
	"the same file twice changes nothing.\n";

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

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static char *get_text_xattr(const char *path, const char *name)
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
	struct secbuf value, line;
	size_t count, failed;
};

static int export_file(struct export_state *st, const char *path)
{
	char *describe = get_text_xattr(path, "user.sm.describe");
	char *version = get_text_xattr(path, "user.sm.version_id");
	char *stages = get_text_xattr(path, "user.sm.version_stages");
	int rc;

	if (!describe) {
		rc = -errno ? -errno : -EIO;
		goto out;
	}
	if (version && (rc = read_value(path, &st->value)))
		goto out;
	bool binary = version && !value_is_string(st->value.data, st->value.len);
	rc = exchange_encode(describe, version, stages, version ? &st->value : NULL, binary, &st->line);
	if (!rc)
		rc = write_all(STDOUT_FILENO, st->line.data, st->line.len);
out:
	crypto_wipe(st->value.data, st->value.len);
	crypto_wipe(st->line.data, st->line.len);
	free(describe);
	free(version);
	free(stages);
	return rc;
}

static void export_tree(struct export_state *st, const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0) {
		cli_error("%s: %s", path, strerror(errno));
		st->failed++;
		return;
	}
	if (S_ISREG(sb.st_mode)) {
		int rc = export_file(st, path);
		if (rc) {
			cli_error("%s: cannot export: %s", path, strerror(-rc));
			st->failed++;
		} else {
			progress("exported", ++st->count, 0, 0);
		}
		return;
	}
	if (!S_ISDIR(sb.st_mode))
		return;
	DIR *d = opendir(path);
	if (!d) {
		cli_error("%s: %s", path, strerror(errno));
		st->failed++;
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
	struct export_state st = { 0 };
	char *root;
	if (asprintf(&root, "%s%s%s", mnt, prefix[0] ? "/" : "", prefix) < 0)
		return 1;
	export_tree(&st, root);
	progress("exported", st.count, 0, 1);
	free(root);
	secbuf_free(&st.value);
	secbuf_free(&st.line);
	crypto_shutdown();
	return st.failed ? 1 : 0;
}

/* --- import --- */

static int make_parents(const char *mnt, const char *name)
{
	char path[4096];
	int n = snprintf(path, sizeof(path), "%s/%s", mnt, name);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	for (char *p = path + strlen(mnt) + 1; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(path, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int set_text(int fd, const char *name, const char *value)
{
	return fsetxattr(fd, name, value, strlen(value), 0) ? -errno : 0;
}

static int import_record(const char *mnt, const struct exchange_record *r, const struct secbuf *value)
{
	char path[4096], name[300];
	int rc = make_parents(mnt, r->name), fd;
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "%s/%s", mnt, r->name);
	fd = open(path, O_WRONLY | O_CREAT | (r->has_value ? O_TRUNC : 0) | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* The VersionId as client request token: importing twice adds nothing. */
	if (r->has_value && r->version_id && strlen(r->version_id) >= 32 &&
	    (rc = set_text(fd, "user.sm.client_request_token", r->version_id)))
		goto out;
	if (r->has_value && (rc = write_all(fd, value->data, value->len)))
		goto out;
	if (r->description && (rc = set_text(fd, "user.sm.description", r->description)))
		goto out;
	if (r->kms_key_id && (rc = set_text(fd, "user.sm.kms_key_id", r->kms_key_id)))
		goto out;
	for (size_t i = 0; i < r->ntags; i++) {
		snprintf(name, sizeof(name), "user.tag.%s", r->tags[i].key);
		if ((rc = set_text(fd, name, r->tags[i].value)))
			goto out;
	}
out:
	/* close() is the commit: its error is the import's. */
	if (close(fd) != 0 && !rc)
		rc = -errno;
	return rc;
}

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
	size_t consumed = 0, lineno = 0, imported = 0, failed = 0;
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
			int rc = exchange_decode(buf.data, len, &r, &value, &why);
			if (rc == 0) {
				rc = import_record(mnt, &r, &value);
				if (rc)
					cli_error("line %zu: %s: %s", lineno, r.name,
						  rc == -EEXIST ? "its VersionId is already used for another value"
								: strerror(-rc));
				exchange_record_free(&r);
			} else {
				cli_error("line %zu: %s", lineno, why ? why : strerror(-rc));
			}
			crypto_wipe(value.data, value.cap);
			if (rc)
				failed++;
			else
				imported++;
		}
		/* Drop the line, wiping what moves past it. */
		size_t used = nl ? len + 1 : len;
		consumed += used;
		memmove(buf.data, buf.data + used, buf.len - used);
		crypto_wipe(buf.data + buf.len - used, used);
		buf.len -= used;
		progress("imported", total ? consumed : imported, total, 0);
	}
	progress("imported", total ? consumed : imported, total, 1);
	secbuf_free(&buf);
	secbuf_free(&value);
	crypto_shutdown();
	if (failed)
		cli_error("%zu of %zu secrets not imported", failed, failed + imported);
	return status || failed ? 1 : 0;
}
