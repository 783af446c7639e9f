/*
 * etcd_errno: the one place where etcd's error spaces become negative errno.
 * Contract: include/cluster/etcd.h (etcd_errno, etcd_watch_errno,
 * etcd_answer_errno) and src/cluster/internal.h (exchange_errno).
 *
 * Three inputs reach it: an exchange's curl code, HTTP status and error
 * body (the gRPC code and etcd's text in it); a watch's last message (its
 * cancel or its error object); and a 200 answer the wire layer could not
 * read. The transport decides what to do next (failover, re-authenticating,
 * the next starting endpoint); it never maps anything itself.
 */
#include <errno.h>
#include <string.h>

#include "cluster/internal.h"
#include "util/log.h"

int etcd_errno(int curl, bool sent, long http, int grpc, const char *message)
{
	const char *m = message ? message : "";
	if (curl != CURLE_OK) {
		switch (curl) {
		case CURLE_OUT_OF_MEMORY:
			return -ENOMEM;
		case CURLE_URL_MALFORMAT:
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
			return -EINVAL;
		default:
			break;
		}
		/* Nothing left the host: etcd cannot have applied it. */
		if (!sent)
			return ETCD_E_NOTSENT;
		return ETCD_E_UNKNOWN;
	}
	if (http >= 200 && http < 300 && grpc == 0)
		return 0;
	switch (grpc) {
	case 0:
		break;
	case 3: /* InvalidArgument */
		if (strstr(m, "too large") || strstr(m, "too many operations"))
			return -EFBIG;
		if (strstr(m, "user name is empty") || strstr(m, "authentication failed"))
			return -EACCES;
		return -EINVAL;
	case 11: /* OutOfRange */
		return strstr(m, "compacted") ? ETCD_E_COMPACTED : -EINVAL;
	case 7:  /* PermissionDenied */
	case 16: /* Unauthenticated (after the one re-authentication) */
		return -EACCES;
	case 8: /* ResourceExhausted: NOSPACE */
		return -ENOSPC;
	case 5:
		return -ENOENT;
	case 6:
		return -EEXIST;
	case 9:  /* FailedPrecondition: not leader, auth not enabled, ... */
	case 12: /* Unimplemented */
		return -EINVAL;
	case 1:  /* Canceled */
	case 2:  /* Unknown: "context deadline exceeded" (500) */
	case 4:  /* DeadlineExceeded */
	case 10: /* Aborted */
	case 13: /* Internal (500) */
	case 14: /* Unavailable: no leader, request timed out, leader changed */
		return ETCD_E_UNKNOWN;
	default:
		return -EIO;
	}
	switch (http) {
	case 400:
	case 404:
	case 405:
	case 421:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 413:
		return -EFBIG;
	case 429:
		return -ENOSPC;
	case 500:
	case 502:
	case 503:
	case 504:
		return ETCD_E_UNKNOWN;
	default:
		return -EIO;
	}
}

int etcd_watch_errno(const struct etcd_watch_msg *m)
{
	if (m->kind == ETCD_WATCH_ERROR)
		return etcd_errno(CURLE_OK, true, m->http_code, m->grpc_code, m->message);
	if (m->kind != ETCD_WATCH_CANCELED)
		return 0;
	if (m->compact_revision > 0)
		return ETCD_E_COMPACTED;
	/* "rpc error: code = PermissionDenied desc = etcdserver: permission denied" */
	if (strstr(m->cancel_reason, "ermission") || strstr(m->cancel_reason, "Unauthenticated"))
		return -EACCES;
	return -ECANCELED;
}

int etcd_answer_errno(bool writes, int rc)
{
	/* Answered 200: whatever a write asked may have been done. */
	return writes ? ETCD_E_UNKNOWN : rc;
}

int exchange_errno(struct etcd *e, const struct call *c, const struct outcome *oc)
{
	const char *where = e->endpoints[oc->endpoint];
	if (c->answer->too_big) {
		int rc = oc->http == 200 ? etcd_answer_errno(c->writes, -EFBIG) : -EFBIG;
		log_error("etcd: %s%s: answer over %u bytes: %s", where, c->path, ETCD_WIRE_MSG_MAX,
			  rc == ETCD_E_UNKNOWN ? "its outcome is unknown" : strerror(-rc));
		return rc;
	}
	int grpc = 0;
	char msg[256] = "";
	if (oc->curl == CURLE_OK && c->answer->len > 0)
		etcd_wire_error(c->answer->data, c->answer->len, &grpc, msg, sizeof(msg));
	int rc = etcd_errno(oc->curl, oc->sent, oc->http, grpc, msg);
	log_warn("etcd: %s%s: %s (curl: %s, http %ld, grpc %d: %s)", where, c->path, strerror(-rc),
		 curl_easy_strerror(oc->curl), oc->http, grpc, msg);
	return rc;
}
