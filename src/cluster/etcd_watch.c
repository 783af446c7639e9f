/*
 * etcd_watch: one watch on one HTTP connection, on the caller's thread.
 * Contract: include/cluster/etcd.h (etcd_watch).
 *
 * Through the gateway a watch is a POST whose body holds the create request
 * and whose answer is a chunked stream of JSON lines that never ends by
 * itself; the final error object has no newline. libcurl hands the body
 * over in arbitrary slices, so the lines are framed by etcd_lines and the
 * tail parsed when the transfer ends. A member that is frozen sends nothing
 * at all: the progress callback (called about once a second even when
 * idle) is the watchdog.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/internal.h"
#include "util/log.h"

/* Internal: the watch was refused for an expired token (it answers
 * created+canceled "Unauthenticated", not a 401): authenticate, try again. */
#define WATCH_REAUTH (-EKEYEXPIRED)

struct watch {
	etcd_watch_fn fn;
	void *ctx;
	atomic_bool *stop;
	long idle_ms;
	struct timespec last_line;
	struct etcd_lines lines;
	struct body error_body; /* a non-200 answer, kept whole */
	CURL *h;
	int result;     /* why the stream was ended here; 0: it was not */
	bool ended;
	bool got_line;
};

static long ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void end(struct watch *w, int result)
{
	if (!w->ended) {
		w->ended = true;
		w->result = result;
	}
}

static int on_line(void *ctx, const char *line, size_t len)
{
	struct watch *w = ctx;
	struct etcd_watch_msg m;
	clock_gettime(CLOCK_MONOTONIC, &w->last_line);
	w->got_line = true;
	int rc = etcd_wire_watch_msg(line, len, &m);
	if (rc) {
		log_error("etcd: watch: malformed message (%zu bytes)", len);
		end(w, rc);
		return rc;
	}
	if (m.kind == ETCD_WATCH_CANCELED && strstr(m.cancel_reason, "Unauthenticated")) {
		log_info("etcd: watch: token refused (%s)", m.cancel_reason);
		end(w, WATCH_REAUTH);
		etcd_watch_msg_free(&m);
		return 1;
	}
	int verdict = w->fn(w->ctx, &m);
	if (verdict < 0) {
		end(w, verdict);
	} else if (verdict > 0) {
		end(w, 0);
	} else if (m.kind == ETCD_WATCH_CANCELED) {
		if (m.compact_revision > 0) {
			log_warn("etcd: watch: start revision compacted (oldest kept: %lld)",
				 (long long)m.compact_revision);
			end(w, ETCD_E_COMPACTED);
		} else {
			log_warn("etcd: watch: canceled: %s", m.cancel_reason);
			end(w, strstr(m.cancel_reason, "ermission") ? -EACCES : -ECANCELED);
		}
	} else if (m.kind == ETCD_WATCH_ERROR) {
		log_warn("etcd: watch: stream error %d: %s", m.grpc_code, m.message);
		end(w, etcd_errno(CURLE_OK, true, m.http_code, m.grpc_code, m.message));
	}
	etcd_watch_msg_free(&m);
	return w->ended ? 1 : 0;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct watch *w = userdata;
	size_t n = size * nmemb;
	long http = 0;
	curl_easy_getinfo(w->h, CURLINFO_RESPONSE_CODE, &http);
	if (http != 200) /* an error answer: one JSON object, parsed at the end */
		return body_write(ptr, size, nmemb, &w->error_body);
	if (w->ended)
		return 0;
	int rc = etcd_lines_feed(&w->lines, ptr, n, on_line, w);
	if (rc < 0)
		end(w, rc);
	/* Fewer bytes than given aborts the transfer: how a watch is closed. */
	return w->ended ? 0 : n;
}

static int watch_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	struct watch *w = clientp;
	if (w->stop && atomic_load(w->stop)) {
		end(w, -EINTR);
		return 1;
	}
	if (ms_since(&w->last_line) > w->idle_ms) {
		log_warn("etcd: watch: no message for %ld ms; closing it", w->idle_ms);
		end(w, ETCD_E_UNKNOWN);
		return 1;
	}
	return 0;
}

