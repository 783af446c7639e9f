/*
 * etcd: the libcurl transport under etcd_wire. Contract: include/cluster/etcd.h.
 *
 * The unary handle is reused (keep-alive) under the client's mutex; a watch
 * builds its own handle. The auth token is shared by both, under auth_lock.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/internal.h"
#include "util/log.h"

/* ---- the one error mapping --------------------------------------------- */

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

/* ---- set-up ------------------------------------------------------------ */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

static void global_init(void)
{
	global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int read_password(const char *path, struct secbuf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int rc = -errno;
		log_error("etcd: password file %s: %s", path, strerror(-rc));
		return rc;
	}
	int rc = secbuf_reserve(out, PASSWORD_MAX + 2);
	if (rc)
		goto out;
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, out->data + len, PASSWORD_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > PASSWORD_MAX) {
			log_error("etcd: refused: password file %s is over %d bytes", path,
				  PASSWORD_MAX);
			rc = -EINVAL;
			goto out;
		}
	}
	/* The first line is the password (a file written by echo ends in \n). */
	uint8_t *nl = memchr(out->data, '\n', len);
	if (nl)
		len = (size_t)(nl - out->data);
	if (len > 0 && out->data[len - 1] == '\r')
		len--;
	if (len == 0 || memchr(out->data, '\0', len)) {
		log_error("etcd: refused: password file %s holds no password", path);
		rc = -EINVAL;
		goto out;
	}
	out->data[len] = '\0';
	out->len = len;
out:
	close(fd);
	if (rc)
		secbuf_free(out);
	return rc;
}

static int dup_opt(const char *in, char **out)
{
	*out = NULL;
	if (!in)
		return 0;
	return (*out = strdup(in)) ? 0 : -ENOMEM;
}

int etcd_open(const struct etcd_config *cfg, struct etcd **out)
{
	*out = NULL;
	if (cfg->n_endpoints == 0 || cfg->n_endpoints > ETCD_ENDPOINTS_MAX) {
		log_error("etcd: refused: between 1 and %d endpoints", ETCD_ENDPOINTS_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->n_endpoints; i++) {
		const char *e = cfg->endpoints[i];
		if (!e || (strncmp(e, "http://", 7) != 0 && strncmp(e, "https://", 8) != 0) ||
		    strlen(e) > 512 || strpbrk(e, " \t\r\n")) {
			log_error("etcd: refused: endpoint '%s' is not an http:// or https:// URL",
				  e ? e : "");
			return -EINVAL;
		}
	}
	if ((cfg->user != NULL) != (cfg->password_file != NULL) ||
	    (cfg->user && (!*cfg->user || strlen(cfg->user) > 256))) {
		log_error("etcd: refused: a user needs a password file and the reverse");
		return -EINVAL;
	}
	if ((cfg->cert_file != NULL) != (cfg->key_file != NULL)) {
		log_error("etcd: refused: a client certificate needs its key and the reverse");
		return -EINVAL;
	}
	pthread_once(&global_once, global_init);
	if (global_rc != CURLE_OK)
		return -ENOMEM;

	struct etcd *e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->auth_lock, NULL);
	int rc = 0;
	for (size_t i = 0; i < cfg->n_endpoints && !rc; i++) {
		size_t n = strlen(cfg->endpoints[i]);
		while (n > 0 && cfg->endpoints[i][n - 1] == '/')
			n--;
		if (!(e->endpoints[i] = strndup(cfg->endpoints[i], n)))
			rc = -ENOMEM;
		e->n_endpoints = i + 1;
	}
	if (rc || (rc = dup_opt(cfg->user, &e->user)) || (rc = dup_opt(cfg->ca_file, &e->ca_file)) ||
	    (rc = dup_opt(cfg->cert_file, &e->cert_file)) ||
	    (rc = dup_opt(cfg->key_file, &e->key_file)))
		goto fail;
	if (cfg->user && (rc = read_password(cfg->password_file, &e->password)))
		goto fail;
	e->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 5000;
	e->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 1000;
	if (e->connect_timeout_ms > e->timeout_ms)
		e->connect_timeout_ms = e->timeout_ms;
	e->watch_idle_ms = cfg->watch_idle_ms > 0 ? cfg->watch_idle_ms : 10000;
	if (!(e->easy = curl_easy_init())) {
		rc = -ENOMEM;
		goto fail;
	}
	*out = e;
	return 0;
fail:
	etcd_close(e);
	return rc;
}

