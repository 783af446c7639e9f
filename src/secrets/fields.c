#include "secrets/fields.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct cursor {
	const uint8_t *p, *end;
};

static void skip_ws(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int hex4(const uint8_t *p, unsigned *out)
{
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		uint8_t ch = p[i];
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= ch - '0';
		else if (ch >= 'a' && ch <= 'f')
			v |= ch - 'a' + 10;
		else if (ch >= 'A' && ch <= 'F')
			v |= ch - 'A' + 10;
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Moves past a string starting at '"', checking every escape as the
 * unescaper will (surrogates in pairs); 0 or -EINVAL. */
static int skip_string(struct cursor *c)
{
	if (c->p >= c->end || *c->p != '"')
		return -EINVAL;
	for (c->p++; c->p < c->end; c->p++) {
		unsigned cp, lo;
		if (*c->p == '"') {
			c->p++;
			return 0;
		}
		if (*c->p < 0x20)
			return -EINVAL;
		if (*c->p != '\\')
			continue;
		if (++c->p >= c->end)
			return -EINVAL;
		if (strchr("\"\\/bfnrt", *c->p) && *c->p)
			continue;
		if (*c->p != 'u' || c->end - c->p < 5 || hex4(c->p + 1, &cp))
			return -EINVAL;
		c->p += 4;
		if (cp >= 0xdc00 && cp <= 0xdfff)
			return -EINVAL;
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (c->end - c->p < 7 || c->p[1] != '\\' || c->p[2] != 'u' ||
			    hex4(c->p + 3, &lo) || lo < 0xdc00 || lo > 0xdfff)
				return -EINVAL;
			c->p += 6;
		}
	}
	return -EINVAL;
}

/* A JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool is_number(const uint8_t *p, size_t n)
{
	size_t i = 0;
	if (i < n && p[i] == '-')
		i++;
	if (i < n && p[i] == '0')
		i++;
	else if (i < n && p[i] >= '1' && p[i] <= '9')
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
	else
		return false;
	if (i < n && p[i] == '.') {
		size_t start = ++i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == start)
			return false;
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-'))
			i++;
		size_t start = i;
		while (i < n && p[i] >= '0' && p[i] <= '9')
			i++;
		if (i == start)
			return false;
	}
	return i == n;
}

static int skip_value(struct cursor *c, int depth)
{
	if (depth > FIELDS_MAX_DEPTH)
		return -EINVAL;
	skip_ws(c);
	if (c->p >= c->end)
		return -EINVAL;
	uint8_t ch = *c->p;
	if (ch == '"')
		return skip_string(c);
	if (ch == '{' || ch == '[') {
		uint8_t close = ch == '{' ? '}' : ']';
		c->p++;
		skip_ws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 0;
		}
		for (;;) {
			if (ch == '{') {
				skip_ws(c);
				if (skip_string(c))
					return -EINVAL;
				skip_ws(c);
				if (c->p >= c->end || *c->p != ':')
					return -EINVAL;
				c->p++;
			}
			if (skip_value(c, depth + 1))
				return -EINVAL;
			skip_ws(c);
			if (c->p >= c->end)
				return -EINVAL;
			if (*c->p == ',') {
				c->p++;
				continue;
			}
			if (*c->p != close)
				return -EINVAL;
			c->p++;
			return 0;
		}
	}
	/* numbers, true, false, null */
	const uint8_t *start = c->p;
	while (c->p < c->end && strchr("0123456789+-.eEtrufalsn", *c->p) && *c->p)
		c->p++;
	if (c->p == start)
		return -EINVAL;
	size_t n = (size_t)(c->p - start);
	if ((n == 4 && memcmp(start, "true", 4) == 0) || (n == 5 && memcmp(start, "false", 5) == 0) ||
	    (n == 4 && memcmp(start, "null", 4) == 0))
		return 0;
	return is_number(start, n) ? 0 : -EINVAL;
}


/* Unescapes the JSON string [start, end) (quotes excluded) into out, which
 * has room for end - start bytes (unescaping never grows a string). */
static int unescape(const uint8_t *p, const uint8_t *end, uint8_t *out, size_t *out_len)
{
	size_t n = 0;
	while (p < end) {
		if (*p != '\\') {
			out[n++] = *p++;
			continue;
		}
		if (++p >= end)
			return -EINVAL;
		uint8_t e = *p++;
		switch (e) {
		case '"': out[n++] = '"'; break;
		case '\\': out[n++] = '\\'; break;
		case '/': out[n++] = '/'; break;
		case 'b': out[n++] = '\b'; break;
		case 'f': out[n++] = '\f'; break;
		case 'n': out[n++] = '\n'; break;
		case 'r': out[n++] = '\r'; break;
		case 't': out[n++] = '\t'; break;
		case 'u': {
			unsigned cp, lo;
			if (end - p < 4 || hex4(p, &cp))
				return -EINVAL;
			p += 4;
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff)
					return -EINVAL;
				p += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			} else if (cp >= 0xdc00 && cp <= 0xdfff) {
				return -EINVAL;
			}
			/* \uXXXX is 6 bytes of input; its UTF-8 is at most 4. */
			if (cp < 0x80) {
				out[n++] = (uint8_t)cp;
			} else if (cp < 0x800) {
				out[n++] = (uint8_t)(0xc0 | cp >> 6);
				out[n++] = (uint8_t)(0x80 | (cp & 0x3f));
			} else if (cp < 0x10000) {
				out[n++] = (uint8_t)(0xe0 | cp >> 12);
				out[n++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (uint8_t)(0x80 | (cp & 0x3f));
			} else {
				out[n++] = (uint8_t)(0xf0 | cp >> 18);
				out[n++] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
				out[n++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
				out[n++] = (uint8_t)(0x80 | (cp & 0x3f));
			}
			break;
		}
		default:
			return -EINVAL;
		}
	}
	*out_len = n;
	return 0;
}

