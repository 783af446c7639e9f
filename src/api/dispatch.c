/*
 * One call of the JSON API (POST /): who calls (SigV4, or auth none), the
 * operation X-Amz-Target names, the request body as JSON with its value
 * (SecretString, SecretBinary) taken out into locked memory first, so
 * that json-c's own copies never hold it, then the operation, and its
 * answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "api/internal.h"
#include "secrets/fields.h"
#include "secrets/names.h"
#include "util/base64.h"
#include "util/log.h"

#define TARGET_PREFIX "secretsmanager."

struct operation {
	const char *name;
	int (*fn)(struct call *c);
};

static const struct operation operations[] = {
	{ "CreateSecret", op_create_secret },
	{ "GetSecretValue", op_get_secret_value },
	{ "PutSecretValue", op_put_secret_value },
	{ "UpdateSecret", op_update_secret },
	{ "BatchGetSecretValue", op_batch_get_secret_value },
	{ "DescribeSecret", op_describe_secret },
	{ "ListSecrets", op_list_secrets },
	{ "ListSecretVersionIds", op_list_secret_version_ids },
	{ "TagResource", op_tag_resource },
	{ "UntagResource", op_untag_resource },
	{ "UpdateSecretVersionStage", op_update_secret_version_stage },
	{ "DeleteSecret", op_delete_secret },
	{ "RestoreSecret", op_restore_secret },
	{ "GetRandomPassword", op_get_random_password },
	{ "RotateSecret", op_rotate_secret },
	{ "CancelRotateSecret", op_cancel_rotate_secret },
	{ "GetResourcePolicy", op_resource_policy },
	{ "PutResourcePolicy", op_resource_policy },
	{ "DeleteResourcePolicy", op_resource_policy },
	{ "ValidateResourcePolicy", op_resource_policy },
	{ "ReplicateSecretToRegions", op_replication },
	{ "RemoveRegionsFromReplication", op_replication },
	{ "StopReplicationToReplica", op_replication },
};

/* Every header as received, for the signature (repeats included). */
struct headers {
	struct sigv4_header *list;
	size_t count, cap;
};

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct headers *h = cls;
	(void)kind;
	if (h->count == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 16;
		struct sigv4_header *l = realloc(h->list, cap * sizeof(*l));
		if (!l)
			return MHD_NO;
		h->list = l;
		h->cap = cap;
	}
	h->list[h->count].name = key;
	h->list[h->count].value = value ? value : "";
	h->count++;
	return MHD_YES;
}

/* The caller: its principal from the signature, or "anonymous". */
static int authenticate(struct api *api, struct http_request *req, struct call *c,
			struct reply *out)
{
	struct headers h = { 0 };
	if (api->opt.auth_none) {
		snprintf(c->principal, sizeof(c->principal), "%s", API_ANONYMOUS_PRINCIPAL);
		return 0;
	}
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, add_header, &h);
	struct sigv4_request sr = { req->method, req->url, "", h.list, h.count, req->body,
				    req->body_len };
	struct sigv4_options so = { .skew_s = api->opt.skew_s, .debug = api->opt.debug };
	struct sigv4_identity id;
	struct sigv4_error err;
	int rc = sigv4_verify(api->credentials, &so, &sr, time(NULL), &id, &err);
	free(h.list);
	if (rc) {
		/* sigv4 logged the rule; the audit trail has the address. */
		snprintf(c->error_type, sizeof(c->error_type), "%s",
			 rc == -ENOMEM ? "InternalServiceError" : err.type);
		if (rc == -ENOMEM)
			reply_error(out, 500, "InternalServiceError", "Out of memory.");
		else
			reply_error(out, 400, err.type, err.message);
		return -1;
	}
	snprintf(c->principal, sizeof(c->principal), "%s", id.principal);
	snprintf(c->access_key_id, sizeof(c->access_key_id), "%s", id.access_key_id);
	return 0;
}

/*
 * SecretString or SecretBinary out of the body into c->value, its place
 * in the body blanked ("" and spaces), so the JSON parser sees no value.
 * 1 when absent; -1 with the call failed.
 */
