/*
 * etcd_wire: the JSON helpers and the KV messages (range, put,
 * delete_range, txn, compaction). The stream, status, auth and error
 * messages are in etcd_stream.c, base64 in etcd_base64.c. Contract: include/cluster/etcd_wire.h.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/internal.h"

/* ---- JSON helpers ------------------------------------------------------ */

/* Not strchr(" \t\r\n", c): that finds the terminator for c == '\0'. */
static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int wire_parse(const char *json, size_t len, json_object **out)
{
	*out = NULL;
	if (len > ETCD_WIRE_MSG_MAX)
		return -EFBIG;
	while (len > 0 && is_space(json[len - 1]))
		len--;
	if (len == 0 || memchr(json, '\0', len))
		return -EBADMSG;
	json_tokener *tok = json_tokener_new_ex(ETCD_WIRE_DEPTH);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *obj = json_tokener_parse_ex(tok, json, (int)len);
	int rc = 0;
	if (!obj || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len || !json_object_is_type(obj, json_type_object))
		rc = -EBADMSG;
	json_tokener_free(tok);
	if (rc) {
		json_object_put(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

int wire_member(json_object *obj, const char *name, json_type type, json_object **out)
{
	*out = NULL;
	json_object *v;
	if (!json_object_object_get_ex(obj, name, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, type))
		return -EBADMSG;
	*out = v;
	return 0;
}

/* Decimal text of a JSON string or integer, strictly: [-]digits. */
static int number_text(json_object *obj, const char *name, const char **text)
{
	*text = NULL;
	json_object *v;
	if (!json_object_object_get_ex(obj, name, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string) && !json_object_is_type(v, json_type_int))
		return -EBADMSG;
	const char *s = json_object_get_string(v);
	size_t n = strlen(s);
	if (n == 0 || n > 21)
		return -EBADMSG;
	for (size_t i = (s[0] == '-'); i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EBADMSG;
	if (s[0] == '-' && n == 1)
		return -EBADMSG;
	*text = s;
	return 0;
}

int wire_int64(json_object *obj, const char *name, int64_t *out)
{
	const char *s;
	*out = 0;
	int rc = number_text(obj, name, &s);
	if (rc || !s)
		return rc;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EBADMSG;
	*out = v;
	return 0;
}

int wire_uint64(json_object *obj, const char *name, uint64_t *out)
{
	const char *s;
	*out = 0;
	int rc = number_text(obj, name, &s);
	if (rc || !s)
		return rc;
	if (s[0] == '-')
		return -EBADMSG;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EBADMSG;
	*out = v;
	return 0;
}

int wire_bool(json_object *obj, const char *name, bool *out)
{
	json_object *v;
	*out = false;
	int rc = wire_member(obj, name, json_type_boolean, &v);
	if (rc || !v)
		return rc;
	*out = json_object_get_boolean(v);
	return 0;
}

int wire_text(json_object *obj, const char *name, char *buf, size_t size)
{
	json_object *v;
	buf[0] = '\0';
	int rc = wire_member(obj, name, json_type_string, &v);
	if (rc || !v)
		return rc;
	size_t n = (size_t)json_object_get_string_len(v);
	if (n >= size)
		n = size - 1;
	memcpy(buf, json_object_get_string(v), n);
	buf[n] = '\0';
	return 0;
}

int wire_header(json_object *obj, struct etcd_header *out)
{
	json_object *h;
	memset(out, 0, sizeof(*out));
	int rc = wire_member(obj, "header", json_type_object, &h);
	if (rc)
		return rc;
	if (!h)
		return -EBADMSG; /* etcd sends one with every answer: none is not revision 0 */
	if ((rc = wire_int64(h, "revision", &out->revision)) ||
	    (rc = wire_uint64(h, "cluster_id", &out->cluster_id)) ||
	    (rc = wire_uint64(h, "member_id", &out->member_id)) ||
	    (rc = wire_uint64(h, "raft_term", &out->raft_term)))
		return rc;
	return out->revision < 0 ? -EBADMSG : 0;
}

static int bytes_member(json_object *obj, const char *name, size_t max, unsigned char **out,
			size_t *out_len)
{
	json_object *v;
	*out = NULL;
	*out_len = 0;
	int rc = wire_member(obj, name, json_type_string, &v);
	if (rc || !v)
		return rc;
	size_t n = (size_t)json_object_get_string_len(v);
	if (n / 4 * 3 > max + 2)
		return -EBADMSG;
	rc = etcd_base64_decode(json_object_get_string(v), n, out, out_len);
	if (rc == 0 && *out_len > max) {
		free(*out);
		*out = NULL;
		*out_len = 0;
		rc = -EBADMSG;
	}
	return rc;
}

void etcd_kv_free(struct etcd_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	if (kv->value)
		explicit_bzero(kv->value, kv->value_len);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

int wire_kv(json_object *obj, struct etcd_kv *out)
{
	memset(out, 0, sizeof(*out));
	int rc;
	if ((rc = bytes_member(obj, "key", ETCD_KEY_MAX, &out->key, &out->key_len)) ||
	    (rc = bytes_member(obj, "value", ETCD_VALUE_MAX, &out->value, &out->value_len)) ||
	    (rc = wire_int64(obj, "create_revision", &out->create_revision)) ||
	    (rc = wire_int64(obj, "mod_revision", &out->mod_revision)) ||
	    (rc = wire_int64(obj, "version", &out->version)) ||
	    (rc = wire_int64(obj, "lease", &out->lease)))
		goto out;
	if (!out->key) /* the proto's empty key: never a stored key, but not malformed */
		if (!(out->key = calloc(1, 1))) {
			rc = -ENOMEM;
			goto out;
		}
	if (out->create_revision < 0 || out->mod_revision < 0 || out->version < 0)
		rc = -EBADMSG;
out:
	if (rc)
		etcd_kv_free(out);
	return rc;
}

void wire_kvs_free(struct etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		etcd_kv_free(&kvs[i]);
	free(kvs);
}

int wire_kvs(json_object *obj, const char *name, struct etcd_kv **kvs, size_t *n)
{
	json_object *arr;
	*kvs = NULL;
	*n = 0;
	int rc = wire_member(obj, name, json_type_array, &arr);
	if (rc || !arr)
		return rc;
	size_t count = json_object_array_length(arr);
	if (count == 0)
		return 0;
	struct etcd_kv *list = calloc(count, sizeof(*list));
	if (!list)
		return -ENOMEM;
	size_t i;
	for (i = 0; i < count; i++) {
		json_object *e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_object)) {
			rc = -EBADMSG;
			break;
		}
		if ((rc = wire_kv(e, &list[i])))
			break;
	}
	if (rc) {
		wire_kvs_free(list, i);
		return rc;
	}
	*kvs = list;
	*n = count;
	return 0;
}

int wire_put_bytes(json_object *obj, const char *name, const void *data, size_t len)
{
	char *b64;
	int rc = etcd_base64_encode(data, len, &b64);
	if (rc)
		return rc;
	json_object *s = json_object_new_string(b64);
	free(b64);
	if (!s || json_object_object_add(obj, name, s)) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

int wire_put_string(json_object *obj, const char *name, const char *str)
{
	json_object *s = json_object_new_string(str);
	if (!s || json_object_object_add(obj, name, s)) {
		json_object_put(s);
		return -ENOMEM;
	}
	return 0;
}

int wire_put_int64(json_object *obj, const char *name, int64_t v)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	return wire_put_string(obj, name, buf);
}

int wire_put_bool(json_object *obj, const char *name, bool v)
{
	json_object *b = json_object_new_boolean(v);
	if (!b || json_object_object_add(obj, name, b)) {
		json_object_put(b);
		return -ENOMEM;
	}
	return 0;
}

int wire_finish(json_object *obj, int rc, char **json)
{
	*json = NULL;
	if (!obj)
		rc = -ENOMEM;
	if (!rc) {
		const char *s = json_object_to_json_string_ext(
			obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		*json = s ? strdup(s) : NULL;
		rc = *json ? 0 : -ENOMEM;
	}
	json_object_put(obj);
	return rc;
}

int wire_answer(const char *json, size_t len, wire_fill_fn fill, void *out, size_t size)
{
	json_object *o;
	struct etcd_header h;
	memset(out, 0, size);
	int rc = wire_parse(json, len, &o);
	if (rc)
		return rc;
	rc = wire_header(o, &h);
	if (!rc && h.revision <= 0)
		rc = -EBADMSG; /* etcd's revisions start at 1 */
	if (!rc)
		rc = fill(o, out);
	json_object_put(o);
	if (rc)
		memset(out, 0, size);
	return rc;
}

/* ---- range ------------------------------------------------------------- */

size_t etcd_prefix_end(const void *prefix, size_t len, unsigned char *out)
{
	const unsigned char *p = prefix;
	while (len > 0 && p[len - 1] == 0xff)
		len--;
	if (len == 0)
		return 0;
	memcpy(out, p, len);
	out[len - 1]++;
	return len;
}

static int check_key(const void *key, size_t len)
{
	if (!key || len == 0)
		return -EINVAL; /* etcd: "key is not provided" */
	return len > ETCD_KEY_MAX ? -EFBIG : 0;
}

static int range_fields(json_object *o, const struct etcd_range_req *req)
{
	int rc;
	if ((rc = check_key(req->key, req->key_len)))
		return rc;
	if (req->range_end_len > ETCD_KEY_MAX)
		return -EFBIG;
	if (req->revision < 0 || req->limit < 0)
		return -EINVAL;
	if ((rc = wire_put_bytes(o, "key", req->key, req->key_len)))
		return rc;
	if (req->range_end && (rc = wire_put_bytes(o, "range_end", req->range_end,
						   req->range_end_len)))
		return rc;
	if (req->revision && (rc = wire_put_int64(o, "revision", req->revision)))
		return rc;
	if (req->limit && (rc = wire_put_int64(o, "limit", req->limit)))
		return rc;
	if (req->keys_only && (rc = wire_put_bool(o, "keys_only", true)))
		return rc;
	if (req->count_only && (rc = wire_put_bool(o, "count_only", true)))
		return rc;
	if (req->serializable && (rc = wire_put_bool(o, "serializable", true)))
		return rc;
	return 0;
}

static int put_fields(json_object *o, const struct etcd_put_req *req)
{
	int rc;
	if ((rc = check_key(req->key, req->key_len)))
		return rc;
	if (req->value_len > ETCD_VALUE_MAX)
		return -EFBIG;
	if ((rc = wire_put_bytes(o, "key", req->key, req->key_len)) ||
	    (rc = wire_put_bytes(o, "value", req->value ? req->value : "", req->value_len)))
		return rc;
	if (req->lease && (rc = wire_put_int64(o, "lease", req->lease)))
		return rc;
	if (req->prev_kv && (rc = wire_put_bool(o, "prev_kv", true)))
		return rc;
	return 0;
}

static int delete_fields(json_object *o, const struct etcd_delete_req *req)
{
	int rc;
	if ((rc = check_key(req->key, req->key_len)))
		return rc;
	if (req->range_end_len > ETCD_KEY_MAX)
		return -EFBIG;
	if ((rc = wire_put_bytes(o, "key", req->key, req->key_len)))
		return rc;
	if (req->range_end && (rc = wire_put_bytes(o, "range_end", req->range_end,
						   req->range_end_len)))
		return rc;
	if (req->prev_kv && (rc = wire_put_bool(o, "prev_kv", true)))
		return rc;
	return 0;
}

int etcd_wire_range_request(const struct etcd_range_req *req, char **json)
{
	json_object *o = json_object_new_object();
	return wire_finish(o, o ? range_fields(o, req) : -ENOMEM, json);
}

int etcd_wire_put_request(const struct etcd_put_req *req, char **json)
{
	json_object *o = json_object_new_object();
	return wire_finish(o, o ? put_fields(o, req) : -ENOMEM, json);
}

int etcd_wire_delete_request(const struct etcd_delete_req *req, char **json)
{
	json_object *o = json_object_new_object();
	return wire_finish(o, o ? delete_fields(o, req) : -ENOMEM, json);
}

static int compaction_fields(json_object *o, int64_t revision, bool physical)
{
	int rc;
	if (revision <= 0)
		return -EINVAL;
	if ((rc = wire_put_int64(o, "revision", revision)))
		return rc;
	return physical ? wire_put_bool(o, "physical", true) : 0;
}

int etcd_wire_compaction_request(int64_t revision, bool physical, char **json)
{
	json_object *o = json_object_new_object();
	return wire_finish(o, o ? compaction_fields(o, revision, physical) : -ENOMEM, json);
}

/* The answers' bodies (wire_fill_fn): the lists last, so that a failure
 * leaves nothing allocated. */
static int range_resp(json_object *o, void *answer)
{
	struct etcd_range_resp *out = answer;
	int rc;
	if ((rc = wire_header(o, &out->header)) || (rc = wire_bool(o, "more", &out->more)) ||
	    (rc = wire_int64(o, "count", &out->count)))
		return rc;
	if (out->count < 0)
		return -EBADMSG;
	return wire_kvs(o, "kvs", &out->kvs, &out->n_kvs);
}

static int put_resp(json_object *o, void *answer)
{
	struct etcd_put_resp *out = answer;
	json_object *prev;
	int rc;
	if ((rc = wire_header(o, &out->header)) ||
	    (rc = wire_member(o, "prev_kv", json_type_object, &prev)))
		return rc;
	if (prev) {
		if ((rc = wire_kv(prev, &out->prev_kv)))
			return rc;
		out->has_prev_kv = true;
	}
	return 0;
}

static int delete_resp(json_object *o, void *answer)
{
	struct etcd_delete_resp *out = answer;
	int rc;
	if ((rc = wire_header(o, &out->header)) || (rc = wire_int64(o, "deleted", &out->deleted)))
		return rc;
	if (out->deleted < 0)
		return -EBADMSG;
	return wire_kvs(o, "prev_kvs", &out->prev_kvs, &out->n_prev_kvs);
}

static int header_resp(json_object *o, void *answer)
{
	return wire_header(o, answer);
}

void etcd_range_resp_free(struct etcd_range_resp *resp)
{
	wire_kvs_free(resp->kvs, resp->n_kvs);
	memset(resp, 0, sizeof(*resp));
}

void etcd_put_resp_free(struct etcd_put_resp *resp)
{
	etcd_kv_free(&resp->prev_kv);
	memset(resp, 0, sizeof(*resp));
}

void etcd_delete_resp_free(struct etcd_delete_resp *resp)
{
	wire_kvs_free(resp->prev_kvs, resp->n_prev_kvs);
	memset(resp, 0, sizeof(*resp));
}

int etcd_wire_range_response(const char *json, size_t len, struct etcd_range_resp *out)
{
	return wire_answer(json, len, range_resp, out, sizeof(*out));
}

int etcd_wire_put_response(const char *json, size_t len, struct etcd_put_resp *out)
{
	return wire_answer(json, len, put_resp, out, sizeof(*out));
}

int etcd_wire_delete_response(const char *json, size_t len, struct etcd_delete_resp *out)
{
	return wire_answer(json, len, delete_resp, out, sizeof(*out));
}

int etcd_wire_header_response(const char *json, size_t len, struct etcd_header *out)
{
	return wire_answer(json, len, header_resp, out, sizeof(*out));
}

/* ---- txn ---------------------------------------------------------------- */

static const char *const cmp_targets[] = { "VERSION", "CREATE", "MOD", "VALUE" };
static const char *const cmp_results[] = { "EQUAL", "NOT_EQUAL", "GREATER", "LESS" };

static int compare_object(const struct etcd_compare *c, json_object **out)
{
	int rc;
	if ((unsigned)c->target > ETCD_CMP_VALUE || (unsigned)c->result > ETCD_CMP_LESS)
		return -EINVAL;
	if ((rc = check_key(c->key, c->key_len)))
		return rc;
	json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	if ((rc = wire_put_bytes(o, "key", c->key, c->key_len)) ||
	    (rc = wire_put_string(o, "target", cmp_targets[c->target])) ||
	    (rc = wire_put_string(o, "result", cmp_results[c->result])))
		goto out;
	switch (c->target) {
	case ETCD_CMP_VERSION:
		rc = wire_put_int64(o, "version", c->number);
		break;
	case ETCD_CMP_CREATE:
		rc = wire_put_int64(o, "create_revision", c->number);
		break;
	case ETCD_CMP_MOD:
		rc = wire_put_int64(o, "mod_revision", c->number);
		break;
	case ETCD_CMP_VALUE:
		rc = c->value_len > ETCD_VALUE_MAX
			     ? -EFBIG
			     : wire_put_bytes(o, "value", c->value ? c->value : "", c->value_len);
		break;
	}
out:
	if (rc) {
		json_object_put(o);
		return rc;
	}
	*out = o;
	return 0;
}

static int op_object(const struct etcd_op *op, json_object **out)
{
	static const char *const names[] = { "request_range", "request_put",
					     "request_delete_range" };
	if ((unsigned)op->type > ETCD_OP_DELETE)
		return -EINVAL;
	json_object *inner = json_object_new_object(), *outer = json_object_new_object();
	int rc = -ENOMEM;
	if (!inner || !outer)
		goto out;
	if (op->type == ETCD_OP_RANGE)
		rc = range_fields(inner, &op->u.range);
	else if (op->type == ETCD_OP_PUT)
		rc = put_fields(inner, &op->u.put);
	else
		rc = delete_fields(inner, &op->u.del);
	if (rc)
		goto out;
	if (json_object_object_add(outer, names[op->type], inner)) {
		rc = -ENOMEM;
		goto out;
	}
	*out = outer;
	return 0;
out:
	json_object_put(inner);
	json_object_put(outer);
	return rc;
}

static int add_list(json_object *o, const char *name, size_t n, const void *items,
		    int (*make)(const void *item, size_t i, json_object **out))
{
	if (n > ETCD_TXN_OPS_MAX)
		return -EFBIG;
	if (n == 0)
		return 0;
	if (!items)
		return -EINVAL;
	json_object *arr = json_object_new_array();
	if (!arr)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		json_object *e;
		if ((rc = make(items, i, &e)))
			break;
		if (json_object_array_add(arr, e)) {
			json_object_put(e);
			rc = -ENOMEM;
		}
	}
	if (!rc && json_object_object_add(o, name, arr))
		rc = -ENOMEM;
	if (rc)
		json_object_put(arr);
	return rc;
}

static int make_compare(const void *items, size_t i, json_object **out)
{
	return compare_object(&((const struct etcd_compare *)items)[i], out);
}

static int make_op(const void *items, size_t i, json_object **out)
{
	return op_object(&((const struct etcd_op *)items)[i], out);
}

static int txn_fields(json_object *o, const struct etcd_txn_req *req)
{
	int rc;
	if ((rc = add_list(o, "compare", req->n_compare, req->compare, make_compare)) ||
	    (rc = add_list(o, "success", req->n_success, req->success, make_op)) ||
	    (rc = add_list(o, "failure", req->n_failure, req->failure, make_op)))
		return rc;
	return 0;
}

int etcd_wire_txn_request(const struct etcd_txn_req *req, char **json)
{
	json_object *o = json_object_new_object();
	return wire_finish(o, o ? txn_fields(o, req) : -ENOMEM, json);
}

static void op_resp_free(struct etcd_op_resp *r)
{
	if (r->type == ETCD_OP_RANGE)
		etcd_range_resp_free(&r->u.range);
	else if (r->type == ETCD_OP_PUT)
		etcd_put_resp_free(&r->u.put);
	else
		etcd_delete_resp_free(&r->u.del);
}

void etcd_txn_resp_free(struct etcd_txn_resp *resp)
{
	for (size_t i = 0; i < resp->n_responses; i++)
		op_resp_free(&resp->responses[i]);
	free(resp->responses);
	memset(resp, 0, sizeof(*resp));
}

/* One element of "responses": exactly one of the three response kinds. */
static int op_resp(json_object *e, struct etcd_op_resp *r)
{
	json_object *range, *put, *del;
	int rc;
	if (!json_object_is_type(e, json_type_object))
		return -EBADMSG;
	if ((rc = wire_member(e, "response_range", json_type_object, &range)) ||
	    (rc = wire_member(e, "response_put", json_type_object, &put)) ||
	    (rc = wire_member(e, "response_delete_range", json_type_object, &del)))
		return rc;
	if ((range != NULL) + (put != NULL) + (del != NULL) != 1)
		return -EBADMSG;
	if (range) {
		r->type = ETCD_OP_RANGE;
		return range_resp(range, &r->u.range);
	}
	if (put) {
		r->type = ETCD_OP_PUT;
		return put_resp(put, &r->u.put);
	}
	r->type = ETCD_OP_DELETE;
	return delete_resp(del, &r->u.del);
}

static int txn_resp(json_object *o, void *answer)
{
	struct etcd_txn_resp *out = answer;
	json_object *arr;
	int rc;
	if ((rc = wire_header(o, &out->header)) ||
	    (rc = wire_bool(o, "succeeded", &out->succeeded)) ||
	    (rc = wire_member(o, "responses", json_type_array, &arr)))
		return rc;
	size_t n = arr ? json_object_array_length(arr) : 0;
	if (n == 0)
		return 0;
	if (n > ETCD_TXN_OPS_MAX)
		return -EBADMSG;
	out->responses = calloc(n, sizeof(*out->responses));
	if (!out->responses)
		return -ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		out->n_responses = i + 1; /* so a failure frees what was parsed */
		rc = op_resp(json_object_array_get_idx(arr, i), &out->responses[i]);
	}
	if (rc)
		etcd_txn_resp_free(out);
	return rc;
}

int etcd_wire_txn_response(const char *json, size_t len, struct etcd_txn_resp *out)
{
	return wire_answer(json, len, txn_resp, out, sizeof(*out));
}
