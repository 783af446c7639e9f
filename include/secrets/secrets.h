/*
 * secrets: the Secrets Manager domain over one open store.
 *
 * Holds an in-memory index of every secret's and folder's metadata, loaded
 * at open, so lookups, stat and listings never touch the disk. Values are
 * read through snapshots: a sealed copy of one version, taken at open time
 * and decrypted on demand into secure memory, so a reader keeps the version
 * it opened. Every mutation is one store transaction, made under a writer
 * lock; the index is swapped after the commit, so readers never wait for a
 * disk sync. All functions return 0 or a negative errno, and log the rule a
 * refused request broke. Thread-safe.
 */
#ifndef SECRETSFS_SECRETS_SECRETS_H
#define SECRETSFS_SECRETS_SECRETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "secrets/keyring.h"
#include "secrets/record.h"
#include "store/store.h"

#define SM_DEFAULT_RECOVERY_DAYS 30
#define SM_MAX_VERSIONS 100

/* What a load found wrong: the count, and the first problem as a line. */
struct sm_damage {
	size_t count;
	char first[SM_NAME_MAX + 256];
};

struct sm_options {
	int recovery_window_days; /* 0: unlink purges at once */
	bool readonly;
	uint32_t root_uid, root_gid, root_mode; /* the top folder until chmod/chown */
	bool skip_damaged;        /* serve around damaged records (EIO for them) */
	struct sm_damage *damage; /* optional: filled by sm_open when it finds any */
};

struct sm;

/*
 * Loads the index and checks the store whole (docs/store-format.md): every
 * record authenticated and in its place, every internal id claimed once,
 * every label on a listed version, every version record listed by its
 * secret and every listed one present, the records adding up to the last
 * commit. Any problem refuses the open (-EBADMSG, each logged by record,
 * the first in opt->damage), having written nothing, unless skip_damaged:
 * then damaged secrets and folders answer -EIO and the rest is served,
 * read-only (sm_readonly).
 * A legacy store (format 1 or 2) that passes is authenticated on a
 * writable open, in one transaction, and logged. Takes ownership of st and
 * kr (also on failure).
 */
int sm_open(struct store *st, struct keyring *kr, const struct sm_options *opt, struct sm **out);
/* Every problem the load found, in order: fn(record key, why). */
int sm_problems(struct sm *sm, int (*fn)(const char *record, const char *why, void *ctx),
		void *ctx);
void sm_close(struct sm *sm);
struct keyring *sm_keyring(struct sm *sm);
/* The store the domain reads and writes (owned by the domain). */
struct store *sm_store(struct sm *sm);
/* Opened read-only, or made so by damage served around (skip_damaged). */
bool sm_readonly(const struct sm *sm);

enum sm_kind { SM_KIND_NONE, SM_KIND_SECRET, SM_KIND_FOLDER };
enum sm_view { SM_VIEW_LIVE, SM_VIEW_DELETED };

struct sm_attr {
	enum sm_kind kind;
	uint32_t mode, uid, gid; /* permission bits only */
	uint64_t size;           /* of the AWSCURRENT value */
	int64_t created_ms, changed_ms, accessed_ms; /* accessed 0: never read */
	int64_t purge_ms;        /* deleted secrets: when they go for good */
	uint32_t nversions;
};

/* path "" is the top folder. -ENOENT when nothing is there. */
int sm_attr(struct sm *sm, enum sm_view view, const char *path, struct sm_attr *out);
/* A stored version of a live secret; -ENOENT when either is missing. */
int sm_version_attr(struct sm *sm, const char *name, const char *version_id, struct sm_attr *out);

struct sm_dirent {
	char *name;     /* one path component, or a version id */
	enum sm_kind kind;
};

struct sm_listing {
	struct sm_dirent *entries;
	size_t count;
};

int sm_list(struct sm *sm, enum sm_view view, const char *folder, struct sm_listing *out);
/* The version ids of a live secret, oldest first. */
int sm_list_versions(struct sm *sm, const char *name, struct sm_listing *out);
void sm_listing_free(struct sm_listing *l);

