/*
 * The operations on values: CreateSecret, GetSecretValue, PutSecretValue,
 * UpdateSecret and BatchGetSecretValue (reference §5.1-5.3, 5.7, 5.16).
 * A value read is decrypted into locked memory and written into an answer
 * in locked memory, wiped once it is sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "secrets/names.h"

/* Tags of a request ([{Key, Value}]): the list's strings are the request's. */
static int in_tags(struct call *c, const char *key, bool required, struct sm_tag_arg **out,
		   size_t *n)
{
	struct json_object *a;
	*out = NULL;
	*n = 0;
	int rc = in_array(c, key, required, &a);
	if (rc)
		return rc;
	size_t count = json_object_array_length(a);
	struct sm_tag_arg *tags = calloc(count ? count : 1, sizeof(*tags));
	if (!tags)
		return call_fail(c, "InternalServiceError", "Out of memory.");
	for (size_t i = 0; i < count; i++) {
		struct json_object *t = json_object_array_get_idx(a, i), *k, *v;
		if (!json_object_is_type(t, json_type_object) ||
		    !json_object_object_get_ex(t, "Key", &k) || !json_object_is_type(k, json_type_string) ||
		    (json_object_object_get_ex(t, "Value", &v) && !json_object_is_type(v, json_type_string))) {
			free(tags);
			return call_fail(c, "SerializationException", "%s is a list of {Key, Value} "
					 "with string members.", key);
		}
		tags[i].key = json_object_get_string(k);
		tags[i].value = json_object_object_get_ex(t, "Value", &v) ? json_object_get_string(v) : "";
	}
	*out = tags;
	*n = count;
	return 0;
}

/* The labels on version_id of name now, into o's VersionStages. */
static void out_stages(struct call *c, struct json_object *o, const char *name,
		       const char *version_id)
{
	struct sm_secret *s;
	if (!o || sm_secret_copy(c->sm, name, &s))
		return;
	struct json_object *list = json_object_new_array();
	for (size_t i = 0; list && i < s->nlabels; i++)
		if (strcmp(s->labels[i].version_id, version_id) == 0)
			json_object_array_add(list, json_object_new_string(s->labels[i].name));
	json_object_object_add(o, "VersionStages", list);
	secret_free(s);
}

int op_create_secret(struct call *c)
{
	const char *name, *description, *kms, *token, *why;
	struct sm_tag_arg *tags = NULL;
	struct json_object *replicas;
	struct sm_value value;
	size_t ntags;
	char version_id[SM_VERSION_ID_MAX + 1] = "";
	bool replayed;
	int has_value;

	if (in_string(c, "Name", true, 1, SM_NAME_MAX, &name))
		return -1;
	c->secret = name;
	if (name_check(name, &why))
		return call_fail(c, "ValidationException", "Invalid name: %s.", why);
	if (in_string(c, "Description", false, 0, SM_DESCRIPTION_MAX, &description) < 0 ||
	    in_string(c, "KmsKeyId", false, 0, 2048, &kms) < 0 ||
	    (has_value = in_value(c, false, &value)) < 0 || in_token(c, has_value == 0, &token) < 0 ||
	    in_array(c, "AddReplicaRegions", false, &replicas) < 0 ||
	    in_tags(c, "Tags", false, &tags, &ntags) < 0)
		return -1;
	if (replicas) {
		free(tags);
		return call_fail(c, "InvalidRequestException", "A secretsfs store is one region: "
				 "AddReplicaRegions is not supported (docs/api.md).");
	}
	if (call_authorize(c, "CreateSecret", name) ||
	    (ntags && call_authorize(c, "TagResource", name)) || call_begin(c, name)) {
		free(tags);
		return -1;
	}
	struct sm_create_request req = {
		.name = name, .description = description, .kms_key_id = kms,
		.value = has_value == 0 ? &value : NULL, .token = token, .tags = tags,
		.ntags = ntags, .mode = c->api->opt.new_mode, .uid = c->api->opt.new_uid,
		.gid = c->api->opt.new_gid,
	};
	int rc = sm_create_secret(c->sm, &req, version_id, &replayed);
	free(tags);
	if (call_done(c, rc, name, name, version_id, NULL))
		return -1;
	struct json_object *o = out_object(c);
	out_arn_name(c, o, name);
	if (version_id[0])
		out_string(o, "VersionId", version_id);
	return 0;
}

