/* The in-memory index of secrets and folders (see secrets/internal.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"


struct sm_secret *find_secret(struct sm *sm, const char *name)
{
	return hashmap_get(sm->secrets, name);
}

struct sm_folder *find_folder(struct sm *sm, const char *path)
{
	return hashmap_get(sm->folders, path);
}

bool is_live(const struct sm_secret *s)
{
	return s && !s->deleted_ms && !s->hidden;
}

void sm_set_change_hook(struct sm *sm, sm_change_hook_fn fn, void *ctx)
{
	pthread_rwlock_wrlock(&sm->hook_lock);
	sm->change_hook = fn;
	sm->change_hook_ctx = ctx;
	pthread_rwlock_unlock(&sm->hook_lock);
}

void index_changed(struct sm *sm, const char *name, unsigned what)
{
	pthread_rwlock_rdlock(&sm->hook_lock);
	if (sm->change_hook)
		sm->change_hook(sm->change_hook_ctx, name, what);
	pthread_rwlock_unlock(&sm->hook_lock);
}

/* Swap a secret in the index (new_s NULL removes it); frees the old copy.
 * remote: SM_CHANGE_REMOTE for a change sm_apply made, else 0. */
static void replace_secret(struct sm *sm, const char *name, struct sm_secret *new_s,
			   unsigned remote)
{
	void *old = NULL;
	unsigned what = SM_CHANGE_FOLDER | remote | (is_live(new_s) ? 0 : SM_CHANGE_GONE);
	pthread_rwlock_wrlock(&sm->index_lock);
	if (new_s) {
		if (hashmap_put(sm->secrets, name, new_s, &old)) {
			/* Out of memory in the index after a commit: keep serving the old copy. */
			pthread_rwlock_unlock(&sm->index_lock);
			log_error("out of memory updating the index for %s", name);
			secret_free(new_s);
			return;
		}
	} else {
		old = hashmap_remove(sm->secrets, name);
	}
	pthread_rwlock_unlock(&sm->index_lock);
	index_changed(sm, name, what); /* name may be old's own: before the free */
	secret_free(old);
}

static void replace_folder(struct sm *sm, const char *path, struct sm_folder *new_f,
			   unsigned remote)
{
	void *old = NULL;
	unsigned what = SM_CHANGE_FOLDER | remote | (new_f ? 0 : SM_CHANGE_GONE);
	pthread_rwlock_wrlock(&sm->index_lock);
	if (new_f) {
		if (hashmap_put(sm->folders, path, new_f, &old)) {
			pthread_rwlock_unlock(&sm->index_lock);
			folder_free(new_f);
			return;
		}
	} else {
		old = hashmap_remove(sm->folders, path);
	}
	pthread_rwlock_unlock(&sm->index_lock);
	index_changed(sm, path, what);
	folder_free(old);
}

void index_replace(struct sm *sm, const char *name, struct sm_secret *new_s)
{
	replace_secret(sm, name, new_s, 0);
}

void index_replace_folder(struct sm *sm, const char *path, struct sm_folder *new_f)
{
	replace_folder(sm, path, new_f, 0);
}

void index_apply(struct sm *sm, const char *name, struct sm_secret *new_s)
{
	replace_secret(sm, name, new_s, SM_CHANGE_REMOTE);
}

void index_apply_folder(struct sm *sm, const char *path, struct sm_folder *new_f)
{
	replace_folder(sm, path, new_f, SM_CHANGE_REMOTE);
}

struct sm_folder *new_folder(const char *path, uint32_t mode, uint32_t uid, uint32_t gid,
				    int64_t now)
{
	struct sm_folder *f = calloc(1, sizeof(*f));
	if (!f || !(f->path = strdup(path))) {
		free(f);
		return NULL;
	}
	f->mode = mode & 07777;
	f->uid = uid;
	f->gid = gid;
	f->created_ms = f->changed_ms = now;
	return f;
}

struct sm_folder *clone_folder(const struct sm_folder *f, const char *path)
{
	struct sm_folder *c = new_folder(path ? path : f->path, f->mode, f->uid, f->gid, f->created_ms);
	if (c) {
		c->changed_ms = f->changed_ms;
		c->seq = f->seq;
		c->persisted = f->persisted;
	}
	return c;
}

/* Folders implied by a name's prefixes, added in memory when missing. */
bool is_damaged(struct sm *sm, const char *name)
{
	/* Most stores have no damage: no hashing of the name on their lookups. */
	return hashmap_count(sm->damaged) && hashmap_get(sm->damaged, name);
}

int ensure_parents(struct sm *sm, const char *name, const struct sm_secret *owner)
{
	char path[SM_NAME_MAX + 1];
	snprintf(path, sizeof(path), "%s", name);
	for (char *slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		/* A folder whose record failed its checks stays EIO: an implied
		 * folder in its place would serve it with modes nobody set. */
		if (!find_folder(sm, path) && !is_damaged(sm, path)) {
			struct sm_folder *f = new_folder(path, 0755, owner->uid, owner->gid,
							 owner->created_ms);
			if (!f || hashmap_put(sm->folders, path, f, NULL)) {
				folder_free(f);
				return -ENOMEM;
			}
		}
		*slash = '/';
	}
	return 0;
}

/* The last rule this thread's request broke, for an adapter that tells
 * its client why (the API's error message); the log has it too. */
static __thread char last_refusal[256];

int refuse(int err, const char *name, const char *why)
{
	log_warn("%s: refused: %s", name, why);
	snprintf(last_refusal, sizeof(last_refusal), "%s", why);
	return err;
}

const char *sm_refusal(void)
{
	return last_refusal;
}

void sm_refusal_clear(void)
{
	last_refusal[0] = '\0';
}


const struct secbuf *scratch_value(struct sm *sm, const char *name)
{
	return hashmap_get(sm->scratch, name);
}

int scratch_set(struct sm *sm, const char *name, const uint8_t *value, size_t len)
{
	struct secbuf *old = hashmap_remove(sm->scratch, name);
	if (old) {
		secbuf_free(old);
		free(old);
	}
	if (!value)
		return 0;
	struct secbuf *b = calloc(1, sizeof(*b));
	int rc = b ? secbuf_set(b, value, len) : -ENOMEM;
	if (!rc)
		rc = hashmap_put(sm->scratch, name, b, NULL);
	if (rc && b) {
		secbuf_free(b);
		free(b);
	}
	return rc;
}