/* The staging labels in use on live secrets (for listing .stages/). */
int sm_list_labels(struct sm *sm, struct sm_listing *out);
/* A deep copy of a secret's metadata (any state); free with secret_free. */
int sm_secret_copy(struct sm *sm, const char *name, struct sm_secret **out);
/* "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-SUFFIX" */
void sm_arn(struct sm *sm, const struct sm_secret *s, char *buf, size_t len);
/* The ARN of the secret called name (any state), without copying it: for
 * the policy and audit, which ask on every request. 0 or -ENOENT. */
int sm_arn_of(struct sm *sm, const char *name, char *buf, size_t len);

struct sm_snapshot;
/* The AWSCURRENT version of a live secret (size 0 when it has none). */
int sm_snapshot_current(struct sm *sm, const char *name, struct sm_snapshot **out);
int sm_snapshot_version(struct sm *sm, const char *name, const char *version_id,
			struct sm_snapshot **out);
/* The version carrying label (size 0, no version id, when none does). */
int sm_snapshot_label(struct sm *sm, const char *name, const char *label,
		      struct sm_snapshot **out);
/* One top-level field of a JSON object value (secrets/fields.h): -ENOENT
 * when absent or the value is not a JSON object. */
int sm_snapshot_field(struct sm *sm, const struct sm_snapshot *snap, const char *key,
		      struct secbuf *out);
/* The usable field names; -ENOTDIR when the value is not a JSON object. */
int sm_snapshot_field_names(struct sm *sm, const struct sm_snapshot *snap, struct sm_listing *out);
uint32_t sm_snapshot_size(const struct sm_snapshot *snap);
const char *sm_snapshot_version_id(const struct sm_snapshot *snap); /* "" when none */
/* false when no version is there to read: a secret made without a value
 * (touch), or a label no version carries. GetSecretValue then fails with
 * ResourceNotFoundException; a scratch file always has its bytes. */
bool sm_snapshot_has_value(const struct sm_snapshot *snap);
/* What the version was when the snapshot was taken: its type (a
 * SecretBinary), its CreatedDate, and its labels (i below the count;
 * NULL past the last). */
bool sm_snapshot_binary(const struct sm_snapshot *snap);
int64_t sm_snapshot_created_ms(const struct sm_snapshot *snap);
const char *sm_snapshot_stage(const struct sm_snapshot *snap, size_t i);
/* Decrypts into out (secure memory): -EIO when the record fails to open. */
int sm_snapshot_decrypt(struct sm *sm, const struct sm_snapshot *snap, struct secbuf *out);
void sm_snapshot_free(struct sm_snapshot *snap);

/* CreateSecret without a committed value yet: visible, held in memory until
 * sm_put_value or sm_commit_created; restores a secret scheduled for deletion.
 * A scratch name (names.h) makes a scratch file instead: its value is kept in
 * secure memory only, it is never listed or stored, and renaming it onto a
 * secret name stores its value there (the temp-file-then-rename pattern). */
int sm_create(struct sm *sm, const char *name, uint32_t mode, uint32_t uid, uint32_t gid);
/* Persists a created secret that received no value (touch). No-op otherwise. */
int sm_commit_created(struct sm *sm, const char *name);
/* Undoes sm_create of name when its first commit was refused (CreateSecret
 * failed, so nothing was created): a new secret or scratch file leaves the
 * index, never having been stored; a deleted secret the create restored is
 * deleted again. 1 when name went, 0 when there was nothing to undo (its
 * creation was committed meanwhile, or it is gone), or -ENOMEM. */
int sm_discard_created(struct sm *sm, const char *name);
/* PutSecretValue (CreateSecret for a created one): a new AWSCURRENT version,
 * unless the value is the current one. -EFBIG over 65,536 bytes, -EINVAL empty. */
int sm_put_value(struct sm *sm, const char *name, const uint8_t *value, size_t len,
		 char version_id[SM_VERSION_ID_MAX + 1]);
/* PutSecretValue with VersionStages (a write through .stages/LABEL/). */
int sm_put_value_staged(struct sm *sm, const char *name, const uint8_t *value, size_t len,
			const char *const *stages, size_t nstages,
			char version_id[SM_VERSION_ID_MAX + 1]);
