/*
 * policy: an IAM-like access policy (mount option policy=FILE), evaluated
 * on top of the kernel's permission checks, and for the API (serve) on its
 * principals. Statements of Effect (Allow or Deny), Principal ("*" or
 * {"uid","gid","user","group","AWS"}: a value or a list; "AWS" names API
 * principals, shell wildcards allowed),
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

/* NULL with the reason written into why_buf on a bad policy. */
struct policy *policy_load(const char *path, char *why_buf, size_t why_len);
/* The same from the policy's JSON text. */
struct policy *policy_parse(const char *text, char *why_buf, size_t why_len);
/* The policy's JSON text, as written. */
const char *policy_text(const struct policy *p);
void policy_free(struct policy *p);

struct policy_request {
	uid_t uid;          /* a local caller's; unused for an API caller */
	const gid_t *gids; /* the caller's groups, primary first */
	size_t ngids;
	const char *action; /* "secretsmanager:GetSecretValue" */
	const char *name;   /* the secret, or "" for the store as a whole */
	const char *arn;    /* or NULL */
	const char *principal; /* an API caller's principal; NULL: a local caller */
};

bool policy_allows(const struct policy *p, const struct policy_request *r);

#endif
