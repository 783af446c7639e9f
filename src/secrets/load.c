/*
 * The load (secrets/internal.h): every folder and secret record into the
 * index, and the store checked whole on the way, so that nothing read from
 * the file is acted on before it authenticates and fits with the rest:
 * each record's tag (authstore), one name per internal id, every version
 * record listed by its secret and every listed one present, every other
 * record known, and the sum of the records against the last commit's. Each problem is logged and kept
 * (sm->problems); a damaged secret or folder answers -EIO (sm->damaged).
 * A legacy store that passes is authenticated after, when writable.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"

#define FAILS_AUTHENTICATION \
	"fails authentication: changed, truncated, renamed or copied from another store"

/* A secret by internal id: the loaded ones sorted, so that a second claim
 * to an id sits next to the first and a version record finds its secret. */
struct owner {
	const char *uuid;
	struct sm_secret *s;  /* NULL once found to share its id */
};

struct loader {
	struct sm *sm;
	struct owner *owners;
	size_t nowners;
	size_t metadata_problems;     /* records that failed or are missing */
};

static bool has_prefix(const char *key, const char *prefix)
{
	return strncmp(key, prefix, strlen(prefix)) == 0;
}

__attribute__((format(printf, 3, 4)))
static int problem(struct sm *sm, const char *record, const char *fmt, ...)
{
	char why[SM_NAME_MAX + 160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_error("store record %s: %s", record, why);
	struct sm_problem *p = realloc(sm->problems, (sm->nproblems + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	sm->problems = p;
	p[sm->nproblems].record = strdup(record);
	p[sm->nproblems].why = strdup(why);
	if (!p[sm->nproblems].record || !p[sm->nproblems].why) {
		free(p[sm->nproblems].record);
		free(p[sm->nproblems].why);
		return -ENOMEM;
	}
	sm->nproblems++;
	return 0;
}

static int mark_damaged(struct sm *sm, const char *name, enum sm_kind kind)
{
	return hashmap_put(sm->damaged, name, (void *)(uintptr_t)kind, NULL);
}

/* A record that failed or is missing: a problem, and its secret or folder damaged. */
static int damaged_record(struct loader *l, const char *key, const char *name, enum sm_kind kind,
			  const char *why)
{
	l->metadata_problems++;
	int rc = problem(l->sm, key, "%s", why);
	return rc ? rc : mark_damaged(l->sm, name, kind);
}

static int by_uuid(const void *a, const void *b)
{
	return strcmp(((const struct owner *)a)->uuid, ((const struct owner *)b)->uuid);
}

static int note_owner(const char *name, void *value, void *ctx)
{
	struct loader *l = ctx;
	(void)name;
	l->owners[l->nowners++] = (struct owner){ ((struct sm_secret *)value)->uuid, value };
	return 0;
}

/* Records that claim one internal id: all damaged, none served. */
static int claimed_twice(struct loader *l, size_t first, size_t end)
{
	char key[SM_NAME_MAX + 16], other[SM_NAME_MAX + 16];
	int rc = 0;
	for (size_t i = first; !rc && i < end; i++) {
		snprintf(key, sizeof(key), "%s%s", RECORD_PREFIX_SECRET, l->owners[i].s->name);
		snprintf(other, sizeof(other), "%s%s", RECORD_PREFIX_SECRET,
			 l->owners[i == first ? first + 1 : first].s->name);
		rc = problem(l->sm, key, "claims the internal id of %s", other);
	}
	for (size_t i = first; !rc && i < end; i++)
		rc = mark_damaged(l->sm, l->owners[i].s->name, SM_KIND_SECRET);
	for (size_t i = first; i < end; i++) {
		struct sm_secret *s = l->owners[i].s;
		l->owners[i].s = NULL;
		l->owners[i].uuid = "";
		secret_free(hashmap_remove(l->sm->secrets, s->name));
	}
	return rc;
}

/* Every loaded secret by id; two names on one id are both refused. */
static int check_ids(struct loader *l)
{
	size_t n = hashmap_count(l->sm->secrets);
	int rc = 0;
	if (!(l->owners = calloc(n ? n : 1, sizeof(*l->owners))))
		return -ENOMEM;
	hashmap_foreach(l->sm->secrets, note_owner, l);
	qsort(l->owners, l->nowners, sizeof(*l->owners), by_uuid);
	for (size_t i = 0, j; !rc && i < l->nowners; i = j) {
		for (j = i + 1; j < l->nowners && by_uuid(&l->owners[i], &l->owners[j]) == 0; j++)
			;
		if (j - i > 1)
			rc = claimed_twice(l, i, j);
	}
	/* The cleared entries sort first again, out of bsearch's way. */
	qsort(l->owners, l->nowners, sizeof(*l->owners), by_uuid);
	return rc;
}

static int load_secret(struct loader *l, const char *key, const uint8_t *body, size_t len)
{
	const char *name = key + strlen(RECORD_PREFIX_SECRET);
	struct sm_secret *s;
	if (record_decode_secret(body, len, &s))
		return damaged_record(l, key, name, SM_KIND_SECRET, "is malformed");
	if (strcmp(s->name, name) != 0) {
		char why[SM_NAME_MAX + 64];
		snprintf(why, sizeof(why), "holds the record of secret %s", s->name);
		secret_free(s);
		return damaged_record(l, key, name, SM_KIND_SECRET, why);
	}
	void *listed_before = NULL; /* a legacy catalog may list a key twice */
	if (hashmap_put(l->sm->secrets, s->name, s, &listed_before)) {
		secret_free(s);
		return -ENOMEM;
	}
	secret_free(listed_before);
	return 0;
}

static int load_folder(struct loader *l, const char *key, const uint8_t *body, size_t len)
{
	const char *path = key + strlen(RECORD_PREFIX_FOLDER);
	struct sm_folder *f;
	void *old = NULL;
	if (record_decode_folder(path, body, len, &f))
		return damaged_record(l, key, path, SM_KIND_FOLDER, "is malformed");
	if (hashmap_put(l->sm->folders, f->path, f, &old)) {
		folder_free(f);
		return -ENOMEM;
	}
	folder_free(old);
	return 0;
}

static int visit_record(const char *key, const uint8_t *body, size_t len, int err, void *ctx)
{
	struct loader *l = ctx;
	const char *why = err == -ENOENT ? "is listed in the catalog but not in the store"
					 : FAILS_AUTHENTICATION;
	if (has_prefix(key, RECORD_PREFIX_CATALOG)) {
		l->metadata_problems++;
		return problem(l->sm, key, "%s; its records are looked for by a walk of the store",
			       FAILS_AUTHENTICATION);
	}
	if (has_prefix(key, RECORD_PREFIX_SECRET))
		return err ? damaged_record(l, key, key + strlen(RECORD_PREFIX_SECRET),
					    SM_KIND_SECRET, why)
			   : load_secret(l, key, body, len);
	if (has_prefix(key, RECORD_PREFIX_FOLDER))
		return err ? damaged_record(l, key, key + strlen(RECORD_PREFIX_FOLDER),
					    SM_KIND_FOLDER, why)
			   : load_folder(l, key, body, len);
	return problem(l->sm, key, "is not a record the catalog may list");
}

struct version_walk {
	struct loader *l;
	uint64_t found;   /* version records that a loaded secret lists */
	bool naming;      /* second pass: name the listed records that are missing */
	struct hashmap *present;
};

/* The listing secret of "ver/<uuid>/<version-id>", or NULL. */
static const struct sm_secret *lister(struct loader *l, const char *key, const char **vid)
{
	const char *rest = key + strlen(RECORD_PREFIX_VERSION);
	const char *slash = strchr(rest, '/');
	char uuid[SM_UUID_HEX_LEN + 1];
	if (!slash || slash - rest != SM_UUID_HEX_LEN)
		return NULL;
	memcpy(uuid, rest, SM_UUID_HEX_LEN);
	uuid[SM_UUID_HEX_LEN] = '\0';
	struct owner probe = { uuid, NULL };
	const struct owner *o = bsearch(&probe, l->owners, l->nowners, sizeof(*o), by_uuid);
	*vid = slash + 1;
	return o && o->s && secret_find_version(o->s, *vid) ? o->s : NULL;
}

/* A catalogued kind of record that the load did not meet: not in the
 * catalog (an older record put back beside its catalog, or one added). */
static bool uncatalogued(struct sm *sm, const char *key)
{
	if (has_prefix(key, RECORD_PREFIX_SECRET)) {
		const char *name = key + strlen(RECORD_PREFIX_SECRET);
		return !hashmap_get(sm->secrets, name) && !is_damaged(sm, name);
	}
	const char *path = key + strlen(RECORD_PREFIX_FOLDER);
	return !hashmap_get(sm->folders, path) && !is_damaged(sm, path);
}

static bool local_record(const char *key)
{
	return strcmp(key, RECORD_KEY_CLUSTER) == 0 || strcmp(key, RECORD_KEY_REPLICA) == 0;
}

/* A replica's own records, read (and so counted in the sum) when present. */
static int check_local_records(struct sm *sm)
{
	static const char *const keys[] = { RECORD_KEY_CLUSTER, RECORD_KEY_REPLICA };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint8_t *body = NULL;
		size_t len;
		int rc = authstore_get(sm->as, keys[i], &body, &len);
		free(body);
		if (rc == -EBADMSG)
			rc = problem(sm, keys[i], "fails authentication");
		else if (rc == -ENOENT)
			rc = 0;
		if (rc)
			return rc;
	}
	return 0;
}

/* Every record of the store, each accounted for (by its key alone). */
static int visit_any(const char *key, void *ctx)
{
	struct version_walk *w = ctx;
	struct sm *sm = w->l->sm;
	const char *vid;
	if (has_prefix(key, RECORD_PREFIX_VERSION)) {
		if (w->naming)
			return hashmap_put(w->present, key, (void *)1, NULL);
		if (lister(w->l, key, &vid)) {
			w->found++;
			return 0;
		}
		return problem(sm, key, "is a version record that no intact secret lists");
	}
	if (w->naming)
		return 0;
	if (has_prefix(key, RECORD_PREFIX_SECRET) || has_prefix(key, RECORD_PREFIX_FOLDER))
		return uncatalogued(sm, key) ? problem(sm, key, "is not in the catalog") : 0;
	if (!key[0])
		return problem(sm, "(a key with a NUL byte inside, or of 2 KiB or more)",
			       "is not a record secretsfs writes");
	if (has_prefix(key, RECORD_PREFIX_KEY) || catalog_is_bucket_key(key) ||
	    strcmp(key, RECORD_KEY_FORMAT) == 0 || strcmp(key, RECORD_KEY_HEADER) == 0 ||
	    strcmp(key, AUTHSTORE_KEY_STATE) == 0 || local_record(key))
		return 0;
	return problem(sm, key, "is not a record secretsfs writes");
}

static int count_listed(const char *name, void *value, void *ctx)
{
	const struct sm_secret *s = value;
	(void)name;
	*(uint64_t *)ctx += s->nversions;
	return 0;
}

static int name_missing(const char *name, void *value, void *ctx)
{
	struct version_walk *w = ctx;
	const struct sm_secret *s = value;
	char key[SM_UUID_HEX_LEN + SM_VERSION_ID_MAX + 16];
	int rc = 0;
	(void)name;
	for (size_t i = 0; !rc && i < s->nversions; i++) {
		record_key_version(s->uuid, s->versions[i].id, key, sizeof(key));
		if (!hashmap_get(w->present, key))
			rc = problem(w->l->sm, key, "is listed by secret %s but missing", s->name);
	}
	return rc;
}

/*
 * Every record of the store walked once (tdb has no cheaper way to list
 * keys): each version record against its secret's list, counted, and
 * every other record known. Only when the counts differ does a second
 * walk name the listed versions that are missing (a set of every key
 * would cost memory on every open).
 */
static int check_records(struct loader *l)
{
	struct version_walk w = { l, 0, false, NULL };
	uint64_t listed = 0;
	struct store *st = authstore_store(l->sm->as);
	int rc = store_foreach_key(st, visit_any, &w);
	if (rc)
		return rc;
	hashmap_foreach(l->sm->secrets, count_listed, &listed);
	if (w.found == listed)
		return 0;
	if (!(w.present = hashmap_new(1024)))
		return -ENOMEM;
	w.naming = true;
	rc = store_foreach_key(st, visit_any, &w);
	if (!rc)
		rc = hashmap_foreach(l->sm->secrets, name_missing, &w);
	hashmap_free(w.present);
	return rc;
}

static int check_keys(struct sm *sm)
{
	struct keyring_key_info *keys;
	size_t count;
	char key[SM_KEY_ID_LEN + 8];
	int rc = keyring_list(sm->kr, &keys, &count);
	for (size_t i = 0; !rc && i < count; i++) {
		if (!keys[i].damaged)
			continue;
		snprintf(key, sizeof(key), "%s%s", RECORD_PREFIX_KEY, keys[i].id);
		rc = problem(sm, key, "%s; versions under this named key do not open",
			     FAILS_AUTHENTICATION);
	}
	free(keys);
	return rc;
}

int load_index(struct sm *sm)
{
	struct loader l = { sm, NULL, 0, 0 };
	int format = authstore_current_format(sm->as);
	uint64_t failed = 0;
	int rc = 0;

	if (format >= 2) {
		rc = catalog_load(sm->as, visit_record, &l);
	} else { /* format 1 has no catalog: its records are found by prefix */
		rc = authstore_foreach(sm->as, RECORD_PREFIX_FOLDER, visit_record, &l);
		if (!rc)
			rc = authstore_foreach(sm->as, RECORD_PREFIX_SECRET, visit_record, &l);
	}
	if (!rc)
		rc = check_ids(&l);
	if (!rc)
		rc = check_keys(sm);
	if (!rc)
		rc = check_local_records(sm);
	if (!rc)
		rc = check_records(&l);
	/* Said even beside records that fail: those make the sum differ too,
	 * but they must not hide a removal or an older copy put back. */
	if (!rc && authstore_load_done(sm->as, &failed) == -EBADMSG)
		rc = problem(sm, AUTHSTORE_KEY_STATE,
			     "the records do not add up to the last commit: one was removed, or "
			     "an older copy of one put back%s",
			     failed || l.metadata_problems ? " (or it is one of the records above)"
							   : "");
	free(l.owners);
	if (rc)
		return rc;
	if (sm->nproblems && !sm->opt.skip_damaged)
		return -EBADMSG;
	if (format < AUTHSTORE_FORMAT) {
		if (sm->opt.readonly || sm->nproblems)
			log_warn("%s: store format %d: its records are not authenticated; a writable "
				 "mount with the key authenticates them", store_path(sm->store), format);
		else
			rc = rekey_legacy(sm, format);
	}
	return rc;
}
