/*
 * etcd: the libcurl transport under etcd_wire. Contract: include/cluster/etcd.h.
 *
 * The unary handle is reused (keep-alive) under the client's mutex, one
 * exchange at a time; a watch builds its own handle. Both go through
 * etcd_call (failover, the token and its renewal); what an exchange came to
 * is mapped in etcd_errno.c. The auth token is shared, under auth_lock.
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

/* The token is a credential: wiped before it is freed. */
static void token_free(char *t)
{
	if (t) {
		explicit_bzero(t, strlen(t));
		free(t);
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
	token_free(e->token);
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
static CURLcode common_opts(struct etcd *e, CURL *h, const char *url)
{
	CURLcode c = curl_easy_setopt(h, CURLOPT_URL, url);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, e->connect_timeout_ms);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 5L);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 2L);
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (!c)
		c = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (!c && e->ca_file)
		c = curl_easy_setopt(h, CURLOPT_CAINFO, e->ca_file);
	if (!c && e->cert_file)
		c = curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert_file);
	if (!c && e->key_file)
		c = curl_easy_setopt(h, CURLOPT_SSLKEY, e->key_file);
	return c;
}

/* Headers: JSON, plus extra when given, plus the token when given. */
static struct curl_slist *headers(const char *token, const char *extra)
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

