/*
 * Reads of the index, under the index lock: attributes (sm_attr,
 * sm_version_attr), listings of folders, versions and labels, copies of a
 * secret, ARNs and counts. Nothing here writes.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"

static void secret_attr(const struct sm_secret *s, struct sm_attr *out)
{
	const struct sm_version *cur = secret_current(s);
	memset(out, 0, sizeof(*out));
	out->kind = SM_KIND_SECRET;
	out->mode = s->mode;
	out->uid = s->uid;
	out->gid = s->gid;
	out->size = s->scratch ? s->scratch_size : cur ? cur->size : 0;
	out->created_ms = s->created_ms;
	out->changed_ms = s->changed_ms;
	out->accessed_ms = s->accessed_ms;
	out->purge_ms = s->purge_ms;
	out->nversions = (uint32_t)s->nversions;
}

static void folder_attr(const struct sm_folder *f, struct sm_attr *out)
{
	memset(out, 0, sizeof(*out));
	out->kind = SM_KIND_FOLDER;
	out->mode = f->mode;
	out->uid = f->uid;
	out->gid = f->gid;
	out->created_ms = f->created_ms;
	out->changed_ms = f->changed_ms;
	out->accessed_ms = f->changed_ms;
}

struct deleted_probe {
	const char *folder;
	const struct sm_secret *any;
};

static int probe_deleted_below(const char *name, void *value, void *ctx)
{
	struct deleted_probe *p = ctx;
	const struct sm_secret *s = value;
	if (s->deleted_ms && strcmp(name, p->folder) != 0 && name_is_below(name, p->folder)) {
		p->any = s;
		return 1;
	}
	return 0;
}

int sm_attr(struct sm *sm, enum sm_view view, const char *path, struct sm_attr *out)
{
	int rc = -ENOENT;
	pthread_rwlock_rdlock(&sm->index_lock);
	if (view == SM_VIEW_LIVE) {
		struct sm_folder *f = find_folder(sm, path);
		struct sm_secret *s = f ? NULL : find_secret(sm, path);
		if (f) {
			folder_attr(f, out);
			rc = 0;
		} else if (is_live(s)) {
			secret_attr(s, out);
			rc = 0;
		} else if (!s && is_damaged(sm, path)) {
			rc = -EIO; /* its record failed its checks at load */
		}
	} else {
		struct sm_secret *s = path[0] ? find_secret(sm, path) : NULL;
		struct deleted_probe probe = { path, NULL };
		if (s && s->deleted_ms) {
			secret_attr(s, out);
			rc = 0;
		} else if (!path[0] || hashmap_foreach(sm->secrets, probe_deleted_below, &probe)) {
			/* A folder of .deleted/ exists while a deleted name lies below it. */
			struct sm_folder *root = find_folder(sm, "");
			folder_attr(root, out);
			out->mode = 0755;
			if (probe.any)
				out->created_ms = out->changed_ms = out->accessed_ms = probe.any->deleted_ms;
			rc = 0;
		}
	}
	pthread_rwlock_unlock(&sm->index_lock);
	return rc;
}

int sm_version_attr(struct sm *sm, const char *name, const char *version_id, struct sm_attr *out)
{
	int rc = -ENOENT;
	pthread_rwlock_rdlock(&sm->index_lock);
	struct sm_secret *s = find_secret(sm, name);
	const struct sm_version *v = is_live(s) ? secret_find_version(s, version_id) : NULL;
	if (v) {
		secret_attr(s, out);
		out->size = v->size;
		/* A version never changes: all its times are its CreatedDate, so
		 * ls -t sorts .versions/NAME/ (docs/semantics.md, Times). */
		out->created_ms = out->changed_ms = out->accessed_ms = v->created_ms;
		rc = 0;
	}
	pthread_rwlock_unlock(&sm->index_lock);
	return rc;
}

struct list_ctx {
	struct sm_listing *out;
	const char *folder;
	enum sm_view view;
	struct hashmap *seen; /* names already listed (folders of .deleted) */
	int rc;
};

