#include "secrets/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

/* ---------- open and load ---------- */

static int load_secret(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	struct sm *sm = ctx;
	struct sm_secret *s;
	const char *name = key + strlen(RECORD_PREFIX_SECRET);
	if (record_decode_secret(val, len, &s) || strcmp(s->name, name) != 0) {
		if (s)
			secret_free(s);
		log_error("store record %s is damaged; the store needs repair (secretsfs check)", key);
		return -EIO;
	}
	if (hashmap_put(sm->secrets, s->name, s, NULL)) {
		secret_free(s);
		return -ENOMEM;
	}
	return 0;
}

static int load_folder(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	struct sm *sm = ctx;
	struct sm_folder *f;
	const char *path = key + strlen(RECORD_PREFIX_FOLDER);
	if (record_decode_folder(path, val, len, &f)) {
		log_error("store record %s is damaged; the store needs repair (secretsfs check)", key);
		return -EIO;
	}
	void *old = NULL;
	if (hashmap_put(sm->folders, f->path, f, &old)) {
		folder_free(f);
		return -ENOMEM;
	}
	folder_free(old);
	return 0;
}

static int add_implied_folders(const char *name, void *value, void *ctx)
{
	struct sm_secret *s = value;
	(void)name;
	return is_live(s) ? ensure_parents(ctx, s->name, s) : 0;
}

static int load_record(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	if (strncmp(key, RECORD_PREFIX_FOLDER, strlen(RECORD_PREFIX_FOLDER)) == 0)
		return load_folder(key, val, len, ctx);
	return load_secret(key, val, len, ctx);
}

static int store_format(struct store *st)
{
	uint8_t *data;
	size_t len;
	char text[8] = "";
	if (store_get(st, RECORD_KEY_FORMAT, &data, &len))
		return -1;
	if (len < sizeof(text))
		memcpy(text, data, len);
	free(data);
	return atoi(text);
}

/*
 * Loads every folder and secret record. Format 2 stores list them in the
 * catalog; a format 1 store is walked once and, when writable, migrated:
 * catalog and format written in one transaction.
 */
static int load_index(struct sm *sm)
{
	if (store_format(sm->store) >= 2)
		return catalog_load(sm->store, load_record, sm);
	int rc = store_foreach(sm->store, RECORD_PREFIX_FOLDER, load_folder, sm);
	if (!rc)
		rc = store_foreach(sm->store, RECORD_PREFIX_SECRET, load_secret, sm);
	if (rc || sm->opt.readonly)
		return rc;
	char format[8];
	snprintf(format, sizeof(format), "%d", RECORD_FORMAT_VERSION);
	if ((rc = store_begin(sm->store)))
		return rc;
	if ((rc = catalog_build(sm->store)) ||
	    (rc = store_put(sm->store, RECORD_KEY_FORMAT, format, strlen(format)))) {
		store_cancel(sm->store);
		return rc;
	}
	if ((rc = store_commit(sm->store)) == 0)
		log_info("%s: store format 1 migrated to %d (catalog)", store_path(sm->store),
			 RECORD_FORMAT_VERSION);
	return rc;
}

