/*
 * exchange: the JSON-lines format of `secretsfs export` and `import`.
 *
 * One line per secret, in the shape of the AWS CLI's get-secret-value output
 * merged with describe-secret's: ARN, Name, VersionId, VersionStages,
 * CreatedDate, SecretString or SecretBinary (base64), Description, KmsKeyId,
 * Tags. The value is written and read only in secure memory: it is escaped
 * or base64-coded straight into the line buffer, and on the way in it is
 * cut out of the line before the rest goes to a JSON parser.
 */
#ifndef SECRETSFS_SECRETS_EXCHANGE_H
#define SECRETSFS_SECRETS_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define EXCHANGE_LINE_MAX (1u << 20)

struct exchange_tag {
	char *key, *value;
};

struct exchange_record {
	char *name;
	char *arn;
	char *version_id;
	char *description; /* NULL: none */
	char *kms_key_id;  /* NULL: the default key */
	char *created;
	struct exchange_tag *tags;
	size_t ntags;
	bool has_value;
	bool binary;
};

void exchange_record_free(struct exchange_record *r);

/*
 * One line (with its newline) into line: the metadata from a DescribeSecret
 * JSON, the version id and labels shown, and the value (NULL: none).
 */
int exchange_encode(const char *describe_json, const char *version_id, const char *stages_csv,
		    const struct secbuf *value, bool binary, struct secbuf *line);

/* Parses one line (without its newline). -EINVAL with *why for bad input. */
int exchange_decode(const uint8_t *line, size_t len, struct exchange_record *r,
		    struct secbuf *value, const char **why);

#endif