int read_value(struct call *c, const char *name, const char *version_id, const char *stage,
	       struct sm_snapshot **snap, struct secbuf *value, struct api_error *e)
{
	int rc;
	*snap = NULL;
	if (version_id)
		rc = sm_snapshot_version(c->sm, name, version_id, snap);
	else
		rc = sm_snapshot_label(c->sm, name, stage ? stage : "AWSCURRENT", snap);
	if (rc == -ENOENT && version_id) {
		error_set(e, "ResourceNotFoundException", "Secrets Manager can't find the specified "
			  "secret value for VersionId: %s", version_id);
		return -1;
	}
	if (rc) {
		error_from_errno(c, rc, name, e);
		return -1;
	}
	if (!version_id && !sm_snapshot_has_value(*snap)) {
		error_set(e, "ResourceNotFoundException", "Secrets Manager can't find the specified "
			  "secret value for staging label: %s", stage ? stage : "AWSCURRENT");
		goto fail;
	}
	if (version_id && stage) {
		bool on = false;
		for (size_t i = 0; !on && sm_snapshot_stage(*snap, i); i++)
			on = strcmp(sm_snapshot_stage(*snap, i), stage) == 0;
		if (!on) {
			error_set(e, "InvalidRequestException", "You provided a VersionStage that is "
				  "not associated to the provided VersionId.");
			goto fail;
		}
	}
	if ((rc = sm_snapshot_decrypt(c->sm, *snap, value))) {
		error_from_errno(c, rc, name, e);
		goto fail;
	}
	return 0;
fail:
	sm_snapshot_free(*snap);
	*snap = NULL;
	return -1;
}

struct json_object *value_meta(struct call *c, const char *name, const struct sm_snapshot *snap,
			       bool date_as_string)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return NULL;
	out_arn_name(c, o, name);
	out_string(o, "VersionId", sm_snapshot_version_id(snap));
	if (sm_snapshot_stage(snap, 0)) {
		struct json_object *list = json_object_new_array();
		for (size_t i = 0; list && sm_snapshot_stage(snap, i); i++)
			json_object_array_add(list, json_object_new_string(sm_snapshot_stage(snap, i)));
		json_object_object_add(o, "VersionStages", list);
	}
	int64_t ms = sm_snapshot_created_ms(snap);
	if (date_as_string) {
		/* The Agent's CreatedDate is a string of the same number. */
		char text[40];
		snprintf(text, sizeof(text), "%lld.%03d", (long long)(ms / 1000), (int)(ms % 1000));
		out_string(o, "CreatedDate", text);
	} else {
		out_date(o, "CreatedDate", ms);
	}
	return o;
}

int op_get_secret_value(struct call *c)
{
	const char *id, *version_id, *stage;
	char name[SM_NAME_MAX + 1];
	struct sm_snapshot *snap;
	struct secbuf value = { 0 };
	struct api_error e;
	bool deleted;

	if (in_secret_id(c, &id, name, &deleted) ||
	    in_string(c, "VersionId", false, SM_VERSION_ID_MIN, SM_VERSION_ID_MAX, &version_id) < 0 ||
	    in_string(c, "VersionStage", false, 1, SM_LABEL_MAX, &stage) < 0)
		return -1;
	if (call_authorize(c, "GetSecretValue", name))
		return -1;
	if (deleted) {
		call_deleted(c);
		call_audit(c, c->op, name, version_id, stage, -EBUSY);
		return -1;
	}
	if (read_value(c, name, version_id, stage, &snap, &value, &e)) {
		call_fail_with(c, &e);
		call_audit(c, c->op, name, version_id, stage, -ENOENT);
		return -1;
	}
	sm_note_access(c->sm, name);
	/* Recorded before the value goes out (audit_required refuses it otherwise). */
	call_audit(c, c->op, name, sm_snapshot_version_id(snap), stage, 0);
	struct json_object *meta = c->failed ? NULL : value_meta(c, name, snap, false);
	int rc = meta ? text_put_with_value(&c->reply->text, meta, &value, sm_snapshot_binary(snap))
		      : -ENOMEM;
	json_object_put(meta);
	sm_snapshot_free(snap);
	secbuf_free(&value);
	if (c->failed)
		return -1;
	if (rc)
		return call_fail(c, "InternalServiceError", "Out of locked memory.");
	c->reply->secure = true;
	c->reply->status = 200;
	c->reply->content_type = "application/x-amz-json-1.1";
	return 0;
}

