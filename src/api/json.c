/*
 * The call's JSON: request members checked as the service's model says
 * (types: SerializationException; presence and lengths: ValidationException
 * in the service's words), the SecretId resolved, the value and token
 * taken; answers built, with dates as epoch seconds and milliseconds, and
 * an answer that holds a value written as JSON text in locked memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "secrets/names.h"
#include "util/base64.h"

/* The service names members in lower camel case in its messages. */
static void member(const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s", key);
	if (buf[0] >= 'A' && buf[0] <= 'Z')
		buf[0] = (char)(buf[0] - 'A' + 'a');
}

static size_t chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static int missing(struct call *c, const char *key)
{
	char m[64];
	member(key, m, sizeof(m));
	return call_fail(c, "ValidationException", "1 validation error detected: Value null at "
			 "'%s' failed to satisfy constraint: Member must not be null", m);
}

static int wrong_type(struct call *c, const char *key, const char *want)
{
	return call_fail(c, "SerializationException", "%s must be %s.", key, want);
}

static int length_error(struct call *c, const char *key, size_t n, size_t min, size_t max)
{
	char m[64];
	member(key, m, sizeof(m));
	return call_fail(c, "ValidationException", "1 validation error detected: Value at '%s' "
			 "failed to satisfy constraint: Member must have length %s %zu", m,
			 n < min ? "greater than or equal to" : "less than or equal to",
			 n < min ? min : max);
}

int in_string(struct call *c, const char *key, bool required, size_t min, size_t max,
	      const char **out)
{
	struct json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(c->in, key, &v) || !v)
		return required ? missing(c, key) : 1;
	if (!json_object_is_type(v, json_type_string))
		return wrong_type(c, key, "a string");
	const char *s = json_object_get_string(v);
	size_t n = chars(s);
	if ((size_t)json_object_get_string_len(v) != strlen(s))
		return call_fail(c, "SerializationException", "%s holds a NUL character.", key);
	if (n < min || n > max)
		return length_error(c, key, n, min, max);
	*out = s;
	return 0;
}

int in_bool(struct call *c, const char *key, bool *out)
{
	struct json_object *v;
	if (!json_object_object_get_ex(c->in, key, &v) || !v)
		return 1;
	if (!json_object_is_type(v, json_type_boolean))
		return wrong_type(c, key, "true or false");
	*out = json_object_get_boolean(v);
	return 0;
}

int in_int(struct call *c, const char *key, int64_t min, int64_t max, int64_t *out)
{
	struct json_object *v;
	char m[64];
	if (!json_object_object_get_ex(c->in, key, &v) || !v)
		return 1;
	if (!json_object_is_type(v, json_type_int))
		return wrong_type(c, key, "an integer");
	int64_t n = json_object_get_int64(v);
	member(key, m, sizeof(m));
	if (n < min || n > max)
		return call_fail(c, "ValidationException", "1 validation error detected: Value '%lld' "
				 "at '%s' failed to satisfy constraint: Member must have value %s "
				 "%lld", (long long)n, m, n < min ? "greater than or equal to"
				 : "less than or equal to", (long long)(n < min ? min : max));
	*out = n;
	return 0;
}

int in_array(struct call *c, const char *key, bool required, struct json_object **out)
{
	struct json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(c->in, key, &v) || !v)
		return required ? missing(c, key) : 1;
	if (!json_object_is_type(v, json_type_array))
		return wrong_type(c, key, "a list");
	*out = v;
	return 0;
}

int in_strings(struct call *c, const char *key, bool required, size_t min_items,
	       size_t max_items, size_t min, size_t max, const char ***out, size_t *n)
{
	struct json_object *a;
	*out = NULL;
	*n = 0;
	int rc = in_array(c, key, required, &a);
	if (rc)
		return rc;
	size_t count = json_object_array_length(a);
	if (count < min_items || count > max_items)
		return length_error(c, key, count, min_items, max_items);
	const char **list = calloc(count ? count : 1, sizeof(*list));
	if (!list)
		return call_fail(c, "InternalServiceError", "Out of memory.");
	for (size_t i = 0; i < count; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		if (!json_object_is_type(e, json_type_string)) {
			free(list);
			return wrong_type(c, key, "a list of strings");
		}
		list[i] = json_object_get_string(e);
		size_t len = chars(list[i]);
		if (len < min || len > max) {
			free(list);
			return length_error(c, key, len, min, max);
		}
	}
	*out = list;
	*n = count;
	return 0;
}

/* The characters of a secret's name, and "!" of the service's own (rds!...). */
static bool id_chars_ok(const char *id)
{
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("/_+=.@-!", *p)))
			return false;
	return true;
}

int in_secret_ref(struct call *c, const char **id, char name[SM_NAME_MAX + 1], bool *deleted)
{
	if (in_string(c, "SecretId", true, 1, 2048, id))
		return -1;
	if (strncmp(*id, "arn:", 4) != 0 && !id_chars_ok(*id))
		return call_fail(c, "ValidationException", "Invalid name. Must be a valid name "
				 "containing alphanumeric characters, or any of the following: "
				 "-/_+=.@!");
	int rc = sm_resolve_id(c->sm, *id, name, deleted);
	if (rc == -ENOENT)
		return 1;
	if (rc)
		return call_errno(c, rc, *id);
	c->secret = name;
	return 0;
}

