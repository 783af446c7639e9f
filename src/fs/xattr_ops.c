/*
 * The extended-attribute requests: getxattr, listxattr, setxattr and
 * removexattr, with their policy checks and audit records, on top of
 * fs/xattrs (what the attributes are) and fs/rotator (RotateSecret).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/internal.h"
#include "fs/rotator.h"
#include "fs/xattrs.h"

/* The Secrets Manager (or KMS) action an attribute change is, if any. */
static const char *xattr_event(const char *name, bool removing)
{
	if (strncmp(name, "user.tag.", 9) == 0)
		return removing ? "UntagResource" : "TagResource";
	if (strcmp(name, "user.sm.description") == 0 || strcmp(name, "user.sm.kms_key_id") == 0)
		return "UpdateSecret";
	if (strncmp(name, "user.sm.stage.", 14) == 0)
		return "UpdateSecretVersionStage";
	if (strcmp(name, "user.sm.rotate") == 0 || strncmp(name, "user.sm.rotation_", 17) == 0)
		return removing && strcmp(name, "user.sm.rotation_command") == 0 ? "CancelRotateSecret"
										  : "RotateSecret";
	if (strcmp(name, "user.sm.key.create") == 0)
		return "CreateKey";
	if (strcmp(name, "user.sm.key.enable") == 0)
		return "EnableKey";
	if (strcmp(name, "user.sm.key.disable") == 0)
		return "DisableKey";
	if (strcmp(name, "user.sm.backup") == 0)
		return "BackupStore";
	return NULL;
}

static bool kernel_probe(const char *name)
{
	return strncmp(name, "security.", 9) == 0 || strncmp(name, "system.", 7) == 0 ||
	       strncmp(name, "trusted.", 8) == 0;
}

static int target_of(struct fs *fs, fuse_ino_t ino, struct target *t)
{
	char vpath[VPATH_MAX];
	int rc = path_of(fs, ino, vpath);
	return rc ? rc : path_resolve(fs->sm, vpath, t);
}

static void reply_sized(fuse_req_t req, const char *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fs_of(req);
	struct target t;
	char *value = NULL;
	size_t len = 0;
	/* The kernel asks for security.capability on every write: answer at once. */
	int rc = kernel_probe(name) ? -ENODATA : target_of(fs, ino, &t);
	if (!rc && strcmp(name, "user.sm.describe") == 0 && t.name[0])
		rc = authorize(fs, req, "DescribeSecret", t.name);
	if (!rc)
		rc = xattr_get(fs->sm, &t, name, &value, &len);
	if (strcmp(name, "user.sm.describe") == 0 && t.name[0] && rc != -EACCES) {
		struct audit_caller who = caller_of(req);
		struct audit_event ev = { .name = "DescribeSecret", .secret = t.name, .read_only = true };
		if (audit_record(fs->audit, &who, &ev, rc) && audit_required(fs->audit) && !rc)
			rc = -EIO;
	}
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_sized(req, value, len, size);
	free(value);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs *fs = fs_of(req);
	struct target t;
	char *names = NULL;
	size_t len = 0;
	int rc = target_of(fs, ino, &t);
	if (!rc)
		rc = xattr_list(fs->sm, &t, &names, &len);
	if (rc)
		fuse_reply_err(req, -rc);
	else
		reply_sized(req, names, len, size);
	free(names);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		 size_t size, int flags)
{
	struct fs *fs = fs_of(req);
	struct xattr_caller who = { fuse_req_ctx(req)->uid, getuid(), fs->rotator };
	struct target t = { 0 };
	struct audit_caller caller = caller_of(req);
	const char *event = xattr_event(name, false);
	/* Every attribute change is refused at once on a replica offline,
	 * those kept in memory (request tokens) too: their commit would be. */
	int rc = sm_writable(fs->sm);
	if (!rc)
		rc = target_of(fs, ino, &t);
	if (!rc && event && (rc = gate(fs, req, event, t.name[0] ? t.name : NULL)))
		goto out;
	if (!rc && t.kind == T_SECRET && strcmp(name, "user.sm.rotate") == 0) {
		/* RotateSecret: checked now, its steps run on the rotator's thread. */
		rc = size == 3 && memcmp(value, "now", 3) == 0 ? rotator_rotate(fs->rotator, t.name, NULL)
							      : -EINVAL;
	} else if (!rc) {
		rc = xattr_set(fs->sm, &t, &who, name, value, size, flags);
	}
	if (event) {
		struct audit_event ev = { .name = event, .secret = t.name[0] ? t.name : NULL,
					  .source = strncmp(event, "CreateKey", 9) == 0 ||
							    strstr(event, "ableKey") ? "kms.amazonaws.com" : NULL,
					  .detail_key = "attribute", .detail_value = name };
		audit_record(fs->audit, &caller, &ev, rc);
	}
out:
	fuse_reply_err(req, -rc);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = fs_of(req);
	struct xattr_caller who = { fuse_req_ctx(req)->uid, getuid(), fs->rotator };
	struct target t = { 0 };
	struct audit_caller caller = caller_of(req);
	const char *event = xattr_event(name, true);
	/* Every attribute change is refused at once on a replica offline,
	 * those kept in memory (request tokens) too: their commit would be. */
	int rc = sm_writable(fs->sm);
	if (!rc)
		rc = target_of(fs, ino, &t);
	if (!rc && event && (rc = gate(fs, req, event, t.name[0] ? t.name : NULL)))
		goto out;
	if (!rc)
		rc = xattr_remove(fs->sm, &t, &who, name);
	if (event) {
		struct audit_event ev = { .name = event, .secret = t.name[0] ? t.name : NULL,
					  .detail_key = "attribute", .detail_value = name };
		audit_record(fs->audit, &caller, &ev, rc);
	}
out:
	fuse_reply_err(req, -rc);
}
