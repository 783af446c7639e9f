/*
 * api/internal: what the API adapter's own sources share, and nothing
 * outside src/api may include (scripts/check-layers enforces it).
 *
 * Split by noun: server.c (libmicrohttpd: listeners, limits, bodies,
 * replies), dispatch.c (a call: authentication, X-Amz-Target, the request
 * JSON with its value taken out), errors.c (the one map of domain errors
 * to the service's exceptions), json.c (request fields, answer fields,
 * the text of an answer that holds a value), agent.c (the Agent's GET
 * routes), and the operations by group: ops_values.c (Create, Get, Put,
 * Update, BatchGet), ops_meta.c (Describe, Tag, Untag, version stages,
 * ListSecretVersionIds), ops_list.c (ListSecrets), ops_lifecycle.c
 * (Delete, Restore), ops_other.c (GetRandomPassword, rotation, resource
 * policies, replication).
 */
#ifndef SECRETSFS_API_INTERNAL_H
#define SECRETSFS_API_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "api/api.h"
#include "crypto/crypto.h"
#include "secrets/audit.h"

struct MHD_Daemon;
struct MHD_Connection;

/* What a listener serves: the whole API, or the Agent's routes alone. */
struct api_listener {
	struct api *api;
	bool agent_only;
};

struct api {
	struct sm *sm;
	struct api_options opt;   /* strings not owned: the caller keeps them */
	struct audit *audit;
	struct sigv4_credentials *credentials; /* NULL under auth_none */
	struct MHD_Daemon *daemon, *agent_daemon;
	unsigned port, agent_port;
	char *tls_cert_pem, *tls_key_pem;
	char *agent_token;        /* opt.agent_token's copy */
	struct api_listener listeners[2]; /* the API's, the Agent's own */
};

/* The answer to a request: a status and a body (secure when it holds a value). */
struct reply {
	unsigned status;
	char *body;             /* malloc'd, or in text when secure */
	size_t len;
	struct secbuf text;     /* a body that holds a value */
	bool secure;
	const char *content_type; /* NULL: none (the Agent sets none) */
};

void reply_free(struct reply *r);

/* A call of the JSON API being answered. */
struct call {
	struct api *api;
	struct sm *sm;
	const char *op;              /* "CreateSecret" */
	struct audit_caller who;
	char principal[SIGV4_PRINCIPAL_MAX];
	char access_key_id[SIGV4_KEY_ID_MAX];
	char source[64];
	char user_agent[256];
	struct json_object *in;      /* the request, SecretString and SecretBinary taken out */
	struct secbuf value;         /* SecretString's or SecretBinary's bytes */
	enum sm_value_type value_type; /* SM_VALUE_AUTO: neither was given */
	struct json_object *out;     /* a success's body without a value; NULL: {} */
	struct reply *reply;
	bool failed;
	char error_type[64];         /* the exception it failed with, for the audit */
	bool audited;                /* the operation recorded itself */
	const char *secret;          /* the secret it is about, once known (for the audit) */
};

/* ---- server.c ---- */

/* A client's address as text ("127.0.0.1", "::1"). */
void server_client_address(struct MHD_Connection *conn, char *buf, size_t len);

/* ---- dispatch.c: one POST / ---- */

struct http_request {
	struct MHD_Connection *conn;
	const char *method, *url;
	uint8_t *body;              /* secure memory, changed in place (values taken out) */
	size_t body_len;
};

void dispatch_call(struct api *api, struct http_request *req, struct reply *out);
/* An error answer in the service's shape: {"__type": type, "message": ...}. */
void reply_error(struct reply *r, unsigned status, const char *type, const char *message);

/* ---- errors.c ---- */

/* An exception of the service: its type and message. */
struct api_error {
	char type[64];
	char message[512];
};

void error_set(struct api_error *e, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The one map of a domain error (errno) to the service's exception for
 * this call's operation, about the secret id as given (sm_refusal() as the
 * message when it has one). */
void error_from_errno(struct call *c, int rc, const char *id, struct api_error *e);
int call_fail_with(struct call *c, const struct api_error *e);

/* The call fails with the service's exception type and message (the first
 * failure wins); returns -1 for "return call_fail(...)". */