int op_put_secret_value(struct call *c)
{
	const char *id, *token, **stages = NULL;
	char name[SM_NAME_MAX + 1], version_id[SM_VERSION_ID_MAX + 1] = "";
	struct sm_value value;
	size_t nstages = 0;
	bool deleted;

	/* The token is asked for first: the service does, even of a secret
	 * that does not exist (reference §5.2). */
	if (in_token(c, true, &token) || in_secret_id(c, &id, name, &deleted) ||
	    in_value(c, true, &value) ||
	    in_strings(c, "VersionStages", false, 1, SM_MAX_LABELS, 1, SM_LABEL_MAX, &stages,
		       &nstages) < 0)
		goto fail;
	if (call_authorize(c, "PutSecretValue", name))
		goto fail;
	if (deleted) {
		call_deleted(c);
		call_done(c, -EBUSY, id, name, NULL, NULL);
		goto fail;
	}
	if (call_begin(c, name))
		goto fail;
	int rc = sm_put_secret_value(c->sm, name, &value, stages, nstages, token, version_id);
	if (call_done(c, rc, id, name, version_id, NULL))
		goto fail;
	free(stages);
	struct json_object *o = out_object(c);
	out_arn_name(c, o, name);
	out_string(o, "VersionId", version_id);
	out_stages(c, o, name, version_id);
	return 0;
fail:
	free(stages);
	return -1;
}

int op_update_secret(struct call *c)
{
	const char *id, *description, *kms, *token;
	char name[SM_NAME_MAX + 1], version_id[SM_VERSION_ID_MAX + 1] = "";
	struct sm_value value;
	bool deleted;
	int has_value;

	if ((has_value = in_value(c, false, &value)) < 0 || in_token(c, has_value == 0, &token) < 0 ||
	    in_secret_id(c, &id, name, &deleted) ||
	    in_string(c, "Description", false, 0, SM_DESCRIPTION_MAX, &description) < 0 ||
	    in_string(c, "KmsKeyId", false, 0, 2048, &kms) < 0)
		return -1;
	if (call_authorize(c, "UpdateSecret", name))
		return -1;
	if (deleted) {
		call_deleted(c);
		return call_done(c, -EBUSY, id, name, NULL, NULL);
	}
	if (call_begin(c, name))
		return -1;
	struct sm_update_request req = { description, kms, has_value == 0 ? &value : NULL, token };
	int rc = sm_update_secret(c->sm, name, &req, version_id);
	if (call_done(c, rc, id, name, version_id, NULL))
		return -1;
	struct json_object *o = out_object(c);
	out_arn_name(c, o, name);
	if (version_id[0])
		out_string(o, "VersionId", version_id);
	return 0;
}

/* One secret of a batch: its value into t, or its error into errors. */
static int batch_one(struct call *c, const char *id, struct secbuf *t, bool *first,
		     struct json_object *errors)
{
	char name[SM_NAME_MAX + 1];
	struct sm_snapshot *snap = NULL;
	struct secbuf value = { 0 };
	struct api_error e;
	bool deleted;
	int rc = sm_resolve_id(c->sm, id, name, &deleted);
	bool resolved = rc == 0;