/* One attempt on endpoint i. 0 with *oc set, or an errno of the set-up. */
static int attempt(struct etcd *e, size_t i, const char *body, const char *token,
		   struct watch *w, struct outcome *oc)
{
	char url[600];
	snprintf(url, sizeof(url), "%s/v3/watch", e->endpoints[i]);
	CURL *h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	struct curl_slist *hdrs = headers(token, "Grpc-Metadata-Hasleader: true");
	int rc = hdrs ? common_opts(e, h, url) : -ENOMEM;
	CURLcode c = CURLE_OK;
#define SET(opt, val)                                      \
	do {                                               \
		if (c == CURLE_OK)                         \
			c = curl_easy_setopt(h, opt, val); \
	} while (0)
	SET(CURLOPT_HTTPHEADER, hdrs);
	SET(CURLOPT_POSTFIELDS, body);
	SET(CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	SET(CURLOPT_WRITEFUNCTION, watch_write);
	SET(CURLOPT_WRITEDATA, w);
	SET(CURLOPT_NOPROGRESS, 0L);
	SET(CURLOPT_XFERINFOFUNCTION, watch_progress);
	SET(CURLOPT_XFERINFODATA, w);
#undef SET
	if (rc || c) {
		rc = rc ? rc : -ENOMEM;
		goto out;
	}
	w->h = h;
	clock_gettime(CLOCK_MONOTONIC, &w->last_line);
	oc->curl = curl_easy_perform(h);
	long sent = 0;
	oc->http = 0;
	curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &oc->http);
	oc->sent = sent > 0;
	/* The stream's last word has no newline. */
	if (!w->ended && oc->http == 200 && oc->curl == CURLE_OK) {
		rc = etcd_lines_finish(&w->lines, on_line, w);
		if (rc < 0)
			end(w, rc);
		rc = 0;
	}
out:
	curl_easy_cleanup(h);
	free_headers(hdrs);
	w->h = NULL;
	return rc;
}

int etcd_watch(struct etcd *e, const struct etcd_watch_req *req, etcd_watch_fn fn, void *ctx,
	       atomic_bool *stop)
{
	char *body;
	int rc = etcd_wire_watch_request(req, &body);
	if (rc)
		return rc;
	struct watch w = { .fn = fn, .ctx = ctx, .stop = stop, .idle_ms = e->watch_idle_ms };
	etcd_lines_init(&w.lines, ETCD_WIRE_MSG_MAX);
	bool reauthed = false;
	size_t start = atomic_load(&e->current);
	size_t k = 0;
	while (k < e->n_endpoints) {
		size_t i = (start + k) % e->n_endpoints;
		char *token;
		pthread_mutex_lock(&e->lock); /* authenticate uses the unary handle */
		rc = token_copy(e, &token);
		pthread_mutex_unlock(&e->lock);
		if (rc)
			break;
		struct outcome oc = { 0 };
		rc = attempt(e, i, body, token, &w, &oc);
		free_token(token);
		if (rc)
			break;
		bool expired = w.ended && w.result == WATCH_REAUTH;
		if (w.ended && !expired) {
			rc = w.result;
			break;
		}
		if (oc.curl != CURLE_OK && !oc.sent) {
			log_info("etcd: watch on %s: not sent (%s); trying the next endpoint",
				 e->endpoints[i], curl_easy_strerror(oc.curl));
			k++;
			continue;
		}
		if ((expired || (oc.curl == CURLE_OK && oc.http == 401)) && e->user) {
			if (reauthed) {
				rc = -EACCES;
				break;
			}
			log_info("etcd: watch: token refused; authenticating again");
			reauthed = true;
			w.ended = false;
			w.result = 0;
			w.lines.len = 0;
			pthread_mutex_lock(&e->lock);
			rc = authenticate(e);
			pthread_mutex_unlock(&e->lock);
			body_reset(&w.error_body);
			if (rc)
				break;
			continue;
		}
		int grpc = 0;
		char msg[256] = "";
		if (oc.curl == CURLE_OK && oc.http != 200 && w.error_body.len > 0)
			etcd_wire_error(w.error_body.data, w.error_body.len, &grpc, msg, sizeof(msg));
		rc = etcd_errno(oc.curl, oc.sent, oc.http, grpc, msg);
		if (rc == 0) /* a 200 stream that ended without its error object */
			rc = ETCD_E_UNKNOWN;
		log_warn("etcd: watch on %s ended: %s (curl: %s, http %ld, grpc %d: %s)",
			 e->endpoints[i], strerror(-rc), curl_easy_strerror(oc.curl), oc.http, grpc,
			 msg);
		break;
	}
	if (k == e->n_endpoints)
		rc = ETCD_E_NOTSENT;
	if (rc == ETCD_E_UNKNOWN || rc == ETCD_E_NOTSENT)
		atomic_store(&e->current, (start + k + 1) % e->n_endpoints);
	free(body);
	free(w.error_body.data);
	etcd_lines_free(&w.lines);
	return rc;
}
