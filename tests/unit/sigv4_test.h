/*
 * sigv4_test: helpers shared by the SigV4 unit tests (test_sigv4_*.c).
 *
 * A signer of its own for simple requests (POST /, no query, header values
 * used as given), so that the error tests can make any request they need;
 * AWS's published vectors and a botocore capture check the verifier's
 * canonical forms (test_sigv4_vectors.c), this signer only the checks
 * around them. And a capture of the log, to show what it says and never says.
 */
#ifndef SECRETSFS_TESTS_SIGV4_TEST_H
#define SECRETSFS_TESTS_SIGV4_TEST_H

#include "testutil.h"

#include "api/sigv4.h"
#include "util/hex.h"

#define ST_KEY_ID "AKIAIOSFODNN7EXAMPLE"
#define ST_SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define ST_PRINCIPAL "alice"
#define ST_DATE "20261127T195702Z"
#define ST_NOW 1795809422 /* ST_DATE as epoch seconds */
#define ST_BODY "{\"SecretId\": \"prod/db/password\"}"
#define ST_SIGNED "content-type;host;x-amz-date;x-amz-target"

/* text into a new file at path (replacing one), then chmod to mode. */
static inline int st_write_mode(const char *path, const char *text, mode_t mode)
{
	unlink(path);
	int rc = tu_write_file(path, text, strlen(text));
	return rc ? rc : chmod(path, mode) ? -errno : 0;
}

/* A credentials file of text (mode 0600) in dir, loaded. */
static inline int st_load_creds(const char *dir, const char *text, struct sigv4_credentials **out)
{
	char path[TU_PATH_MAX];
	int rc = st_write_mode(tu_path(path, dir, "credentials"), text, 0600);
	return rc ? rc : sigv4_credentials_load(path, out);
}

/* ---- the log, captured ----------------------------------------------------- */

static inline int st_log_begin(char path[TU_PATH_MAX], const char *dir)
{
	tu_path(path, dir, "captured.log");
	unlink(path);
	return log_open(LOG_TO_FILE, path, true);
}

/* What was logged since st_log_begin (malloc'd, NUL-terminated), the log
 * sent back where tu_prepare_run had it. */
static inline char *st_log_end(const char *path)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char *text = NULL;
	const char *where = getenv("SECRETSFS_TEST_LOG");
	if (tu_read_file(path, &data, &len) == 0 && (text = malloc(len + 1))) {
		memcpy(text, data, len);
		text[len] = '\0';
	}
	free(data);
	unlink(path);
	if (where && strcmp(where, "stderr") == 0) {
		log_close();
	} else if (where && *where) {
		log_open(LOG_TO_FILE, where, true);
	} else {
		char scratch[] = "/tmp/secretsfs-unit-log-XXXXXX";
		int fd = mkstemp(scratch);
		if (fd >= 0) {
			close(fd);
			log_open(LOG_TO_FILE, scratch, true);
			unlink(scratch);
		}
	}
	return text;
}

static inline size_t st_count(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* ---- a signer for simple requests ----------------------------------------- */

struct st_signer {
	const char *key_id, *secret;
	const char *day;	/* the scope's date; NULL: amz_date's */
	const char *region, *service, *terminator;
	const char *credential;	/* the whole Credential= value, or NULL */
	const char *algorithm;	/* what Authorization names; AWS4-HMAC-SHA256 is what signs */
	const char *signed_headers;
	const char *amz_date;	/* the date in the string to sign (basic format) */
};

static inline struct st_signer st_signer_default(void)
{
	struct st_signer s = { ST_KEY_ID, ST_SECRET, NULL, "us-east-1", "secretsmanager",
			       "aws4_request", NULL, "AWS4-HMAC-SHA256", ST_SIGNED, ST_DATE };
	return s;
}

static inline const char *st_header(const struct sigv4_header *h, size_t n, const char *name,
				    size_t name_len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(h[i].name) == name_len && strncasecmp(h[i].name, name, name_len) == 0)
			return h[i].value;
	return "";
}

static inline void st_hmac(const void *key, size_t key_len, const char *msg, uint8_t out[32])
{
	crypto_hmac_sha256(key, key_len, msg, strlen(msg), out);
}

