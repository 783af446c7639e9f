/*
 * secrets/internal: what the secrets domain's own modules share, and nothing
 * outside src/secrets may include (scripts/check-layers enforces it).
 *
 * The domain is split by noun: open.c (open, load, close), query.c
 * (attributes, listings, copies, ARNs, counts), lifecycle.c (create,
 * delete, restore, purge), rename.c (sm_rename), folders.c (mkdir, rmdir,
 * owner and mode), change.c (the records one transaction writes), index.c
 * (the in-memory index), versions.c (sealing, snapshots, PutSecretValue),
 * metadata.c (descriptions, tags, labels, keys, tokens), describe.c
 * (DescribeSecret), writer.c (the door of every mutation: writable, the
 * writer lock, plans made again after -ESTALE), join.c (a joining host's
 * file), apply.c (another host's commits).
 */
#ifndef SECRETSFS_SECRETS_INTERNAL_H
#define SECRETSFS_SECRETS_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "secrets/authstore.h"
#include "secrets/secrets.h"
#include "util/hashmap.h"

struct sm {
	struct store *store;
	struct authstore *as;        /* the keyring's: every record read and written */
	struct keyring *kr;
	struct sm_options opt;
	pthread_mutex_t write_lock;  /* serialises mutations */
	pthread_rwlock_t index_lock; /* readers of the maps against the swap after commit */
	struct hashmap *secrets;     /* name -> struct sm_secret * (live, created, deleted) */
	struct hashmap *folders;     /* path -> struct sm_folder * ("" is the top) */
	struct hashmap *scratch;     /* scratch name -> struct secbuf * (write lock) */
	pthread_mutex_t access_lock; /* guards accessed: reads must not wait for disk */
	struct hashmap *accessed;    /* names read since the last sm_flush_access */
	struct hashmap *damaged;     /* name or path -> its kind (enum sm_kind): -EIO; set at load */
	struct sm_problem *problems; /* what the load found wrong, in order */
	size_t nproblems;
	pthread_rwlock_t hook_lock;  /* the change hook against its removal */
	sm_change_hook_fn change_hook;
	void *change_hook_ctx;
	sm_writable_fn writable;         /* cluster hooks (writer.c); NULL: a local store */
	sm_wait_applied_fn wait_applied;
	void *cluster_ctx;
};

struct sm_problem {
	char *record;
	char *why;
};

/* The load (load.c): the index from the store, checked whole; a legacy
 * store authenticated after. Problems go to sm->problems. */
int load_index(struct sm *sm);

/* A legacy store (format 1 or 2) that loaded without a problem,
 * authenticated: rekeyed under the key-encryption key that unlocked it,
 * its catalog rebuilt, every record tagged (rekey.c). Write lock held. */
int rekey_legacy(struct sm *sm, int format);

/* ---- the door of every mutation (writer.c) ---- */

#define SM_STALE_WAIT_MS 2000 /* for the replica to apply what made it stale */

/* The writer lock (held on 0 only) when the store may change now: -EROFS
 * read-only, or the writable hook's error (a replica offline). */
int write_begin(struct sm *sm);
/* The same without the cluster's say (-EROFS on a read-only store, else
 * the lock): for what stays on this host (memory only, a replica's own
 * records) and for what must end once begun (a rotation's steps and end;
 * the end's commit still goes through the store's commit hook). */
int write_begin_local(struct sm *sm);
void write_end(struct sm *sm);
/* After one run of an operation returned *rc: true to run it again from
 * the start (*rc was -ESTALE: waits for the replica first); false to
 * return *rc, which becomes -EBUSY after SM_STALE_RETRIES runs again
 * (logged under what). Call with the writer lock released. */
bool write_again(struct sm *sm, const char *what, int *rc, int *tries);

/* After name changed in the index: tells the change hook, if any. */
void index_changed(struct sm *sm, const char *name, unsigned what);

struct sm_snapshot {
	char name[SM_NAME_MAX + 1];
	char secret_uuid[SM_UUID_HEX_LEN + 1];
	char version_id[SM_VERSION_ID_MAX + 1];
	uint32_t size;
	bool binary;
	uint8_t *record;
	size_t record_len;
	struct secbuf scratch;  /* a scratch file's value, copied at open */
	bool is_scratch;
	int64_t created_ms;     /* the version's CreatedDate */
	char *stages;           /* its labels at the snapshot, each NUL-terminated */
	size_t nstages;
};

struct change_op {
	char *key;
	char *val; /* NULL: delete */
	size_t len;
};

/* The records one transaction writes: all of them land, or none. */
struct change {
	struct change_op *ops;
	size_t count;
	int error; /* first allocation failure; commit refuses then */
};

/* Takes ownership of val (NULL: delete key). */
void change_add(struct change *c, const char *key, char *val, size_t len);
void change_put_secret(struct change *c, struct sm_secret *s); /* raises s->seq */
void change_del_secret(struct change *c, const char *name);
void change_del_versions(struct change *c, const struct sm_secret *s);
void change_put_folder(struct change *c, struct sm_folder *f); /* raises f->seq */
void change_free(struct change *c);
int change_commit(struct sm *sm, struct change *c);

