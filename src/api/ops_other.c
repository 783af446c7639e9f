/*
 * The other operations: GetRandomPassword (reference §11), the resource
 * policies mapped onto the store's access policy (§5.17), the replication
 * actions, which a store of one region answers with a clear error (§5.15),
 * and rotation (§5.12, 5.13) through the mount's rotation commands.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "secrets/password.h"

int op_get_random_password(struct call *c)
{
	struct password_rules r;
	struct secbuf out = { 0 };
	const char *exclude, *why = NULL;
	int64_t length = PASSWORD_DEFAULT_LENGTH;

	password_rules_default(&r);
	if (in_int(c, "PasswordLength", 1, PASSWORD_MAX_LENGTH, &length) < 0 ||
	    in_string(c, "ExcludeCharacters", false, 0, 4096, &exclude) < 0 ||
	    in_bool(c, "ExcludeNumbers", &r.exclude_numbers) < 0 ||
	    in_bool(c, "ExcludePunctuation", &r.exclude_punctuation) < 0 ||
	    in_bool(c, "ExcludeUppercase", &r.exclude_uppercase) < 0 ||
	    in_bool(c, "ExcludeLowercase", &r.exclude_lowercase) < 0 ||
	    in_bool(c, "IncludeSpace", &r.include_space) < 0 ||
	    in_bool(c, "RequireEachIncludedType", &r.require_each_included_type) < 0)
		return -1;
	r.length = (size_t)length;
	r.exclude_characters = exclude;
	if (call_authorize(c, "GetRandomPassword", NULL))
		return -1;
	int rc = password_generate(&r, &out, &why);
	if (rc == -EINVAL) {
		call_fail(c, "InvalidParameterException", "%s", why ? why : "The password rules "
			  "cannot be met.");
		call_audit(c, c->op, NULL, NULL, NULL, rc);
		return -1;
	}
	struct secbuf *t = &c->reply->text;
	if (!rc)
		rc = text_put_str(t, "{\"RandomPassword\":");
	if (!rc)
		rc = text_put_json_string(t, out.data, out.len);
	if (!rc)
		rc = text_put(t, "}", 1);
	secbuf_free(&out);
	if (call_done(c, rc, NULL, NULL, NULL, NULL)) {
		secbuf_free(t);
		return -1;
	}
	c->reply->secure = true;
	c->reply->status = 200;
	c->reply->content_type = "application/x-amz-json-1.1";
	return 0;
}

/*
 * Resource policies: a store has one access policy (policy=FILE, read at
 * start, docs/policy.md) for every secret and caller, not one per secret.
 * GetResourcePolicy shows it; ValidateResourcePolicy checks a document as
 * that policy's parser would; Put and Delete cannot change it.
 */
int op_resource_policy(struct call *c)
{
	const char *id = NULL, *text;
	char name[SM_NAME_MAX + 1], why[256];
	bool deleted = false, validate = strcmp(c->op, "ValidateResourcePolicy") == 0;

	/* SecretId is optional for a validation only. */
	bool has_id = !validate || json_object_object_get_ex(c->in, "SecretId", NULL);
	int found = has_id ? in_secret_id(c, &id, name, &deleted) : 1;
	if (found < 0 || call_authorize(c, c->op, found == 0 ? name : NULL))
		return -1;
	if (!validate && deleted) {
		call_deleted(c);
		return call_done(c, -EBUSY, id, name, NULL, NULL);
	}
	if (strcmp(c->op, "GetResourcePolicy") == 0) {
		struct json_object *o = out_object(c);
		out_arn_name(c, o, name);
		if (c->api->opt.policy)
			out_string(o, "ResourcePolicy", policy_text(c->api->opt.policy));
		return call_done(c, 0, id, name, NULL, NULL);
	}
	if (!validate) {
		call_fail(c, "InvalidRequestException", "secretsfs has no per-secret resource "
			  "policies: the store's access policy (policy=FILE, docs/policy.md) governs "
			  "every secret and is read when the daemon starts.");
		return call_done(c, -EPERM, id, name, NULL, NULL);
	}
	if (in_string(c, "ResourcePolicy", true, 1, 20480, &text))
		return -1;
	struct policy *p = policy_parse(text, why, sizeof(why));
	struct json_object *o = out_object(c);
	json_object_object_add(o, "PolicyValidationPassed", json_object_new_boolean(p != NULL));
	struct json_object *errors = json_object_new_array();
	if (!p) {
		struct json_object *e = json_object_new_object();
		out_string(e, "CheckName", "SYNTAX_CHECK");
		out_string(e, "ErrorMessage", why);
		json_object_array_add(errors, e);
	}
	json_object_object_add(o, "ValidationErrors", errors);
	policy_free(p);
	return call_done(c, 0, id, found == 0 ? name : NULL, NULL, NULL);
}