int sm_open(struct store *st, struct keyring *kr, const struct sm_options *opt, struct sm **out)
{
	struct sm *sm = calloc(1, sizeof(*sm));
	int rc;

	*out = NULL;
	if (!sm) {
		store_close(st);
		keyring_free(kr);
		return -ENOMEM;
	}
	sm->store = st;
	sm->kr = kr;
	sm->opt = *opt;
	pthread_mutex_init(&sm->write_lock, NULL);
	pthread_rwlock_init(&sm->index_lock, NULL);
	pthread_rwlock_init(&sm->hook_lock, NULL);
	pthread_mutex_init(&sm->access_lock, NULL);
	sm->secrets = hashmap_new(4096);
	sm->folders = hashmap_new(256);
	sm->accessed = hashmap_new(64);
	sm->scratch = hashmap_new(16);
	if (!sm->secrets || !sm->folders || !sm->accessed || !sm->scratch) {
		rc = -ENOMEM;
		goto fail;
	}
	struct sm_folder *root = new_folder("", opt->root_mode, opt->root_uid, opt->root_gid,
					    time_now_ms());
	if (!root || hashmap_put(sm->folders, "", root, NULL)) {
		folder_free(root);
		rc = -ENOMEM;
		goto fail;
	}
	if ((rc = load_index(sm)) || (rc = hashmap_foreach(sm->secrets, add_implied_folders, sm)))
		goto fail;
	if (!opt->readonly)
		sm_purge_expired(sm);
	/* The index holds what requests need: the pages the load read go back. */
	if ((rc = store_drop_mapped_pages(sm->store)))
		goto fail;
	*out = sm;
	return 0;
fail:
	sm_close(sm);
	return rc;
}

static int free_secret_entry(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	secret_free(value);
	return 0;
}

static int free_scratch_entry(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	secbuf_free(value);
	free(value);
	return 0;
}

static int free_folder_entry(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	folder_free(value);
	return 0;
}

void sm_close(struct sm *sm)
{
	if (!sm)
		return;
	if (sm->accessed && sm->secrets && !sm->opt.readonly)
		sm_flush_access(sm);
	hashmap_free(sm->accessed);
	pthread_mutex_destroy(&sm->access_lock);
	if (sm->scratch) {
		hashmap_foreach(sm->scratch, free_scratch_entry, NULL);
		hashmap_free(sm->scratch);
	}
	if (sm->secrets) {
		hashmap_foreach(sm->secrets, free_secret_entry, NULL);
		hashmap_free(sm->secrets);
	}
	if (sm->folders) {
		hashmap_foreach(sm->folders, free_folder_entry, NULL);
		hashmap_free(sm->folders);
	}
	keyring_free(sm->kr);
	store_close(sm->store);
	pthread_rwlock_destroy(&sm->index_lock);
	pthread_rwlock_destroy(&sm->hook_lock);
	pthread_mutex_destroy(&sm->write_lock);
	free(sm);
}

struct keyring *sm_keyring(struct sm *sm)
{
	return sm->kr;
}

/* ---------- reads of metadata ---------- */

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

void sm_count(struct sm *sm, struct sm_counts *out);

/* ---------- mutations ---------- */

static void new_arn_suffix(char out[SM_ARN_SUFFIX_LEN + 1])
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	uint8_t r[SM_ARN_SUFFIX_LEN];
	crypto_random_nonce(r, sizeof(r));
	for (int i = 0; i < SM_ARN_SUFFIX_LEN; i++)
		out[i] = alphabet[r[i] % (sizeof(alphabet) - 1)];
	out[SM_ARN_SUFFIX_LEN] = '\0';
}

static int check_parent(struct sm *sm, const char *name)
{
	char parent[SM_NAME_MAX + 1];
	name_parent(name, parent, sizeof(parent));
	if (find_folder(sm, parent))
		return 0;
	return find_secret(sm, parent) && is_live(find_secret(sm, parent)) ? -ENOTDIR : -ENOENT;
}

