/*
 * Shared by src/cluster's sources only: the JSON helpers both halves of the
 * wire format use (requests and unary answers in etcd_wire.c, the stream,
 * status, auth and errors in etcd_stream.c), and the client's state that
 * the unary calls (etcd.c) and the watch (etcd_watch.c) share.
 */
#ifndef SECRETSFS_CLUSTER_INTERNAL_H
#define SECRETSFS_CLUSTER_INTERNAL_H

#include <json-c/json.h>

#include "cluster/etcd_wire.h"

/* Parses exactly one JSON object from json[0..len): 0, -EBADMSG or -EFBIG. */
int wire_parse(const char *json, size_t len, json_object **out);
/* The object's member name, which must have the type wanted when present:
 * 0 with *out NULL when absent, -EBADMSG when of another type. */
int wire_member(json_object *obj, const char *name, json_type type, json_object **out);
/* int64 (JSON string or number), absent = 0. */
int wire_int64(json_object *obj, const char *name, int64_t *out);
int wire_uint64(json_object *obj, const char *name, uint64_t *out);
int wire_bool(json_object *obj, const char *name, bool *out);
/* A string member copied (truncated) into buf; absent = "". */
int wire_text(json_object *obj, const char *name, char *buf, size_t size);
/* The header every answer of etcd's carries (inside a txn's too):
 * -EBADMSG when absent, never taken for revision 0. */
int wire_header(json_object *obj, struct etcd_header *out);
int wire_kv(json_object *obj, struct etcd_kv *out);
/* A list of kvs under name: *kvs malloc'd (NULL when absent or empty). */
int wire_kvs(json_object *obj, const char *name, struct etcd_kv **kvs, size_t *n);
void wire_kvs_free(struct etcd_kv *kvs, size_t n);
/* Adds name: base64(data) to obj. */
int wire_put_bytes(json_object *obj, const char *name, const void *data, size_t len);
int wire_put_int64(json_object *obj, const char *name, int64_t v);
int wire_put_bool(json_object *obj, const char *name, bool v);
int wire_put_string(json_object *obj, const char *name, const char *s);
/* A request built into obj (NULL: -ENOMEM) as a malloc'd string when rc is
 * 0; rc otherwise, with *json NULL. Drops obj's reference either way. */
int wire_finish(json_object *obj, int rc, char **json);
/* Reads one part of an answer into out; frees what it took when it fails. */
typedef int (*wire_fill_fn)(json_object *obj, void *out);
/* A unary answer into out (size bytes): one JSON object whose header has a
 * revision etcd could give (from 1), the rest read by fill. On failure out
 * is left empty. */
int wire_answer(const char *json, size_t len, wire_fill_fn fill, void *out, size_t size);

/* ---- the transport (etcd.c, etcd_watch.c, etcd_errno.c) ---- */

#include <curl/curl.h>
#include <pthread.h>

#include "cluster/etcd.h"
#include "crypto/crypto.h"

#define PASSWORD_MAX 4096

struct etcd {
	char *endpoints[ETCD_ENDPOINTS_MAX];
	size_t n_endpoints;
	atomic_size_t current; /* where the next call starts */
	char *user;
	struct secbuf password; /* NUL-terminated */
	char *ca_file, *cert_file, *key_file;
	long timeout_ms, connect_timeout_ms, watch_idle_ms;

	pthread_mutex_t lock; /* the unary handle, for one exchange at a time */
	CURL *easy;

	pthread_mutex_t auth_lock;
	char *token; /* a credential: wiped when replaced */
};

/* A response body, bounded by ETCD_WIRE_MSG_MAX (then too_big). */
struct body {
	char *data;
	size_t len;
	size_t cap;
	bool too_big;
};

size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata);
/* Wiped (an answer may hold the token or a record) and freed. */
void body_free(struct body *b);
void body_reset(struct body *b);

/* What became of one exchange with one endpoint. */
struct outcome {
	size_t endpoint;
	CURLcode curl;
	bool sent; /* a byte of the request left (CURLINFO_REQUEST_SIZE) */
	long http; /* the status; 0: none */
	bool token_refused; /* a watch canceled "Unauthenticated" (a 401 is seen in http) */
	bool ended_here;    /* this side ended it (a watch), with verdict */
	int verdict;
};

