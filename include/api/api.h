/*
 * api: the Secrets Manager API over a store's domain, beside the FUSE
 * adapter (docs/api.md). AWS JSON 1.1 (POST / with X-Amz-Target), as the
 * AWS CLI and SDKs speak it, and the Secrets Manager Agent's GET endpoint
 * (/secretsmanager/get, /v1/ID, /ping) for sidecar clients.
 *
 * Contract:
 *   - Every request is authenticated (SigV4 against the credentials file,
 *     api/sigv4.h) unless auth_none, which api_start accepts on a loopback
 *     address only and announces in the log; the principal is what the
 *     access policy matches and the audit trail records, with the address.
 *   - Operations are the domain's (secrets.h, "the service's requests"):
 *     the service's field names, limits, defaults and errors (__type and
 *     message, HTTP 400; 500 for the server's own faults). An operation
 *     that is not built answers a clear error and is listed in docs/api.md.
 *   - Bounded: request bodies (413 beyond max_body), connections, and time
 *     per connection. Values travel only through locked, wiped memory:
 *     the request body, the decoded value and the answer that holds one;
 *     no value reaches a log line.
 *   - libmicrohttpd's threads call into the domain, which is thread-safe.
 */
#ifndef SECRETSFS_API_API_H
#define SECRETSFS_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/sigv4.h"
#include "secrets/policy.h"
#include "secrets/secrets.h"

#define API_DEFAULT_MAX_BODY (512u << 10)  /* aws-endpoint.md §1.7 */
#define API_DEFAULT_CONNECTIONS 64u
#define API_DEFAULT_TIMEOUT_S 30u
#define API_DEFAULT_THREADS 4u
#define API_AGENT_PRINCIPAL "agent"        /* who the Agent endpoint's callers are */
#define API_ANONYMOUS_PRINCIPAL "anonymous" /* who callers are under auth_none */

/*
 * RotateSecret's steps run where the rotation command can reach the
 * secret: in a mount, its rotator (fs/rotator). rotate(ctx, name, token)
 * starts a rotation whose new version will be token (the checks made at
 * once: -EBUSY, -EINVAL); NULL where there is none (serve).
 */
typedef int (*api_rotate_fn)(void *ctx, const char *name, const char *token);

struct api_options {
	const char *listen;        /* "ADDR:PORT": an IPv4 address, or [IPv6]; PORT 0: any */
	const char *agent_listen;  /* a second listener for the Agent's routes only; NULL: none */
	const char *credentials_file; /* ACCESS_KEY_ID SECRET PRINCIPAL a line (api/sigv4.h);
				       * NULL only with auth_none */
	bool auth_none;            /* no signatures, every caller "anonymous": loopback only */
	const char *tls_cert;      /* PEM files: HTTPS; NULL: plain HTTP */
	const char *tls_key;
	const struct policy *policy; /* not owned; NULL: none */
	const char *audit_log;     /* NULL: no audit trail */
	bool audit_required;
	const char *agent_token;   /* the Agent's SSRF token (copied); NULL: its routes answer 403 */
	uint32_t new_uid, new_gid, new_mode; /* owner and mode CreateSecret gives */
	unsigned max_connections;  /* 0: API_DEFAULT_CONNECTIONS */
	unsigned timeout_s;        /* idle seconds per connection; 0: API_DEFAULT_TIMEOUT_S */
	size_t max_body;           /* bytes; 0: API_DEFAULT_MAX_BODY */
	unsigned threads;          /* 0: API_DEFAULT_THREADS */
	long skew_s;               /* SigV4's clock window; 0: 300 */
	api_rotate_fn rotate;      /* NULL: RotateSecret cannot start a rotation here */
	void *rotate_ctx;
	bool debug;                /* a signature mismatch tells the canonical request */
};

struct api;

/* Listens and serves on threads of its own until api_stop. Errors are
 * logged (an address in use, a non-loopback address under auth_none):
 * -errno. */
int api_start(struct sm *sm, const struct api_options *opt, struct api **out);
/* The port the API listens on (the one given, or the one drawn for 0). */
unsigned api_port(const struct api *api);
unsigned api_agent_port(const struct api *api);
/* Stops listening, waits for the requests in progress, frees. */
void api_stop(struct api *api);

#endif
