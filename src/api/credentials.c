/*
 * The credentials file (api/sigv4.h): "ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL" a line.
 *
 * The file is read through a small window of secure memory, a line at a
 * time, so no secret passes through ordinary memory and a file of any size
 * costs the same locked memory. Every refusal is one log line naming the
 * file, the line number and the rule, never the line's text.
 */
#include "api/credentials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/crypto.h"
#include "util/hashmap.h"
#include "util/log.h"

#define LINE_MAX_LEN 1024
/* AWS's secret keys are 40 characters; fewer than 16 could be guessed from
 * one captured request (the HMAC chain is cheap to try offline). */
#define SECRET_MIN 16
#define SECRET_MAX 128
#define SIGNING_PREFIX "AWS4"
#define SIGNING_PREFIX_LEN 4

struct sigv4_key {
	char key_id[SIGV4_KEY_ID_MAX];
	char principal[SIGV4_PRINCIPAL_MAX];
	uint8_t *k4; /* "AWS4" + secret, secure memory */
	size_t k4_len;
	unsigned line;
};

struct sigv4_credentials {
	struct sigv4_key *keys;
	size_t n, cap;
	struct hashmap *by_id; /* key id -> index + 1 into keys */
};

bool sigv4_key_id_valid(const char *text, size_t len)
{
	if (len == 0 || len >= SIGV4_KEY_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return false;
	}
	return true;
}

/* Printable ASCII without spaces: what a secret or a principal may hold. */
static bool printable_token(const char *text, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (text[i] < 0x21 || text[i] > 0x7e)
			return false;
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

void sigv4_credentials_free(struct sigv4_credentials *creds)
{
	if (!creds)
		return;
	for (size_t i = 0; i < creds->n; i++)
		crypto_secure_free(creds->keys[i].k4, creds->keys[i].k4_len);
	free(creds->keys);
	hashmap_free(creds->by_id);
	free(creds);
}

size_t sigv4_credentials_count(const struct sigv4_credentials *creds)
{
	return creds ? creds->n : 0;
}

const struct sigv4_key *sigv4_credentials_find(const struct sigv4_credentials *creds,
					       const char *key_id)
{
	if (!creds)
		return NULL;
	uintptr_t slot = (uintptr_t)hashmap_get(creds->by_id, key_id);
	return slot ? &creds->keys[slot - 1] : NULL;
}

const char *sigv4_key_principal(const struct sigv4_key *key)
{
	return key->principal;
}

struct field {
	const char *text;
	size_t len;
};

/* One line (without its newline) into creds; 0 or -errno, logged. */
static int add_line(struct sigv4_credentials *creds, const char *path, unsigned lineno,
		    const char *line, size_t len)
{
	struct field f[4];
	int nf = 0;
	size_t i = 0;
	while (i < len && is_blank(line[i]))
		i++;
	if (i == len || line[i] == '#')
		return 0;
	while (i < len) {
		size_t start = i;
		while (i < len && !is_blank(line[i]))
			i++;
		if (nf < 4)
			f[nf] = (struct field){ line + start, i - start };
		nf++;
		while (i < len && is_blank(line[i]))
			i++;
	}
	if (nf != 3) {
		log_error("credentials %s: line %u: a line must be ACCESS_KEY_ID "
			  "SECRET_ACCESS_KEY PRINCIPAL, found %d fields", path, lineno, nf);
		return -EINVAL;
	}
	if (!sigv4_key_id_valid(f[0].text, f[0].len)) {
		log_error("credentials %s: line %u: an access key id is 1 to %d letters, digits "
			  "or underscores", path, lineno, SIGV4_KEY_ID_MAX - 1);
		return -EINVAL;
	}
	if (f[1].len < SECRET_MIN || f[1].len > SECRET_MAX || !printable_token(f[1].text, f[1].len)) {
		log_error("credentials %s: line %u: a secret access key is %d to %d printable "
			  "ASCII characters", path, lineno, SECRET_MIN, SECRET_MAX);
		return -EINVAL;
	}
	if (f[2].len >= SIGV4_PRINCIPAL_MAX || !printable_token(f[2].text, f[2].len)) {
		log_error("credentials %s: line %u: a principal is 1 to %d printable ASCII "
			  "characters", path, lineno, SIGV4_PRINCIPAL_MAX - 1);
		return -EINVAL;
	}
	if (creds->n == creds->cap) {
		size_t cap = creds->cap ? 2 * creds->cap : 8;
		struct sigv4_key *keys = realloc(creds->keys, cap * sizeof(*keys));
		if (!keys)
			return -ENOMEM;
		creds->keys = keys;
		creds->cap = cap;
	}
	struct sigv4_key *k = &creds->keys[creds->n];
	memset(k, 0, sizeof(*k));
	memcpy(k->key_id, f[0].text, f[0].len);
	memcpy(k->principal, f[2].text, f[2].len);
	k->line = lineno;
	const struct sigv4_key *other = sigv4_credentials_find(creds, k->key_id);
	if (other) {
		log_error("credentials %s: line %u: an access key id may appear once; it is "
			  "already on line %u", path, lineno, other->line);
		return -EINVAL;
	}
	k->k4_len = SIGNING_PREFIX_LEN + f[1].len;
	k->k4 = crypto_secure_alloc(k->k4_len);
	if (!k->k4)
		return -ENOMEM;
	memcpy(k->k4, SIGNING_PREFIX, SIGNING_PREFIX_LEN);
	memcpy(k->k4 + SIGNING_PREFIX_LEN, f[1].text, f[1].len);
	creds->n++;
	void *old;
	if (hashmap_put(creds->by_id, k->key_id, (void *)(uintptr_t)creds->n, &old))
		return -ENOMEM;
	return 0;
}

/* The file's lines through a window of secure memory. */
static int read_lines(int fd, const char *path, struct sigv4_credentials *creds)
{
	enum { CAP = LINE_MAX_LEN + 1 };
	char *win = crypto_secure_alloc(CAP);
	size_t have = 0;
	unsigned lineno = 0;
	bool eof = false;
	int rc = 0;
	if (!win)
		return -ENOMEM;
	while (!rc && !eof) {
		ssize_t got = read(fd, win + have, CAP - have);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			log_error("credentials %s: cannot read: %s", path, strerror(errno));
			break;
		}
		eof = got == 0;
		have += (size_t)got;
		size_t start = 0;
		for (;;) {
			char *nl = memchr(win + start, '\n', have - start);
			if (!nl && !(eof && start < have))
				break;
			size_t len = nl ? (size_t)(nl - (win + start)) : have - start;
			rc = add_line(creds, path, ++lineno, win + start, len);
			if (rc)
				break;
			start += len + (nl ? 1 : 0);
		}
		if (rc)
			break;
		memmove(win, win + start, have - start);
		have -= start;
		if (have == CAP) {
			log_error("credentials %s: line %u: a line may be at most %d bytes", path,
				  lineno + 1, LINE_MAX_LEN);
			rc = -EINVAL;
		}
	}
	crypto_secure_free(win, CAP);
	return rc;
}