/* DeleteSecret with the recovery window. */
int sm_delete(struct sm *sm, const char *name);
/* DeleteSecret with ForceDeleteWithoutRecovery of a secret scheduled for
 * deletion: its metadata and every version gone at once, in one
 * transaction. -ENOENT unless name is scheduled for deletion. */
int sm_purge_deleted(struct sm *sm, const char *name);
/* RestoreSecret, under its old or a new name. */
int sm_restore(struct sm *sm, const char *deleted_name, const char *new_name);
/*
 * The caller's check of what a rename moves: called under the domain's
 * write lock, after the rename is found possible and before anything is
 * written, once for each secret that moves (the secret renamed, or every
 * secret below a folder in any state: live, scratch, hidden, scheduled for
 * deletion) with its old and new name. Nonzero refuses the whole rename
 * with that error. Nothing can change below it meanwhile, so what it sees
 * (sm_arn_of and other queries, which take only the index lock) is what
 * moves; it must not call a function that changes the domain.
 */
typedef int (*sm_move_check_fn)(const char *from, const char *to, void *ctx);
/* Both cases of rename (BRIEF §2), secrets and folders; check may be NULL. */
int sm_rename(struct sm *sm, const char *from, const char *to, bool noreplace,
	      sm_move_check_fn check, void *ctx);
/* NULL pointers leave that attribute alone. */
int sm_set_owner_mode(struct sm *sm, const char *path, const uint32_t *mode, const uint32_t *uid,
		      const uint32_t *gid);
int sm_mkdir(struct sm *sm, const char *path, uint32_t mode, uint32_t uid, uint32_t gid);
int sm_rmdir(struct sm *sm, const char *path);
/* ---- metadata (metadata.c): each one transaction; -ENOENT unless live ---- */

enum sm_set_flags { SM_SET_CREATE = 1, SM_SET_REPLACE = 2 }; /* as XATTR_CREATE/REPLACE */

/* UpdateSecret Description: up to 2,048 characters (-E2BIG); "" removes it. */
int sm_set_description(struct sm *sm, const char *name, const char *text, size_t len);
/* Removes the description; -ENODATA when there is none. */
int sm_remove_description(struct sm *sm, const char *name);
/* UpdateSecret KmsKeyId for new versions: alias, key id or ARN; "" = default. */
int sm_set_kms_key(struct sm *sm, const char *name, const char *spec, size_t len);
/* Back to aws/secretsmanager; -ENODATA when no key was set. */
int sm_remove_kms_key(struct sm *sm, const char *name);
/* TagResource: key 1..128, value 0..256 characters, no "aws:" (-EINVAL),
 * at most 50 (-ENOSPC); flags as setxattr's (-EEXIST, -ENODATA). */
int sm_set_tag(struct sm *sm, const char *name, const char *key, const char *value, size_t len,
	       int flags);
/* UntagResource of one key; -ENODATA when absent. */
int sm_remove_tag(struct sm *sm, const char *name, const char *key);
/* UpdateSecretVersionStage: move label to version_id (AWSCURRENT leaves
 * AWSPREVIOUS on the old current), or take it off (NULL; not AWSCURRENT).
 * At most 20 labels (-ENOSPC). */
int sm_update_stage(struct sm *sm, const char *name, const char *label, const char *version_id);
/* ClientRequestToken (32..64 characters) for the next commit of this secret
 * that succeeds: a refused one keeps it for a retry, unless the token names
 * a version with another value (-EEXIST). NULL drops a pending token and
 * date (a retry given up). */
int sm_set_request_token(struct sm *sm, const char *name, const char *token, size_t len);
/* The CreatedDate (epoch ms, > 0 and not in the future: -EINVAL) to give the version
 * the next commit of this secret makes, spent by that commit like a token;
 * a secret created later than it is dated back to it too. For imports: the
 * caller decides who may (fs: root and the mounting user). Kept and
 * dropped with the token. */
int sm_set_request_created(struct sm *sm, const char *name, int64_t ms);

/* GetSecretValue happened: LastAccessedDate becomes today (UTC midnight),
 * in memory at once and on disk at the next sm_flush_access. */
int sm_note_access(struct sm *sm, const char *name);

