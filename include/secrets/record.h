/*
 * record: the secrets domain's objects and their encoding in the store.
 *
 * A secret's metadata (names, dates, tags, labels, the list of versions) is
 * JSON, as AWS keeps it unencrypted. A version's sealed value is a small
 * binary record. docs/store-format.md is the reference for both; decoding
 * rejects anything malformed with -EIO.
 */
#ifndef SECRETSFS_SECRETS_RECORD_H
#define SECRETSFS_SECRETS_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secrets/names.h"

#define SM_UUID_HEX_LEN 32   /* internal secret id: 16 random bytes in hex */
#define SM_KEY_ID_LEN 36     /* named key id: a UUID as KMS prints it */
#define SM_ARN_SUFFIX_LEN 6

#define RECORD_KEY_FORMAT "sfs/format"
#define RECORD_KEY_HEADER "sfs/header"
/* A replica's own records (docs/replication.md): authenticated, in the
 * state sum, never replicated. */
#define RECORD_KEY_CLUSTER "sfs/cluster" /* how this replica reaches etcd */
#define RECORD_KEY_REPLICA "sfs/replica" /* the etcd revision it has applied */
#define RECORD_PREFIX_SECRET "secret/"
#define RECORD_PREFIX_FOLDER "dir/"
#define RECORD_PREFIX_VERSION "ver/"
#define RECORD_PREFIX_KEY "key/"
#define RECORD_FORMAT_VERSION 3   /* 3: authenticated (authstore.h); 1 and 2 are migrated on open */
#define RECORD_PREFIX_CATALOG "cat/"

/*
 * The index keeps one of these per version, and a mount keeps every secret's
 * versions and labels in memory: they are laid out for size (docs/performance.md).
 */
struct sm_version {
	const char *key_id;     /* interned (record_key_id): versions share their key's id */
	int64_t created_ms;
	uint32_t size;
	bool binary;
	char id[SM_VERSION_ID_MAX + 1];
};

struct sm_label {
	const char *name;       /* interned for AWSCURRENT, AWSPREVIOUS, AWSPENDING */
	char version_id[SM_VERSION_ID_MAX + 1];
};

struct sm_tag {
	char *key;
	char *value;
};

struct sm_secret {
	char *name;
	char uuid[SM_UUID_HEX_LEN + 1];
	char arn_suffix[SM_ARN_SUFFIX_LEN + 1];
	char *description;      /* NULL: none */
	char *kms_key_id;       /* NULL: aws/secretsmanager */
	int64_t created_ms, changed_ms, accessed_ms;
	int64_t deleted_ms;     /* 0: live; else when DeleteSecret ran */
	int64_t purge_ms;       /* with deleted_ms: when it is removed for good */
	int64_t seq;            /* raised by every write of the record: a replica never
				 * takes an older one back (docs/replication.md); 0: none */
	int64_t stored_accessed_ms; /* memory only: the accessed date the stored record has */
	uint32_t mode, uid, gid;
	uint32_t scratch_size;  /* memory only: a scratch file's value length (in sm->scratch) */
	struct sm_version *versions; /* oldest first */
	size_t nversions;
	struct sm_label *labels;
	size_t nlabels;
	struct sm_tag *tags;
	size_t ntags;
	char *request_token;    /* memory only: VersionId for the next commit */
	int64_t request_created_ms; /* memory only: CreatedDate for the next commit's
				 * version (an import); 0: the commit's time */
	char *rotation_command; /* NULL: rotation not configured */
	char *rotation_schedule; /* ScheduleExpression; NULL: none */
	int64_t last_rotated_ms, next_rotation_ms;
	char *rotation_status;  /* memory only: "running STEP", "succeeded ...", "failed ..." */
	int rotation_days;      /* AutomaticallyAfterDays; 0: none */
	bool persisted;         /* false: created, not yet committed (open for writing) */
	bool scratch;           /* memory only: a scratch file (names.h), never stored */
	bool restore_pending;   /* memory only: created again while deleted; the store
				 * still says deleted until the next commit */
	int64_t restore_deleted_ms, restore_purge_ms; /* memory only, with restore_pending:
				 * the dates a refused first commit puts back */
	bool hidden;            /* memory only: renamed onto a scratch name (an editor's
				 * backup) and not yet created again */
	bool tags_ever;         /* tags existed once: DescribeSecret shows Tags: [] */
};

struct sm_folder {
	char *path;             /* "" is the top level */
	uint32_t mode, uid, gid;
	int64_t created_ms, changed_ms;
	int64_t seq;            /* change counter, as a secret's (record.h above) */
	bool persisted;         /* false: implied by a secret's name */
};

void secret_free(struct sm_secret *s);
/* The one shared copy of a key id (SM_KEY_ID_LEN characters; never freed:
 * a store has a handful of keys); NULL when out of memory. */
const char *record_key_id(const char *key_id);
struct sm_secret *secret_clone(const struct sm_secret *s);
const struct sm_version *secret_find_version(const struct sm_secret *s, const char *id);
/* The version id carrying label, or NULL. */
const char *secret_label_version(const struct sm_secret *s, const char *label);
const struct sm_version *secret_current(const struct sm_secret *s);
/* Puts label on version_id (taking it off any other); -ENOMEM. */
int secret_label_set(struct sm_secret *s, const char *label, const char *version_id);
void secret_label_remove(struct sm_secret *s, const char *label);
/* Comma-separated labels of one version into buf. */
void secret_version_labels(const struct sm_secret *s, const char *version_id, char *buf, size_t len);

void folder_free(struct sm_folder *f);

/* JSON text, malloc'd; NULL on -ENOMEM. */
char *record_encode_secret(const struct sm_secret *s);
int record_decode_secret(const uint8_t *data, size_t len, struct sm_secret **out);
char *record_encode_folder(const struct sm_folder *f);
int record_decode_folder(const char *path, const uint8_t *data, size_t len, struct sm_folder **out);

/* The store key of a record, into buf. */
int record_key_secret(const char *name, char *buf, size_t len);
int record_key_folder(const char *path, char *buf, size_t len);
int record_key_version(const char *secret_uuid, const char *version_id, char *buf, size_t len);

/* A sealed version: type, the wrapping key, the wrapped data key, the sealed value. */
struct sealed_version {
	bool binary;
	char key_id[SM_KEY_ID_LEN + 1];
	const uint8_t *wrapped_dek;
	size_t wrapped_dek_len;
	const uint8_t *sealed_value;
	size_t sealed_value_len;
};

/* malloc'd encoding into *out. */
int record_encode_version(const struct sealed_version *v, uint8_t **out, size_t *out_len);
/* Points into data; data must outlive *v. */
int record_decode_version(const uint8_t *data, size_t len, struct sealed_version *v);

#endif
