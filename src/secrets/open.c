/*
 * Opening and closing a domain: sm_open loads and checks the index
 * (load.c), adds the folders live names imply and purges what expired;
 * sm_close frees it all.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

static int add_implied_folders(const char *name, void *value, void *ctx)
{
	struct sm_secret *s = value;
	(void)name;
	return is_live(s) ? ensure_parents(ctx, s->name, s) : 0;
}

/* The count and the first problem as one line, for a command's message. */
static void summarize_damage(const struct sm *sm, struct sm_damage *out)
{
	if (!out || !sm->nproblems)
		return;
	out->count = sm->nproblems;
	snprintf(out->first, sizeof(out->first), "record %s %s", sm->problems[0].record,
		 sm->problems[0].why);
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
	sm->as = keyring_authstore(kr);
	sm->opt = *opt;
	pthread_mutex_init(&sm->write_lock, NULL);
	pthread_rwlock_init(&sm->index_lock, NULL);
	pthread_rwlock_init(&sm->hook_lock, NULL);
	pthread_mutex_init(&sm->access_lock, NULL);
	sm->secrets = hashmap_new(4096);
	sm->folders = hashmap_new(256);
	sm->accessed = hashmap_new(64);
	sm->scratch = hashmap_new(16);
	sm->damaged = hashmap_new(16);
	if (!sm->secrets || !sm->folders || !sm->accessed || !sm->scratch || !sm->damaged) {
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
	if (sm->nproblems) {
		/* Around damage nothing is written: a purge, a rotation or a
		 * commit would act on records that may be stale, and would
		 * build on a sum that no longer holds. */
		sm->opt.readonly = true;
		log_error("%s: %zu problems found; served read-only, without the damaged "
			  "secrets and folders (skip_damaged)", store_path(st), sm->nproblems);
	}
	if (!sm->opt.readonly)
		sm_purge_expired(sm);
	/* The index holds what requests need: the pages the load read go back. */
	if ((rc = store_drop_mapped_pages(sm->store)))
		goto fail;
	summarize_damage(sm, opt->damage);
	*out = sm;
	return 0;
fail:
	summarize_damage(sm, opt->damage);
	sm_close(sm);
	return rc;
}

int sm_problems(struct sm *sm, int (*fn)(const char *record, const char *why, void *ctx),
		void *ctx)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < sm->nproblems; i++)
		rc = fn(sm->problems[i].record, sm->problems[i].why, ctx);
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
	hashmap_free(sm->damaged);
	for (size_t i = 0; i < sm->nproblems; i++) {
		free(sm->problems[i].record);
		free(sm->problems[i].why);
	}
	free(sm->problems);
	keyring_free(sm->kr);
	store_close(sm->store);
	pthread_rwlock_destroy(&sm->index_lock);
	pthread_rwlock_destroy(&sm->hook_lock);
	pthread_mutex_destroy(&sm->write_lock);
	free(sm);
}

bool sm_readonly(const struct sm *sm)
{
	return sm->opt.readonly;
}

struct store *sm_store(struct sm *sm)
{
	return sm->store;
}

struct keyring *sm_keyring(struct sm *sm)
{
	return sm->kr;
}