/* The catalog (catalog.c): record keys of secrets and folders by bucket,
 * so a mount reads metadata without walking the versions. catalog_apply
 * and catalog_build run inside a transaction. */
int catalog_apply(struct authstore *as, const struct change *c);
/* fn sees every catalogued record, or its key and why it is missing or
 * failed (-ENOENT, -EBADMSG); a bucket that fails reaches fn first by its
 * own key, and then (when fn returns 0) the records found by a walk. */
int catalog_load(struct authstore *as, authstore_visit_fn fn, void *ctx);
int catalog_build(struct authstore *as);
/* "cat/<n>" as the catalog writes it (n below its bucket count). */
bool catalog_is_bucket_key(const char *key);
/* Every bucket deleted and built again from the secret and folder records
 * the store holds (inside an authstore rewrite: a legacy catalog is not
 * trusted to list each record once, in its bucket). */
int catalog_rebuild(struct authstore *as);
/* A bucket's change counter (0: none yet; -1: not a bucket's body), whether
 * it lists key, and which bucket key belongs in (the replica's checks). */
int64_t catalog_bucket_counter(const uint8_t *body, size_t len);
bool catalog_bucket_lists(const uint8_t *body, size_t len, const char *key);
bool catalog_is_catalogued(const char *key);
void catalog_bucket_key_of(const char *key, char buf[32]);

typedef int (*edit_fn)(struct sm *sm, struct sm_secret *s, void *ctx);

enum edit_mode {
	EDIT_MEMORY,  /* in memory only: tokens */
	EDIT_CHANGE,  /* stored, and LastChangedDate moves */
	EDIT_SILENT,  /* stored, dates left alone: access dates, rotation settings */
};

/* Applies edit to a copy of the live secret name, commits it (one
 * transaction) and swaps it in; an edit returning 1 means "no change". */
int edit_secret(struct sm *sm, const char *name, edit_fn edit, void *ctx, enum edit_mode mode);

/* The rules of a secret's metadata, applied to a private copy s (metadata.c):
 * UpdateSecret's description (must_exist: removing one, -ENODATA when
 * none) and KMS key; a tag (flags as sm_set_tag's), a tag removed
 * (-ENODATA when absent); a label moved to version_id (NULL: taken off).
 * 0, 1 for "already so" (apply_stage), or -errno with the rule refused. */
int apply_description(struct sm_secret *s, const char *text, size_t len, bool must_exist);
int apply_kms_key(struct sm *sm, struct sm_secret *s, const char *text, size_t len,
		  bool must_exist);
int apply_tag(struct sm_secret *s, const char *key, const char *value, size_t len, int flags);
int apply_untag(struct sm_secret *s, const char *key);
int apply_stage(struct sm_secret *s, const char *label, const char *version_id);

/* Index access: callers hold sm->write_lock or sm->index_lock. */
struct sm_secret *find_secret(struct sm *sm, const char *name);
struct sm_folder *find_folder(struct sm *sm, const char *path);
bool is_live(const struct sm_secret *s);
/* A name or path whose record failed the load's checks (skip_damaged). */
bool is_damaged(struct sm *sm, const char *name);
/* Swap after a commit (NULL removes); frees the old copy. Write lock held. */
void index_replace(struct sm *sm, const char *name, struct sm_secret *new_s);
void index_replace_folder(struct sm *sm, const char *path, struct sm_folder *new_f);
/* The same for a change another host made (sm_apply): the change hook is
 * told SM_CHANGE_REMOTE. */
void index_apply(struct sm *sm, const char *name, struct sm_secret *new_s);
void index_apply_folder(struct sm *sm, const char *path, struct sm_folder *new_f);
struct sm_folder *new_folder(const char *path, uint32_t mode, uint32_t uid, uint32_t gid,
			     int64_t now);
struct sm_folder *clone_folder(const struct sm_folder *f, const char *path);
int ensure_parents(struct sm *sm, const char *name, const struct sm_secret *owner);
/* 0 when name's parent folder exists; -ENOTDIR when it is a live secret,
 * else -ENOENT (folders.c). */
int check_parent(struct sm *sm, const char *name);
/* Whether the folder path has a live secret or a folder below it. */
bool folder_has_children(struct sm *sm, const char *path);
/* hashmap_foreach callback: gathers the values whose keys lie below prefix. */
struct prefix_collect {
	const char *prefix;
	void **items;
	size_t count;
	int rc;
};
int collect_below(const char *key, void *value, void *ctx);
/* A new secret called name, in memory: a fresh internal id and ARN suffix,
 * created now, no version (lifecycle.c). NULL on -ENOMEM. */
