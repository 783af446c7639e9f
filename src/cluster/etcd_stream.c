/*
 * etcd_wire, second half: the watch request and stream messages, the line
 * framing of a stream, status, authenticate and error answers.
 * Contract: include/cluster/etcd_wire.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/internal.h"

/* ---- watch ------------------------------------------------------------- */

static int watch_fields(json_object *create, const struct etcd_watch_req *req)
{
	int rc;
	if (!req->key || req->key_len == 0)
		return -EINVAL;
	if (req->key_len > ETCD_KEY_MAX || req->range_end_len > ETCD_KEY_MAX)
		return -EFBIG;
	if (req->start_revision < 0)
		return -EINVAL;
	if ((rc = wire_put_bytes(create, "key", req->key, req->key_len)))
		return rc;
	if (req->range_end &&
	    (rc = wire_put_bytes(create, "range_end", req->range_end, req->range_end_len)))
		return rc;
	if (req->start_revision &&
	    (rc = wire_put_int64(create, "start_revision", req->start_revision)))
		return rc;
	if (req->prev_kv && (rc = wire_put_bool(create, "prev_kv", true)))
		return rc;
	if (req->progress_notify && (rc = wire_put_bool(create, "progress_notify", true)))
		return rc;
	return 0;
}

int etcd_wire_watch_request(const struct etcd_watch_req *req, char **json)
{
	json_object *outer = json_object_new_object(), *create = json_object_new_object();
	int rc = outer && create ? watch_fields(create, req) : -ENOMEM;
	if (!rc && json_object_object_add(outer, "create_request", create))
		rc = -ENOMEM;
	if (rc)
		json_object_put(create); /* once added, outer holds it */
	return wire_finish(outer, rc, json);
}

void etcd_watch_msg_free(struct etcd_watch_msg *msg)
{
	for (size_t i = 0; i < msg->n_events; i++) {
		etcd_kv_free(&msg->events[i].kv);
		etcd_kv_free(&msg->events[i].prev_kv);
	}
	free(msg->events);
	memset(msg, 0, sizeof(*msg));
}

static int event(json_object *e, struct etcd_event *ev)
{
	json_object *type, *kv, *prev;
	int rc;
	if (!json_object_is_type(e, json_type_object))
		return -EBADMSG;
	if ((rc = wire_member(e, "type", json_type_string, &type)) ||
	    (rc = wire_member(e, "kv", json_type_object, &kv)) ||
	    (rc = wire_member(e, "prev_kv", json_type_object, &prev)))
		return rc;
	/* PUT is the enum's zero, so it never appears; "PUT" is accepted too. */
	const char *t = type ? json_object_get_string(type) : "PUT";
	if (strcmp(t, "PUT") == 0)
		ev->type = ETCD_EVENT_PUT;
	else if (strcmp(t, "DELETE") == 0)
		ev->type = ETCD_EVENT_DELETE;
	else
		return -EBADMSG;
	if (!kv) /* an event names its key */
		return -EBADMSG;
	if ((rc = wire_kv(kv, &ev->kv)))
		return rc;
	if (ev->kv.key_len == 0 || ev->kv.mod_revision <= 0)
		return -EBADMSG;
	if (prev) {
		if ((rc = wire_kv(prev, &ev->prev_kv)))
			return rc;
		ev->has_prev_kv = true;
	}
	return 0;
}

static int watch_result(json_object *r, struct etcd_watch_msg *out)
{
	json_object *events;
	bool fragment;
	int rc;
	if ((rc = wire_header(r, &out->header)) ||
	    (rc = wire_int64(r, "watch_id", &out->watch_id)) ||
	    (rc = wire_bool(r, "created", &out->created)) ||
	    (rc = wire_bool(r, "canceled", &out->canceled)) ||
	    (rc = wire_bool(r, "fragment", &fragment)) ||
	    (rc = wire_int64(r, "compact_revision", &out->compact_revision)) ||
	    (rc = wire_text(r, "cancel_reason", out->cancel_reason, sizeof(out->cancel_reason))) ||
	    (rc = wire_member(r, "events", json_type_array, &events)))
		return rc;
	if (fragment)
		return -EPROTO; /* part of a revision's events: never asked for */
	if (out->compact_revision < 0)
		return -EBADMSG;
	size_t n = events ? json_object_array_length(events) : 0;
	if (n > 0) {
		out->events = calloc(n, sizeof(*out->events));
		if (!out->events)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			out->n_events = i + 1; /* so a failure frees what was parsed */
			if ((rc = event(json_object_array_get_idx(events, i), &out->events[i])))
				return rc;
		}
	}
	if (out->canceled)
		out->kind = ETCD_WATCH_CANCELED;
	else if (out->created)
		out->kind = ETCD_WATCH_CREATED;
	else if (n > 0)
		out->kind = ETCD_WATCH_EVENTS;
	else
		out->kind = ETCD_WATCH_PROGRESS;
	if (n > 0 && out->kind != ETCD_WATCH_EVENTS)
		return -EBADMSG; /* events with created/canceled: not a message etcd sends */
	return 0;
}