int sm_create(struct sm *sm, const char *name, uint32_t mode, uint32_t uid, uint32_t gid)
{
	const char *why;
	bool scratch = name_is_scratch(name);
	int rc = 0;

	if (!scratch && name_check(name, &why))
		return refuse(-EINVAL, name, why);
	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *old = find_secret(sm, name);
	if (find_folder(sm, name) || is_live(old)) {
		rc = -EEXIST;
		goto out;
	}
	if (old && old->hidden) {
		/* An editor that moved the secret to its backup name writes it
		 * anew: the same secret, whose next commit is a new version. */
		struct sm_secret *s = secret_clone(old);
		if (!s) {
			rc = -ENOMEM;
			goto out;
		}
		s->hidden = false;
		index_replace(sm, name, s);
		goto out;
	}
	if ((rc = check_parent(sm, name)))
		goto out;
	if (old) {
		/* Creating a deleted name restores it: nothing is lost (BRIEF §4).
		 * In memory only until the new value (or the empty close) is
		 * committed: a crash before that leaves it deleted, as it was. */
		struct sm_secret *s = secret_clone(old);
		if (!s) {
			rc = -ENOMEM;
			goto out;
		}
		s->deleted_ms = s->purge_ms = 0;
		s->restore_pending = true;
		index_replace(sm, name, s);
		goto out;
	}
	struct sm_secret *s = calloc(1, sizeof(*s));
	uint8_t id[SM_UUID_HEX_LEN / 2];
	if (!s || !(s->name = strdup(name))) {
		free(s);
		rc = -ENOMEM;
		goto out;
	}
	crypto_random_nonce(id, sizeof(id));
	for (size_t i = 0; i < sizeof(id); i++)
		snprintf(s->uuid + 2 * i, 3, "%02x", id[i]);
	new_arn_suffix(s->arn_suffix);
	s->created_ms = s->changed_ms = time_now_ms();
	s->mode = mode & 07777;
	s->uid = uid;
	s->gid = gid;
	s->persisted = false;
	s->scratch = scratch;
	index_replace(sm, name, s);
out:
	pthread_mutex_unlock(&sm->write_lock);
	return rc;
}

int sm_commit_created(struct sm *sm, const char *name)
{
	int rc = 0;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *old = find_secret(sm, name);
	if (old && (!old->persisted || old->restore_pending) && !old->scratch) {
		struct sm_secret *s = secret_clone(old);
		struct change c = { 0 };
		if (!s) {
			rc = -ENOMEM;
			goto out;
		}
		if (s->restore_pending)
			log_info("%s: restored by a new create", name);
		s->persisted = true;
		s->restore_pending = false;
		change_put_secret(&c, s);
		rc = change_commit(sm, &c);
		change_free(&c);
		if (rc) {
			secret_free(s);
			goto out;
		}
		index_replace(sm, name, s);
	}
out:
	pthread_mutex_unlock(&sm->write_lock);
	return rc;
}


/* Adds the removal of s and all its versions to c. */
static void purge_into(struct change *c, const struct sm_secret *s)
{
	if (!s->persisted)
		return;
	change_del_versions(c, s);
	change_del_secret(c, s->name);
}

int sm_delete(struct sm *sm, const char *name)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	int rc = 0;

	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *old = find_secret(sm, name);
	if (!is_live(old)) {
		rc = find_folder(sm, name) ? -EISDIR : -ENOENT;
		goto out;
	}
	if (!old->persisted) {
		if (old->scratch)
			scratch_set(sm, name, NULL, 0);
		index_replace(sm, name, NULL);
		goto out;
	}
	if (old->nversions == 0 || sm->opt.recovery_window_days == 0) {
		purge_into(&c, old);
		if ((rc = change_commit(sm, &c)))
			goto out;
		log_info("%s: deleted for good", name);
		index_replace(sm, name, NULL);
		goto out;
	}
	if (!(s = secret_clone(old))) {
		rc = -ENOMEM;
		goto out;
	}
	s->deleted_ms = time_now_ms();
	s->purge_ms = s->deleted_ms + (int64_t)sm->opt.recovery_window_days * MS_PER_DAY;
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_info("%s: scheduled for deletion in %d days", name, sm->opt.recovery_window_days);
	index_replace(sm, name, s);
	s = NULL;
out:
	pthread_mutex_unlock(&sm->write_lock);
	secret_free(s);
	change_free(&c);
	return rc;
}

