/*
 * The catalog: which secret and folder records a store holds, kept in
 * records of its own ("cat/<bucket>", record keys one per line), so that a
 * mount reads the metadata by key instead of walking every record, the
 * sealed versions included. change_commit keeps it in step inside each
 * transaction. See docs/store-format.md (format 2).
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
		if (!rc && changed)
			rc = text[0] ? authstore_put(as, key, text, strlen(text)) : authstore_delete(as, key);
		if (rc == -ENOENT)
			rc = 0;
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
		for (char *line = text, *nl; !rc && (nl = strchr(line, '\n')); line = nl + 1) {
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
	for (size_t i = 0; !rc && i < buckets.count; i++)
		rc = authstore_delete(as, buckets.items[i]);
	strlist_free(&buckets);
	return rc ? rc : catalog_build(as);
}
