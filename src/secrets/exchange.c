#include "secrets/exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "secrets/fields.h"
#include "secrets/names.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int append(struct secbuf *b, const void *data, size_t len)
{
	if (b->len + len > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len)
			cap *= 2;
		int rc = secbuf_reserve(b, cap);
		if (rc)
			return rc;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	return 0;
}

static int append_str(struct secbuf *b, const char *s)
{
	return append(b, s, strlen(s));
}

/* A JSON string of data, quotes included, escaped straight into b. */
static int append_json_string(struct secbuf *b, const uint8_t *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	int rc = append(b, "\"", 1);
	for (size_t i = 0; !rc && i < len; i++) {
		uint8_t c = data[i];
		char esc[6] = { '\\', 0, 0, 0, 0, 0 };
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			rc = append(b, esc, 2);
		} else if (c == '\n') {
			rc = append(b, "\\n", 2);
		} else if (c == '\t') {
			rc = append(b, "\\t", 2);
		} else if (c == '\r') {
			rc = append(b, "\\r", 2);
		} else if (c < 0x20) {
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			rc = append(b, esc, 6);
		} else {
			rc = append(b, &c, 1);
		}
	}
	return rc ? rc : append(b, "\"", 1);
}

static int append_base64(struct secbuf *b, const uint8_t *data, size_t len)
{
	int rc = append(b, "\"", 1);
	for (size_t i = 0; !rc && i < len; i += 3) {
		uint32_t n = (uint32_t)data[i] << 16;
		if (i + 1 < len)
			n |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < len)
			n |= data[i + 2];
		char out[4] = { b64[n >> 18 & 63], b64[n >> 12 & 63],
				i + 1 < len ? b64[n >> 6 & 63] : '=', i + 2 < len ? b64[n & 63] : '=' };
		rc = append(b, out, 4);
	}
	return rc ? rc : append(b, "\"", 1);
}

static int base64_decode(const uint8_t *in, size_t len, struct secbuf *out)
{
	int rc = secbuf_reserve(out, len / 4 * 3 + 3);
	uint32_t acc = 0;
	int bits = 0;
	size_t pad = 0;
	out->len = 0;
	if (rc)
		return rc;
	if (len % 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] == '=' ? NULL : strchr(b64, in[i]);
		if (in[i] == '=') {
			if (i + 2 < len)
				return -EINVAL;
			pad++;
			continue;
		}
		if (!p || !in[i] || pad)
			return -EINVAL;
		acc = acc << 6 | (uint32_t)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out->data[out->len++] = (uint8_t)(acc >> bits);
		}
	}
	return 0;
}

int exchange_encode(const char *describe_json, const char *version_id, const char *stages_csv,
		    const struct secbuf *value, bool binary, struct secbuf *line)
{
	json_object *d = json_tokener_parse(describe_json), *o = json_object_new_object(), *v;
	int rc = 0;

	line->len = 0;
	if (!d || !o || !json_object_is_type(d, json_type_object)) {
		rc = -EINVAL;
		goto out;
	}
	/* get-secret-value's fields, then describe-secret's. */
	static const char *const from_describe[] = { "ARN", "Name" };
	for (size_t i = 0; i < 2; i++)
		if (json_object_object_get_ex(d, from_describe[i], &v))
			json_object_object_add(o, from_describe[i], json_object_get(v));
	if (version_id && version_id[0]) {
		json_object_object_add(o, "VersionId", json_object_new_string(version_id));
		json_object *stages = json_object_new_array();
		char *copy = strdup(stages_csv ? stages_csv : ""), *save = NULL;
		for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save))
			json_object_array_add(stages, json_object_new_string(t));
		free(copy);
		json_object_object_add(o, "VersionStages", stages);
	}
	static const char *const rest[] = { "CreatedDate", "Description", "KmsKeyId", "Tags" };
	for (size_t i = 0; i < 4; i++)
		if (json_object_object_get_ex(d, rest[i], &v))
			json_object_object_add(o, rest[i], json_object_get(v));
	const char *meta = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							   JSON_C_TO_STRING_NOSLASHESCAPE);
	size_t mlen = strlen(meta);
	/* "{...meta...}" with the value spliced in before the closing brace. */
	rc = append(line, meta, mlen - 1);
	if (!rc && value) {
		rc = append_str(line, mlen > 2 ? "," : "");
		if (!rc)
			rc = append_str(line, binary ? "\"SecretBinary\":" : "\"SecretString\":");
		if (!rc)
			rc = binary ? append_base64(line, value->data, value->len)
				    : append_json_string(line, value->data, value->len);
	}
	if (!rc)
		rc = append_str(line, "}\n");
out:
	json_object_put(d);
	json_object_put(o);
	return rc;
}

void exchange_record_free(struct exchange_record *r)
{
	free(r->name);
	free(r->arn);
	free(r->version_id);
	free(r->description);
	free(r->kms_key_id);
	free(r->created);
	for (size_t i = 0; i < r->ntags; i++) {
		free(r->tags[i].key);
		free(r->tags[i].value);
	}
	free(r->tags);
	memset(r, 0, sizeof(*r));
}

