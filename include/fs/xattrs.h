/*
 * xattrs: Secrets Manager metadata as extended attributes (BRIEF §3).
 *
 * On a secret: user.sm.* (arn, name, description, kms_key_id, version_id,
 * version_stages, versions, stage.LABEL, client_request_token,
 * import_created_date (root and the mounting user), the dates, describe) and
 * user.tag.KEY. Views (.versions, .stages, .deleted) carry
 * the read-only ones for the version they show. On the top folder the
 * named keys: user.sm.keys (list), user.sm.key.create|enable|disable
 * (write, for root or the mounting user). The kernel's security.*,
 * system.* and trusted.* probes get ENODATA / EOPNOTSUPP at once.
 * Values are text without a trailing NUL. Returns 0 or -errno.
 */
#ifndef SECRETSFS_FS_XATTRS_H
#define SECRETSFS_FS_XATTRS_H

#include <stddef.h>
#include <sys/types.h>

#include "fs/paths.h"

struct rotator;

/* Who asks, and the mount's rules about who may name what. */
struct xattr_caller {
	uid_t uid;
	uid_t owner; /* the mounting user */
	const struct rotator *rotator; /* checks rotation commands' paths */
};

/* *value is malloc'd. */
int xattr_get(struct sm *sm, const struct target *t, const char *name, char **value, size_t *len);
/* NUL-separated names, malloc'd. */
int xattr_list(struct sm *sm, const struct target *t, char **names, size_t *len);
int xattr_set(struct sm *sm, const struct target *t, const struct xattr_caller *who,
	      const char *name, const char *value, size_t len, int flags);
int xattr_remove(struct sm *sm, const struct target *t, const struct xattr_caller *who,
		 const char *name);

#endif
