/*
 * The AWS Secrets Manager Agent's endpoint (aws-endpoint.md §6), for
 * sidecar clients: GET /secretsmanager/get?secretId=ID[&versionId=V]
 * [&versionStage=S][&refreshNow=B], GET /v1/ID (the same, by path), and
 * GET /ping. Its rules: a request carries the SSRF token in
 * X-Aws-Parameters-Secrets-Token (or X-Vault-Token), else 403; any
 * X-Forwarded-For is refused (400); the answer is GetSecretValue's, with
 * CreatedDate as a string. The store is the source of truth, so there is
 * no cache: refreshNow is checked and has nothing to refresh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "api/internal.h"
#include "util/log.h"

#define PATH_PREFIX "/v1/"

static void plain(struct reply *r, unsigned status, const char *text)
{
	reply_free(r);
	r->status = status;
	r->body = strdup(text);
	r->len = r->body ? strlen(r->body) : 0;
}

struct params {
	const char *secret_id, *version_id, *stage, *refresh;
	const char *unknown;
	bool path_style;
};

static enum MHD_Result take_param(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct params *p = cls;
	(void)kind;
	if (!p->path_style && strcmp(key, "secretId") == 0)
		p->secret_id = value ? value : "";
	else if (strcmp(key, "versionId") == 0)
		p->version_id = value;
	else if (strcmp(key, "versionStage") == 0)
		p->stage = value;
	else if (strcmp(key, "refreshNow") == 0)
		p->refresh = value ? value : "";
	else if (!p->unknown)
		p->unknown = key;
	return MHD_YES;
}

static bool token_ok(struct api *api, struct MHD_Connection *conn)
{
	static const char *const headers[] = { "X-Aws-Parameters-Secrets-Token", "X-Vault-Token" };
	const char *want = api->opt.agent_token;
	if (!want || !want[0])
		return false;
	for (size_t i = 0; i < 2; i++) {
		const char *got = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, headers[i]);
		if (got && strlen(got) == strlen(want) && crypto_equal(got, want, strlen(want)))
			return true;
	}
	return false;
}

/* GetSecretValue for the Agent's caller, answered in its shape. */
static void get_value(struct api *api, struct MHD_Connection *conn, const struct params *p,
		      struct reply *out)
{
	struct call c = { .api = api, .sm = api->sm, .op = "GetSecretValue", .reply = out };
	char name[SM_NAME_MAX + 1];
	struct sm_snapshot *snap = NULL;
	struct secbuf value = { 0 };
	struct api_error e;
	bool deleted;
	const char *agent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							MHD_HTTP_HEADER_USER_AGENT);

	snprintf(c.principal, sizeof(c.principal), "%s", API_AGENT_PRINCIPAL);
	server_client_address(conn, c.source, sizeof(c.source));
	snprintf(c.user_agent, sizeof(c.user_agent), "%s", agent ? agent : "");
	c.who = (struct audit_caller){ .uid = (uid_t)-1, .gid = (gid_t)-1, .principal = c.principal,
				       .source = c.source,
				       .user_agent = c.user_agent[0] ? c.user_agent : NULL };
	sm_refusal_clear();
	int rc = sm_resolve_id(api->sm, p->secret_id, name, &deleted);
	if (rc) {
		call_errno(&c, rc, p->secret_id);
		call_audit(&c, c.op, NULL, NULL, NULL, rc);
		return;
	}
	if (call_authorize(&c, "GetSecretValue", name))
		return;
	if (deleted) {
		call_deleted(&c);
		call_audit(&c, c.op, name, p->version_id, p->stage, -EBUSY);
		return;
	}
	if (read_value(&c, name, p->version_id, p->stage, &snap, &value, &e)) {
		call_fail_with(&c, &e);
		call_audit(&c, c.op, name, p->version_id, p->stage, -ENOENT);
		return;
	}
	sm_note_access(api->sm, name);
	call_audit(&c, c.op, name, sm_snapshot_version_id(snap), p->stage, 0);
	struct json_object *meta = c.failed ? NULL : value_meta(&c, name, snap, true);
	rc = meta ? text_put_with_value(&out->text, meta, &value, sm_snapshot_binary(snap)) : -ENOMEM;
	json_object_put(meta);
	sm_snapshot_free(snap);
	secbuf_free(&value);
	if (c.failed)
		return;
	if (rc) {
		secbuf_free(&out->text);
		reply_error(out, 500, "InternalFailure", "Out of locked memory.");
		return;
	}
	/* The Agent sets no Content-Type; its clients read the body as JSON. */
	out->secure = true;
	out->status = 200;
	out->content_type = NULL;
}

/* The Agent's refusal of a request, or NULL when it is one to answer. */
static const char *refusal(struct api *api, struct MHD_Connection *conn, const char *url,
			   struct params *p, unsigned *status, char *buf, size_t len)
{
	*status = 400;
	if (MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"))
		return "Forwarded";
	bool query_style = strcmp(url, "/secretsmanager/get") == 0;
	p->path_style = strncmp(url, PATH_PREFIX, strlen(PATH_PREFIX)) == 0;
	if (!query_style && !p->path_style) {
		*status = 404;
		return "Not found";
	}
	if (!token_ok(api, conn)) {
		char source[64];
		server_client_address(conn, source, sizeof(source));
		log_warn("api: refused: the Agent's endpoint without its token, from %s", source);
		*status = 403;
		return "Bad Token";
	}
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, take_param, p);
	if (p->unknown) {
		snprintf(buf, len, "unknown parameter: %.100s", p->unknown);
		return buf;
	}
	if (p->path_style)
		p->secret_id = url + strlen(PATH_PREFIX);
	if (!p->secret_id || !p->secret_id[0])
		return p->path_style ? "missing secret ID" : "missing parameter secretId";
	if (p->refresh && strcasecmp(p->refresh, "true") != 0 && strcasecmp(p->refresh, "false") != 0)
		return "invalid refreshNow value";
	return NULL;
}

void agent_request(struct api *api, struct MHD_Connection *conn, const char *method,
		   const char *url, struct reply *out)
{
	struct params p = { 0 };
	char buf[160];
	unsigned status;
	const char *refused;
	if (strcmp(method, "GET") != 0)
		plain(out, 405, "Not allowed");
	else if (strcmp(url, "/ping") == 0 &&
		 !MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Forwarded-For"))
		plain(out, 200, "healthy"); /* no token needed */
	else if ((refused = refusal(api, conn, url, &p, &status, buf, sizeof(buf))))
		plain(out, status, refused);
	else
		get_value(api, conn, &p, out);
}
