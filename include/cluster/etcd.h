/*
 * etcd: a client of etcd 3.4's JSON gateway over libcurl (HTTP/1.1, TLS).
 *
 * A client is made from a config: endpoints (http:// or https:// base URLs),
 * an optional user whose password is read from a file, optional CA, client
 * certificate and key paths, and a request timeout. Every call returns 0 or
 * a negative errno, mapped from curl codes, HTTP status and gRPC code in one
 * place (src/cluster/etcd_errno.c). The classes that matter to a writer:
 *
 *   ETCD_E_NOTSENT  (-ECONNREFUSED)  no byte of the request left: it was
 *                   NOT applied. Unary calls try the next endpoint first.
 *   ETCD_E_UNKNOWN  (-ETIMEDOUT)     sent, then no answer in time, the
 *                   connection broke, or etcd said 503/500 (no leader,
 *                   "request timed out", "context deadline exceeded"). The
 *                   write MAY have been applied, now or later: read back
 *                   to learn the outcome. Never retried here.
 *   ETCD_E_COMPACTED (-ERANGE)       code 11 "required revision has been
 *                   compacted": a read or a watch at a revision older than
 *                   the cluster keeps; re-read in full.
 *   -EACCES  403 / permission denied, auth refused, or 401 again right
 *            after re-authenticating;
 *   -ENOSPC  429 / code 8: NOSPACE alarm (only reads and deletes work);
 *   -EFBIG   request too large, too many ops in a txn, answer over bounds;
 *   -EINVAL  other refusals of the request (code 3, 9, "future revision");
 *   -ENOENT  code 5 (not found); -ENOMEM;
 *   -EBADMSG a 200 answer to a read (range, status) that is not the message
 *            expected, one without its header included: an answer to a
 *            write (put, delete_range, txn, compact) that cannot be read
 *            is ETCD_E_UNKNOWN instead, since etcd may have applied it;
 *   -EIO     anything else.
 *
 * Auth: with a user, the client authenticates (/v3/auth/authenticate) on
 * first use, sends the token raw in the Authorization header, and on a 401
 * (token expired) authenticates once more and repeats the request once: a
 * 401 is a refusal before anything is applied, so the repeat is safe.
 *
 * Threads: one client may be shared. Unary calls (range, put, delete_range,
 * txn, compact, status) may come from any thread: each exchange holds the
 * client's mutex around its one reused easy handle. Each etcd_watch runs on
 * the calling thread with an easy handle of its own, so watches may run on
 * their own threads at the same time as unary calls. etcd_open and
 * etcd_close are not concurrent with anything on the same client. No
 * signal is used (CURLOPT_NOSIGNAL): safe in a FUSE daemon.
 *
 * Logging: endpoints, paths, keys and errors may be logged; values, the
 * password and the token never are.
 */
#ifndef SECRETSFS_CLUSTER_ETCD_H
#define SECRETSFS_CLUSTER_ETCD_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cluster/etcd_wire.h"

#define ETCD_E_NOTSENT (-ECONNREFUSED)
#define ETCD_E_UNKNOWN (-ETIMEDOUT)
#define ETCD_E_COMPACTED (-ERANGE)

#define ETCD_ENDPOINTS_MAX 16

struct etcd_config {
	const char *const *endpoints; /* "http://127.0.0.1:2379", ... */
	size_t n_endpoints;
	const char *user;          /* NULL: no auth */
	const char *password_file; /* with user: first line is the password */
	const char *ca_file;       /* https: trust these CAs, not the system's */
	const char *cert_file;     /* https client certificate (mTLS) ... */
	const char *key_file;      /* ... and its key */
	long timeout_ms;           /* whole unary request; 0: 5000 */
	long connect_timeout_ms;   /* per connection attempt; 0: 1000 */
	long watch_idle_ms;        /* watchdog: no complete line for this long
				    * ends a watch with ETCD_E_UNKNOWN; 0: 10000 */
};

struct etcd;

/* Checks the config (URLs, files readable), reads the password; connects
 * nothing yet. -EINVAL names the rule in the log. */
int etcd_open(const struct etcd_config *cfg, struct etcd **out);
void etcd_close(struct etcd *etcd);

int etcd_range(struct etcd *etcd, const struct etcd_range_req *req, struct etcd_range_resp *out);
int etcd_put(struct etcd *etcd, const struct etcd_put_req *req, struct etcd_put_resp *out);
int etcd_delete_range(struct etcd *etcd, const struct etcd_delete_req *req,
		      struct etcd_delete_resp *out);
int etcd_txn(struct etcd *etcd, const struct etcd_txn_req *req, struct etcd_txn_resp *out);
int etcd_compact(struct etcd *etcd, int64_t revision, bool physical, struct etcd_header *out);
/* The status of the member the client is talking to now. */
int etcd_status(struct etcd *etcd, struct etcd_status *out);
/*
 * Makes the leader the endpoint unary calls go to first, when one of the
 * endpoints is the leader: a follower forwards each commit to the leader,
 * a round trip more on every write (0.4-0.5 ms here, a fifth of a txn).
 * Asks each endpoint's status in turn; 0 when the leader was found,
 * -ENOENT when no endpoint is the leader (the order is then left as it
 * was), or the last call's error.
 */
int etcd_prefer_leader(struct etcd *etcd);
/* The base URL the next unary call goes to first. */
const char *etcd_endpoint(struct etcd *etcd);

/*
 * A watch: POSTs the create request to one endpoint with
 * "Grpc-Metadata-Hasleader: true" (a member without a leader refuses or
 * ends the watch rather than going quiet), and calls fn for each message,
 * on the calling thread, in order. fn returns 0 to go on, 1 to stop (the
 * watch then returns 0) or a negative errno to stop with it. The message is
 * freed after fn returns.
 *
 * Otherwise the watch ends with an error, never 0: a CANCELED message or
 * the stream's error object is passed to fn and then ends it with
 * etcd_watch_errno (except a cancel for an expired token, which fn does
 * not see: the client authenticates once and opens the watch again); no
 * complete line for watch_idle_ms (a frozen member), a broken connection
 * or a stream that ended without its error object with ETCD_E_UNKNOWN; a
 * message that does not parse with -EBADMSG, a fragment with -EPROTO
 * (etcd_wire.h); *stop set by another thread with -EINTR (seen within
 * about a second). Endpoints are tried in order while the request is not
 * sent.
 */
typedef int (*etcd_watch_fn)(void *ctx, const struct etcd_watch_msg *msg);
int etcd_watch(struct etcd *etcd, const struct etcd_watch_req *req, etcd_watch_fn fn, void *ctx,
	       atomic_bool *stop);

/*
 * The one mapping of the foreign error spaces. curl: the transfer's code;
 * sent: whether any byte of the request went out (CURLINFO_REQUEST_SIZE);
 * http: the status (0: none); grpc: the gRPC code of the error body (0:
 * none); message: etcd's text or NULL.
 */
int etcd_errno(int curl, bool sent, long http, int grpc, const char *message);
/* A watch's last message: the stream's error object as etcd_errno; a cancel
 * with compact_revision ETCD_E_COMPACTED, for permissions or an expired
 * token -EACCES, any other -ECANCELED; other messages 0. */
int etcd_watch_errno(const struct etcd_watch_msg *msg);
/* A 200 answer the wire layer refused with rc: for a write (writes) its
 * outcome is unknown, ETCD_E_UNKNOWN; for a read, rc itself. */
int etcd_answer_errno(bool writes, int rc);

#endif