static char *dup_string(json_object *o, const char *key, int *rc)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*rc = -EINVAL;
		return NULL;
	}
	char *s = strdup(json_object_get_string(v));
	if (!s)
		*rc = -ENOMEM;
	return s;
}

/* The line without the value's span, so a JSON parser never sees the value. */
static char *redact(const uint8_t *line, size_t len, size_t start, size_t end)
{
	char *copy = malloc(len + 3);
	if (!copy)
		return NULL;
	memcpy(copy, line, start);
	memcpy(copy + start, "\"\"", 2);
	memcpy(copy + start + 2, line + end, len - end);
	copy[start + 2 + len - end] = '\0';
	return copy;
}

static int refuse_line(const char **why, const char *text)
{
	*why = text;
	return -EINVAL;
}

int exchange_decode(const uint8_t *line, size_t len, struct exchange_record *r,
		    struct secbuf *value, const char **why)
{
	size_t s_start, s_end, b_start, b_end;
	char *redacted = NULL;
	json_object *o = NULL;
	int rc;

	memset(r, 0, sizeof(*r));
	value->len = 0;
	*why = NULL;
	size_t n_s = 0, n_b = 0;
	if (fields_count(line, len, "SecretString", &n_s) || fields_count(line, len, "SecretBinary", &n_b))
		return refuse_line(why, "not a JSON object");
	/* Only one value is cut out before parsing: a second would reach the parser. */
	if (n_s > 1 || n_b > 1)
		return refuse_line(why, "SecretString or SecretBinary appears twice");
	int has_s = fields_span(line, len, "SecretString", &s_start, &s_end);
	int has_b = fields_span(line, len, "SecretBinary", &b_start, &b_end);
	if (has_s == -EINVAL || has_b == -EINVAL)
		return refuse_line(why, "not a JSON object");
	if (has_s == 0 && has_b == 0)
		return refuse_line(why, "both SecretString and SecretBinary");
	if (has_s == 0) {
		if (line[s_start] != '"')
			return refuse_line(why, "SecretString is not a string");
		if ((rc = fields_get(line, len, "SecretString", value)))
			return rc == -EINVAL ? refuse_line(why, "SecretString is malformed") : rc;
		r->has_value = true;
		redacted = redact(line, len, s_start, s_end);
	} else if (has_b == 0) {
		if (line[b_start] != '"' || b_end - b_start < 2)
			return refuse_line(why, "SecretBinary is not a base64 string");
		if ((rc = base64_decode(line + b_start + 1, b_end - b_start - 2, value)))
			return rc == -EINVAL ? refuse_line(why, "SecretBinary is not valid base64") : rc;
		r->has_value = r->binary = true;
		redacted = redact(line, len, b_start, b_end);
	} else {
		redacted = strndup((const char *)line, len);
	}
	if (!redacted)
		return -ENOMEM;
	o = json_tokener_parse(redacted);
	free(redacted);
	if (!o || !json_object_is_type(o, json_type_object)) {
		rc = refuse_line(why, "not a JSON object");
		goto fail;
	}
	rc = 0;
	r->name = dup_string(o, "Name", &rc);
	r->arn = dup_string(o, "ARN", &rc);
	r->version_id = dup_string(o, "VersionId", &rc);
	r->description = dup_string(o, "Description", &rc);
	r->kms_key_id = dup_string(o, "KmsKeyId", &rc);
	r->created = dup_string(o, "CreatedDate", &rc);
	if (rc) {
		rc = rc == -EINVAL ? refuse_line(why, "a field that should be a string is not") : rc;
		goto fail;
	}
	if (!r->name || name_check(r->name, why)) {
		rc = refuse_line(why, *why ? *why : "no Name");
		goto fail;
	}
	json_object *tags;
	if (json_object_object_get_ex(o, "Tags", &tags)) {
		if (!json_object_is_type(tags, json_type_array)) {
			rc = refuse_line(why, "Tags is not a list");
			goto fail;
		}
		size_t n = json_object_array_length(tags);
		r->tags = calloc(n ? n : 1, sizeof(*r->tags));
		if (!r->tags) {
			rc = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < n; i++) {
			json_object *t = json_object_array_get_idx(tags, i);
			if (!json_object_is_type(t, json_type_object)) {
				rc = refuse_line(why, "a tag is not an object");
				goto fail;
			}
			r->tags[i].key = dup_string(t, "Key", &rc);
			r->tags[i].value = dup_string(t, "Value", &rc);
			r->ntags++;
			if (rc || !r->tags[i].key) {
				rc = refuse_line(why, "a tag needs a string Key and Value");
				goto fail;
			}
			if (!r->tags[i].value && !(r->tags[i].value = strdup(""))) {
				rc = -ENOMEM;
				goto fail;
			}
		}
	}
	json_object_put(o);
	return 0;
fail:
	json_object_put(o);
	exchange_record_free(r);
	secbuf_free(value);
	return rc;
}
