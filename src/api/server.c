/*
 * The API's HTTP server on libmicrohttpd: the listeners (the API's, and
 * the Agent's when it has its own), their limits (connections, time,
 * memory, body size), the body of a request collected into locked memory,
 * and the answer queued (a secure one wiped once sent).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "api/internal.h"
#include "util/log.h"

/* A request while its body arrives. */
struct pending {
	struct secbuf body;
	struct timespec started;
	bool too_big;
	bool no_memory;
};

/* Seconds since the request's headers came. */
static long elapsed_s(const struct pending *p)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - p->started.tv_sec);
}

void reply_free(struct reply *r)
{
	free(r->body);
	secbuf_free(&r->text);
	memset(r, 0, sizeof(*r));
}

void reply_error(struct reply *r, unsigned status, const char *type, const char *message)
{
	struct json_object *o = json_object_new_object();
	reply_free(r);
	r->status = status;
	r->content_type = "application/x-amz-json-1.1";
	if (o) {
		json_object_object_add(o, "__type", json_object_new_string(type));
		json_object_object_add(o, "message", json_object_new_string(message));
		const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
		r->body = t ? strdup(t) : NULL;
		r->len = r->body ? strlen(r->body) : 0;
		json_object_put(o);
	}
}

void server_client_address(struct MHD_Connection *conn, char *buf, size_t len)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	snprintf(buf, len, "?");
	if (!info || !info->client_addr)
		return;
	const struct sockaddr *sa = info->client_addr;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)len);
}

/* Wipes and frees a secure answer once libmicrohttpd has sent it. */
static void free_secure(void *cls)
{
	struct secbuf *text = cls;
	secbuf_free(text);
	free(text);
}

static enum MHD_Result queue(struct MHD_Connection *conn, struct reply *r)
{
	struct MHD_Response *resp;
	if (r->secure) {
		struct secbuf *text = malloc(sizeof(*text));
		if (!text) {
			reply_free(r);
			return MHD_NO;
		}
		*text = r->text;
		memset(&r->text, 0, sizeof(r->text));
		resp = MHD_create_response_from_buffer_with_free_callback_cls(text->len, text->data,
									    free_secure, text);
		if (!resp)
			free_secure(text);
	} else {
		resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
		if (resp)
			r->body = NULL; /* libmicrohttpd frees it */
	}
	if (!resp) {
		reply_free(r);
		return MHD_NO;
	}
	char request_id[37];
	keyring_new_uuid(request_id);
	MHD_add_response_header(resp, "x-amzn-RequestId", request_id);
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	enum MHD_Result ok = MHD_queue_response(conn, r->status ? r->status : 200, resp);
	MHD_destroy_response(resp);
	reply_free(r);
	return ok;
}

