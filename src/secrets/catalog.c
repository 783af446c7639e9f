/*
 * The catalog: which secret and folder records a store holds, kept in
 * records of its own ("cat/<bucket>", record keys one per line), so that a
 * mount reads the metadata by key instead of walking every record, the
 * sealed versions included. change_commit keeps it in step inside each
 * transaction. See docs/store-format.md (format 2).
 *
 * A bucket's first line "#N" is its change counter, raised by every
 * rewrite, and a bucket that lists nothing stays as "#N": a replica
 * refuses an older bucket put back in etcd, and with it a secret deleted
 * for good and put back (docs/replication.md). Buckets written before the
 * counter have none (0).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/strlist.h"

#define CATALOG_BUCKETS 1024

static bool catalogued(const char *key)
{
	return strncmp(key, RECORD_PREFIX_SECRET, strlen(RECORD_PREFIX_SECRET)) == 0 ||
	       strncmp(key, RECORD_PREFIX_FOLDER, strlen(RECORD_PREFIX_FOLDER)) == 0;
}

static unsigned bucket_of(const char *key)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % CATALOG_BUCKETS;
}

bool catalog_is_bucket_key(const char *key)
{
	char canonical[32];
	const char *digits = key + strlen(RECORD_PREFIX_CATALOG);
	if (strncmp(key, RECORD_PREFIX_CATALOG, strlen(RECORD_PREFIX_CATALOG)) != 0 ||
	    *digits < '0' || *digits > '9' || strlen(digits) > 4)
		return false;
	unsigned long b = strtoul(digits, NULL, 10);
	snprintf(canonical, sizeof(canonical), "cat/%lu", b);
	return b < CATALOG_BUCKETS && strcmp(canonical, key) == 0;
}

static void bucket_key(unsigned b, char buf[32])
{
	snprintf(buf, 32, "cat/%u", b);
}

/* The bucket's keys as one string with '\n' after each ("" when absent). */
static int read_bucket(struct authstore *as, unsigned b, char **text)
{
	char key[32];
	uint8_t *data;
	size_t len;
	bucket_key(b, key);
	int rc = authstore_get(as, key, &data, &len);
	if (rc == -ENOENT) {
		*text = strdup("");
		return *text ? 0 : -ENOMEM;
	}
	if (rc)
		return rc;
	*text = malloc(len + 1);
	if (!*text) {
		free(data);
		return -ENOMEM;
	}
	memcpy(*text, data, len);
	(*text)[len] = '\0';
	free(data);
	return 0;
}

/* Where key stands as a whole line of text, or NULL. */
static char *find_line(char *text, const char *key)
{
	size_t klen = strlen(key);
	for (char *p = text; (p = strstr(p, key)); p += klen)
		if ((p == text || p[-1] == '\n') && p[klen] == '\n')
			return p;
	return NULL;
}

/* The counter of a bucket's text, 0 when it has none; *rest after it. */
static int64_t counter_of(const char *text, const char **rest)
{
	*rest = text;
	if (text[0] != '#')
		return 0;
	char *end;
	long long n = strtoll(text + 1, &end, 10);
	if (*end != '\n' || n < 0)
		return -1;
	*rest = end + 1;
	return n;
}

int64_t catalog_bucket_counter(const uint8_t *body, size_t len)
{
	char head[32];
	const char *rest;
	size_t n = len < sizeof(head) - 1 ? len : sizeof(head) - 1;
	memcpy(head, body, n);
	head[n] = '\0';
	return memchr(head, '\n', n) || head[0] != '#' ? counter_of(head, &rest) : -1;
}

bool catalog_bucket_lists(const uint8_t *body, size_t len, const char *key)
{
	size_t klen = strlen(key);
	for (size_t at = 0; at + klen < len;) {
		const uint8_t *nl = memchr(body + at, '\n', len - at);
		if (!nl)
			break;
		size_t line = (size_t)(nl - (body + at));
		if (line == klen && memcmp(body + at, key, klen) == 0)
			return true;
		at += line + 1;
	}
	return false;
}

bool catalog_is_catalogued(const char *key)
{
	return catalogued(key);
}

void catalog_bucket_key_of(const char *key, char buf[32])
{
	snprintf(buf, 32, "cat/%u", bucket_of(key));
}

/* text with its counter raised by one (and kept when the bucket lists
 * nothing): the bucket's next body. */
static char *next_body(const char *text)
{
	const char *rest;
	int64_t n = counter_of(text, &rest);
	char *out = NULL;
	if (n < 0)
		n = 0; /* an unreadable counter is the tag's to judge: restart above it */
	return asprintf(&out, "#%lld\n%s", (long long)n + 1, rest) < 0 ? NULL : out;
}

/* Adds (add) or removes one key; *changed tells whether text moved. */
static int edit_bucket(char **text, const char *key, bool add, bool *changed)
{
	char *at = find_line(*text, key);
	size_t klen = strlen(key);
	if (add && !at) {
		size_t len = strlen(*text);
		char *grown = realloc(*text, len + klen + 2);
		if (!grown)
			return -ENOMEM;
		memcpy(grown + len, key, klen);
		grown[len + klen] = '\n';
		grown[len + klen + 1] = '\0';
		*text = grown;
		*changed = true;
	} else if (!add && at) {
		memmove(at, at + klen + 1, strlen(at + klen + 1) + 1);
		*changed = true;
	}
	return 0;
}