int sm_restore(struct sm *sm, const char *deleted_name, const char *new_name)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	const char *why;
	int rc;

	if (name_check(new_name, &why))
		return refuse(-EINVAL, new_name, why);
	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *old = find_secret(sm, deleted_name);
	bool renaming = strcmp(deleted_name, new_name) != 0;
	if (!old || !old->deleted_ms) {
		rc = -ENOENT;
		goto out;
	}
	if (renaming && (find_secret(sm, new_name) || find_folder(sm, new_name))) {
		rc = -EEXIST;
		goto out;
	}
	if ((rc = check_parent(sm, new_name)))
		goto out;
	if (!(s = secret_clone(old)) || (renaming && (free(s->name), !(s->name = strdup(new_name))))) {
		rc = -ENOMEM;
		goto out;
	}
	s->deleted_ms = s->purge_ms = 0;
	if (renaming)
		change_del_secret(&c, deleted_name);
	change_put_secret(&c, s);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_info("%s: restored%s%s", deleted_name, renaming ? " as " : "", renaming ? new_name : "");
	if (renaming)
		index_replace(sm, deleted_name, NULL);
	index_replace(sm, new_name, s);
	s = NULL;
out:
	pthread_mutex_unlock(&sm->write_lock);
	secret_free(s);
	change_free(&c);
	return rc;
}

/* rename A -> B with B present: B gets A's current value, A goes away. */
/* Tags of from join to's (rename keeps what a sync tool set on its temp file). */
static int merge_tags(struct sm_secret *to, const struct sm_secret *from)
{
	for (size_t i = 0; i < from->ntags; i++) {
		struct sm_tag *t = NULL;
		for (size_t j = 0; j < to->ntags; j++)
			if (strcmp(to->tags[j].key, from->tags[i].key) == 0)
				t = &to->tags[j];
		char *value = strdup(from->tags[i].value);
		if (!value)
			return -ENOMEM;
		if (t) {
			free(t->value);
			t->value = value;
			continue;
		}
		struct sm_tag *tags = realloc(to->tags, (to->ntags + 1) * sizeof(*tags));
		if (!tags || !(tags[to->ntags].key = strdup(from->tags[i].key))) {
			if (tags)
				to->tags = tags;
			free(value);
			return -ENOMEM;
		}
		to->tags = tags;
		tags[to->ntags++].value = value;
		to->tags_ever = true;
	}
	return 0;
}

/* The value a rename carries: a scratch file's, or the current version's. */
static int renamed_value(struct sm *sm, const struct sm_secret *from, struct secbuf *out)
{
	if (!from->scratch)
		return read_current(sm, from, out);
	const struct secbuf *v = scratch_value(sm, from->name);
	out->len = 0;
	return v ? secbuf_set(out, v->data, v->len) : 0;
}

/*
 * rename A -> B with B present: B gets A's current value as a new version,
 * and, as a rename replaces a file, A's mode and owner; A's tags join B's.
 * A goes away.
 */
static int rename_over(struct sm *sm, struct sm_secret *from, struct sm_secret *to)
{
	struct change c = { 0 };
	struct secbuf value = { 0 };
	struct sm_secret *s = secret_clone(to);
	char version_id[SM_VERSION_ID_MAX + 1];
	bool added = false;
	int rc;

	if (!s)
		return -ENOMEM;
	if ((rc = renamed_value(sm, from, &value)) || (rc = merge_tags(s, from)))
		goto out;
	s->persisted = true;
	s->hidden = false;
	s->restore_pending = false;
	s->deleted_ms = s->purge_ms = 0;
	s->mode = from->mode;
	s->uid = from->uid;
	s->gid = from->gid;
	if (value.len && (rc = add_version(sm, s, value.data, value.len, NULL, &c, version_id, &added)))
		goto out;
	change_put_secret(&c, s);
	purge_into(&c, from);
	if ((rc = change_commit(sm, &c)))
		goto out;
	log_debug("%s: replaced by rename from %s%s", to->name, from->name,
		  added ? "" : " (same value, no new version)");
	char from_name[SM_NAME_MAX + 1];
	snprintf(from_name, sizeof(from_name), "%s", from->name);
	if (from->scratch)
		scratch_set(sm, from_name, NULL, 0);
	index_replace(sm, s->name, s);
	s = NULL;
	index_replace(sm, from_name, NULL);
out:
	secbuf_free(&value);
	secret_free(s);
	change_free(&c);
	return rc;
}

