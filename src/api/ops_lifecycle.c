/*
 * A secret's life over the API: DeleteSecret (RecoveryWindowInDays 7 to
 * 30, default 30, or ForceDeleteWithoutRecovery) and RestoreSecret
 * (reference §5.9, 5.10, §8).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"
#include "secrets/names.h"
#include "util/timeutil.h"

/*
 * ForceDeleteWithoutRecovery of a secret that does not exist answers as
 * if it did (§8): the ARN as given, or the name's with a suffix drawn for
 * the answer, since no secret has one.
 */
static int forced_nothing(struct call *c, const char *id)
{
	struct json_object *o = out_object(c);
	char arn[SM_NAME_MAX + 128], suffix[8], draw[6];
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	const char *name = id;
	if (strncmp(id, "arn:", 4) == 0) {
		const char *rest = strstr(id, ":secret:");
		snprintf(arn, sizeof(arn), "%s", id);
		name = rest ? rest + 8 : id;
	} else {
		crypto_random_nonce(draw, sizeof(draw));
		for (size_t i = 0; i < sizeof(draw); i++)
			suffix[i] = alphabet[(uint8_t)draw[i] % (sizeof(alphabet) - 1)];
		suffix[6] = '\0';
		snprintf(arn, sizeof(arn), "arn:aws:secretsmanager:%s:%s:secret:%s-%s",
			 keyring_region(sm_keyring(c->sm)), keyring_account(sm_keyring(c->sm)), id,
			 suffix);
	}
	out_string(o, "ARN", arn);
	out_string(o, "Name", name);
	out_date(o, "DeletionDate", time_now_ms());
	call_audit(c, c->op, NULL, NULL, NULL, 0);
	return 0;
}

int op_delete_secret(struct call *c)
{
	const char *id;
	char name[SM_NAME_MAX + 1], arn[SM_NAME_MAX + 128];
	int64_t days = SM_DEFAULT_RECOVERY_DAYS, deletion_ms = 0;
	bool force = false, deleted;
	int has_days;

	int found = in_secret_ref(c, &id, name, &deleted);
	if (found < 0 ||
	    (has_days = in_int(c, "RecoveryWindowInDays", INT64_MIN, INT64_MAX, &days)) < 0 ||
	    in_bool(c, "ForceDeleteWithoutRecovery", &force) < 0)
		return -1;
	if (has_days == 0 && force)
		return call_fail(c, "InvalidParameterException", "You can't use "
				 "ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.");
	if (days < 7 || days > 30)
		return call_fail(c, "InvalidParameterException", "The RecoveryWindowInDays value "
				 "must be between 7 and 30 days (inclusive).");
	if (found == 1 && force)
		return call_authorize(c, "DeleteSecret", id) ? -1 : forced_nothing(c, id);
	if (found == 1)
		return call_errno(c, -ENOENT, id);
	if (call_authorize(c, "DeleteSecret", name) || call_begin(c, name))
		return -1;
	/* The ARN before the secret goes: a forced delete leaves none to ask. */
	sm_arn_of(c->sm, name, arn, sizeof(arn));
	int rc = sm_delete_secret(c->sm, name, (int)days, force, &deletion_ms);
	struct audit_event ev = { .name = "DeleteSecret", .secret = name, .force_delete = force,
				  .error_code = NULL };
	if (rc)
		call_errno(c, rc, id);
	ev.error_code = rc ? c->error_type : NULL;
	c->audited = true;
	audit_record(c->api->audit, &c->who, &ev, rc);
	if (rc)
		return -1;
	struct json_object *o = out_object(c);
	out_string(o, "ARN", arn);
	out_string(o, "Name", name);
	out_date(o, "DeletionDate", deletion_ms);
	return 0;
}

int op_restore_secret(struct call *c)
{
	const char *id;
	char name[SM_NAME_MAX + 1];
	bool deleted;

	if (in_secret_id(c, &id, name, &deleted) || call_authorize(c, "RestoreSecret", name))
		return -1;
	/* A secret not scheduled for deletion is restored already: nothing to do. */
	int rc = deleted ? (call_begin(c, name) ? 0 : sm_restore(c->sm, name, name)) : 0;
	if (c->failed || call_done(c, rc, id, name, NULL, NULL))
		return -1;
	out_arn_name(c, out_object(c), name);
	return 0;
}