static void too_large(struct api *api, struct reply *r)
{
	char message[160];
	size_t max = api->opt.max_body;
	snprintf(message, sizeof(message), "The request body is larger than this endpoint accepts "
		 "(%zu bytes).", max);
	reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "RequestEntityTooLargeException", message);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct api_listener *l = cls;
	struct api *api = l->api;
	struct pending *p = *con_cls;
	struct reply r = { 0 };
	(void)version;

	if (!p) {
		if (strcmp(method, "POST") != 0 || l->agent_only) {
			/* The Agent's routes (and every other method) answer at once. */
			agent_request(api, conn, method, url, &r);
			return queue(conn, &r);
		}
		if (!(p = calloc(1, sizeof(*p))))
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &p->started);
		*con_cls = p;
		const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
								 MHD_HTTP_HEADER_CONTENT_LENGTH);
		unsigned long long declared = length ? strtoull(length, NULL, 10) : 0;
		if (declared > api->opt.max_body) {
			/* Refused before the body is read; libmicrohttpd drops the rest. */
			log_warn("api: refused: a request body of %llu bytes is over the limit of %zu",
				 declared, api->opt.max_body);
			too_large(api, &r);
			return queue(conn, &r);
		}
		if (declared && secbuf_reserve(&p->body, (size_t)declared))
			p->no_memory = true;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		/* The idle timeout bounds a silent client; this one that trickles. */
		if (elapsed_s(p) > (long)api->opt.timeout_s) {
			log_warn("api: a request body still arriving after %u seconds: connection "
				 "closed", api->opt.timeout_s);
			return MHD_NO;
		}
		if (p->too_big || p->no_memory)
			return MHD_YES;
		if (p->body.len + n > api->opt.max_body) {
			log_warn("api: refused: a request body over the limit of %zu bytes",
				 api->opt.max_body);
			p->too_big = true;
			secbuf_free(&p->body);
			return MHD_YES;
		}
		if (p->body.len + n > p->body.cap) {
			size_t want = p->body.cap * 2 > p->body.len + n ? p->body.cap * 2 : p->body.len + n;
			if (want > api->opt.max_body)
				want = api->opt.max_body;
			if (secbuf_reserve(&p->body, want)) {
				p->no_memory = true;
				secbuf_free(&p->body);
				return MHD_YES;
			}
		}
		memcpy(p->body.data + p->body.len, upload_data, n);
		p->body.len += n;
		return MHD_YES;
	}
	if (p->too_big) {
		too_large(api, &r);
	} else if (p->no_memory) {
		log_error("api: out of locked memory for a request body");
		reply_error(&r, 400, "ThrottlingException",
			    "The server is out of locked memory for requests; retry.");
	} else {
		struct http_request req = { conn, method, url, p->body.data, p->body.len };
		dispatch_call(api, &req, &r);
	}
	return queue(conn, &r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct pending *p = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;
	if (p) {
		secbuf_free(&p->body);
		free(p);
		*con_cls = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	log_warn("api: %s", line);
}

/* ADDR:PORT (IPv4 or [IPv6]) into ss; *loopback whether it is. */
static int parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *sslen,
			bool *loopback)
{
	char host[128];
	const char *colon = strrchr(text, ':');
	if (!colon || colon == text || (size_t)(colon - text) >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, (size_t)(colon - text));
	host[colon - text] = '\0';
	char *h = host;
	if (h[0] == '[') {
		size_t n = strlen(h);
		if (n < 3 || h[n - 1] != ']')
			return -EINVAL;
		h[n - 1] = '\0';
		h++;
	}
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || port < 0 || port > 65535)
		return -EINVAL;
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM }, *ai;
	if (getaddrinfo(h, NULL, &hints, &ai) != 0)
		return -EINVAL;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sslen = ai->ai_addrlen;
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_port = htons((uint16_t)port);
		*loopback = (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_port = htons((uint16_t)port);
		*loopback = IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
	}
	return 0;
}