static int rename_secret(struct sm *sm, struct sm_secret *from, const char *to)
{
	struct change c = { 0 };
	struct secbuf value = { 0 };
	struct sm_secret *s = secret_clone(from);
	char version_id[SM_VERSION_ID_MAX + 1];
	bool added;
	int rc = 0;
	if (!s)
		return -ENOMEM;
	free(s->name);
	if (!(s->name = strdup(to))) {
		rc = -ENOMEM;
		goto out;
	}
	if (from->scratch) {
		/* A scratch file renamed to a real name is CreateSecret with its value. */
		s->scratch = false;
		s->scratch_size = 0;
		s->persisted = true;
		if ((rc = renamed_value(sm, from, &value)) ||
		    (value.len &&
		     (rc = add_version(sm, s, value.data, value.len, NULL, &c, version_id, &added))))
			goto out;
		change_put_secret(&c, s);
	} else if (from->persisted) {
		change_del_secret(&c, from->name);
		change_put_secret(&c, s);
	}
	if (c.count && (rc = change_commit(sm, &c)))
		goto out;
	char from_name[SM_NAME_MAX + 1];
	snprintf(from_name, sizeof(from_name), "%s", from->name);
	if (from->scratch)
		scratch_set(sm, from_name, NULL, 0);
	index_replace(sm, to, s);
	s = NULL;
	index_replace(sm, from_name, NULL);
out:
	secbuf_free(&value);
	secret_free(s);
	change_free(&c);
	return rc;
}

struct prefix_collect {
	const char *prefix;
	void **items;
	size_t count;
	int rc;
};

static int collect_below(const char *key, void *value, void *ctx)
{
	struct prefix_collect *pc = ctx;
	if (!name_is_below(key, pc->prefix))
		return 0;
	void **items = realloc(pc->items, (pc->count + 1) * sizeof(*items));
	if (!items)
		return -ENOMEM;
	pc->items = items;
	items[pc->count++] = value;
	return 0;
}

static bool folder_has_children(struct sm *sm, const char *path)
{
	struct prefix_collect a = { path, NULL, 0, 0 }, b = { path, NULL, 0, 0 };
	hashmap_foreach(sm->folders, collect_below, &a);
	hashmap_foreach(sm->secrets, collect_below, &b);
	bool children = a.count > 1;
	for (size_t i = 0; i < b.count; i++)
		if (is_live(b.items[i]) && strcmp(((struct sm_secret *)b.items[i])->name, path) != 0)
			children = true;
	free(a.items);
	free(b.items);
	return children;
}

