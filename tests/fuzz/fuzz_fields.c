/*
 * fuzz_fields: the in-place JSON scanner of include/secrets/fields.h
 * (fields_keys, fields_span, fields_get) on arbitrary bytes, as a decrypted
 * value that .fields/ would list.
 *
 * Properties, besides "no crash, leak or undefined behaviour":
 *  - the three agree on whether the text is a JSON object (-EINVAL);
 *  - fields_keys lists usable file names (1-255 bytes, no '/' or NUL, not
 *    "." or ".."), each once;
 *  - every key fields_keys lists (for an object) can be fetched: fields_span finds it inside
 *    the text and fields_get renders it (a string unescaped and no longer
 *    than its JSON, anything else as its exact JSON text);
 *  - where json-c (strict mode) also reads the text as an object, a string
 *    field's rendering is the string json-c decodes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "secrets/fields.h"

struct keys {
	char **key;
	size_t *len;
	size_t n;
};

static int collect(const char *key, size_t len, void *ctx)
{
	struct keys *k = ctx;
	FUZZ_CHECK(len >= 1 && len <= 255);
	FUZZ_CHECK(memchr(key, '/', len) == NULL && memchr(key, '\0', len) == NULL);
	FUZZ_CHECK(!(len == 1 && key[0] == '.') && !(len == 2 && key[0] == '.' && key[1] == '.'));
	for (size_t i = 0; i < k->n; i++)
		FUZZ_CHECK(k->len[i] != len || memcmp(k->key[i], key, len) != 0);
	k->key = realloc(k->key, (k->n + 1) * sizeof(*k->key));
	k->len = realloc(k->len, (k->n + 1) * sizeof(*k->len));
	FUZZ_CHECK(k->key && k->len);
	k->key[k->n] = strndup(key, len);
	FUZZ_CHECK(k->key[k->n]);
	k->len[k->n] = len;
	k->n++;
	return 0;
}

/* json-c's reading of the text, when it reads an object and no key could
 * be cut at a NUL by json-c's C-string keys ("\u0000"); else NULL. */
static json_object *jsonc_object(const uint8_t *json, size_t len)
{
	if (len > 65536 || memmem(json, len, "\\u0000", 6))
		return NULL;
	json_tokener *tok = json_tokener_new();
	FUZZ_CHECK(tok);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *o = json_tokener_parse_ex(tok, (const char *)json, (int)len);
	bool whole = json_tokener_get_error(tok) == json_tokener_success &&
		     json_tokener_get_parse_end(tok) <= len;
	json_tokener_free(tok);
	if (o && (!whole || !json_object_is_type(o, json_type_object))) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

static void check_key(const uint8_t *json, size_t len, const char *key, json_object *ref)
{
	size_t start = 0, end = 0;
	struct secbuf out = { 0 };

	FUZZ_CHECK(fields_span(json, len, key, &start, &end) == 0);
	FUZZ_CHECK(start < end && end <= len);
	int rc = fields_get(json, len, key, &out);
	FUZZ_CHECK(rc == 0); /* listed, so it can be fetched */
	if (json[start] == '"') {
		FUZZ_CHECK(end - start >= 2 && json[end - 1] == '"');
		FUZZ_CHECK(out.len <= end - start - 2);
		json_object *v;
		if (ref && json_object_object_get_ex(ref, key, &v) &&
		    json_object_is_type(v, json_type_string)) {
			FUZZ_CHECK((size_t)json_object_get_string_len(v) == out.len);
			FUZZ_CHECK(memcmp(json_object_get_string(v), out.data, out.len) == 0);
		}
	} else {
		FUZZ_CHECK(out.len == end - start && memcmp(out.data, json + start, out.len) == 0);
	}
	secbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const probes[] = { "password", "username", "engine", "port",
					      "host", "SecretString", "" };
	struct keys k = { 0 };

	fuzz_crypto_init();
	int rc = fields_keys(data, size, collect, &k);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	json_object *ref = rc == 0 ? jsonc_object(data, size) : NULL;

	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		size_t start = 0, end = 0;
		struct secbuf out = { 0 };
		int span = fields_span(data, size, probes[i], &start, &end);
		int get = fields_get(data, size, probes[i], &out);
		if (rc == -EINVAL) {
			FUZZ_CHECK(span == -EINVAL && get == -EINVAL);
		} else {
			FUZZ_CHECK(span == 0 || span == -ENOENT);
			FUZZ_CHECK(span == -ENOENT ? get == -ENOENT : (get == 0 || get == -EINVAL));
			if (span == 0)
				FUZZ_CHECK(start < end && end <= size);
		}
		secbuf_free(&out);
	}
	/* On -EINVAL the keys met before the error were offered too; the
	 * caller (sm_snapshot_field_names) drops them. */
	for (size_t i = 0; i < k.n; i++) {
		if (rc == 0)
			check_key(data, size, k.key[i], ref);
		free(k.key[i]);
	}
	free(k.key);
	free(k.len);
	json_object_put(ref);
	return 0;
}