/*
 * Replication (docs/replication.md): the records one commit on another
 * host changed (as its store's commit hook saw them: key, stored bytes,
 * NULL for a deletion), applied to this replica in one transaction, and
 * the index and the change hook brought up to date. keep (may be NULL)
 * is asked of each op's key once the writer lock is held, and an op it
 * declines is left out: whether this host wrote the key since is only
 * true or false under that lock. Every record must
 * authenticate under this store's key and every secret and folder record
 * decode, or nothing is applied (-EBADMSG, logged by record); records a
 * replica keeps alone ("sfs/state", "sfs/format") are refused (-EPERM).
 * -EBADMSG too on a store whose load found problems.
 */
typedef bool (*sm_apply_keep_fn)(void *ctx, const char *key);
int sm_apply(struct sm *sm, const struct store_op *ops, size_t count,
	     const struct store_op *local, sm_apply_keep_fn keep, void *keep_ctx);
/*
 * A new replica at path (which must not exist: -EEXIST) of a store kept
 * elsewhere, for a host that joins it: format and header are the store's
 * "sfs/format" and "sfs/header" records as its hosts hold them. The file
 * opens (sm_open) as that store with nothing in it yet; the replica fills
 * it through sm_apply. A secret that does not unlock the header (-EACCES,
 * -ENOKEY for the other kind), a header that fails its tag (-EBADMSG) or
 * that is not a format-3 store's (-EIO): refused, logged, the file
 * removed.
 */
int sm_create_replica(const char *path, const uint8_t *format, size_t format_len,
		      const uint8_t *header, size_t header_len,
		      const struct unlock_secret *unlock);
/*
 * A replica's own records (RECORD_KEY_CLUSTER, RECORD_KEY_REPLICA):
 * authenticated like the rest and kept out of replication. sm_apply's
 * local (may be NULL) is one of them, committed with the batch. Other
 * keys: -EPERM. sm_local_get: -ENOENT when absent; *body malloc'd.
 */
int sm_local_get(struct sm *sm, const char *key, uint8_t **body, size_t *len);
int sm_local_put(struct sm *sm, const char *key, const void *body, size_t len);

/*
 * A replica's cluster hooks (docs/replication.md), set by whoever opened
 * the replica, before the domain serves anything; the domain never learns
 * what is behind them. writable(ctx) is asked by every change that would
 * be stored, before the writer lock: nonzero (-EROFS while the replica is
 * offline) refuses the change at once with that error, nothing changed.
 * A commit refused with -ESTALE (another host changed what the change was
 * planned on) is planned again from the start: the writer lock let go,
 * wait_applied(ctx, ms) waits until the replica has applied what made it
 * stale (-ETIMEDOUT: it tries again anyway; another error ends the
 * retries with it), at most SM_STALE_RETRIES times, then -EBUSY,
 * logged. Changes held in memory only (sm_discard_created, request tokens
 * and dates, sm_note_access) and the replica's own records (sm_apply,
 * sm_local_put) do not ask. NULL hooks: a local store.
 */
#define SM_STALE_RETRIES 20 /* plans again after -ESTALE, then -EBUSY */
typedef int (*sm_writable_fn)(void *ctx);
typedef int (*sm_wait_applied_fn)(void *ctx, long timeout_ms);
void sm_set_cluster_hooks(struct sm *sm, sm_writable_fn writable, sm_wait_applied_fn wait_applied,
			  void *ctx);
/* 0 when a change could be stored now: -EROFS read-only, or what the
 * writable hook says (for the FUSE adapter, which refuses an open for
 * writing at once rather than at its close). */
int sm_writable(struct sm *sm);

/*
 * fn(ctx, name, what) runs after the secret or folder called name changed
 * in the index, whatever changed it (a request, a rotation, a purge, the
 * first read of a day, another host's commit), on that thread, after the
 * change is visible to readers. what is a set of SM_CHANGE_* bits:
 * SM_CHANGE_FOLDER when name's folder's listing may have changed too (not
 * for its LastAccessedDate alone); SM_CHANGE_REMOTE when the change is
 * another host's commit applied by sm_apply, so no request to this host's
 * mount made it (fn runs on the applying thread, holding the writer lock:
 * it must not wait for a request of the mount); SM_CHANGE_GONE when name
 * now lists neither a live secret nor a folder. The FUSE layer uses it to
 * drop the kernel's cached attributes exactly when they go stale, and to
 * tell the kernel of names another host made or removed. fn must not call
 * back into sm. NULL removes the hook; once sm_set_change_hook returns,
 * the old hook runs no more.
 */