struct sm_secret *secret_new(const char *name, uint32_t mode, uint32_t uid, uint32_t gid);
/* Adds the removal of s and all its versions to c (lifecycle.c). */
void purge_into(struct change *c, const struct sm_secret *s);
/* A scratch file's value (write lock held); NULL when it has none. */
const struct secbuf *scratch_value(struct sm *sm, const char *name);
/* Stores a copy of value as name's scratch value; frees it with NULL. */
int scratch_set(struct sm *sm, const char *name, const uint8_t *value, size_t len);
/* Logs "name: refused: why" and returns err. */
int refuse(int err, const char *name, const char *why);

/* Associated data binding a sealed record to store, secret and version. */
size_t binding(char *buf, size_t len, const char *purpose, const char *store_id,
	       const char *secret_uuid, const char *version_id, const char *extra);
int open_sealed(struct sm *sm, const char *name, const char *secret_uuid,
		const char *version_id, uint32_t size, const uint8_t *record,
		size_t record_len, struct secbuf *out);
/* Version v of s into out. */
int read_version(struct sm *sm, const struct sm_secret *s, const struct sm_version *v,
		 struct secbuf *out);
/* The current value of s into out (empty when it has none). */
int read_current(struct sm *sm, const struct sm_secret *s, struct secbuf *out);
int seal_version(struct sm *sm, const struct sm_secret *s, const char *version_id,
		 const uint8_t *value, size_t len, bool binary, struct change *c,
		 char key_id[SM_KEY_ID_LEN + 1]);
void prune_versions(struct sm_secret *s, struct change *c);
struct put_request {
	const char *const *stages; /* VersionStages; none: AWSCURRENT */
	size_t nstages;
	const char *token;         /* ClientRequestToken; NULL: s->request_token or new */
	enum sm_value_type type;   /* SM_VALUE_AUTO: as the bytes say (names.h) */
};

/* Adds value to s (a private copy) as a new version, moving labels as
 * PutSecretValue does; *added is false when nothing new was needed. s's
 * pending token and date are spent when it succeeds, or when the token
 * names a version with another value (-EEXIST); kept on other errors. */
int add_version(struct sm *sm, struct sm_secret *s, const uint8_t *value, size_t len,
		const struct put_request *req, struct change *c,
		char version_id[SM_VERSION_ID_MAX + 1], bool *added);
/* A copy of s without its pending client request token and date; NULL on
 * -ENOMEM. */
struct sm_secret *secret_clone_token_cleared(const struct sm_secret *s);

/* JSON records (record.c): a whole buffer as one object, or NULL; fields
 * of a type checked (-EIO), absent ones NULL/0 unless required (-EIO);
 * record_json_add takes val and fails (-ENOMEM) when it is NULL. */
struct json_object;
struct json_object *record_json_parse(const uint8_t *data, size_t len);
int record_json_string(struct json_object *o, const char *key, bool required, const char **out);
int record_json_int(struct json_object *o, const char *key, bool required, int64_t *out);
int record_json_add(struct json_object *obj, const char *key, struct json_object *val);

/* ---- the keyring's own (keyring.c, namedkeys.c) ---- */

struct named_key {
	char id[SM_KEY_ID_LEN + 1];
	char *alias;
	bool enabled;
	bool damaged;      /* its record failed authentication: unusable */
	int64_t created_ms;
	int64_t seq;       /* the record's change counter (as for secrets): 0 none */
	uint8_t *material; /* secure memory; NULL when damaged */
};

struct keyring {
	struct authstore *as;
	char store_id[KEYRING_STORE_ID_LEN + 1];
	char region[64];
	char account[32];
	int64_t created_ms;
	uint8_t *master;     /* secure memory */
	uint8_t *legacy_kek; /* a legacy store's, until its header is authenticated */
	enum unlock_kind kind;
	uint8_t salt[CRYPTO_SALT_LEN];
	struct argon2_params params;
	pthread_rwlock_t lock;
	struct named_key *keys;
	size_t nkeys;
};

void named_key_free(struct named_key *k);
/* Loads one "key/<id>" record (err from authstore_foreach); write lock held. */
int named_key_load(struct keyring *kr, const char *record_key, const uint8_t *body, size_t len,
		   int err);
/* The copy in memory of the named key record_key ("key/<id>") made again
 * from the store as it now is: replaced, dropped when the record is gone,
 * kept unusable when it fails (sm_apply). */
int keyring_reload_key(struct keyring *kr, const char *record_key);
/* The change counter of the named key id held in memory; -1: none held. */
int64_t keyring_key_seq(struct keyring *kr, const char *id);
/* The record of k with its material sealed under master, into the open transaction. */
int named_key_put(struct keyring *kr, const struct named_key *k, const uint8_t *master);
/* The header's JSON with the master key sealed under kek; malloc'd. */
int keyring_header_text(const struct keyring *kr, enum unlock_kind kind,
			const uint8_t salt[CRYPTO_SALT_LEN], const struct argon2_params *params,
			const uint8_t *kek, const uint8_t *master, char **text);
void keyring_kek_params(enum unlock_kind kind, struct argon2_params *params);
int keyring_derive_kek(const struct unlock_secret *unlock, const uint8_t salt[CRYPTO_SALT_LEN],
		       const struct argon2_params *params, uint8_t kek[CRYPTO_KEY_LEN]);

#endif
