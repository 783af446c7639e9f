/*
 * The service's errors for a call: the one map of domain errors (errno)
 * to Secrets Manager's exceptions, the access policy's verdict for an API
 * principal, and the call's audit records.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/internal.h"
#include "secrets/access.h"
#include "util/log.h"

void error_set(struct api_error *e, const char *type, const char *fmt, ...)
{
	va_list ap;
	snprintf(e->type, sizeof(e->type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

int call_fail_with(struct call *c, const struct api_error *e)
{
	if (c->failed)
		return -1;
	c->failed = true;
	snprintf(c->error_type, sizeof(c->error_type), "%s", e->type);
	/* The service's own faults are 500s, so that clients retry them. */
	reply_error(c->reply, strcmp(e->type, "InternalServiceError") == 0 ? 500 : 400, e->type,
		    e->message);
	return -1;
}

int call_fail(struct call *c, const char *type, const char *fmt, ...)
{
	struct api_error e;
	va_list ap;
	snprintf(e.type, sizeof(e.type), "%s", type);
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	return call_fail_with(c, &e);
}

int call_deleted(struct call *c)
{
	return call_fail(c, "InvalidRequestException", "You can't perform this operation on the "
			 "secret because it was marked for deletion.");
}

/* A refusal's rule as the message, with a full stop. */
static const char *refusal(char *buf, size_t len, const char *fallback)
{
	const char *why = sm_refusal();
	if (!why[0])
		return fallback;
	snprintf(buf, len, "%c%s%s", why[0] >= 'a' && why[0] <= 'z' ? why[0] - 'a' + 'A' : why[0],
		 why + 1, why[strlen(why) - 1] == '.' ? "" : ".");
	return buf;
}

void error_from_errno(struct call *c, int rc, const char *id, struct api_error *e)
{
	char buf[300];
	bool reading = strncmp(c->op, "Get", 3) == 0 || strncmp(c->op, "BatchGet", 8) == 0;
	switch (-rc) {
	case ENOENT:
	case ENODATA:
		error_set(e, "ResourceNotFoundException",
			  "Secrets Manager can't find the specified secret%s%s.", id ? ": " : "",
			  id ? id : "");
		break;
	case EEXIST:
		error_set(e, "ResourceExistsException", "%s",
			  refusal(buf, sizeof(buf), "The resource already exists."));
		break;
	case EINVAL:
		error_set(e, "InvalidParameterException", "%s",
			  refusal(buf, sizeof(buf), "A parameter has a value that is not valid."));
		break;
	case E2BIG:
	case EFBIG:
		error_set(e, "InvalidParameterException", "%s",
			  refusal(buf, sizeof(buf), "A value is larger than the service allows."));
		break;
	case ENOSPC:
		error_set(e, "LimitExceededException", "%s",
			  refusal(buf, sizeof(buf), "The request would exceed a limit."));
		break;
	case EBUSY:
	case ENOTDIR:
	case EISDIR:
		error_set(e, "InvalidRequestException", "%s",
			  refusal(buf, sizeof(buf), "The request is not valid for the secret's "
				  "current state."));
		break;
	case EROFS:
		error_set(e, "InvalidRequestException", "The store cannot change now: it is "
			  "read-only, or a replica that cannot reach its cluster.");
		break;
	case EACCES:
		/* A disabled KMS key (the policy's refusals are call_allowed's). */
		error_set(e, reading ? "DecryptionFailure" : "EncryptionFailure",
			  "The KMS key of this secret is disabled.");
		break;
	case EIO:
		if (reading)
			error_set(e, "DecryptionFailure", "Secrets Manager can't decrypt the "
				  "protected secret text: its record fails authentication.");
		else
			error_set(e, "InternalServiceError", "The store failed to write.");
		break;
	default:
		log_error("api: %s: %s", c->op, strerror(-rc));
		error_set(e, "InternalServiceError", "%s", strerror(-rc));
	}
}

int call_errno(struct call *c, int rc, const char *id)
{
	struct api_error e;
	error_from_errno(c, rc, id, &e);
	return call_fail_with(c, &e);
}

int call_allowed(struct call *c, const char *event, const char *secret, struct api_error *e)
{
	char arn[SM_NAME_MAX + 128];
	struct access_subject subject = { &c->who, NULL, 0 };
	int rc = access_check(c->sm, c->api->opt.policy, c->api->audit, &subject, event, secret);
	if (!rc)
		return 0;
	if (!secret || sm_arn_of(c->sm, secret, arn, sizeof(arn)))
		snprintf(arn, sizeof(arn), "%s", secret ? secret : "*");
	error_set(e, "AccessDeniedException", "User: %s is not authorized to perform: "
		  "secretsmanager:%s on resource: %s", c->principal, event, arn);
	return -1;
}

int call_authorize(struct call *c, const char *event, const char *secret)
{
	struct api_error e;
	if (call_allowed(c, event, secret, &e) == 0)
		return 0;
	/* access_check recorded the refusal: this call is in the audit trail. */
	c->audited = true;
	return call_fail_with(c, &e);
}

void call_audit(struct call *c, const char *event, const char *secret, const char *version_id,
		const char *stage, int outcome)
{
	struct audit_event ev = {
		.name = event, .secret = secret, .version_id = version_id, .stage = stage,
		.read_only = strncmp(event, "Get", 3) == 0 || strncmp(event, "List", 4) == 0 ||
			     strncmp(event, "Describe", 8) == 0 || strncmp(event, "Validate", 8) == 0,
		.error_code = outcome && c->failed ? c->error_type : NULL,
	};
	c->audited = true;
	if (audit_record(c->api->audit, &c->who, &ev, outcome) && !outcome &&
	    audit_required(c->api->audit))
		call_fail(c, "InternalServiceError", "The audit trail cannot be written; the "
			  "request is refused.");
}

int call_begin(struct call *c, const char *secret)
{
	if (access_begin(c->api->audit, &c->who, c->op, secret))
		return call_fail(c, "InternalServiceError", "The audit trail cannot be written; the "
				 "change is refused.");
	return 0;
}

int call_done(struct call *c, int rc, const char *id, const char *secret, const char *version_id,
	      const char *stage)
{
	if (rc)
		call_errno(c, rc, id);
	call_audit(c, c->op, secret, version_id, stage, rc);
	return c->failed ? -1 : 0;
}