#define SM_CHANGE_FOLDER 0x1u
#define SM_CHANGE_REMOTE 0x2u
#define SM_CHANGE_GONE 0x4u
typedef void (*sm_change_hook_fn)(void *ctx, const char *name, unsigned what);
void sm_set_change_hook(struct sm *sm, sm_change_hook_fn fn, void *ctx);
/* Stores the access dates noted since the last flush: one transaction. */
int sm_flush_access(struct sm *sm);

/* ---- rotation (rotation.c; reference §5.12) ---- */

/* The rotation command, for any value: a path the caller has checked
 * (fs/rotator). "" removes it (CancelRotateSecret: the rules and
 * LastRotatedDate stay), -ENODATA when there is none. */
int sm_set_rotation_command(struct sm *sm, const char *name, const char *path);
/* AutomaticallyAfterDays (1..1000) or ScheduleExpression; 0 and NULL clear. */
int sm_set_rotation_rules(struct sm *sm, const char *name, int days, const char *schedule);
/* RotateSecret: checks, a new token (also the next commit's request token),
 * status "running createSecret"; the command's path into command.
 * -EBUSY while a rotation runs or AWSPENDING sits on a non-current version. */
int sm_rotation_start(struct sm *sm, const char *name, char token[37], char *command, size_t cap);
/* The same with the token given (RotateSecret's ClientRequestToken, 32 to
 * 64 characters): -EEXIST when it names a version already. */
int sm_rotation_start_as(struct sm *sm, const char *name, const char *token, char *command,
			 size_t cap);
int sm_rotation_step(struct sm *sm, const char *name, const char *step);
/* failure NULL: AWSCURRENT moves to token (AWSPREVIOUS to the old current),
 * AWSPENDING comes off, LastRotatedDate is now. Otherwise nothing moves. */
int sm_rotation_end(struct sm *sm, const char *name, const char *token, const char *failure);
/* Names of secrets whose scheduled rotation is due. */
int sm_rotations_due(struct sm *sm, struct sm_listing *out);

/* DescribeSecret as JSON with AWS's field names; *json is malloc'd. */
int sm_describe(struct sm *sm, const char *name, char **json);
/* The same, of a copy, in the shape asked: the mount's attribute (dates
 * as ISO 8601 text), the API's DescribeSecret (dates as epoch seconds with
 * milliseconds), or one entry of ListSecrets (its version map is named
 * SecretVersionsToStages). */
enum sm_describe_style { SM_DESCRIBE_XATTR, SM_DESCRIBE_API, SM_DESCRIBE_LIST };
int sm_describe_secret(struct sm *sm, const struct sm_secret *s, enum sm_describe_style style,
		       char **json);

/* ---- the service's requests as the API sends them (requests.c, ids.c) ----
 *
 * The filesystem's operations above serve files (a create restores a
 * deleted name, the same value written again makes no version, a value's
 * type is what its bytes say). The API's are the service's own: each
 * request one transaction, on live secrets only, with its type given and
 * its ClientRequestToken always the new version's id. A refusal returns
 * -errno with the rule logged, and sm_refusal() says it for the client.
 */

/* The rule this thread's last refused request broke ("" when none since
 * sm_refusal_clear): for the client's error message. */
const char *sm_refusal(void);
void sm_refusal_clear(void);

enum sm_value_type { SM_VALUE_AUTO, SM_VALUE_STRING, SM_VALUE_BINARY };

struct sm_value {
	const uint8_t *data; /* secure memory */
	size_t len;
	enum sm_value_type type;
};

struct sm_tag_arg {
	const char *key, *value;
};

/* What SecretId names: a secret's name, its full ARN, or its ARN without
 * the 6-character suffix (a partial ARN), of this store's region and
 * account. The secret must be stored (not a file being created, nor a
 * scratch file). name gets the name; *deleted whether it is scheduled for
 * deletion. -ENOENT when nothing matches. */
int sm_resolve_id(struct sm *sm, const char *id, char name[SM_NAME_MAX + 1], bool *deleted);
/* The names of every stored secret, live (and scheduled for deletion when
 * deleted is set), in no order. */