static void drop_token(struct etcd *e)
{
	if (e->token) {
		explicit_bzero(e->token, strlen(e->token));
		free(e->token);
		e->token = NULL;
	}
}

void etcd_close(struct etcd *e)
{
	if (!e)
		return;
	if (e->easy)
		curl_easy_cleanup(e->easy);
	for (size_t i = 0; i < e->n_endpoints; i++)
		free(e->endpoints[i]);
	free(e->user);
	secbuf_free(&e->password);
	free(e->ca_file);
	free(e->cert_file);
	free(e->key_file);
	drop_token(e);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->auth_lock);
	free(e);
}

const char *etcd_endpoint(struct etcd *e)
{
	return e->endpoints[atomic_load(&e->current) % e->n_endpoints];
}

/* ---- one HTTP exchange ------------------------------------------------- */

void body_free(struct body *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	if (n > ETCD_WIRE_MSG_MAX - b->len) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *d = malloc(cap);
		if (!d)
			return 0;
		if (b->data) {
			memcpy(d, b->data, b->len);
			explicit_bzero(b->data, b->cap);
			free(b->data);
		}
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

void body_reset(struct body *b)
{
	b->len = 0;
	b->too_big = false;
	if (b->data)
		b->data[0] = '\0';
}

/* The options every request shares: URL, timeouts, TLS, no signals. */
int common_opts(struct etcd *e, CURL *h, const char *url)
{
	CURLcode c = CURLE_OK;
#define SET(opt, val)                                      \
	do {                                               \
		if (c == CURLE_OK)                         \
			c = curl_easy_setopt(h, opt, val); \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 5L);
	SET(CURLOPT_TCP_KEEPINTVL, 2L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	if (e->ca_file)
		SET(CURLOPT_CAINFO, e->ca_file);
	if (e->cert_file) {
		SET(CURLOPT_SSLCERT, e->cert_file);
		SET(CURLOPT_SSLKEY, e->key_file);
	}
#undef SET
	return c == CURLE_OK ? 0 : -ENOMEM;
}

/* Headers: JSON, plus the token when given, plus extra. */
struct curl_slist *headers(const char *token, const char *extra)
{
	struct curl_slist *l = curl_slist_append(NULL, "Content-Type: application/json");
	if (l && extra && !(l = curl_slist_append(l, extra)))
		return NULL;
	if (l && token) {
		size_t n = strlen(token) + 32;
		char *hdr = malloc(n);
		if (!hdr) {
			curl_slist_free_all(l);
			return NULL;
		}
		snprintf(hdr, n, "Authorization: %s", token);
		struct curl_slist *l2 = curl_slist_append(l, hdr);
		explicit_bzero(hdr, n);
		free(hdr);
		if (!l2) {
			curl_slist_free_all(l);
			return NULL;
		}
		l = l2;
	}
	return l;
}

void free_headers(struct curl_slist *l)
{
	/* The Authorization line holds the token. */
	for (struct curl_slist *p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* One POST of body to endpoint i + path, the answer into resp. */
static int post(struct etcd *e, size_t i, const char *path, const char *body,
		const char *token, struct body *resp, struct outcome *oc)
{
	char url[600];
	snprintf(url, sizeof(url), "%s%s", e->endpoints[i], path);
	CURL *h = e->easy;
	curl_easy_reset(h);
	int rc = common_opts(e, h, url);
	struct curl_slist *hdrs = headers(token, NULL);
	if (rc || !hdrs) {
		free_headers(hdrs);
		return -ENOMEM;
	}
	body_reset(resp);
	CURLcode c = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, e->timeout_ms);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	if (c) {
		free_headers(hdrs);
		return -ENOMEM;
	}
	oc->curl = curl_easy_perform(h);
	long sent = 0;
	oc->http = 0;
	curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &oc->http);
	oc->sent = sent > 0;
	/* The handle keeps the option pointers: clear them before the free. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	free_headers(hdrs);
	return 0;
}

/* POST to the current endpoint, to the next ones while nothing was sent.
 * Returns 0 with *oc describing the exchange that was sent, or an errno. */
static int post_failover(struct etcd *e, const char *path, const char *body, const char *token,
			 struct body *resp, struct outcome *oc)
{
	size_t start = atomic_load(&e->current);
	for (size_t k = 0; k < e->n_endpoints; k++) {
		size_t i = (start + k) % e->n_endpoints;
		int rc = post(e, i, path, body, token, resp, oc);
		if (rc)
			return rc;
		if (oc->curl == CURLE_OK || oc->sent) {
			atomic_store(&e->current, i);
			return 0;
		}
		log_info("etcd: %s%s: not sent (%s); trying the next endpoint", e->endpoints[i],
			 path, curl_easy_strerror(oc->curl));
	}
	atomic_store(&e->current, (start + 1) % e->n_endpoints);
	return 0; /* *oc: the last refusal, mapped by the caller */
}

/* Maps an exchange that did not answer 200, logging etcd's message. */
static int exchange_errno(struct etcd *e, const char *path, const struct outcome *oc,
			  const struct body *resp)
{
	if (resp->too_big) {
		/* Sent, and answered: whatever it asked may have been done. */
		log_error("etcd: %s: answer over %u bytes; its outcome is unknown", path,
			  ETCD_WIRE_MSG_MAX);
		return oc->http == 200 ? ETCD_E_UNKNOWN : -EFBIG;
	}
	int grpc = 0;
	char msg[256] = "";
	if (oc->curl == CURLE_OK && resp->len > 0)
		etcd_wire_error(resp->data, resp->len, &grpc, msg, sizeof(msg));
	int rc = etcd_errno(oc->curl, oc->sent, oc->http, grpc, msg);
	log_warn("etcd: %s%s: %s (curl: %s, http %ld, grpc %d: %s)", etcd_endpoint(e), path,
		 strerror(-rc), curl_easy_strerror(oc->curl), oc->http, grpc, msg);
	if (rc == ETCD_E_UNKNOWN) /* the member may be frozen: start elsewhere next time */
		atomic_store(&e->current, (atomic_load(&e->current) + 1) % e->n_endpoints);
	return rc;
}

/* ---- auth --------------------------------------------------------------- */

/* Gets a fresh token (the unary lock held). 0 or -errno. */
int authenticate(struct etcd *e)
{
	char *json;
	size_t cap;
	int rc = etcd_wire_auth_request(e->user, (const char *)e->password.data, &json, &cap);
	if (rc)
		return rc;
	struct body resp = { 0 };
	struct outcome oc;
	rc = post_failover(e, "/v3/auth/authenticate", json, NULL, &resp, &oc);
	explicit_bzero(json, cap);
	free(json);
	if (!rc && (oc.curl != CURLE_OK || oc.http != 200))
		rc = exchange_errno(e, "/v3/auth/authenticate", &oc, &resp);
	char *token = NULL;
	if (!rc)
		rc = etcd_wire_auth_response(resp.data, resp.len, &token);
	if (resp.data)
		explicit_bzero(resp.data, resp.cap);
	free(resp.data);
	if (rc) {
		log_error("etcd: authentication as %s failed: %s", e->user, strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&e->auth_lock);
	drop_token(e);
	e->token = token;
	pthread_mutex_unlock(&e->auth_lock);
	log_info("etcd: authenticated as %s", e->user);
	return 0;
}

/* A copy of the token (NULL without auth), authenticating first if none. */
int token_copy(struct etcd *e, char **out)
{
	*out = NULL;
	if (!e->user)
		return 0;
	pthread_mutex_lock(&e->auth_lock);
	bool have = e->token != NULL;
	pthread_mutex_unlock(&e->auth_lock);
	if (!have) {
		int rc = authenticate(e);
		if (rc)
			return rc;
	}
	pthread_mutex_lock(&e->auth_lock);
	*out = e->token ? strdup(e->token) : NULL;
	pthread_mutex_unlock(&e->auth_lock);
	return *out ? 0 : -ENOMEM;
}

void free_token(char *t)
{
	if (t) {
		explicit_bzero(t, strlen(t));
		free(t);
	}
}

/* ---- unary calls ------------------------------------------------------- */

/* POST body to path; on success *resp holds the 200 answer. */
static int unary(struct etcd *e, const char *path, const char *body, struct body *resp)
{
	struct outcome oc;
	int rc = 0;
	pthread_mutex_lock(&e->lock);
	for (int attempt = 0; attempt < 2; attempt++) {
		char *token;
		if ((rc = token_copy(e, &token)))
			break;
		rc = post_failover(e, path, body, token, resp, &oc);
		free_token(token);
		if (rc)
			break;
		if (oc.curl == CURLE_OK && oc.http == 401 && e->user && attempt == 0) {
			/* Expired token: refused before anything applied, so once more. */
			log_info("etcd: %s: token refused; authenticating again", path);
			if ((rc = authenticate(e)))
				break;
			continue;
		}
		if (oc.curl != CURLE_OK || oc.http != 200)
			rc = exchange_errno(e, path, &oc, resp);
		break;
	}
	pthread_mutex_unlock(&e->lock);
	return rc;
}

#define UNARY(e, path, build, parse, out)                                         \
	do {                                                                      \
		char *json_;                                                      \
		int rc_ = (build);                                                \
		if (rc_)                                                          \
			return rc_;                                               \
		struct body resp_ = { 0 };                                        \
		rc_ = unary((e), (path), json_, &resp_);                          \
		free(json_);                                                      \
		if (!rc_ && (rc_ = parse(resp_.data, resp_.len, (out)))) {        \
			/* answered 200: what it asked may have been done */      \
			log_error("etcd: %s: malformed answer", (path));          \
			rc_ = ETCD_E_UNKNOWN;                                     \
		}                                                                 \
		body_free(&resp_);                                                \
		return rc_;                                                       \
	} while (0)

int etcd_range(struct etcd *e, const struct etcd_range_req *req, struct etcd_range_resp *out)
{
	memset(out, 0, sizeof(*out));
	UNARY(e, "/v3/kv/range", etcd_wire_range_request(req, &json_), etcd_wire_range_response,
	      out);
}

int etcd_put(struct etcd *e, const struct etcd_put_req *req, struct etcd_put_resp *out)
{
	memset(out, 0, sizeof(*out));
	UNARY(e, "/v3/kv/put", etcd_wire_put_request(req, &json_), etcd_wire_put_response, out);
}

int etcd_delete_range(struct etcd *e, const struct etcd_delete_req *req,
		      struct etcd_delete_resp *out)
{
	memset(out, 0, sizeof(*out));
	UNARY(e, "/v3/kv/deleterange", etcd_wire_delete_request(req, &json_),
	      etcd_wire_delete_response, out);
}

int etcd_txn(struct etcd *e, const struct etcd_txn_req *req, struct etcd_txn_resp *out)
{
	memset(out, 0, sizeof(*out));
	UNARY(e, "/v3/kv/txn", etcd_wire_txn_request(req, &json_), etcd_wire_txn_response, out);
}

int etcd_compact(struct etcd *e, int64_t revision, bool physical, struct etcd_header *out)
{
	memset(out, 0, sizeof(*out));
	UNARY(e, "/v3/kv/compaction", etcd_wire_compaction_request(revision, physical, &json_),
	      etcd_wire_header_response, out);
}

static int empty_request(char **json)
{
	return (*json = strdup("{}")) ? 0 : -ENOMEM;
}

int etcd_status(struct etcd *e, struct etcd_status *out)
{
	memset(out, 0, sizeof(*out));
	UNARY(e, "/v3/maintenance/status", empty_request(&json_), etcd_wire_status_response, out);
}


int etcd_prefer_leader(struct etcd *e)
{
	size_t start = atomic_load(&e->current);
	for (size_t k = 0; k < e->n_endpoints; k++) {
		struct etcd_status st;
		atomic_store(&e->current, (start + k) % e->n_endpoints);
		/* The call fails over by itself while nothing is sent: the member
		 * that answered says whether it leads, and is current now. An
		 * error has been logged, and asking the others would only say
		 * it again. */
		int rc = etcd_status(e, &st);
		if (rc) {
			atomic_store(&e->current, start);
			return rc;
		}
		if (st.leader && st.leader == st.header.member_id) {
			if (atomic_load(&e->current) != start)
				log_info("etcd: %s is the leader: commits go there first",
					 etcd_endpoint(e));
			return 0;
		}
	}
	atomic_store(&e->current, start);
	return -ENOENT;
}
