/*
 * access: who may do what, one place for both adapters (the mount and the
 * API). The access policy's verdict on a caller's action on a secret, and
 * the audit trail's records around it: a refusal is -EACCES, one log line
 * naming the caller and the action (never a value), and an audit record
 * with AccessDeniedException; under audit_required a change is announced
 * before it is made, so that nothing happens unrecorded.
 */
#ifndef SECRETSFS_SECRETS_ACCESS_H
#define SECRETSFS_SECRETS_ACCESS_H

#include <stddef.h>
#include <sys/types.h>

#include "secrets/audit.h"
#include "secrets/policy.h"
#include "secrets/secrets.h"

/* The caller as the policy sees it: a local process with its groups
 * (primary first), or an API principal (who->principal). */
struct access_subject {
	const struct audit_caller *who;
	const gid_t *gids;
	size_t ngids;
};

/* 0 when p (NULL: no policy) allows "secretsmanager:<event>" on secret
 * (NULL or "": the store as a whole); -EACCES, logged and audited, when not. */
int access_check(struct sm *sm, const struct policy *p, struct audit *a,
		 const struct access_subject *subject, const char *event, const char *secret);
/* Under audit_required, the record that a change is starting: -EIO when it
 * cannot be written, so the change is refused before it is made. */
int access_begin(struct audit *a, const struct audit_caller *who, const char *event,
		 const char *secret);

#endif