int sm_secret_names(struct sm *sm, bool deleted, struct sm_listing *out);

struct sm_create_request {
	const char *name;
	const char *description;       /* NULL: none */
	const char *kms_key_id;        /* NULL: aws/secretsmanager */
	const struct sm_value *value;  /* NULL: a secret without a version */
	const char *token;             /* the first version's id; NULL: a new UUID */
	const struct sm_tag_arg *tags;
	size_t ntags;
	uint32_t mode, uid, gid;       /* as the mount shows it */
};
/*
 * CreateSecret, one transaction: the name's folders made as needed. A
 * live secret of that name: -EEXIST, unless token names its version with
 * the same value (a replay: 0, *replayed set). A secret scheduled for
 * deletion: -EBUSY. A name that is a folder, or below a secret: -ENOTDIR.
 */
int sm_create_secret(struct sm *sm, const struct sm_create_request *req,
		     char version_id[SM_VERSION_ID_MAX + 1], bool *replayed);
/* PutSecretValue: a new version with id token (a UUID when NULL), even of
 * the value already current; token naming a version of the same value
 * and type: nothing new (0); of another: -EEXIST. */
int sm_put_secret_value(struct sm *sm, const char *name, const struct sm_value *value,
			const char *const *stages, size_t nstages, const char *token,
			char version_id[SM_VERSION_ID_MAX + 1]);
/* UpdateSecret: what is set changes, together, in one transaction; a
 * value makes a version as sm_put_secret_value does (version_id "" when
 * none was given). description "" removes it; kms_key_id "" is the
 * default key. */
struct sm_update_request {
	const char *description;      /* NULL: unchanged */
	const char *kms_key_id;       /* NULL: unchanged */
	const struct sm_value *value; /* NULL: no new version */
	const char *token;
};
int sm_update_secret(struct sm *sm, const char *name, const struct sm_update_request *req,
		     char version_id[SM_VERSION_ID_MAX + 1]);
/* TagResource: every tag set (a key given twice: the last), or none. */
int sm_tag_secret(struct sm *sm, const char *name, const struct sm_tag_arg *tags, size_t n);
/* UntagResource: keys absent are no error. */
int sm_untag_secret(struct sm *sm, const char *name, const char *const *keys, size_t n);
/*
 * UpdateSecretVersionStage with the service's checks: move_to (NULL:
 * none) gets label, taken from remove_from (NULL: none), which must be
 * where label is (-EINVAL otherwise); a label on another version than
 * move_to must be named by remove_from (-EINVAL). Moving AWSCURRENT puts
 * AWSPREVIOUS on the version it left.
 */
int sm_move_stage(struct sm *sm, const char *name, const char *label, const char *remove_from,
		  const char *move_to);
/* DeleteSecret: scheduled for deletion days (7..30) from now, or with
 * force removed at once (also one already scheduled). *deletion_ms: when
 * it goes. A secret already scheduled, without force: -EBUSY. */
int sm_delete_secret(struct sm *sm, const char *name, int days, bool force, int64_t *deletion_ms);

/* Removes for good every secret whose recovery window has passed. */
int sm_purge_expired(struct sm *sm);

/* secretsfs check: every version of every secret decrypted (failures are
 * logged by name), with the problems the load found (sm_problems), on a
 * store opened with skip_damaged. */
struct sm_verify_report {
	uint64_t secrets, versions, bad_versions, records, problems;
};
int sm_verify(struct sm *sm, struct sm_verify_report *r);
/* rekey: a new master key and new material for every named key; every
 * version's data key re-wrapped and every record tagged anew, in one
 * transaction (the values stay as they are sealed). unlock is what will
 * unlock the store from now on. -EBADMSG when the load found problems.
 * *versions: how many data keys were re-wrapped. */
int sm_rekey(struct sm *sm, const struct unlock_secret *unlock, uint64_t *versions);
/* A consistent copy of the store file at dest (see store_backup). */
int sm_backup(struct sm *sm, const char *dest);

struct sm_counts {
	uint64_t secrets, deleted, versions;
};
void sm_count(struct sm *sm, struct sm_counts *out);

#endif