static int take_value(struct call *c, uint8_t *body, size_t len, const char *key, bool binary)
{
	size_t count, start, end;
	struct secbuf raw = { 0 };
	int rc = fields_count(body, len, key, &count);
	if (rc)
		return call_fail(c, "SerializationException", "The request body is not a JSON object.");
	if (count == 0)
		return 1;
	if (count > 1)
		return call_fail(c, "SerializationException", "%s is given more than once.", key);
	if (fields_span(body, len, key, &start, &end) || body[start] != '"')
		return call_fail(c, "SerializationException", "%s is not a string.", key);
	if (c->value_type)
		return call_fail(c, "InvalidParameterException", "You can't specify both a binary "
				 "secret value and a string secret value in the same secret.");
	if ((rc = fields_get(body, len, key, binary ? &raw : &c->value))) {
		secbuf_free(&raw);
		return rc == -ENOMEM ? call_fail(c, "InternalServiceError", "Out of locked memory.")
				     : call_fail(c, "SerializationException", "%s is not a valid "
						 "JSON string.", key);
	}
	if (binary) {
		/* Standard base64 (aws-endpoint.md §1.4), decoded in locked memory. */
		size_t max = base64_decoded_max(raw.len);
		rc = secbuf_reserve(&c->value, max ? max : 1);
		if (!rc && base64_decode((const char *)raw.data, raw.len, c->value.data, &c->value.len))
			rc = -EINVAL;
		secbuf_free(&raw);
		if (rc)
			return call_fail(c, rc == -EINVAL ? "SerializationException" : "InternalServiceError",
					 rc == -EINVAL ? "SecretBinary is not valid base64."
						       : "Out of locked memory.");
	} else if (!text_is_utf8(c->value.data, c->value.len)) {
		return call_fail(c, "SerializationException", "SecretString is not valid UTF-8.");
	}
	c->value_type = binary ? SM_VALUE_BINARY : SM_VALUE_STRING;
	body[start] = '"';
	body[start + 1] = '"';
	explicit_bzero(body + start + 2, end - start - 2);
	memset(body + start + 2, ' ', end - start - 2);
	return 0;
}

static int parse_body(struct call *c, uint8_t *body, size_t len)
{
	static const uint8_t empty[] = "{}";
	if (len == 0) {
		/* The protocol allows an empty body for no parameters. */
		body = (uint8_t *)empty;
		len = 2;
	} else if (take_value(c, body, len, "SecretString", false) < 0 ||
		   take_value(c, body, len, "SecretBinary", true) < 0) {
		return -1;
	}
	struct json_tokener *tok = json_tokener_new_ex(32);
	if (!tok)
		return call_fail(c, "InternalServiceError", "Out of memory.");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	c->in = json_tokener_parse_ex(tok, (const char *)body, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	json_tokener_free(tok);
	if (!c->in || jerr != json_tokener_success || !json_object_is_type(c->in, json_type_object)) {
		json_object_put(c->in);
		c->in = NULL;
		return call_fail(c, "SerializationException", "The request body is not a JSON object.");
	}
	return 0;
}

static const struct operation *operation_of(const char *target)
{
	if (!target || strncmp(target, TARGET_PREFIX, strlen(TARGET_PREFIX)) != 0)
		return NULL;
	for (size_t i = 0; i < sizeof(operations) / sizeof(operations[0]); i++)
		if (strcmp(target + strlen(TARGET_PREFIX), operations[i].name) == 0)
			return &operations[i];
	return NULL;
}

static void answer(struct call *c, struct reply *out)
{
	if (c->failed || out->secure || out->body)
		return; /* answered already */
	const char *t = c->out ? json_object_to_json_string_ext(c->out, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE)
			       : "{}";
	out->status = 200;
	out->content_type = "application/x-amz-json-1.1";
	out->body = t ? strdup(t) : NULL;
	out->len = out->body ? strlen(out->body) : 0;
	if (!out->body)
		reply_error(out, 500, "InternalServiceError", "Out of memory.");
}

void dispatch_call(struct api *api, struct http_request *req, struct reply *out)
{
	struct call c = { .api = api, .sm = api->sm, .reply = out };
	const char *agent = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_USER_AGENT);

	server_client_address(req->conn, c.source, sizeof(c.source));
	snprintf(c.user_agent, sizeof(c.user_agent), "%s", agent ? agent : "");
	if (strcmp(req->url, "/") != 0 ||
	    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, NULL, NULL) > 0) {
		reply_error(out, 404, "UnknownOperationException",
			    "The API answers POST / only (AWS JSON 1.1).");
		return;
	}
	const char *target = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "X-Amz-Target");
	const struct operation *op = operation_of(target);
	c.op = op ? op->name : "Unknown";
	c.who = (struct audit_caller){ .uid = (uid_t)-1, .gid = (gid_t)-1, .pid = 0,
				       .principal = c.principal, .source = c.source,
				       .user_agent = c.user_agent[0] ? c.user_agent : NULL };
	if (authenticate(api, req, &c, out)) {
		/* Recorded too, as nobody in particular: someone knocked. */
		snprintf(c.principal, sizeof(c.principal), "(unauthenticated)");
		c.failed = true;
		call_audit(&c, c.op, NULL, NULL, NULL, -EACCES);
		return;
	}
	c.who.access_key_id = c.access_key_id[0] ? c.access_key_id : NULL;
	sm_refusal_clear();
	if (!op) {
		log_warn("api: refused: unknown operation %.100s from %s",
			 target ? target : "(no X-Amz-Target)", c.source);
		call_fail(&c, "UnknownOperationException", "The operation %.100s is not one of "
			  "Secrets Manager's.", target ? target : "(no X-Amz-Target)");
	} else if (parse_body(&c, req->body, req->body_len) == 0) {
		op->fn(&c);
	}
	/* Every call reaches the audit trail, those refused before their
	 * operation looked at a secret too. */
	if (!c.audited)
		call_audit(&c, c.op, c.secret, NULL, NULL, c.failed ? -EINVAL : 0);
	answer(&c, out);
	json_object_put(c.in);
	json_object_put(c.out);
	secbuf_free(&c.value);
}
