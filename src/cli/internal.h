/*
 * cli internals shared by export and import (cmd_exchange.c) and the import
 * of one secret's lines into a mount (import_secret.c). Both work through a
 * mounted store only, with the daemon's ordinary file and attribute calls.
 */
#ifndef SECRETSFS_CLI_INTERNAL_H
#define SECRETSFS_CLI_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "secrets/exchange.h"

/* The label a version with no label of its own is written under, so that
 * AWSCURRENT never moves to an old value; taken off right after. */
#define IMPORT_LABEL "SecretsfsImport"

/* An attribute's text value (malloc'd, NUL-terminated), or NULL with errno. */
char *get_text_xattr(const char *path, const char *name);

/* One import: the secret whose lines are being read, and the counts. */
struct import_run {
	const char *mnt;
	char *name;                /* the secret being imported; NULL before the first */
	struct exchange_record own; /* its line with its own fields (Versions, owner...) */
	bool have_own;
	bool kms_checked;          /* its KmsKeyId was set or found set */
	size_t secrets, versions, added, skipped, failed;
	bool dates_refused;        /* not root nor the mounting user: no dates */
	size_t dates_invalid;      /* versions whose CreatedDate the daemon refused */
	size_t owners_refused;     /* secrets whose owner could not be given */
};

/* One line: its version written (VersionId as the client request token,
 * CreatedDate as user.sm.import_created_date), its labels put on it. A line
 * of another secret first finishes the one before (import_finish). Takes
 * r's fields (r is freed). 0, or -errno with the reason printed. */
int import_line(struct import_run *run, struct exchange_record *r, const struct secbuf *value);
/* The secret's own fields: description, tags, labels as its Versions list
 * has them, rotation settings, then owner, group and mode. */
void import_finish(struct import_run *run);

#endif
