/*
 * exchange: the JSON-lines format of `secretsfs export` and `import`.
 *
 * One line per version of a secret, oldest first, each in the shape of the
 * AWS CLI's get-secret-value output (ARN, Name, VersionId, VersionStages,
 * CreatedDate of the version, SecretString or SecretBinary in base64) with
 * describe-secret's KmsKeyId. The line of the AWSCURRENT version (or the only
 * line of a secret without a value) also carries describe-secret's
 * Description and Tags, and secretsfs's own fields under the one key
 * "Secretsfs": Owner, Group, Mode, every version's id, labels and date
 * (Versions), RotationCommand and RotationRules. Plain AWS lines (any of
 * these fields absent) are read too.
 *
 * The value is written and read only in secure memory: it is escaped or
 * base64-coded straight into the line buffer, and on the way in it is cut
 * out of the line before the rest goes to a JSON parser.
 */
#ifndef SECRETSFS_SECRETS_EXCHANGE_H
#define SECRETSFS_SECRETS_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define EXCHANGE_LINE_MAX (1u << 20)
#define EXCHANGE_KEY "Secretsfs" /* where secretsfs's own fields live */

struct exchange_tag {
	char *key, *value;
};

/* A version as a secret's listing shows it. */
struct exchange_version {
	char *id;
	char *created; /* ISO 8601 UTC, as user.sm.created_date prints dates; NULL: none
			* (an entry of an imported Versions list may lack one) */
	char **stages;
	size_t nstages;
};

void exchange_versions_free(struct exchange_version *v, size_t n);
/* The text of user.sm.versions ("ID DATE LABEL,LABEL\n", oldest first). */
int exchange_versions_parse(const char *text, struct exchange_version **out, size_t *n);
bool exchange_version_has(const struct exchange_version *v, const char *stage);
/* The entry for id in list, or NULL. */
const struct exchange_version *exchange_version_find(const struct exchange_version *list,
						     size_t n, const char *id);

/* A secret's user.sm.describe, parsed once for all of its lines. */
struct exchange_describe;
/* -EINVAL: json is not a JSON object (*out is then NULL). */
int exchange_describe_parse(const char *json, struct exchange_describe **out);
void exchange_describe_free(struct exchange_describe *d);

/* What a mount shows of one secret: the source of its lines. */
struct exchange_secret {
	const struct exchange_describe *describe;
	const struct exchange_version *versions;
	size_t nversions;
	unsigned long uid, gid;
	unsigned mode;                              /* permission bits */
	const char *rotation_command;               /* NULL: none */
	const char *rotation_schedule;              /* NULL: none */
	int rotation_days;                          /* 0: none */
};

/*
 * The line (with its newline) of version v of s, holding value (binary:
 * SecretBinary); v NULL: the line of a secret without a value. full: the
 * secret's own line (its AWSCURRENT version), with Description, Tags and
 * the "Secretsfs" fields.
 */
int exchange_encode(const struct exchange_secret *s, const struct exchange_version *v,
		    const struct secbuf *value, bool binary, bool full, struct secbuf *line);

/* A decoded line. Every field that becomes a path component or the client
 * request token passes the rules of secrets/names.h: name (name_check),
 * version_id and the Versions' ids (name_check_version_id), every stage
 * (name_check_label). No string holds a NUL. */
struct exchange_record {
	char *name;
	char *arn;
	char *version_id;  /* NULL: none given */
	char **stages;     /* VersionStages */
	size_t nstages;
	bool has_stages;   /* VersionStages given (possibly empty) */
	char *created;     /* the version's CreatedDate in our form; NULL: none */
	char *description; /* NULL: none */
	char *kms_key_id;  /* NULL: none given */
	struct exchange_tag *tags;
	size_t ntags;
	bool has_tags;
	bool has_value;
	bool binary;
	/* The "Secretsfs" fields; each absent unless its has_ flag is set. */
	bool has_owner, has_mode, has_versions;
	unsigned long uid, gid;
	unsigned mode;
	struct exchange_version *versions;
	size_t nversions;
	char *rotation_command;  /* NULL: none given */
	char *rotation_schedule; /* NULL: none given */
	int rotation_days;       /* 0: none given */
};

void exchange_record_free(struct exchange_record *r);
/* Does the line carry the secret's own fields (not only a version)? */
bool exchange_record_describes_secret(const struct exchange_record *r);

/* Parses one line (without its newline). -EINVAL with *why for bad input. */
int exchange_decode(const uint8_t *line, size_t len, struct exchange_record *r,
		    struct secbuf *value, const char **why);

#endif