static int stream_error(json_object *err, int *grpc_code, int *http_code, char *msg,
			size_t msg_size)
{
	int64_t g, h;
	int rc;
	if ((rc = wire_int64(err, "grpc_code", &g)) || (rc = wire_int64(err, "http_code", &h)) ||
	    (rc = wire_text(err, "message", msg, msg_size)))
		return rc;
	if (g < 0 || g > 16 || h < 0 || h > 999 || g == 0)
		return -EBADMSG;
	*grpc_code = (int)g;
	if (http_code)
		*http_code = (int)h;
	return 0;
}

static int watch_msg(json_object *o, struct etcd_watch_msg *out)
{
	json_object *result, *err;
	int rc;
	if ((rc = wire_member(o, "result", json_type_object, &result)))
		return rc;
	if ((rc = wire_member(o, "error", json_type_object, &err)))
		return rc;
	if ((result != NULL) == (err != NULL))
		return -EBADMSG;
	if (err) {
		out->kind = ETCD_WATCH_ERROR;
		return stream_error(err, &out->grpc_code, &out->http_code, out->message,
				    sizeof(out->message));
	}
	return watch_result(result, out);
}

int etcd_wire_watch_msg(const char *json, size_t len, struct etcd_watch_msg *out)
{
	json_object *o;
	memset(out, 0, sizeof(*out));
	int rc = wire_parse(json, len, &o);
	if (rc)
		return rc;
	rc = watch_msg(o, out);
	json_object_put(o);
	if (rc)
		etcd_watch_msg_free(out);
	return rc;
}

/* ---- errors, status, auth ---------------------------------------------- */

int etcd_wire_error(const char *json, size_t len, int *grpc_code, char *msg, size_t msg_size)
{
	json_object *o, *err;
	*grpc_code = 0;
	msg[0] = '\0';
	int rc = wire_parse(json, len, &o);
	if (rc)
		return rc;
	if (json_object_object_get_ex(o, "error", &err) &&
	    json_object_is_type(err, json_type_object)) {
		rc = stream_error(err, grpc_code, NULL, msg, msg_size);
	} else {
		int64_t code;
		json_object *m;
		rc = wire_int64(o, "code", &code);
		if (!rc)
			rc = wire_member(o, "message", json_type_string, &m);
		if (!rc && (!m || code <= 0 || code > 16))
			rc = -EBADMSG; /* not an error answer */
		if (!rc) {
			*grpc_code = (int)code;
			rc = wire_text(o, "message", msg, msg_size);
		}
	}
	json_object_put(o);
	if (rc) {
		*grpc_code = 0;
		msg[0] = '\0';
	}
	return rc;
}

static int status_resp(json_object *o, void *answer)
{
	struct etcd_status *out = answer;
	int rc;
	if ((rc = wire_header(o, &out->header)) ||
	    (rc = wire_text(o, "version", out->version, sizeof(out->version))) ||
	    (rc = wire_int64(o, "dbSize", &out->db_size)) ||
	    (rc = wire_uint64(o, "leader", &out->leader)) ||
	    (rc = wire_uint64(o, "raftIndex", &out->raft_index)) ||
	    (rc = wire_uint64(o, "raftTerm", &out->raft_term)) ||
	    (rc = wire_bool(o, "isLearner", &out->is_learner)))
		return rc;
	return out->db_size < 0 ? -EBADMSG : 0;
}

int etcd_wire_status_response(const char *json, size_t len, struct etcd_status *out)
{
	return wire_answer(json, len, status_resp, out, sizeof(*out));
}

