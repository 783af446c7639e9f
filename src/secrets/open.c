/*
 * Opening and closing a domain: sm_open loads the index from the store
 * (catalog, or a walk that migrates a format 1 store), adds the folders
 * live names imply and purges what expired; sm_close frees it all.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

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