/* A folder and everything below it move to a new prefix: one transaction. */
static int rename_folder(struct sm *sm, const char *from, const char *to)
{
	struct prefix_collect folders = { from, NULL, 0, 0 }, secrets = { from, NULL, 0, 0 };
	struct change c = { 0 };
	struct sm_folder **new_folders = NULL;
	struct sm_secret **new_secrets = NULL;
	size_t flen = strlen(from);
	int rc;

	if ((rc = hashmap_foreach(sm->folders, collect_below, &folders)) ||
	    (rc = hashmap_foreach(sm->secrets, collect_below, &secrets)))
		goto out;
	new_folders = calloc(folders.count + 1, sizeof(*new_folders));
	new_secrets = calloc(secrets.count + 1, sizeof(*new_secrets));
	if (!new_folders || !new_secrets) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < folders.count; i++) {
		struct sm_folder *f = folders.items[i];
		char path[SM_NAME_MAX + 2];
		if (snprintf(path, sizeof(path), "%s%s", to, f->path + flen) > SM_NAME_MAX) {
			rc = refuse(-ENAMETOOLONG, to, "a name may be at most 512 characters");
			goto out;
		}
		if (!(new_folders[i] = clone_folder(f, path))) {
			rc = -ENOMEM;
			goto out;
		}
		new_folders[i]->persisted = true;
		if (f->persisted) {
			char key[SM_NAME_MAX + 32];
			record_key_folder(f->path, key, sizeof(key));
			change_add(&c, key, NULL, 0);
		}
		change_put_folder(&c, new_folders[i]);
	}
	for (size_t i = 0; i < secrets.count; i++) {
		struct sm_secret *s = secrets.items[i];
		char name[SM_NAME_MAX + 2];
		if (snprintf(name, sizeof(name), "%s%s", to, s->name + flen) > SM_NAME_MAX) {
			rc = refuse(-ENAMETOOLONG, to, "a name may be at most 512 characters");
			goto out;
		}
		if (!(new_secrets[i] = secret_clone(s))) {
			rc = -ENOMEM;
			goto out;
		}
		free(new_secrets[i]->name);
		if (!(new_secrets[i]->name = strdup(name))) {
			rc = -ENOMEM;
			goto out;
		}
		if (s->persisted) {
			change_del_secret(&c, s->name);
			change_put_secret(&c, new_secrets[i]);
		}
	}
	if ((rc = change_commit(sm, &c)))
		goto out;
	/* Remove the old names first: a new name may equal another's old one. */
	for (size_t i = 0; i < folders.count; i++)
		index_replace_folder(sm, ((struct sm_folder *)folders.items[i])->path, NULL);
	for (size_t i = 0; i < secrets.count; i++)
		index_replace(sm, ((struct sm_secret *)secrets.items[i])->name, NULL);
	for (size_t i = 0; i < folders.count; i++) {
		index_replace_folder(sm, new_folders[i]->path, new_folders[i]);
		new_folders[i] = NULL;
	}
	for (size_t i = 0; i < secrets.count; i++) {
		index_replace(sm, new_secrets[i]->name, new_secrets[i]);
		new_secrets[i] = NULL;
	}
	log_info("%s: folder renamed to %s", from, to);
out:
	for (size_t i = 0; new_folders && i < folders.count; i++)
		folder_free(new_folders[i]);
	for (size_t i = 0; new_secrets && i < secrets.count; i++)
		secret_free(new_secrets[i]);
	free(new_folders);
	free(new_secrets);
	free(folders.items);
	free(secrets.items);
	change_free(&c);
	return rc;
}

/*
 * rename A -> a scratch name (vim's "A~" backup): the scratch file gets A's
 * value and metadata, and A is hidden, not moved: the editor creates A again
 * at once, and that is the same secret with a new version, its history
 * kept. Hidden is memory only: after a restart A is simply back.
 */
static int rename_to_scratch(struct sm *sm, struct sm_secret *from, const char *to,
			     struct sm_secret *old_to)
{
	struct secbuf value = { 0 };
	struct sm_secret *copy = secret_clone(from), *hidden = NULL;
	int rc;
	if (!copy)
		return -ENOMEM;
	if (old_to && !old_to->scratch) {
		secret_free(copy);
		return -EEXIST;
	}
	if ((rc = renamed_value(sm, from, &value)))
		goto out;
	free(copy->name);
	if (!(copy->name = strdup(to))) {
		rc = -ENOMEM;
		goto out;
	}
	copy->scratch = true;
	copy->persisted = false;
	copy->scratch_size = (uint32_t)value.len;
	if ((rc = scratch_set(sm, to, value.data, value.len)))
		goto out;
	char from_name[SM_NAME_MAX + 1];
	snprintf(from_name, sizeof(from_name), "%s", from->name);
	if (from->scratch) {
		scratch_set(sm, from_name, NULL, 0);
		index_replace(sm, from_name, NULL);
	} else {
		if (!(hidden = secret_clone(from))) {
			rc = -ENOMEM;
			goto out;
		}
		hidden->hidden = true;
		index_replace(sm, from_name, hidden);
	}
	index_replace(sm, to, copy);
	copy = NULL;
out:
	secbuf_free(&value);
	secret_free(copy);
	return rc;
}

