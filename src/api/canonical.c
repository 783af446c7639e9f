/*
 * SigV4's canonical request (api/canonical.h): URI, query and headers in the
 * form every service but S3 signs.
 */
#include "api/canonical.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct span {
	const char *p;
	size_t len;
};

static bool span_is(struct span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

void sigv4_text_add(struct sigv4_text *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (cap < t->len + n + 1)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			t->failed = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

void sigv4_text_adds(struct sigv4_text *t, const char *s)
{
	sigv4_text_add(t, s, strlen(s));
}

void sigv4_text_addc(struct sigv4_text *t, char c)
{
	sigv4_text_add(t, &c, 1);
}

void sigv4_text_free(struct sigv4_text *t)
{
	free(t->p);
	*t = (struct sigv4_text){ 0 };
}

/* botocore's str.split(): the whitespace a header value is trimmed of. */
bool sigv4_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

char sigv4_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Header names compare without regard to ASCII case. */
bool sigv4_name_eq(const char *name, const char *other, size_t other_len)
{
	size_t i = 0;
	for (; i < other_len; i++)
		if (!name[i] || sigv4_lower(name[i]) != sigv4_lower(other[i]))
			return false;
	return name[i] == '\0';
}

size_t sigv4_header_count(const struct sigv4_request *req, const char *name)
{
	size_t n = 0;
	for (size_t i = 0; i < req->n_headers; i++)
		if (sigv4_name_eq(req->headers[i].name, name, strlen(name)))
			n++;
	return n;
}

/* Every value of the header, trimmed, inner runs of whitespace as one
 * space, joined with ','; returns how many there were. */
size_t sigv4_header_canonical(const struct sigv4_request *req, const char *name, size_t name_len,
			       struct sigv4_text *out)
{
	size_t n = 0;
	for (size_t i = 0; i < req->n_headers; i++) {
		if (!sigv4_name_eq(req->headers[i].name, name, name_len))
			continue;
		if (n++)
			sigv4_text_addc(out, ',');
		bool gap = false, any = false;
		for (const char *v = req->headers[i].value; v && *v; v++) {
			if (sigv4_is_ws(*v)) {
				gap = any;
				continue;
			}
			if (gap)
				sigv4_text_addc(out, ' ');
			gap = false;
			any = true;
			sigv4_text_addc(out, *v);
		}
	}
	return n;
}

/* ---- canonical URI and query ---------------------------------------------- */

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

static void add_encoded(struct sigv4_text *t, const char *s, size_t n)
{
	static const char hexdig[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c)) {
			sigv4_text_addc(t, (char)c);
		} else {
			char e[3] = { '%', hexdig[c >> 4], hexdig[c & 15] };
			sigv4_text_add(t, e, 3);
		}
	}
}

/*
 * Non-S3 services: dot segments and empty segments removed, a trailing '/'
 * kept, then every segment encoded as received. The path arrives still
 * percent-encoded, so its '%' are encoded again, as botocore does when it
 * signs (its URL is already quoted).
 */
static int add_canonical_uri(struct sigv4_text *t, const char *path)
{
	size_t n = strlen(path), nseg = 0;
	struct span *seg = malloc((n / 2 + 1) * sizeof(*seg));
	if (!seg)
		return -ENOMEM;
	for (size_t i = 0; i <= n;) {
		size_t start = i;
		while (i < n && path[i] != '/')
			i++;
		struct span s = { path + start, i - start };
		if (span_is(s, "..")) {
			if (nseg)
				nseg--;
		} else if (s.len && !span_is(s, ".")) {
			seg[nseg++] = s;
		}
		i++;
	}
	for (size_t i = 0; i < nseg; i++) {
		sigv4_text_addc(t, '/');
		add_encoded(t, seg[i].p, seg[i].len);
	}
	if (!nseg || path[n - 1] == '/')
		sigv4_text_addc(t, '/');
	free(seg);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = sigv4_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A query name or value decoded (valid %XX only; '+' is a '+') and
 * encoded again, so either spelling of a character signs the same. */
static void add_requoted(struct sigv4_text *t, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
			i += 2;
		}
		add_encoded(t, &c, 1);
	}
}

struct qparam {
	char *name, *value;
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

/* Parameters sorted by encoded name, then encoded value. */
static int add_canonical_query(struct sigv4_text *t, const char *query)
{
	size_t n = strlen(query), np = 0;
	int rc = 0;
	struct qparam *p = calloc(n / 2 + 1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < n;) {
		size_t start = i;
		while (i < n && query[i] != '&')
			i++;
		struct span piece = { query + start, i - start };
		i++;
		if (!piece.len)
			continue;
		const char *eq = memchr(piece.p, '=', piece.len);
		size_t nlen = eq ? (size_t)(eq - piece.p) : piece.len;
		struct sigv4_text name = { 0 }, value = { 0 };
		add_requoted(&name, piece.p, nlen);
		sigv4_text_add(&name, "", 0);
		if (eq)
			add_requoted(&value, eq + 1, piece.len - nlen - 1);
		sigv4_text_add(&value, "", 0);
		p[np].name = name.p;
		p[np].value = value.p;
		np++;
		if (name.failed || value.failed || !name.p || !value.p) {
			rc = -ENOMEM;
			goto out;
		}
	}
	qsort(p, np, sizeof(*p), qparam_cmp);
	for (size_t i = 0; i < np; i++) {
		if (i)
			sigv4_text_addc(t, '&');
		sigv4_text_adds(t, p[i].name);
		sigv4_text_addc(t, '=');
		sigv4_text_adds(t, p[i].value);
	}
out:
	for (size_t i = 0; i < np; i++) {
		free(p[i].name);
		free(p[i].value);
	}
	free(p);
	return rc;
}

/* SigV4 step 2: the canonical request. */
int sigv4_canonical_request(const struct sigv4_request *req, const char *signed_headers,
			    size_t signed_len, const char *payload_hex, struct sigv4_text *t)
{
	int rc;
	sigv4_text_adds(t, req->method ? req->method : "");
	sigv4_text_addc(t, '\n');
	if ((rc = add_canonical_uri(t, req->path && *req->path ? req->path : "/")))
		return rc;
	sigv4_text_addc(t, '\n');
	if ((rc = add_canonical_query(t, req->query ? req->query : "")))
		return rc;
	sigv4_text_addc(t, '\n');
	const char *p = signed_headers, *end = p + signed_len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		size_t len = semi ? (size_t)(semi - p) : (size_t)(end - p);
		for (size_t i = 0; i < len; i++)
			sigv4_text_addc(t, sigv4_lower(p[i]));
		sigv4_text_addc(t, ':');
		sigv4_header_canonical(req, p, len, t);
		sigv4_text_addc(t, '\n');
		p += len + 1;
	}
	sigv4_text_addc(t, '\n');
	sigv4_text_add(t, signed_headers, signed_len);
	sigv4_text_addc(t, '\n');
	sigv4_text_adds(t, payload_hex);
	return t->failed ? -ENOMEM : 0;
}