static int listing_add(struct sm_listing *l, const char *name, size_t len, enum sm_kind kind)
{
	struct sm_dirent *e = realloc(l->entries, (l->count + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	l->entries = e;
	e[l->count].name = strndup(name, len);
	if (!e[l->count].name)
		return -ENOMEM;
	e[l->count].kind = kind;
	l->count++;
	return 0;
}

/* The part of name directly below folder, or NULL when name is not below it. */
static const char *child_part(const char *name, const char *folder)
{
	size_t flen = strlen(folder);
	if (flen == 0)
		return name;
	if (strncmp(name, folder, flen) != 0 || name[flen] != '/')
		return NULL;
	return name + flen + 1;
}

static int list_secret(const char *name, void *value, void *ctx)
{
	struct list_ctx *lc = ctx;
	const struct sm_secret *s = value;
	const char *rest = child_part(name, lc->folder);
	if (!rest)
		return 0;
	const char *slash = strchr(rest, '/');
	if (lc->view == SM_VIEW_LIVE) {
		if (!is_live(s) || slash || s->scratch)
			return 0; /* scratch files open by name but are not listed */
		return listing_add(lc->out, rest, strlen(rest), SM_KIND_SECRET);
	}
	if (!s->deleted_ms)
		return 0;
	if (!slash)
		return listing_add(lc->out, rest, strlen(rest), SM_KIND_SECRET);
	char component[SM_NAME_MAX + 1];
	snprintf(component, sizeof(component), "%.*s", (int)(slash - rest), rest);
	if (hashmap_get(lc->seen, component))
		return 0;
	if (hashmap_put(lc->seen, component, (void *)1, NULL))
		return -ENOMEM;
	return listing_add(lc->out, component, strlen(component), SM_KIND_FOLDER);
}

/* Damaged secrets and folders are listed (a stat says EIO), as a
 * filesystem lists a file whose inode it cannot read. */
static int list_damaged(const char *name, void *value, void *ctx)
{
	struct list_ctx *lc = ctx;
	const char *rest = name[0] ? child_part(name, lc->folder) : NULL;
	if (!rest || strchr(rest, '/'))
		return 0;
	return listing_add(lc->out, rest, strlen(rest), (enum sm_kind)(uintptr_t)value);
}

static int list_folder(const char *path, void *value, void *ctx)
{
	struct list_ctx *lc = ctx;
	(void)value;
	const char *rest = path[0] ? child_part(path, lc->folder) : NULL;
	if (!rest || strchr(rest, '/'))
		return 0;
	return listing_add(lc->out, rest, strlen(rest), SM_KIND_FOLDER);
}

int sm_list(struct sm *sm, enum sm_view view, const char *folder, struct sm_listing *out)
{
	struct list_ctx lc = { out, folder, view, NULL, 0 };
	int rc;
	memset(out, 0, sizeof(*out));
	if (view == SM_VIEW_DELETED && !(lc.seen = hashmap_new(64)))
		return -ENOMEM;
	pthread_rwlock_rdlock(&sm->index_lock);
	if (view == SM_VIEW_LIVE && !find_folder(sm, folder)) {
		rc = find_secret(sm, folder) ? -ENOTDIR : -ENOENT;
	} else {
		rc = hashmap_foreach(sm->secrets, list_secret, &lc);
		if (!rc && view == SM_VIEW_LIVE)
			rc = hashmap_foreach(sm->folders, list_folder, &lc);
		if (!rc && view == SM_VIEW_LIVE && hashmap_count(sm->damaged))
			rc = hashmap_foreach(sm->damaged, list_damaged, &lc);
	}
	pthread_rwlock_unlock(&sm->index_lock);
	hashmap_free(lc.seen);
	if (rc)
		sm_listing_free(out);
	return rc;
}

int sm_list_versions(struct sm *sm, const char *name, struct sm_listing *out)
{
	int rc = 0;
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&sm->index_lock);
	struct sm_secret *s = find_secret(sm, name);
	if (!is_live(s))
		rc = -ENOENT;
	for (size_t i = 0; !rc && i < s->nversions; i++)
		rc = listing_add(out, s->versions[i].id, strlen(s->versions[i].id), SM_KIND_SECRET);
	pthread_rwlock_unlock(&sm->index_lock);
	if (rc)
		sm_listing_free(out);
	return rc;
}

void sm_listing_free(struct sm_listing *l)
{
	for (size_t i = 0; i < l->count; i++)
		free(l->entries[i].name);
	free(l->entries);
	memset(l, 0, sizeof(*l));
}

struct label_ctx {
	struct sm_listing *out;
	struct hashmap *seen;
};

static int collect_labels(const char *name, void *value, void *ctx)
{
	struct label_ctx *lc = ctx;
	const struct sm_secret *s = value;
	(void)name;
	if (!is_live(s))
		return 0;
	for (size_t i = 0; i < s->nlabels; i++) {
		if (hashmap_get(lc->seen, s->labels[i].name))
			continue;
		if (hashmap_put(lc->seen, s->labels[i].name, (void *)1, NULL) ||
		    listing_add(lc->out, s->labels[i].name, strlen(s->labels[i].name), SM_KIND_FOLDER))
			return -ENOMEM;
	}
	return 0;
}

int sm_list_labels(struct sm *sm, struct sm_listing *out)
{
	struct label_ctx lc = { out, hashmap_new(64) };
	int rc = -ENOMEM;
	memset(out, 0, sizeof(*out));
	if (!lc.seen)
		return rc;
	static const char *const reserved[] = { "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING" };
	rc = 0;
	for (size_t i = 0; !rc && i < 3; i++)
		if (hashmap_put(lc.seen, reserved[i], (void *)1, NULL) ||
		    listing_add(out, reserved[i], strlen(reserved[i]), SM_KIND_FOLDER))
			rc = -ENOMEM;
	pthread_rwlock_rdlock(&sm->index_lock);
	if (!rc)
		rc = hashmap_foreach(sm->secrets, collect_labels, &lc);
	pthread_rwlock_unlock(&sm->index_lock);
	hashmap_free(lc.seen);
	if (rc)
		sm_listing_free(out);
	return rc;
}

int sm_secret_copy(struct sm *sm, const char *name, struct sm_secret **out)
{
	int rc = 0;
	pthread_rwlock_rdlock(&sm->index_lock);
	struct sm_secret *s = find_secret(sm, name);
	*out = s ? secret_clone(s) : NULL;
	if (!s)
		rc = -ENOENT;
	else if (!*out)
		rc = -ENOMEM;
	pthread_rwlock_unlock(&sm->index_lock);
	return rc;
}

void sm_arn(struct sm *sm, const struct sm_secret *s, char *buf, size_t len)
{
	snprintf(buf, len, "arn:aws:secretsmanager:%s:%s:secret:%s-%s", keyring_region(sm->kr),
		 keyring_account(sm->kr), s->name, s->arn_suffix);
}

int sm_arn_of(struct sm *sm, const char *name, char *buf, size_t len)
{
	pthread_rwlock_rdlock(&sm->index_lock);
	const struct sm_secret *s = find_secret(sm, name);
	if (s)
		sm_arn(sm, s, buf, len);
	pthread_rwlock_unlock(&sm->index_lock);
	return s ? 0 : -ENOENT;
}

static int count_one(const char *name, void *value, void *ctx)
{
	struct sm_counts *c = ctx;
	const struct sm_secret *s = value;
	(void)name;
	if (s->deleted_ms)
		c->deleted++;
	else
		c->secrets++;
	c->versions += s->nversions;
	return 0;
}

void sm_count(struct sm *sm, struct sm_counts *out)
{
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&sm->index_lock);
	hashmap_foreach(sm->secrets, count_one, out);
	pthread_rwlock_unlock(&sm->index_lock);
}