typedef int (*member_fn)(const uint8_t *key, size_t key_len, const uint8_t *val,
			 const uint8_t *val_end, void *ctx);

/* Walks the top-level members of an object; key is the raw escaped text. */
static int walk(const uint8_t *json, size_t len, member_fn fn, void *ctx)
{
	struct cursor c = { json, json + len };
	skip_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return -EINVAL;
	c.p++;
	skip_ws(&c);
	if (c.p < c.end && *c.p == '}') {
		c.p++;
		goto tail;
	}
	for (;;) {
		skip_ws(&c);
		const uint8_t *kstart = c.p + 1;
		if (skip_string(&c))
			return -EINVAL;
		const uint8_t *kend = c.p - 1;
		skip_ws(&c);
		if (c.p >= c.end || *c.p != ':')
			return -EINVAL;
		c.p++;
		skip_ws(&c);
		const uint8_t *vstart = c.p;
		if (skip_value(&c, 1))
			return -EINVAL;
		int rc = fn(kstart, (size_t)(kend - kstart), vstart, c.p, ctx);
		if (rc)
			return rc;
		skip_ws(&c);
		if (c.p >= c.end)
			return -EINVAL;
		if (*c.p == ',') {
			c.p++;
			continue;
		}
		if (*c.p != '}')
			return -EINVAL;
		c.p++;
		break;
	}
tail:
	skip_ws(&c);
	return c.p == c.end ? 0 : -EINVAL;
}

static bool usable_key(const uint8_t *k, size_t len)
{
	if (len == 0 || len > 255 || (len == 1 && k[0] == '.') ||
	    (len == 2 && k[0] == '.' && k[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (k[i] == '/' || k[i] == 0)
			return false;
	return true;
}

struct keys_ctx {
	fields_key_fn fn;
	void *ctx;
	char **seen;
	size_t nseen;
};

static int key_member(const uint8_t *key, size_t key_len, const uint8_t *val,
		      const uint8_t *val_end, void *ctx)
{
	struct keys_ctx *kc = ctx;
	uint8_t buf[256 * 6];
	size_t n;
	(void)val;
	(void)val_end;
	if (key_len > sizeof(buf) || unescape(key, key + key_len, buf, &n) || !usable_key(buf, n))
		return 0;
	for (size_t i = 0; i < kc->nseen; i++)
		if (strlen(kc->seen[i]) == n && memcmp(kc->seen[i], buf, n) == 0)
			return 0;
	char **seen = realloc(kc->seen, (kc->nseen + 1) * sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	kc->seen = seen;
	if (!(seen[kc->nseen] = strndup((const char *)buf, n)))
		return -ENOMEM;
	kc->nseen++;
	return kc->fn((const char *)buf, n, kc->ctx);
}

int fields_keys(const uint8_t *json, size_t len, fields_key_fn fn, void *ctx)
{
	struct keys_ctx kc = { fn, ctx, NULL, 0 };
	int rc = walk(json, len, key_member, &kc);
	for (size_t i = 0; i < kc.nseen; i++)
		free(kc.seen[i]);
	free(kc.seen);
	return rc;
}

/* Does a member's raw (still escaped) name stand for want? */
static bool key_is(const uint8_t *key, size_t key_len, const char *want, size_t want_len)
{
	uint8_t buf[256 * 6];
	size_t n;
	return key_len <= sizeof(buf) && unescape(key, key + key_len, buf, &n) == 0 &&
	       n == want_len && memcmp(buf, want, n) == 0;
}

struct get_ctx {
	const char *key;
	size_t key_len;
	const uint8_t *val, *val_end;
};

static int get_member(const uint8_t *key, size_t key_len, const uint8_t *val,
		      const uint8_t *val_end, void *ctx)
{
	struct get_ctx *g = ctx;
	if (key_is(key, key_len, g->key, g->key_len)) {
		g->val = val;
		g->val_end = val_end;
	}
	return 0;
}

struct count_ctx {
	const char *key;
	size_t key_len, count;
};

static int count_member(const uint8_t *key, size_t key_len, const uint8_t *val,
			const uint8_t *val_end, void *ctx)
{
	struct count_ctx *cc = ctx;
	(void)val;
	(void)val_end;
	if (key_is(key, key_len, cc->key, cc->key_len))
		cc->count++;
	return 0;
}

int fields_count(const uint8_t *json, size_t len, const char *key, size_t *count)
{
	struct count_ctx cc = { key, strlen(key), 0 };
	int rc = walk(json, len, count_member, &cc);
	*count = cc.count;
	return rc;
}

int fields_span(const uint8_t *json, size_t len, const char *key, size_t *start, size_t *end)
{
	struct get_ctx g = { key, strlen(key), NULL, NULL };
	int rc = walk(json, len, get_member, &g);
	if (rc)
		return rc;
	if (!g.val)
		return -ENOENT;
	*start = (size_t)(g.val - json);
	*end = (size_t)(g.val_end - json);
	return 0;
}

int fields_get(const uint8_t *json, size_t len, const char *key, struct secbuf *out)
{
	struct get_ctx g = { key, strlen(key), NULL, NULL };
	int rc = walk(json, len, get_member, &g);
	if (rc)
		return rc;
	if (!g.val)
		return -ENOENT;
	size_t vlen = (size_t)(g.val_end - g.val);
	if ((rc = secbuf_reserve(out, vlen ? vlen : 1)))
		return rc;
	if (*g.val == '"')
		return unescape(g.val + 1, g.val_end - 1, out->data, &out->len);
	memcpy(out->data, g.val, vlen);
	out->len = vlen;
	return 0;
}
