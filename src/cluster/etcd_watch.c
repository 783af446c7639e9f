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
 * idle) is the watchdog. Failover and the token are etcd_call's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/internal.h"
#include "util/log.h"

struct watch {
	etcd_watch_fn fn;
	void *ctx;
	atomic_bool *stop;
	long idle_ms;
	struct timespec last_line;
	struct etcd_lines lines;
	struct body error_body; /* a non-200 answer, kept whole */
	CURL *h;
	int result; /* why the stream was ended here */
	bool ended;
	bool token_refused; /* canceled "Unauthenticated": the token expired */
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
	int rc = etcd_wire_watch_msg(line, len, &m);
	if (rc == -EPROTO)
		log_error("etcd: watch: refused: a fragment of a revision's events (this client "
			  "never asks for fragments; it takes whole revisions only)");
	else if (rc)
		log_error("etcd: watch: malformed message (%zu bytes)", len);
	if (rc) {
		end(w, rc);
		return rc;
	}
	if (m.kind == ETCD_WATCH_CANCELED && strstr(m.cancel_reason, "Unauthenticated")) {
		log_info("etcd: watch: token refused (%s)", m.cancel_reason);
		w->token_refused = true;
		end(w, etcd_watch_errno(&m));
		etcd_watch_msg_free(&m);
		return 1;
	}
	int verdict = w->fn(w->ctx, &m);
	if (verdict < 0) {
		end(w, verdict);
	} else if (verdict > 0) {
		end(w, 0);
	} else if (m.kind == ETCD_WATCH_CANCELED || m.kind == ETCD_WATCH_ERROR) {
		log_warn("etcd: watch: %s (compacted before revision %lld; gRPC code %d: %s)",
			 m.kind == ETCD_WATCH_ERROR ? "stream error" : "canceled",
			 (long long)m.compact_revision, m.grpc_code,
			 m.kind == ETCD_WATCH_ERROR ? m.message : m.cancel_reason);
		end(w, etcd_watch_errno(&m));
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

/* One watch on endpoint i, on a handle of its own: from the start each
 * time (a watch opened again after a refused token sees it all again). */
static int watch_attempt(struct etcd *e, const struct call *c, size_t i, const char *token,
			 struct outcome *oc)
{
	struct watch *w = c->write_ctx;
	w->ended = w->token_refused = false;
	w->result = 0;
	w->lines.len = 0;
	body_reset(&w->error_body);
	CURL *h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	CURLcode cc = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, watch_progress);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
	w->h = h;
	clock_gettime(CLOCK_MONOTONIC, &w->last_line);
	int rc = cc ? -ENOMEM : transfer(e, h, c, i, token, oc);
	if (!rc && !w->ended && oc->curl == CURLE_OK && oc->http == 200) {
		/* The stream's last word has no newline. */
		int frc = etcd_lines_finish(&w->lines, on_line, w);
		if (frc < 0)
			end(w, frc);
		if (!w->ended) {
			log_warn("etcd: watch on %s: the stream ended without its error object",
				 e->endpoints[i]);
			end(w, ETCD_E_UNKNOWN);
		}
	}
	curl_easy_cleanup(h);
	w->h = NULL;
	oc->token_refused = w->token_refused;
	oc->ended_here = w->ended;
	oc->verdict = w->result;
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
	struct call c = { .path = "/v3/watch", .body = body,
			  /* a member without a leader refuses or ends the watch */
			  .header = "Grpc-Metadata-Hasleader: true", .attempt = watch_attempt,
			  .write = watch_write, .write_ctx = &w, .answer = &w.error_body };
	rc = etcd_call(e, &c);
	free(body);
	body_free(&w.error_body);
	etcd_lines_free(&w.lines);
	return rc;
}