int op_replication(struct call *c)
{
	if (call_authorize(c, c->op, NULL))
		return -1;
	return call_fail(c, "InvalidRequestException", "%s is not built: a secretsfs store is one "
			 "region, and has no replicas in others (a cluster, docs/cluster.md, "
			 "replicates the whole store between hosts).", c->op);
}

/* RotationRules: AutomaticallyAfterDays or ScheduleExpression (Duration is not built). */
static int in_rules(struct call *c, bool *given, int64_t *days, const char **schedule)
{
	struct json_object *rules, *v;
	*given = false;
	*days = 0;
	*schedule = NULL;
	if (!json_object_object_get_ex(c->in, "RotationRules", &rules) || !rules)
		return 0;
	if (!json_object_is_type(rules, json_type_object))
		return call_fail(c, "SerializationException", "RotationRules must be an object.");
	*given = true;
	if (json_object_object_get_ex(rules, "AutomaticallyAfterDays", &v)) {
		if (!json_object_is_type(v, json_type_int))
			return call_fail(c, "SerializationException",
					 "AutomaticallyAfterDays must be an integer.");
		*days = json_object_get_int64(v);
		if (*days < 1 || *days > 1000)
			return call_fail(c, "ValidationException", "1 validation error detected: Value "
					 "at 'rotationRules.automaticallyAfterDays' failed to satisfy "
					 "constraint: Member must have value between 1 and 1000");
	}
	if (json_object_object_get_ex(rules, "ScheduleExpression", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return call_fail(c, "SerializationException",
					 "ScheduleExpression must be a string.");
		*schedule = json_object_get_string(v);
	}
	if (json_object_object_get_ex(rules, "Duration", NULL))
		return call_fail(c, "InvalidParameterException", "RotationRules.Duration is not "
				 "built in secretsfs: a rotation starts when it is due (docs/api.md).");
	if (*days && *schedule)
		return call_fail(c, "InvalidParameterException", "You can't specify both "
				 "AutomaticallyAfterDays and ScheduleExpression.");
	return 0;
}

/*
 * RotateSecret: secretsfs rotates with a rotation command, its Lambda's
 * counterpart, which the store's administrator sets through the mount
 * (user.sm.rotation_command, docs/rotation.md) and which runs in the
 * mount's daemon, reading and writing the secret through the mount.
 */
int op_rotate_secret(struct call *c)
{
	const char *id, *token, *lambda;
	const char *schedule;
	char name[SM_NAME_MAX + 1];
	struct sm_secret *s;
	bool deleted, immediately = true, rules;
	int64_t days;

	/* A raw request without a token is refused first, as the service does. */
	int has = in_string(c, "ClientRequestToken", false, SM_VERSION_ID_MIN, SM_VERSION_ID_MAX,
			    &token);
	if (has == 1)
		return call_fail(c, "InvalidParameterException", "You must provide a "
				 "ClientRequestToken value. We recommend a UUID-type value.");
	if (has < 0 || in_secret_id(c, &id, name, &deleted) ||
	    in_string(c, "RotationLambdaARN", false, 0, 2048, &lambda) < 0 ||
	    in_bool(c, "RotateImmediately", &immediately) < 0 || in_rules(c, &rules, &days, &schedule))
		return -1;
	if (call_authorize(c, "RotateSecret", name))
		return -1;
	if (deleted) {
		call_deleted(c);
		return call_done(c, -EBUSY, id, name, NULL, NULL);
	}
	if (lambda && lambda[0]) {
		call_fail(c, "InvalidParameterException", "secretsfs runs rotation commands, not "
			  "Lambda functions: the store's administrator sets the secret's "
			  "user.sm.rotation_command through the mount (docs/rotation.md).");
		return call_done(c, -EINVAL, id, name, NULL, NULL);
	}
	int rc = sm_secret_copy(c->sm, name, &s);
	bool command = !rc && s->rotation_command;
	if (!rc)
		secret_free(s);
	if (!rc && !command) {
		/* As the service: nothing is recorded then. */
		call_fail(c, "InvalidRequestException", "No Lambda rotation function ARN is "
			  "associated with this secret: in secretsfs, no user.sm.rotation_command "
			  "(docs/rotation.md).");
		return call_done(c, -EINVAL, id, name, NULL, NULL);
	}
	if (!rc && immediately && !c->api->opt.rotate) {
		call_fail(c, "InvalidRequestException", "Rotation commands run in a mount's daemon: "
			  "serve this store from its mount (-o api=) to rotate through the API, or "
			  "give RotateImmediately false to set the schedule only.");
		return call_done(c, -EINVAL, id, name, NULL, NULL);
	}
	if (!rc && call_begin(c, name))
		return -1;
	if (!rc && rules)
		rc = sm_set_rotation_rules(c->sm, name, (int)days, schedule);
	if (!rc && immediately) {
		rc = c->api->opt.rotate(c->api->opt.rotate_ctx, name, token);
		/* Checks of the secret's state: InvalidRequestException, as the service's. */
		if (rc == -EINVAL || rc == -EEXIST)
			rc = -EBUSY;
	}
	if (call_done(c, rc, id, name, immediately ? token : NULL, NULL))
		return -1;
	struct json_object *o = out_object(c);
	out_arn_name(c, o, name);
	if (immediately)
		out_string(o, "VersionId", token);
	return 0;
}

/* CancelRotateSecret: rotation off, as the mount's setfattr -x
 * user.sm.rotation_command does; the rules and LastRotatedDate stay. */
int op_cancel_rotate_secret(struct call *c)
{
	const char *id;
	char name[SM_NAME_MAX + 1], pending[SM_VERSION_ID_MAX + 1] = "";
	struct sm_secret *s;
	bool deleted;

	if (in_secret_id(c, &id, name, &deleted) || call_authorize(c, "CancelRotateSecret", name))
		return -1;
	if (deleted) {
		call_deleted(c);
		return call_done(c, -EBUSY, id, name, NULL, NULL);
	}
	int rc = sm_secret_copy(c->sm, name, &s);
	if (!rc) {
		/* The version a rotation left half made, if any, as the service says. */
		const char *p = secret_label_version(s, "AWSPENDING");
		const char *cur = secret_label_version(s, "AWSCURRENT");
		if (p && (!cur || strcmp(p, cur) != 0))
			snprintf(pending, sizeof(pending), "%s", p);
		secret_free(s);
	}
	if (!rc && call_begin(c, name))
		return -1;
	if (!rc)
		rc = sm_set_rotation_command(c->sm, name, "");
	if (rc == -ENODATA) {
		call_fail(c, "InvalidRequestException", "Rotation is not enabled for this secret.");
		return call_done(c, rc, id, name, NULL, NULL);
	}
	if (call_done(c, rc, id, name, pending[0] ? pending : NULL, NULL))
		return -1;
	struct json_object *o = out_object(c);
	out_arn_name(c, o, name);
	if (pending[0])
		out_string(o, "VersionId", pending);
	return 0;
}