int call_fail(struct call *c, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A domain error rc of this call, about the secret id as given, mapped to
 * the service's exception (sm_refusal() as the message when it has one). */
int call_errno(struct call *c, int rc, const char *id);
/* "scheduled for deletion": the service's InvalidRequestException. */
int call_deleted(struct call *c);
/* The policy's verdict for this call's principal on secret (NULL: the
 * store); AccessDeniedException (audited) when it says no: into e
 * (call_allowed, for one item of a batch) or failing the call. */
int call_allowed(struct call *c, const char *event, const char *secret, struct api_error *e);
int call_authorize(struct call *c, const char *event, const char *secret);
/* One audit record of event on secret, with its outcome (the call's
 * exception when it failed); under audit_required a read that cannot be
 * recorded fails the call before its answer goes out. */
void call_audit(struct call *c, const char *event, const char *secret, const char *version_id,
		const char *stage, int outcome);
/* Under audit_required, the change's "started" record; the call fails
 * when it cannot be written. */
int call_begin(struct call *c, const char *secret);
/* The end of an operation on secret (id as given): rc mapped (call_errno)
 * when nonzero, and the call's audit record. 0, or -1 when failed. */
int call_done(struct call *c, int rc, const char *id, const char *secret, const char *version_id,
	      const char *stage);

/* ---- json.c: request fields. Each returns 0, 1 when absent (and not
 * required), or -1 with the call failed (ValidationException for a
 * missing or out-of-range member, SerializationException for a wrong
 * type). Strings are the request's own (valid while c->in is). ---- */

int in_string(struct call *c, const char *key, bool required, size_t min, size_t max,
	      const char **out);
int in_bool(struct call *c, const char *key, bool *out);
int in_int(struct call *c, const char *key, int64_t min, int64_t max, int64_t *out);
/* An array of strings: *out malloc'd (the strings are the request's). */
int in_strings(struct call *c, const char *key, bool required, size_t min_items,
	       size_t max_items, size_t min, size_t max, const char ***out, size_t *n);
/* An array of objects. */
int in_array(struct call *c, const char *key, bool required, struct json_object **out);
/* The call's SecretId, resolved: name, *deleted. -1 with the call failed
 * (ValidationException, ResourceNotFoundException). */
int in_secret_id(struct call *c, const char **id, char name[SM_NAME_MAX + 1], bool *deleted);
/* The same, 1 (the call not failed) when no secret has that id. */
int in_secret_ref(struct call *c, const char **id, char name[SM_NAME_MAX + 1], bool *deleted);
/* The value the call gave (SecretString or SecretBinary, not both): 1 none. */
int in_value(struct call *c, bool required, struct sm_value *out);
/* ClientRequestToken, 32 to 64 characters; required when a value is given
 * (botocore always sends one; a raw request must, as the service says). */
int in_token(struct call *c, bool need, const char **out);

/* ---- json.c: answers ---- */

struct json_object *out_object(struct call *c);
void out_string(struct json_object *o, const char *key, const char *value);
void out_date(struct json_object *o, const char *key, int64_t ms);
/* The ARN and Name of the secret called name. */
void out_arn_name(struct call *c, struct json_object *o, const char *name);

/* A JSON text in secure memory (an answer that holds a value). */
int text_put(struct secbuf *t, const void *data, size_t len);
int text_put_str(struct secbuf *t, const char *s);
/* data as a JSON string, quoted and escaped. */
int text_put_json_string(struct secbuf *t, const uint8_t *data, size_t len);
int text_put_base64(struct secbuf *t, const uint8_t *data, size_t len);
/* meta's JSON with the value added as SecretString or SecretBinary
 * (date_as_string: CreatedDate as a string, as the Agent gives it). */
int text_put_with_value(struct secbuf *t, struct json_object *meta, const struct secbuf *value,
			bool binary);

/* ---- the operations (ops_*.c): 0, or -1 with the call failed ---- */

int op_create_secret(struct call *c);
int op_get_secret_value(struct call *c);
int op_put_secret_value(struct call *c);
int op_update_secret(struct call *c);
int op_batch_get_secret_value(struct call *c);
int op_describe_secret(struct call *c);
int op_tag_resource(struct call *c);
int op_untag_resource(struct call *c);
int op_update_secret_version_stage(struct call *c);
int op_list_secret_version_ids(struct call *c);
int op_list_secrets(struct call *c);
int op_delete_secret(struct call *c);
int op_restore_secret(struct call *c);
int op_get_random_password(struct call *c);
int op_rotate_secret(struct call *c);
int op_cancel_rotate_secret(struct call *c);
int op_resource_policy(struct call *c);
int op_replication(struct call *c);

/* A value read for the caller: the snapshot of name by version id and/or
 * stage (both NULL: AWSCURRENT), decrypted into value, with the service's
 * errors for what is not there (ops_values.c; the Agent's too). */
struct sm_snapshot;
int read_value(struct call *c, const char *name, const char *version_id, const char *stage,
	       struct sm_snapshot **snap, struct secbuf *value, struct api_error *e);
/* GetSecretValue's answer fields but the value, for name's snapshot. */
struct json_object *value_meta(struct call *c, const char *name, const struct sm_snapshot *snap,
			       bool date_as_string);

/* ListSecrets' selection (ops_list.c): the stored secrets that pass the
 * call's "Filters" (checked as the service checks them), in CreatedDate
 * order (newest first when descending), from after next_token (NULL: the
 * start), at most max; next_token set when more remain. -1 with the call
 * failed (InvalidNextTokenException, ValidationException, ...). */
struct selection {
	struct sm_secret **items;
	size_t count;
	char *next_token;
};
int select_secrets(struct call *c, bool include_deleted, bool descending, const char *next_token,
		   size_t max, struct selection *out);
void selection_free(struct selection *s);

/* ---- agent.c ---- */

void agent_request(struct api *api, struct MHD_Connection *conn, const char *method,
		   const char *url, struct reply *out);

#endif
