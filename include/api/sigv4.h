/*
 * sigv4: verifies an AWS Signature Version 4 request as Secrets Manager's front end does,
 * and the credentials file that says whose keys it accepts.
 *
 * Contract (the HTTP layer above fills a request as received, byte for byte):
 *   - sigv4_verify() runs the checks in AWS's order (aws-endpoint.md §2.3): Authorization
 *     present and AWS4-HMAC-SHA256, its parts, the date header and its syntax, the clock
 *     window (±skew_s), host and x-amz-date and x-amz-target signed, the credential scope
 *     (5 parts, date = X-Amz-Date's day, service "secretsmanager", "aws4_request"), the
 *     access key known, then the HMAC compared over exactly 32 bytes in constant time.
 *   - On failure it returns a negative errno (-EACCES for every refusal, -ENOMEM) and fills
 *     err with the service's __type and message; the message never holds a secret key, and
 *     holds the expected canonical request only when asked (debug).
 *   - On success it fills who with the access key id, the principal and the scope's region.
 *   - Secret access keys live in locked memory (secbuf) and are wiped when the
 *     credentials are freed.
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
#define SIGV4_KEY_ID_MAX 128
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
 * Reads FILE: one key a line, "ACCESS_KEY_ID SECRET_ACCESS_KEY PRINCIPAL", blank lines and
 * '#' comments allowed. Refused (-EPERM) unless a regular file of mode 0600 or stricter owned
 * by the caller's euid; -EINVAL with a log line naming the line number (never its content)
 * for a malformed line or a repeated key id; -ENOENT when missing.
 */
int sigv4_credentials_load(const char *path, struct sigv4_credentials **out);
void sigv4_credentials_free(struct sigv4_credentials *creds);
size_t sigv4_credentials_count(const struct sigv4_credentials *creds);

struct sigv4_options {
	long skew_s;		/* 300 unless set */
	bool debug;		/* append the canonical request and string to sign to a mismatch */
	const char *service;	/* "secretsmanager" unless set; AWS's test vectors use "service" */
	bool target_optional;	/* AWS's test vectors sign no x-amz-target; the API never sets it */
};

int sigv4_verify(const struct sigv4_credentials *creds, const struct sigv4_options *opt,
		 const struct sigv4_request *req, time_t now, struct sigv4_identity *who,
		 struct sigv4_error *err);

#endif