/* A JSON string literal of s, written by hand (not through json-c) so the
 * password lives only in the one buffer the caller wipes. */
static size_t json_quote(char *out, const char *s)
{
	size_t o = 0;
	out[o++] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*p;
		} else if (*p < 0x20) {
			o += (size_t)sprintf(out + o, "\\u%04x", *p);
		} else {
			out[o++] = (char)*p;
		}
	}
	out[o++] = '"';
	return o;
}

int etcd_wire_auth_request(const char *user, const char *password, char **json,
			   size_t *json_len)
{
	*json = NULL;
	*json_len = 0;
	size_t ul = strlen(user), pl = strlen(password);
	if (ul == 0 || ul > 4096 || pl > 4096)
		return -EINVAL;
	/* Each byte quotes to at most 6 ("\u00XX"). */
	size_t cap = 32 + 6 * (ul + pl);
	char *buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	size_t o = 0;
	memcpy(buf + o, "{\"name\":", 8);
	o += 8;
	o += json_quote(buf + o, user);
	memcpy(buf + o, ",\"password\":", 12);
	o += 12;
	o += json_quote(buf + o, password);
	buf[o++] = '}';
	buf[o] = '\0';
	*json = buf;
	*json_len = cap;
	return 0;
}

int etcd_wire_auth_response(const char *json, size_t len, char **token)
{
	json_object *o, *t;
	*token = NULL;
	int rc = wire_parse(json, len, &o);
	if (rc)
		return rc;
	rc = wire_member(o, "token", json_type_string, &t);
	if (!rc && (!t || json_object_get_string_len(t) == 0 ||
		    json_object_get_string_len(t) > 4096))
		rc = -EBADMSG;
	if (!rc) {
		const char *s = json_object_get_string(t);
		/* It goes into an HTTP header: no control characters. */
		for (const char *p = s; *p && !rc; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				rc = -EBADMSG;
		if (!rc && !(*token = strdup(s)))
			rc = -ENOMEM;
	}
	json_object_put(o);
	return rc;
}

/* ---- line framing ------------------------------------------------------ */

void etcd_lines_init(struct etcd_lines *lines, size_t max)
{
	memset(lines, 0, sizeof(*lines));
	lines->max = max ? max : ETCD_WIRE_MSG_MAX;
}

void etcd_lines_free(struct etcd_lines *lines)
{
	free(lines->buf);
	lines->buf = NULL;
	lines->len = lines->cap = 0;
}

static int emit(const char *line, size_t len, etcd_line_fn on_line, void *ctx)
{
	while (len > 0 && line[len - 1] == '\r')
		len--;
	size_t i = 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
		i++;
	if (i == len)
		return 0; /* blank */
	return on_line(ctx, line, len);
}

static int append(struct etcd_lines *l, const char *data, size_t n)
{
	if (n > l->max - l->len)
		return -EFBIG;
	if (l->len + n > l->cap) {
		size_t cap = l->cap ? l->cap : 4096;
		while (cap < l->len + n)
			cap *= 2;
		if (cap > l->max)
			cap = l->max;
		char *b = realloc(l->buf, cap);
		if (!b)
			return -ENOMEM;
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, data, n);
	l->len += n;
	return 0;
}

int etcd_lines_feed(struct etcd_lines *l, const void *data, size_t n, etcd_line_fn on_line,
		    void *ctx)
{
	const char *p = data;
	int rc;
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		if (!nl)
			return append(l, p, n);
		size_t part = (size_t)(nl - p);
		if (l->len == 0) { /* a whole line in this slice: no copy */
			if (part > l->max)
				return -EFBIG;
			rc = emit(p, part, on_line, ctx);
		} else {
			if ((rc = append(l, p, part)))
				return rc;
			rc = emit(l->buf, l->len, on_line, ctx);
			l->len = 0;
		}
		if (rc)
			return rc;
		p = nl + 1;
		n -= part + 1;
	}
	return 0;
}

int etcd_lines_finish(struct etcd_lines *l, etcd_line_fn on_line, void *ctx)
{
	int rc = 0;
	if (l->len > 0)
		rc = emit(l->buf, l->len, on_line, ctx);
	l->len = 0;
	return rc;
}
