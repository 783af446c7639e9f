/*
 * policy: an IAM-like access policy (mount option policy=FILE), evaluated
 * on top of the kernel's permission checks. Statements of Effect (Allow or
 * Deny), Principal ("*" or {"uid","gid","user","group"}: a value or a list),
 * Action ("secretsmanager:GetSecretValue", wildcards as "secretsmanager:*"
 * or "secretsmanager:Get*") and Resource (secret names, or ARNs when the
 * pattern starts with "arn:", with * and ? wildcards). An explicit Deny
 * wins; with no statement allowing it, a request is denied (as in IAM).
 */
#ifndef SECRETSFS_SECRETS_POLICY_H
#define SECRETSFS_SECRETS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct policy;

/* NULL with *why (static text, or written into why_buf) on a bad policy. */
struct policy *policy_load(const char *path, char *why_buf, size_t why_len);
void policy_free(struct policy *p);

struct policy_request {
	uid_t uid;
	const gid_t *gids; /* the caller's groups, primary first */
	size_t ngids;
	const char *action; /* "secretsmanager:GetSecretValue" */
	const char *name;   /* the secret, or "" for the store as a whole */
	const char *arn;    /* or NULL */
};

bool policy_allows(const struct policy *p, const struct policy_request *r);

#endif