int catalog_apply(struct authstore *as, const struct change *c)
{
	int rc = 0;
	/* Buckets in the order the change first touches them; most changes
	 * touch one. */
	for (size_t i = 0; i < c->count && !rc; i++) {
		if (!catalogued(c->ops[i].key))
			continue;
		unsigned b = bucket_of(c->ops[i].key);
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = catalogued(c->ops[j].key) && bucket_of(c->ops[j].key) == b;
		if (seen)
			continue;
		char *text = NULL, key[32];
		bool changed = false;
		if ((rc = read_bucket(as, b, &text)))
			break;
		/* Later operations on a key win, as they do in the store. */
		for (size_t j = i; j < c->count && !rc; j++)
			if (catalogued(c->ops[j].key) && bucket_of(c->ops[j].key) == b)
				rc = edit_bucket(&text, c->ops[j].key, c->ops[j].val != NULL, &changed);
		bucket_key(b, key);
		if (!rc && changed) {
			char *body = next_body(text);
			rc = body ? authstore_put(as, key, body, strlen(body)) : -ENOMEM;
			free(body);
		}
		free(text);
	}
	return rc;
}

/* Hands fn one catalogued record: its checked body, or why there is none. */
static int load_one(struct authstore *as, const char *key, authstore_visit_fn fn, void *ctx)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = authstore_get(as, key, &data, &len);
	if (rc == -ENOENT)
		log_error("catalog names %s, which the store does not hold", key);
	if (rc && rc != -ENOENT && rc != -EBADMSG)
		return rc;
	rc = fn(key, data, len, rc, ctx);
	free(data);
	return rc;
}

/* A bucket that failed: its records found by walking the store, each
 * checked on its own (a listing that cannot be trusted names nothing). */
static int load_bucket_by_walk(struct authstore *as, unsigned b, authstore_visit_fn fn, void *ctx)
{
	struct strlist keys = { 0 };
	struct store *st = authstore_store(as);
	int rc = store_keys(st, RECORD_PREFIX_SECRET, &keys);
	if (!rc)
		rc = store_keys(st, RECORD_PREFIX_FOLDER, &keys);
	for (size_t i = 0; !rc && i < keys.count; i++)
		if (bucket_of(keys.items[i]) == b)
			rc = load_one(as, keys.items[i], fn, ctx);
	strlist_free(&keys);
	return rc;
}

int catalog_load(struct authstore *as, authstore_visit_fn fn, void *ctx)
{
	int rc = 0;
	for (unsigned b = 0; b < CATALOG_BUCKETS && !rc; b++) {
		char *text, key[32];
		rc = read_bucket(as, b, &text);
		if (rc == -EBADMSG) {
			bucket_key(b, key);
			if (!(rc = fn(key, NULL, 0, -EBADMSG, ctx)))
				rc = load_bucket_by_walk(as, b, fn, ctx);
			continue;
		}
		if (rc)
			break;
		const char *rest;
		if (counter_of(text, &rest) < 0) {
			bucket_key(b, key);
			free(text);
			if (!(rc = fn(key, NULL, 0, -EBADMSG, ctx)))
				rc = load_bucket_by_walk(as, b, fn, ctx);
			continue;
		}
		for (char *line = (char *)rest, *nl; !rc && (nl = strchr(line, '\n')); line = nl + 1) {
			*nl = '\0';
			rc = load_one(as, line, fn, ctx);
		}
		free(text);
	}
	return rc;
}

struct build_ctx {
	struct change c;
};

static int note_key(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	struct build_ctx *b = ctx;
	(void)val;
	(void)len;
	/* The catalog only needs the keys; a stand-in value marks "present". */
	char *mark = strdup("");
	if (!mark)
		return -ENOMEM;
	change_add(&b->c, key, mark, 0);
	return b->c.error;
}

int catalog_build(struct authstore *as)
{
	struct build_ctx b = { { 0 } };
	struct store *st = authstore_store(as);
	int rc = store_foreach(st, RECORD_PREFIX_SECRET, note_key, &b);
	if (!rc)
		rc = store_foreach(st, RECORD_PREFIX_FOLDER, note_key, &b);
	if (!rc)
		rc = catalog_apply(as, &b.c);
	change_free(&b.c);
	return rc;
}

int catalog_rebuild(struct authstore *as)
{
	struct strlist buckets = { 0 };
	int rc = store_keys(authstore_store(as), RECORD_PREFIX_CATALOG, &buckets);
	/* Emptied, not deleted: each bucket's counter only goes up. */
	for (size_t i = 0; !rc && i < buckets.count; i++) {
		uint8_t *data = NULL;
		size_t len = 0;
		char head[32];
		int64_t n = 0;
		if (authstore_get(as, buckets.items[i], &data, &len) == 0)
			n = catalog_bucket_counter(data, len);
		free(data);
		snprintf(head, sizeof(head), "#%lld\n", (long long)(n > 0 ? n : 0));
		rc = authstore_put(as, buckets.items[i], head, strlen(head));
	}
	strlist_free(&buckets);
	return rc ? rc : catalog_build(as);
}
