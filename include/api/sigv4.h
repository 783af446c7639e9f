/*
 * sigv4: verifies an AWS Signature Version 4 request as Secrets Manager's front end does,
 * and the credentials file that says whose keys it accepts (docs/api.md, "Authentication").
 *
 * Contract (the HTTP layer above fills a request as received, byte for byte):
 *   - sigv4_verify() runs the checks in AWS's order (aws-endpoint.md §2.3): Authorization
 *     present and starting "AWS4-"; its Credential, SignedHeaders and Signature and a date
 *     header (X-Amz-Date in ISO 8601 basic form, else Date in that form or HTTP's
 *     IMF-fixdate); the clock window (±skew_s, both edges accepted); host, the date header
 *     used and x-amz-target signed; the algorithm AWS4-HMAC-SHA256; the credential scope
 *     (5 parts, trailing '/' ignored; any well-formed region, the service, "aws4_request",
 *     date = the request's day); the access key known; X-Amz-Content-SHA256, if sent, the
 *     body's real hash; the Signature exactly 64 lowercase hex digits and the HMAC compared
 *     over all 32 bytes in constant time; last, no X-Amz-Security-Token (there are no
 *     session credentials: UnrecognizedClientException, after the signature, as AWS does).
 *   - The canonical request is non-S3 SigV4: the raw path's dot and empty segments removed
 *     and each segment encoded again; query parameters decoded, re-encoded, sorted by name
 *     then value; each signed header's values trimmed, inner whitespace runs collapsed,
 *     repeats joined with ',' in the order received; the hash of the exact body.
 *   - On failure it returns a negative errno (-EACCES for every refusal, -ENOMEM) and fills
 *     err with the service's __type and message, and logs one line naming the rule (and the
 *     access key id once it is known to be ours; never a secret, signature, value or body).
 *     The message is for the client: like AWS's it may repeat the Authorization header, and
 *     with debug the expected canonical request and string to sign; do not log it.
 *   - On success it fills who with the access key id, the principal and the scope's region,
 *     and logs nothing.
 *   - Secret access keys live in locked memory and are wiped when the credentials are
 *     freed. A loaded set is read-only: sigv4_verify may run on many threads at once.
 */
#ifndef SECRETSFS_API_SIGV4_H
#define SECRETSFS_API_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct sigv4_header {
	const char *name;	/* as received: any case */
	const char *value;	/* as received: untrimmed */
};

struct sigv4_request {
	const char *method;	/* "POST", "GET" */
	const char *path;	/* raw path as received, before any decoding: "/" */
	const char *query;	/* raw query string without '?'; "" when none */
	const struct sigv4_header *headers;	/* every header received, repeats included */
	size_t n_headers;
	const uint8_t *body;
	size_t body_len;
};

#define SIGV4_TYPE_MAX 64
#define SIGV4_MESSAGE_MAX 2048
#define SIGV4_KEY_ID_MAX 129	/* IAM's 128 characters, and the NUL */
#define SIGV4_PRINCIPAL_MAX 256
#define SIGV4_REGION_MAX 32

struct sigv4_error {
	char type[SIGV4_TYPE_MAX];		/* "InvalidSignatureException", ... */
	char message[SIGV4_MESSAGE_MAX];
};

struct sigv4_identity {
	char access_key_id[SIGV4_KEY_ID_MAX];
	char principal[SIGV4_PRINCIPAL_MAX];
	char region[SIGV4_REGION_MAX];
};

struct sigv4_credentials;

/*
 * Reads FILE: one key a line, "ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL" separated by
 * spaces or tabs, blank lines and whole-line '#' comments allowed, lines of at most 1024
 * bytes. An access key id is 1-128 letters, digits or '_' (IAM's [\w]+), a secret 16-128
 * printable ASCII characters, a principal 1-255. Refused (-EPERM) unless a regular file
 * (symlinks followed) with no group or other permission bits, owned by the caller's euid;
 * -EINVAL with a log line naming the line number and the rule (never its content) for a
 * malformed line or a repeated key id; -ENOENT when missing. A file with no keys loads
 * (with a warning): every signed request is then refused.
 */
int sigv4_credentials_load(const char *path, struct sigv4_credentials **out);
void sigv4_credentials_free(struct sigv4_credentials *creds);
size_t sigv4_credentials_count(const struct sigv4_credentials *creds);

struct sigv4_options {
	long skew_s;		/* 300 unless set (> 0) */
	bool debug;		/* append the canonical request and string to sign to a mismatch */
	const char *service;	/* "secretsmanager" unless set; AWS's test vectors use "service" */
	bool target_optional;	/* AWS's test vectors sign no x-amz-target; the API never sets it */
};

int sigv4_verify(const struct sigv4_credentials *creds, const struct sigv4_options *opt,
		 const struct sigv4_request *req, time_t now, struct sigv4_identity *who,
		 struct sigv4_error *err);

#endif