int sigv4_credentials_load(const char *path, struct sigv4_credentials **out)
{
	struct sigv4_credentials *creds = NULL;
	struct stat sb;
	int rc = 0;
	*out = NULL;
	/* Symlinks are followed (Kubernetes mounts secrets as symlinks); the
	 * checks are on the file opened. O_NONBLOCK: a FIFO fails, never hangs. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		rc = -errno;
		log_error("credentials %s: cannot open: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		log_error("credentials %s: cannot stat: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		log_error("credentials %s: refused: not a regular file", path);
		rc = -EPERM;
		goto out;
	}
	if (sb.st_uid != geteuid()) {
		log_error("credentials %s: refused: owned by uid %u, not by this process's %u",
			  path, (unsigned)sb.st_uid, (unsigned)geteuid());
		rc = -EPERM;
		goto out;
	}
	if (sb.st_mode & 077) {
		log_error("credentials %s: refused: mode %04o lets group or others read secret "
			  "keys; chmod 600 it", path, (unsigned)(sb.st_mode & 07777));
		rc = -EPERM;
		goto out;
	}
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
		rc = -errno;
		goto out;
	}
	creds = calloc(1, sizeof(*creds));
	if (!creds || !(creds->by_id = hashmap_new(16))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = read_lines(fd, path, creds);
	if (rc)
		goto out;
	if (creds->n == 0)
		log_warn("credentials %s: no keys: every signed request will be refused", path);
	*out = creds;
	creds = NULL;
out:
	sigv4_credentials_free(creds);
	close(fd);
	return rc;
}

int sigv4_key_sign(const struct sigv4_key *key, const char *day, const char *region,
		   const char *service, const void *msg, size_t msg_len, uint8_t mac[32])
{
	/* kDate, kRegion, kService, kSigning: two alternating 32-byte keys. */
	uint8_t *k = crypto_secure_alloc(64);
	int rc;
	if (!k)
		return -ENOMEM;
	uint8_t *a = k, *b = k + 32;
	rc = crypto_hmac_sha256(key->k4, key->k4_len, day, strlen(day), a);
	if (!rc)
		rc = crypto_hmac_sha256(a, 32, region, strlen(region), b);
	if (!rc)
		rc = crypto_hmac_sha256(b, 32, service, strlen(service), a);
	if (!rc)
		rc = crypto_hmac_sha256(a, 32, "aws4_request", 12, b);
	if (!rc)
		rc = crypto_hmac_sha256(b, 32, msg, msg_len, mac);
	crypto_secure_free(k, 64);
	return rc;
}