/* Wiped (the Authorization line holds the token) and freed. */
static void free_headers(struct curl_slist *l)
{
	for (struct curl_slist *p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

int transfer(struct etcd *e, CURL *h, const struct call *c, size_t i, const char *token,
	     struct outcome *oc)
{
	char url[600];
	snprintf(url, sizeof(url), "%s%s", e->endpoints[i], c->path);
	*oc = (struct outcome){ .endpoint = i };
	struct curl_slist *hdrs = headers(token, c->header);
	CURLcode cc = hdrs ? common_opts(e, h, url) : CURLE_OUT_OF_MEMORY;
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, c->write);
	if (!cc)
		cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, c->write_ctx);
	if (!cc) {
		oc->curl = curl_easy_perform(h);
		long sent = 0;
		curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &oc->http);
		oc->sent = sent > 0;
	}
	/* The handle keeps the option pointers: cleared before they are freed. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	free_headers(hdrs);
	return cc ? -ENOMEM : 0;
}

/* A unary exchange: on the client's reused handle, within the request timeout. */
static int unary_attempt(struct etcd *e, const struct call *c, size_t i, const char *token,
			 struct outcome *oc)
{
	pthread_mutex_lock(&e->lock);
	curl_easy_reset(e->easy);
	body_reset(c->answer);
	int rc = curl_easy_setopt(e->easy, CURLOPT_TIMEOUT_MS, e->timeout_ms) == CURLE_OK
			 ? transfer(e, e->easy, c, i, token, oc)
			 : -ENOMEM;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* c on the current endpoint, then the next ones while nothing was sent.
 * 0 with *oc the exchange that was sent (its endpoint now the current
 * one) or, none sent, the last refusal; an errno when no attempt could
 * be made. */
static int failover(struct etcd *e, const struct call *c, const char *token, struct outcome *oc)
{
	size_t start = atomic_load(&e->current);
	for (size_t k = 0; k < e->n_endpoints; k++) {
		size_t i = (start + k) % e->n_endpoints;
		int rc = c->attempt(e, c, i, token, oc);
		if (rc)
			return rc;
		if (oc->curl == CURLE_OK || oc->sent || oc->ended_here) {
			atomic_store(&e->current, i);
			return 0;
		}
		log_info("etcd: %s%s: not sent (%s); trying the next endpoint", e->endpoints[i],
			 c->path, curl_easy_strerror(oc->curl));
	}
	atomic_store(&e->current, (start + 1) % e->n_endpoints);
	return 0;
}

/* What the exchange in *oc came to; an unknown outcome moves the start. */
static int verdict(struct etcd *e, const struct call *c, const struct outcome *oc)
{
	int rc = 0;
	if (oc->ended_here)
		rc = oc->verdict;
	else if (oc->curl != CURLE_OK || oc->http != 200)
		rc = exchange_errno(e, c, oc);
	if (rc == ETCD_E_UNKNOWN) /* the member may be frozen: start elsewhere next time */
		atomic_store(&e->current, (oc->endpoint + 1) % e->n_endpoints);
	return rc;
}

/* ---- auth --------------------------------------------------------------- */

/* A fresh token from /v3/auth/authenticate. 0 or -errno. */
static int authenticate(struct etcd *e)
{
	char *json;
	size_t cap;
	int rc = etcd_wire_auth_request(e->user, (const char *)e->password.data, &json, &cap);
	if (rc)
		return rc;
	struct body resp = { 0 };
	struct call c = { .path = "/v3/auth/authenticate", .body = json, .attempt = unary_attempt,
			  .write = body_write, .write_ctx = &resp, .answer = &resp };
	struct outcome oc;
	rc = failover(e, &c, NULL, &oc);
	explicit_bzero(json, cap);
	free(json);
	if (!rc)
		rc = verdict(e, &c, &oc);
	char *token = NULL;
	if (!rc)
		rc = etcd_wire_auth_response(resp.data, resp.len, &token);
	body_free(&resp);
	if (rc) {
		log_error("etcd: authentication as %s failed: %s", e->user, strerror(-rc));
		return rc;
	}
	pthread_mutex_lock(&e->auth_lock);
	token_free(e->token);
	e->token = token;
	pthread_mutex_unlock(&e->auth_lock);
	log_info("etcd: authenticated as %s", e->user);
	return 0;
}

/* A copy of the token (NULL without a user), authenticating first if none. */
static int token_copy(struct etcd *e, char **out)
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

/* ---- calls -------------------------------------------------------------- */

int etcd_call(struct etcd *e, const struct call *c)
{
	struct outcome oc;
	for (bool again = false;; again = true) {
		char *token;
		int rc = token_copy(e, &token);
		if (rc)
			return rc;
		rc = failover(e, c, token, &oc);
		token_free(token);
		if (rc)
			return rc;
		bool refused = oc.token_refused || (oc.curl == CURLE_OK && oc.http == 401);
		if (!refused || !e->user || again)
			break; /* refused again right after authenticating: -EACCES */
		/* Expired: refused before anything applied, so once more. */
		log_info("etcd: %s: token refused; authenticating again", c->path);
		if ((rc = authenticate(e)))
			return rc;
	}
	return verdict(e, c, &oc);
}

/* ---- unary calls ------------------------------------------------------- */

/* The wire layer's parser of one kind of answer. */
typedef int (*parse_fn)(const char *json, size_t len, void *out);

/* POSTs json (freed here) to path; a 200 answer is parsed into out. */
static int unary(struct etcd *e, const char *path, bool writes, char *json, parse_fn parse,
		 void *out)
{
	struct body resp = { 0 };
	struct call c = { .path = path, .body = json, .writes = writes, .attempt = unary_attempt,
			  .write = body_write, .write_ctx = &resp, .answer = &resp };
	int rc = etcd_call(e, &c);
	free(json);
	if (!rc && (rc = parse(resp.data, resp.len, out))) {
		log_error("etcd: %s: malformed answer (%s)%s", path, strerror(-rc),
			  writes ? ": its outcome is unknown" : "");
		rc = etcd_answer_errno(writes, rc);
	}
	body_free(&resp);
	return rc;
}

static int parse_range(const char *json, size_t len, void *out)
{
	return etcd_wire_range_response(json, len, out);
}

static int parse_put(const char *json, size_t len, void *out)
{
	return etcd_wire_put_response(json, len, out);
}

static int parse_delete(const char *json, size_t len, void *out)
{
	return etcd_wire_delete_response(json, len, out);
}

static int parse_txn(const char *json, size_t len, void *out)
{
	return etcd_wire_txn_response(json, len, out);
}

static int parse_header(const char *json, size_t len, void *out)
{
	return etcd_wire_header_response(json, len, out);
}

static int parse_status(const char *json, size_t len, void *out)
{
	return etcd_wire_status_response(json, len, out);
}

int etcd_range(struct etcd *e, const struct etcd_range_req *req, struct etcd_range_resp *out)
{
	char *json;
	memset(out, 0, sizeof(*out));
	int rc = etcd_wire_range_request(req, &json);
	return rc ? rc : unary(e, "/v3/kv/range", false, json, parse_range, out);
}

int etcd_put(struct etcd *e, const struct etcd_put_req *req, struct etcd_put_resp *out)
{
	char *json;
	memset(out, 0, sizeof(*out));
	int rc = etcd_wire_put_request(req, &json);
	return rc ? rc : unary(e, "/v3/kv/put", true, json, parse_put, out);
}

int etcd_delete_range(struct etcd *e, const struct etcd_delete_req *req,
		      struct etcd_delete_resp *out)
{
	char *json;
	memset(out, 0, sizeof(*out));
	int rc = etcd_wire_delete_request(req, &json);
	return rc ? rc : unary(e, "/v3/kv/deleterange", true, json, parse_delete, out);
}

int etcd_txn(struct etcd *e, const struct etcd_txn_req *req, struct etcd_txn_resp *out)
{
	char *json;
	memset(out, 0, sizeof(*out));
	int rc = etcd_wire_txn_request(req, &json);
	return rc ? rc : unary(e, "/v3/kv/txn", true, json, parse_txn, out);
}

int etcd_compact(struct etcd *e, int64_t revision, bool physical, struct etcd_header *out)
{
	char *json;
	memset(out, 0, sizeof(*out));
	int rc = etcd_wire_compaction_request(revision, physical, &json);
	return rc ? rc : unary(e, "/v3/kv/compaction", true, json, parse_header, out);
}

int etcd_status(struct etcd *e, struct etcd_status *out)
{
	memset(out, 0, sizeof(*out));
	char *json = strdup("{}");
	return json ? unary(e, "/v3/maintenance/status", false, json, parse_status, out) : -ENOMEM;
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