struct call;
/* One exchange of c with endpoint i, on a handle of its own choosing, sent
 * by transfer: 0 with *oc set, or an errno when it could not be tried. */
typedef int (*attempt_fn)(struct etcd *e, const struct call *c, size_t i, const char *token,
			  struct outcome *oc);

/* One request to etcd: what etcd_call sends and where the answer goes. */
struct call {
	const char *path;   /* "/v3/kv/put" */
	const char *body;   /* the request's JSON */
	const char *header; /* one more HTTP header, or NULL */
	bool writes;        /* a lost or unreadable answer leaves its outcome unknown */
	attempt_fn attempt;
	curl_write_callback write; /* the answer's bytes ... */
	void *write_ctx;
	struct body *answer; /* ... or those of a refusal, for the mapping */
};

/* POSTs c->body to endpoint i + c->path on h, which carries the attempt's
 * own options; the answer goes to c->write. Sets *oc; -ENOMEM when the
 * request could not be set up. */
int transfer(struct etcd *e, CURL *h, const struct call *c, size_t i, const char *token,
	     struct outcome *oc);
/*
 * One request, to its verdict: tried on the current endpoint and the next
 * ones while nothing was sent, and once more after authenticating again
 * when etcd refused the token (it refuses before applying anything).
 * 0: answered 200 (or a watch stopped by its callback); otherwise the
 * errno of exchange_errno or the watch's own verdict. An unknown outcome
 * makes the next call start at the next endpoint.
 */
int etcd_call(struct etcd *e, const struct call *c);
/* (etcd_errno.c) An exchange that did not end in a 200 answer, as an
 * errno, logged with etcd's own message. */
int exchange_errno(struct etcd *e, const struct call *c, const struct outcome *oc);

/* ---- the replica (replica.c, replica_sync.c) ---- */

#include <stdatomic.h>

#include "cluster/replica.h"
#include "util/hashmap.h"

struct replica {
	struct etcd *etcd;
	struct store *st;
	char *prefix;
	size_t prefix_len;
	char **endpoints; /* as configured, for status */
	size_t n_endpoints;

	pthread_mutex_t lock; /* what follows, up to the thread */
	pthread_cond_t applied_cond;
	int64_t applied;         /* the etcd revision this replica holds */
	int64_t stale_revision;  /* what the last refused commit saw */
	enum replica_state state;
	int64_t last_contact_ms;
	struct hashmap *own;     /* key -> int64_t *: revision of this host's last write */

	struct unresolved {      /* commits refused EIO with their outcome unknown */
		char *key;       /* a record the commit created, and its bytes */
		uint8_t *val;
		size_t len;
	} unresolved[8];
	size_t next_unresolved;

	pthread_t thread;
	bool running;
	atomic_bool stop;
	pthread_t applier;       /* the thread inside apply: its commits are not sent */
	atomic_bool applying;
	replica_apply_fn apply;
	void *apply_ctx;
};

/* The etcd key of tdb key (prefix + key), malloc'd; NULL on -ENOMEM. */
char *replica_etcd_key(const struct replica *r, const char *key, size_t *len);
/* Lock held by neither: state and contact time after an answer or none. */
void replica_heard(struct replica *r, enum replica_state s);
/* One or more revisions' records through the apply function, as the applier. */
int replica_apply_batch(struct replica *r, const struct store_op *ops, size_t n, int64_t revision);
/* A commit refused EIO with its outcome unknown, remembered by one record
 * it wrote; the watch says so if etcd applied it after all. */
void replica_note_unresolved(struct replica *r, const struct store_op *ops, size_t n);
/* Lock held by neither: logs and forgets an unresolved commit this put is. */
void replica_check_unresolved(struct replica *r, const char *key, const uint8_t *val, size_t len,
			      int64_t revision);
/* This host's own write of key at revision (skip the watch's older ones). */
int64_t replica_own_revision(struct replica *r, const char *key);

#endif
