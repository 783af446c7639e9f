/*
 * canonical (private to src/api): SigV4's canonical request (step 2) built
 * from a request as received, and the small string builder it uses.
 *
 * The rules are those of every service but S3 (docs/api.md, "Canonical
 * forms"): the path's dot and empty segments removed and each segment
 * encoded again; query names and values decoded, encoded again, sorted by
 * name then value; header values trimmed, inner whitespace collapsed,
 * repeats joined with ','. Nothing here sees a secret.
 */
#ifndef SECRETSFS_API_CANONICAL_H
#define SECRETSFS_API_CANONICAL_H

#include <stdbool.h>
#include <stddef.h>

#include "api/sigv4.h"

/* A growable string; a failed allocation is remembered and reported once. */
struct sigv4_text {
	char *p;
	size_t len, cap;
	bool failed;
};

void sigv4_text_add(struct sigv4_text *t, const char *s, size_t n);
void sigv4_text_adds(struct sigv4_text *t, const char *s);
void sigv4_text_addc(struct sigv4_text *t, char c);
void sigv4_text_free(struct sigv4_text *t);

/* The whitespace a header value is trimmed of (botocore's str.split()). */
bool sigv4_is_ws(char c);
char sigv4_lower(char c);
/* Header names compare without regard to ASCII case: name against other[0, other_len). */
bool sigv4_name_eq(const char *name, const char *other, size_t other_len);
size_t sigv4_header_count(const struct sigv4_request *req, const char *name);
/* Every value of the header, trimmed, inner runs of whitespace as one space,
 * joined with ',' onto out; returns how many there were. */
size_t sigv4_header_canonical(const struct sigv4_request *req, const char *name, size_t name_len,
			      struct sigv4_text *out);

/*
 * The canonical request onto out: method, URI, query, the headers named in
 * signed_headers (";"-separated, in that order), the list itself, and
 * payload_hex. 0 or -ENOMEM.
 */
int sigv4_canonical_request(const struct sigv4_request *req, const char *signed_headers,
			    size_t signed_len, const char *payload_hex, struct sigv4_text *out);

#endif