/* The Authorization value for POST / over h (values as they are) and body. */
static inline void st_sign(const struct st_signer *s, const struct sigv4_header *h, size_t n,
			   const char *body, char *out, size_t out_len)
{
	char canon[4096], sts[512], day[9], hexd[65], k4[256], sig[65];
	uint8_t d[32], k[32];
	size_t len = 0;
	snprintf(day, sizeof(day), "%.8s", s->day ? s->day : s->amz_date);
	len += (size_t)snprintf(canon + len, sizeof(canon) - len, "POST\n/\n\n");
	for (const char *p = s->signed_headers; *p;) {
		size_t nl = strcspn(p, ";");
		len += (size_t)snprintf(canon + len, sizeof(canon) - len, "%.*s:%s\n", (int)nl, p,
					st_header(h, n, p, nl));
		p += nl + (p[nl] ? 1 : 0);
	}
	crypto_sha256(body, strlen(body), d);
	hex_encode(d, 32, hexd);
	snprintf(canon + len, sizeof(canon) - len, "\n%s\n%s", s->signed_headers, hexd);
	crypto_sha256(canon, strlen(canon), d);
	hex_encode(d, 32, hexd);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/%s\n%s", s->amz_date, day,
		 s->region, s->service, s->terminator, hexd);
	snprintf(k4, sizeof(k4), "AWS4%s", s->secret);
	st_hmac(k4, strlen(k4), day, k);
	st_hmac(k, 32, s->region, k);
	st_hmac(k, 32, s->service, k);
	st_hmac(k, 32, s->terminator, k);
	st_hmac(k, 32, sts, d);
	hex_encode(d, 32, sig);
	if (s->credential)
		snprintf(out, out_len, "%s Credential=%s, SignedHeaders=%s, Signature=%s",
			 s->algorithm, s->credential, s->signed_headers, sig);
	else
		snprintf(out, out_len, "%s Credential=%s/%s/%s/%s/%s, SignedHeaders=%s, Signature=%s",
			 s->algorithm, s->key_id, day, s->region, s->service, s->terminator,
			 s->signed_headers, sig);
}

/* A Secrets Manager request as botocore sends it, and its signature. */
struct st_req {
	struct sigv4_header h[16];
	size_t n;
	char auth[2048];
	const char *body;
	struct sigv4_request req;
};

static inline void st_req_set(struct st_req *r, const char *name, const char *value)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcasecmp(r->h[i].name, name) == 0) {
			r->h[i].value = value;
			return;
		}
	if (r->n < sizeof(r->h) / sizeof(r->h[0]))
		r->h[r->n++] = (struct sigv4_header){ name, value };
}

static inline void st_req_del(struct st_req *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcasecmp(r->h[i].name, name) == 0) {
			memmove(&r->h[i], &r->h[i + 1], (r->n - i - 1) * sizeof(r->h[0]));
			r->n--;
			return;
		}
}

static inline void st_req_init(struct st_req *r)
{
	memset(r, 0, sizeof(*r));
	st_req_set(r, "X-Amz-Target", "secretsmanager.GetSecretValue");
	st_req_set(r, "Content-Type", "application/x-amz-json-1.1");
	st_req_set(r, "User-Agent", "Boto3/1.26.27 Python/3.11.2 Botocore/1.29.27");
	st_req_set(r, "host", "127.0.0.1:8080");
	st_req_set(r, "X-Amz-Date", ST_DATE);
	r->body = ST_BODY;
}

/* The request as the verifier sees it. */
static inline const struct sigv4_request *st_req_view(struct st_req *r)
{
	r->req = (struct sigv4_request){ "POST", "/", "", r->h, r->n,
					 (const uint8_t *)r->body, strlen(r->body) };
	return &r->req;
}

/* Signs the request as it stands (an Authorization header set or replaced). */
static inline const struct sigv4_request *st_req_sign(struct st_req *r, const struct st_signer *s)
{
	st_req_del(r, "Authorization");
	st_sign(s, r->h, r->n, r->body, r->auth, sizeof(r->auth));
	st_req_set(r, "Authorization", r->auth);
	return st_req_view(r);
}

#endif
