/*
 * Who is asking and whether they may: the caller of a request, the access
 * policy's verdict, and the audit trail's records around a change.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "fs/internal.h"
#include "secrets/access.h"
#include "secrets/names.h"
#include "util/log.h"

struct audit_caller caller_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct audit_caller c = { .uid = ctx->uid, .gid = ctx->gid, .pid = ctx->pid };
	return c;
}

/*
 * The audit trail: one record per operation, with its outcome. A change
 * under audit_required is announced first (audit_begin), so that a log
 * that cannot be written refuses it before it is made.
 */
int audit_event(struct fs *fs, const struct audit_caller *who, const char *name,
		const char *secret, int outcome)
{
	struct audit_event ev = { .name = name, .secret = secret };
	return audit_record(fs->audit, who, &ev, outcome);
}

/* The access policy (policy=FILE), on top of the kernel's checks: -EACCES,
 * logged and audited, when it does not allow event on secret. */
int authorize(struct fs *fs, fuse_req_t req, const char *event, const char *secret)
{
	gid_t groups[65];
	if (!fs->policy)
		return 0;
	struct audit_caller who = caller_of(req);
	groups[0] = who.gid;
	int n = fuse_req_getgroups(req, 64, groups + 1);
	struct access_subject subject = { &who, groups, 1 + (size_t)(n > 0 && n <= 64 ? n : 0) };
	return access_check(fs->sm, fs->policy, fs->audit, &subject, event, secret);
}

/*
 * GetSecretValue or PutSecretValue on name. Reading an editor's backup or
 * swap file of a secret (NAME~, .NAME.swp, which hold its value or the
 * editor's copy of it) is reading that secret too: a Deny on NAME covers
 * them, whatever patterns the policy uses.
 */
int authorize_value(struct fs *fs, fuse_req_t req, const char *event, const char *name)
{
	char owner[SM_NAME_MAX + 1];
	int rc = authorize(fs, req, event, name);
	if (!rc && fs->policy && strcmp(event, "GetSecretValue") == 0 &&
	    name_scratch_owner(name, owner, sizeof(owner)))
		rc = authorize(fs, req, event, owner);
	return rc;
}

/* Does name hold a secret in any state (live, scratch, hidden by an
 * editor's rename, scheduled for deletion)? */
static bool holds_secret(struct fs *fs, const char *name)
{
	char arn[SM_NAME_MAX + 128];
	return sm_arn_of(fs->sm, name, arn, sizeof(arn)) == 0;
}

/* create, mknod: CreateSecret (scratch files excepted); a name that still
 * holds a secret (hidden or deleted) gets that secret back with what is
 * written as its next version: PutSecretValue too. */
int authorize_create(struct fs *fs, fuse_req_t req, const char *name)
{
	int rc = name_is_scratch(name) ? 0 : authorize(fs, req, "CreateSecret", name);
	if (!rc && fs->policy && holds_secret(fs, name))
		rc = authorize(fs, req, "PutSecretValue", name);
	return rc;
}

/*
 * A secret moving from one name to another (rename, a restore under a new
 * name, each secret below a renamed folder) takes its value along, to a
 * name the policy may treat otherwise. As S3 asks of a copy: read at the
 * source (GetSecretValue), write at the target: PutSecretValue when it
 * holds a secret, whose history then continues with the value, otherwise
 * CreateSecret (not for a scratch name, whose reads are checked as above).
 * A secret moved onto a scratch name (an editor's backup) stays hidden
 * until its name is written again: PutSecretValue on it as well, so that
 * nobody hides a secret they could not write back.
 */
int authorize_move(struct fs *fs, fuse_req_t req, const char *from, const char *to)
{
	if (!fs->policy || strcmp(from, to) == 0)
		return 0;
	int rc = authorize_value(fs, req, "GetSecretValue", from);
	if (!rc && name_is_scratch(to) && !name_is_scratch(from))
		rc = authorize(fs, req, "PutSecretValue", from);
	if (!rc && holds_secret(fs, to))
		rc = authorize(fs, req, "PutSecretValue", to);
	else if (!rc && !name_is_scratch(to))
		rc = authorize(fs, req, "CreateSecret", to);
	return rc;
}

/* Policy, then the audit's announcement of a change. */
int gate(struct fs *fs, fuse_req_t req, const char *event, const char *secret)
{
	struct audit_caller who = caller_of(req);
	int rc = authorize(fs, req, event, secret);
	return rc ? rc : audit_begin(fs, &who, event, secret);
}

int audit_begin(struct fs *fs, const struct audit_caller *who, const char *name,
		const char *secret)
{
	return access_begin(fs->audit, who, name, secret);
}