int sm_rename(struct sm *sm, const char *from, const char *to, bool noreplace)
{
	const char *why;
	int rc;

	bool to_scratch = name_is_scratch(to);
	if (!to_scratch && name_check(to, &why))
		return refuse(-EINVAL, to, why);
	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_secret *fs = find_secret(sm, from), *ts = find_secret(sm, to);
	if (to_scratch) {
		rc = is_live(fs) ? rename_to_scratch(sm, fs, to, ts)
				 : from[0] && find_folder(sm, from) ? refuse(-EINVAL, to, "a folder cannot take a scratch name")
								    : -ENOENT;
		goto out;
	}
	struct sm_folder *ff = from[0] ? find_folder(sm, from) : NULL, *tf = find_folder(sm, to);
	if ((rc = check_parent(sm, to)))
		goto out;
	if (strcmp(from, to) == 0) {
		rc = (is_live(fs) || ff) ? 0 : -ENOENT;
		goto out;
	}
	if (is_live(fs)) {
		if (tf)
			rc = -EISDIR;
		else if (ts && noreplace && is_live(ts))
			rc = -EEXIST;
		else if (ts)
			rc = rename_over(sm, fs, ts);
		else
			rc = rename_secret(sm, fs, to);
	} else if (ff) {
		if (is_live(ts))
			rc = -ENOTDIR;
		else if (name_is_below(to, from))
			rc = refuse(-EINVAL, to, "a folder cannot move below itself");
		else if (tf && noreplace)
			rc = -EEXIST;
		else if (tf && folder_has_children(sm, to))
			rc = -ENOTEMPTY;
		else {
			if (tf) {
				struct change c = { 0 };
				char key[SM_NAME_MAX + 32];
				record_key_folder(to, key, sizeof(key));
				change_add(&c, key, NULL, 0);
				rc = tf->persisted ? change_commit(sm, &c) : 0;
				change_free(&c);
				if (!rc)
					index_replace_folder(sm, to, NULL);
			}
			if (!rc)
				rc = rename_folder(sm, from, to);
		}
	} else {
		rc = -ENOENT;
	}
out:
	pthread_mutex_unlock(&sm->write_lock);
	return rc;
}

static void apply_owner_mode(uint32_t *mode, uint32_t *uid, uint32_t *gid, const uint32_t *new_mode,
			     const uint32_t *new_uid, const uint32_t *new_gid)
{
	if (new_mode)
		*mode = *new_mode & 07777;
	if (new_uid)
		*uid = *new_uid;
	if (new_gid)
		*gid = *new_gid;
}

int sm_set_owner_mode(struct sm *sm, const char *path, const uint32_t *mode, const uint32_t *uid,
		      const uint32_t *gid)
{
	struct change c = { 0 };
	int rc = 0;

	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_folder *f = find_folder(sm, path);
	struct sm_secret *s = f ? NULL : find_secret(sm, path);
	if (f) {
		struct sm_folder *n = clone_folder(f, NULL);
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		apply_owner_mode(&n->mode, &n->uid, &n->gid, mode, uid, gid);
		n->changed_ms = time_now_ms();
		n->persisted = true;
		change_put_folder(&c, n);
		if ((rc = change_commit(sm, &c))) {
			folder_free(n);
			goto out;
		}
		index_replace_folder(sm, path, n);
	} else if (is_live(s)) {
		struct sm_secret *n = secret_clone(s);
		if (!n) {
			rc = -ENOMEM;
			goto out;
		}
		apply_owner_mode(&n->mode, &n->uid, &n->gid, mode, uid, gid);
		if (n->persisted) {
			change_put_secret(&c, n);
			if ((rc = change_commit(sm, &c))) {
				secret_free(n);
				goto out;
			}
		}
		index_replace(sm, path, n);
	} else {
		rc = -ENOENT;
	}
out:
	pthread_mutex_unlock(&sm->write_lock);
	change_free(&c);
	return rc;
}

