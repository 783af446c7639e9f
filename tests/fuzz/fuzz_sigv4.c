/*
 * fuzz_sigv4: sigv4_verify on arbitrary requests, and the credentials file's
 * reader on arbitrary files.
 *
 * An input is an HTTP/1.1 request as AWS's test suite writes one ("METHOD
 * TARGET HTTP/1.1", "Name:value" lines, a blank line, the body), checked
 * against AWS's test key at the suite's time; seeds are the suite's signed
 * requests, so mutations start from requests that verify. An input that
 * starts with '#' is also loaded as a credentials file.
 * Properties: verify answers 0 or -EACCES; success names the key's id, its
 * principal and a well-formed region; a refusal has one of the service's
 * error types and a message; the secret key is never in a message unless the
 * input itself holds it; a loaded file answers 0, -EINVAL or -ENOMEM, with
 * no more keys than lines.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "api/sigv4.h"
#include "util/log.h"

#define KEY_ID "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define WHEN 1440938160 /* 20150830T123600Z */
#define MAX_HEADERS 64

static struct sigv4_credentials *creds;
static char creds_path[] = "/tmp/secretsfs-fuzz-sigv4-XXXXXX";

static void setup(void)
{
	fuzz_crypto_init();
	int fd = mkstemp(creds_path);
	FUZZ_CHECK(fd >= 0);
	const char *line = KEY_ID " " SECRET " fuzz-principal\n";
	FUZZ_CHECK(write(fd, line, strlen(line)) == (ssize_t)strlen(line));
	close(fd);
	FUZZ_CHECK(sigv4_credentials_load(creds_path, &creds) == 0);
	unlink(creds_path);
	log_set_threshold(LOG_EMERG); /* a refusal's line per input would drown the run */
}

static const char *next_line(const char **p, const char *end, size_t *len)
{
	const char *start = *p, *nl = memchr(start, '\n', (size_t)(end - start));
	const char *stop = nl ? nl : end;
	*p = nl ? nl + 1 : end;
	if (stop > start && stop[-1] == '\r')
		stop--;
	*len = (size_t)(stop - start);
	return start;
}

static char *dup_span(const char *p, size_t len)
{
	char *s = malloc(len + 1);
	FUZZ_CHECK(s);
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static bool known_type(const char *type)
{
	static const char *const types[] = { "MissingAuthenticationTokenException",
					     "IncompleteSignatureException",
					     "InvalidSignatureException",
					     "UnrecognizedClientException" };
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(type, types[i]) == 0)
			return true;
	return false;
}

static void check_verify(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *line;
	struct sigv4_header h[MAX_HEADERS];
	size_t n = 0, ll;
	char *strings[2 * MAX_HEADERS + 3];
	size_t nstrings = 0;

	line = next_line(&p, end, &ll);
	const char *sp = memchr(line, ' ', ll);
	size_t mlen = sp ? (size_t)(sp - line) : ll;
	const char *target = sp ? sp + 1 : line + ll;
	size_t tlen = (size_t)(line + ll - target);
	const char *q = memchr(target, '?', tlen);
	char *method = strings[nstrings++] = dup_span(line, mlen);
	char *path = strings[nstrings++] = dup_span(target, q ? (size_t)(q - target) : tlen);
	char *query = strings[nstrings++] =
		q ? dup_span(q + 1, (size_t)(target + tlen - q - 1)) : dup_span("", 0);
	while (p < end && n < MAX_HEADERS) {
		line = next_line(&p, end, &ll);
		if (ll == 0)
			break;
		const char *colon = memchr(line, ':', ll);
		size_t nl = colon ? (size_t)(colon - line) : ll;
		h[n].name = strings[nstrings++] = dup_span(line, nl);
		h[n].value = strings[nstrings++] =
			colon ? dup_span(colon + 1, (size_t)(line + ll - colon - 1)) : dup_span("", 0);
		n++;
	}
	struct sigv4_request req = { method, path, query, h, n, (const uint8_t *)p,
				     (size_t)(end - p) };
	struct sigv4_options o = { .service = "service", .target_optional = true,
				   .debug = size & 1 };
	struct sigv4_identity who;
	struct sigv4_error err;
	int rc = sigv4_verify(creds, &o, &req, WHEN, &who, &err);
	FUZZ_CHECK(rc == 0 || rc == -EACCES);
	if (rc == 0) {
		FUZZ_CHECK(strcmp(who.access_key_id, KEY_ID) == 0);
		FUZZ_CHECK(strcmp(who.principal, "fuzz-principal") == 0);
		FUZZ_CHECK(who.region[0] != '\0');
		for (const char *r = who.region; *r; r++)
			FUZZ_CHECK((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-');
		FUZZ_CHECK(err.type[0] == '\0');
	} else {
		FUZZ_CHECK(known_type(err.type));
		FUZZ_CHECK(err.message[0] != '\0');
		FUZZ_CHECK(who.principal[0] == '\0');
		if (!memmem(data, size, SECRET, strlen(SECRET)))
			FUZZ_CHECK(!strstr(err.message, SECRET));
	}
	for (size_t i = 0; i < nstrings; i++)
		free(strings[i]);
}

static void check_credentials(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/secretsfs-fuzz-creds-XXXXXX";
	int fd = mkstemp(path);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);
	struct sigv4_credentials *c = NULL;
	int rc = sigv4_credentials_load(path, &c);
	unlink(path);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	FUZZ_CHECK((rc == 0) == (c != NULL));
	size_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	FUZZ_CHECK(sigv4_credentials_count(c) <= lines);
	sigv4_credentials_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		setup();
		ready = 1;
	}
	check_verify(data, size);
	if (size && data[0] == '#')
		check_credentials(data, size);
	return 0;
}