	if (rc)
		error_from_errno(c, rc, id, &e);
	else if (call_allowed(c, "GetSecretValue", name, &e))
		rc = -EACCES;
	else if (deleted && (rc = -EBUSY))
		error_set(&e, "InvalidRequestException", "You can't perform this operation on the "
			  "secret because it was marked for deletion.");
	else if (read_value(c, name, NULL, NULL, &snap, &value, &e))
		rc = -ENOENT;
	/* CloudTrail records a GetSecretValue for every secret of a batch. */
	if (rc != -EACCES) {
		struct audit_event ev = { .name = "GetSecretValue", .secret = resolved ? name : NULL,
					  .version_id = snap ? sm_snapshot_version_id(snap) : NULL,
					  .read_only = true, .error_code = rc ? e.type : NULL };
		if (audit_record(c->api->audit, &c->who, &ev, rc) && !rc &&
		    audit_required(c->api->audit)) {
			rc = -EIO;
			error_set(&e, "InternalServiceError", "The audit trail cannot be written.");
		}
	}
	if (rc) {
		struct json_object *o = json_object_new_object();
		out_string(o, "SecretId", id);
		out_string(o, "ErrorCode", e.type);
		out_string(o, "Message", e.message);
		json_object_array_add(errors, o);
		sm_snapshot_free(snap);
		secbuf_free(&value);
		return 0;
	}
	sm_note_access(c->sm, name);
	struct json_object *meta = value_meta(c, name, snap, false);
	rc = meta ? 0 : -ENOMEM;
	if (!rc && !*first)
		rc = text_put(t, ",", 1);
	if (!rc)
		rc = text_put_with_value(t, meta, &value, sm_snapshot_binary(snap));
	*first = false;
	json_object_put(meta);
	sm_snapshot_free(snap);
	secbuf_free(&value);
	return rc;
}

int op_batch_get_secret_value(struct call *c)
{
	const char **ids = NULL, *next_token;
	struct json_object *filters, *errors = json_object_new_array();
	struct selection sel = { 0 };
	struct secbuf *t = &c->reply->text;
	size_t nids = 0;
	int64_t max = 20;
	bool first = true;
	int rc = 0;

	if (!errors)
		return call_fail(c, "InternalServiceError", "Out of memory.");
	int has_ids = in_strings(c, "SecretIdList", false, 1, 20, 1, 2048, &ids, &nids);
	int has_filters = has_ids < 0 ? -1 : in_array(c, "Filters", false, &filters);
	int has_max = has_filters < 0 ? -1 : in_int(c, "MaxResults", 1, 20, &max);
	if (has_max < 0 || in_string(c, "NextToken", false, 1, 4096, &next_token) < 0)
		goto out;
	if ((has_ids == 0) == (has_filters == 0)) {
		call_fail(c, "InvalidParameterException", "Give either SecretIdList or Filters.");
		goto out;
	}
	if (has_ids == 0 && has_max == 0) {
		call_fail(c, "InvalidParameterException", "MaxResults goes with Filters, not with "
			  "SecretIdList.");
		goto out;
	}
	if (has_filters == 0 && (call_authorize(c, "ListSecrets", NULL) ||
				 select_secrets(c, false, false, next_token, (size_t)max, &sel)))
		goto out;
	rc = text_put_str(t, "{\"SecretValues\":[");
	for (size_t i = 0; !rc && i < nids; i++)
		rc = batch_one(c, ids[i], t, &first, errors);
	for (size_t i = 0; !rc && i < sel.count; i++)
		rc = batch_one(c, sel.items[i]->name, t, &first, errors);
	if (!rc)
		rc = text_put_str(t, "],\"Errors\":");
	if (!rc)
		rc = text_put_str(t, json_object_to_json_string_ext(errors, JSON_C_TO_STRING_PLAIN |
								    JSON_C_TO_STRING_NOSLASHESCAPE));
	if (!rc && sel.next_token) {
		rc = text_put_str(t, ",\"NextToken\":");
		if (!rc)
			rc = text_put_json_string(t, (const uint8_t *)sel.next_token,
						  strlen(sel.next_token));
	}
	if (!rc)
		rc = text_put(t, "}", 1);
	call_audit(c, c->op, NULL, NULL, NULL, rc);
	if (rc) {
		call_fail(c, "InternalServiceError", "Out of locked memory.");
		goto out;
	}
	c->reply->secure = true;
	c->reply->status = 200;
	c->reply->content_type = "application/x-amz-json-1.1";
out:
	if (c->failed)
		secbuf_free(t);
	selection_free(&sel);
	json_object_put(errors);
	free(ids);
	return c->failed ? -1 : 0;
}