static int start_listener(struct api *api, const char *where, bool agent_only,
			  struct MHD_Daemon **out, unsigned *port)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool loopback;
	if (parse_listen(where, &ss, &sslen, &loopback)) {
		log_error("api: cannot listen on %s: give ADDR:PORT, ADDR an IPv4 address or [IPv6]",
			  where);
		return -EINVAL;
	}
	if (!loopback && (api->opt.auth_none || agent_only)) {
		log_error("api: refused to listen on %s: %s is for the loopback address only",
			  where, agent_only ? "the Agent's endpoint" : "--auth none");
		return -EPERM;
	}
	if (!loopback && !api->tls_cert_pem)
		log_warn("api: listening on %s without TLS: values cross the network in clear "
			 "(give --tls-cert and --tls-key)", where);
	struct api_listener *l = &api->listeners[agent_only];
	l->api = api;
	l->agent_only = agent_only;
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
			 (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
			 (api->tls_cert_pem ? MHD_USE_TLS : 0);
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, api->tls_cert_pem },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, api->tls_key_pem },
		{ MHD_OPTION_END, 0, NULL },
	};
	struct MHD_OptionItem none[] = { { MHD_OPTION_END, 0, NULL } };
	*out = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, api->opt.max_connections,
				MHD_OPTION_CONNECTION_TIMEOUT, api->opt.timeout_s,
				MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64u << 10),
				MHD_OPTION_THREAD_POOL_SIZE, api->opt.threads,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				MHD_OPTION_ARRAY, api->tls_cert_pem ? tls : none,
				MHD_OPTION_END);
	if (!*out) {
		log_error("api: cannot listen on %s (in use, or not an address of this host)", where);
		return -EADDRINUSE;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(*out, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : 0;
	log_info("api: %s listening on %s (port %u)%s", agent_only ? "the Agent's endpoint" :
		 "the Secrets Manager API", where, *port, api->tls_cert_pem ? " over TLS" : "");
	return 0;
}

/* A PEM file into memory (it is handed to libmicrohttpd as text). */
static int read_pem(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t len = 0;
	if (!f)
		return -errno;
	FILE *mem = open_memstream(&text, &len);
	char buf[4096];
	size_t n;
	while (mem && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, mem);
	int bad = ferror(f);
	fclose(f);
	if (!mem || fclose(mem) || bad) {
		free(text);
		return -EIO;
	}
	*out = text;
	return 0;
}

static int load_credentials(struct api *api, const char *path)
{
	int rc = sigv4_credentials_load(path, &api->credentials);
	if (rc == -EPERM)
		log_error("api: %s: refused: a credentials file must be a regular file of mode 0600 "
			  "(or stricter) owned by this user", path);
	else if (rc == -ENOENT)
		log_error("api: %s: no such credentials file", path);
	else if (rc)
		log_error("api: %s: cannot load the credentials: %s", path, strerror(-rc));
	else
		log_info("api: %zu access keys from %s", sigv4_credentials_count(api->credentials),
			 path);
	return rc;
}

int api_start(struct sm *sm, const struct api_options *opt, struct api **out)
{
	struct api *api = calloc(1, sizeof(*api));
	int rc;

	*out = NULL;
	if (!api)
		return -ENOMEM;
	api->sm = sm;
	api->opt = *opt;
	/* The Agent's token is the api's own copy, wiped when it stops. */
	if (opt->agent_token && !(api->opt.agent_token = api->agent_token = strdup(opt->agent_token))) {
		free(api);
		return -ENOMEM;
	}
	if (!api->opt.max_body)
		api->opt.max_body = API_DEFAULT_MAX_BODY;
	if (!api->opt.max_connections)
		api->opt.max_connections = API_DEFAULT_CONNECTIONS;
	if (!api->opt.timeout_s)
		api->opt.timeout_s = API_DEFAULT_TIMEOUT_S;
	if (!api->opt.threads)
		api->opt.threads = API_DEFAULT_THREADS;
	if (!opt->auth_none && !opt->credentials_file) {
		log_error("api: no credentials: give a credentials file (or --auth none on loopback)");
		rc = -EINVAL;
		goto fail;
	}
	if (!opt->auth_none && (rc = load_credentials(api, opt->credentials_file)))
		goto fail;
	if (opt->tls_cert || opt->tls_key) {
		if (!opt->tls_cert || !opt->tls_key) {
			log_error("api: TLS needs both a certificate and its key");
			rc = -EINVAL;
			goto fail;
		}
		if ((rc = read_pem(opt->tls_cert, &api->tls_cert_pem)) ||
		    (rc = read_pem(opt->tls_key, &api->tls_key_pem))) {
			log_error("api: cannot read %s: %s", api->tls_cert_pem ? opt->tls_key : opt->tls_cert,
				  strerror(-rc));
			goto fail;
		}
	}
	if ((rc = audit_open(opt->audit_log, opt->audit_required, sm, &api->audit))) {
		log_error("api: cannot open the audit log %s: %s", opt->audit_log, strerror(-rc));
		goto fail;
	}
	if ((rc = start_listener(api, opt->listen, false, &api->daemon, &api->port)))
		goto fail;
	if (opt->agent_listen &&
	    (rc = start_listener(api, opt->agent_listen, true, &api->agent_daemon, &api->agent_port)))
		goto fail;
	if (opt->auth_none)
		log_warn("api: AUTHENTICATION IS OFF (--auth none): anyone who can reach %s acts as "
			 "principal \"%s\"; for tests on this host only", opt->listen,
			 API_ANONYMOUS_PRINCIPAL);
	*out = api;
	return 0;
fail:
	api_stop(api);
	return rc;
}

unsigned api_port(const struct api *api)
{
	return api->port;
}

unsigned api_agent_port(const struct api *api)
{
	return api->agent_port;
}

void api_stop(struct api *api)
{
	if (!api)
		return;
	if (api->daemon)
		MHD_stop_daemon(api->daemon);
	if (api->agent_daemon)
		MHD_stop_daemon(api->agent_daemon);
	audit_close(api->audit);
	if (api->credentials)
		sigv4_credentials_free(api->credentials);
	if (api->tls_key_pem)
		explicit_bzero(api->tls_key_pem, strlen(api->tls_key_pem));
	free(api->tls_key_pem);
	free(api->tls_cert_pem);
	if (api->agent_token)
		explicit_bzero(api->agent_token, strlen(api->agent_token));
	free(api->agent_token);
	free(api);
}