int sm_mkdir(struct sm *sm, const char *path, uint32_t mode, uint32_t uid, uint32_t gid)
{
	struct change c = { 0 };
	const char *why;
	int rc;

	if (name_check(path, &why))
		return refuse(-EINVAL, path, why);
	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	if (find_folder(sm, path) || is_live(find_secret(sm, path))) {
		rc = -EEXIST;
		goto out;
	}
	if ((rc = check_parent(sm, path)))
		goto out;
	struct sm_folder *f = new_folder(path, mode, uid, gid, time_now_ms());
	if (!f) {
		rc = -ENOMEM;
		goto out;
	}
	f->persisted = true;
	change_put_folder(&c, f);
	if ((rc = change_commit(sm, &c))) {
		folder_free(f);
		goto out;
	}
	index_replace_folder(sm, path, f);
out:
	pthread_mutex_unlock(&sm->write_lock);
	change_free(&c);
	return rc;
}

int sm_rmdir(struct sm *sm, const char *path)
{
	struct change c = { 0 };
	int rc = 0;

	if (sm->opt.readonly)
		return -EROFS;
	pthread_mutex_lock(&sm->write_lock);
	struct sm_folder *f = path[0] ? find_folder(sm, path) : NULL;
	if (!f) {
		rc = is_live(find_secret(sm, path)) ? -ENOTDIR : path[0] ? -ENOENT : -EBUSY;
		goto out;
	}
	if (folder_has_children(sm, path)) {
		rc = -ENOTEMPTY;
		goto out;
	}
	if (f->persisted) {
		char key[SM_NAME_MAX + 32];
		record_key_folder(path, key, sizeof(key));
		change_add(&c, key, NULL, 0);
		if ((rc = change_commit(sm, &c)))
			goto out;
	}
	index_replace_folder(sm, path, NULL);
out:
	pthread_mutex_unlock(&sm->write_lock);
	change_free(&c);
	return rc;
}

struct expired {
	int64_t now;
	char **names;
	size_t count;
};

static int collect_expired(const char *name, void *value, void *ctx)
{
	struct expired *e = ctx;
	const struct sm_secret *s = value;
	if (!s->deleted_ms || s->purge_ms > e->now)
		return 0;
	char **names = realloc(e->names, (e->count + 1) * sizeof(*names));
	if (!names)
		return -ENOMEM;
	e->names = names;
	if (!(names[e->count] = strdup(name)))
		return -ENOMEM;
	e->count++;
	return 0;
}

int sm_purge_expired(struct sm *sm)
{
	struct expired e = { time_now_ms(), NULL, 0 };
	int rc = 0;
	if (sm->opt.readonly)
		return 0;
	pthread_mutex_lock(&sm->write_lock);
	hashmap_foreach(sm->secrets, collect_expired, &e);
	for (size_t i = 0; i < e.count; i++) {
		struct change c = { 0 };
		struct sm_secret *s = find_secret(sm, e.names[i]);
		purge_into(&c, s);
		int one = change_commit(sm, &c);
		change_free(&c);
		if (one) {
			rc = one;
			continue;
		}
		log_info("%s: recovery window over, deleted for good", e.names[i]);
		index_replace(sm, e.names[i], NULL);
	}
	pthread_mutex_unlock(&sm->write_lock);
	for (size_t i = 0; i < e.count; i++)
		free(e.names[i]);
	free(e.names);
	return rc;
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