int in_secret_id(struct call *c, const char **id, char name[SM_NAME_MAX + 1], bool *deleted)
{
	int rc = in_secret_ref(c, id, name, deleted);
	return rc == 1 ? call_errno(c, -ENOENT, *id) : rc;
}

int in_value(struct call *c, bool required, struct sm_value *out)
{
	if (!c->value_type) {
		if (required)
			return call_fail(c, "InvalidRequestException", "You must provide either "
					 "SecretString or SecretBinary.");
		return 1;
	}
	const char *key = c->value_type == SM_VALUE_BINARY ? "SecretBinary" : "SecretString";
	if (c->value.len == 0 || c->value.len > SM_VALUE_MAX)
		return length_error(c, key, c->value.len, 1, SM_VALUE_MAX);
	out->data = c->value.data;
	out->len = c->value.len;
	out->type = c->value_type;
	return 0;
}

int in_token(struct call *c, bool need, const char **out)
{
	int rc = in_string(c, "ClientRequestToken", false, SM_VERSION_ID_MIN, SM_VERSION_ID_MAX, out);
	if (rc < 0)
		return rc;
	/* botocore sends a UUID when its caller gives none; a raw request must
	 * send one, as the service asks. */
	if (rc == 1 && need)
		return call_fail(c, "InvalidRequestException", "You must provide a "
				 "ClientRequestToken value. We recommend a UUID-type value.");
	return rc;
}

struct json_object *out_object(struct call *c)
{
	if (!c->out)
		c->out = json_object_new_object();
	return c->out;
}

void out_string(struct json_object *o, const char *key, const char *value)
{
	if (o && value)
		json_object_object_add(o, key, json_object_new_string(value));
}

void out_date(struct json_object *o, const char *key, int64_t ms)
{
	char text[40];
	if (!o)
		return;
	snprintf(text, sizeof(text), "%lld.%03d", (long long)(ms / 1000), (int)(ms % 1000));
	json_object_object_add(o, key, json_object_new_double_s((double)ms / 1000.0, text));
}

void out_arn_name(struct call *c, struct json_object *o, const char *name)
{
	char arn[SM_NAME_MAX + 128];
	if (sm_arn_of(c->sm, name, arn, sizeof(arn)) == 0)
		out_string(o, "ARN", arn);
	out_string(o, "Name", name);
}

int text_put(struct secbuf *t, const void *data, size_t len)
{
	if (t->len + len > t->cap) {
		size_t want = t->cap * 2 > t->len + len ? t->cap * 2 : t->len + len + 256;
		int rc = secbuf_reserve(t, want);
		if (rc)
			return rc;
	}
	memcpy(t->data + t->len, data, len);
	t->len += len;
	return 0;
}

int text_put_str(struct secbuf *t, const char *s)
{
	return text_put(t, s, strlen(s));
}

int text_put_json_string(struct secbuf *t, const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	int rc = text_put(t, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; !rc && i <= len; i++) {
		uint8_t b = i < len ? data[i] : 0;
		bool plain = i < len && b >= 0x20 && b != '"' && b != '\\';
		if (plain) {
			run++;
			continue;
		}
		/* A run of bytes that need no escape goes at once. */
		if (run && (rc = text_put(t, data + i - run, run)))
			break;
		run = 0;
		if (i == len)
			break;
		char esc[6] = { '\\', 'u', '0', '0', hex[b >> 4], hex[b & 15] };
		if (b == '"' || b == '\\') {
			char two[2] = { '\\', (char)b };
			rc = text_put(t, two, 2);
		} else {
			rc = text_put(t, esc, 6);
		}
	}
	return rc ? rc : text_put(t, "\"", 1);
}

int text_put_base64(struct secbuf *t, const uint8_t *data, size_t len)
{
	size_t n = base64_encoded_len(len);
	int rc = text_put(t, "\"", 1);
	if (!rc && t->len + n + 1 > t->cap)
		rc = secbuf_reserve(t, t->len + n + 64);
	if (rc)
		return rc;
	base64_encode(data, len, (char *)t->data + t->len);
	t->len += n;
	return text_put(t, "\"", 1);
}

int text_put_with_value(struct secbuf *t, struct json_object *meta, const struct secbuf *value,
			bool binary)
{
	const char *m = json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!m)
		return -ENOMEM;
	size_t mlen = strlen(m);
	/* meta's members, then the value as its last one. */
	int rc = text_put(t, m, mlen - 1);
	if (!rc && mlen > 2)
		rc = text_put(t, ",", 1);
	if (!rc)
		rc = text_put_str(t, binary ? "\"SecretBinary\":" : "\"SecretString\":");
	if (!rc)
		rc = binary ? text_put_base64(t, value->data, value->len)
			    : text_put_json_string(t, value->data, value->len);
	return rc ? rc : text_put(t, "}", 1);
}
