/*
 * fuzz_exchange: exchange_decode (include/secrets/exchange.h), the reader
 * of `secretsfs import`, on arbitrary lines.
 *
 * Properties, besides "no crash, leak or undefined behaviour":
 *  - a refused line is -EINVAL with a reason (or -ENOMEM), a decoded one has
 *    a valid Name and tags with a Key and a Value;
 *  - decoding into a value buffer that already holds a value (as import
 *    reuses one) gives the same record and value;
 *  - a decoded line survives `export`: exchange_encode of its metadata (as a
 *    DescribeSecret JSON) and value makes a line that decodes to the same
 *    Name, ARN, VersionId, Description, KmsKeyId, CreatedDate, Tags, type
 *    and value bytes.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "fuzz.h"
#include "secrets/exchange.h"
#include "secrets/names.h"

static bool same_str(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

static void check_same_record(const struct exchange_record *a, const struct secbuf *av,
			      const struct exchange_record *b, const struct secbuf *bv,
			      bool version_id_empty_is_none)
{
	FUZZ_CHECK(same_str(a->name, b->name));
	FUZZ_CHECK(same_str(a->arn, b->arn));
	if (version_id_empty_is_none && a->version_id && !a->version_id[0])
		FUZZ_CHECK(b->version_id == NULL);
	else
		FUZZ_CHECK(same_str(a->version_id, b->version_id));
	FUZZ_CHECK(same_str(a->description, b->description));
	FUZZ_CHECK(same_str(a->kms_key_id, b->kms_key_id));
	FUZZ_CHECK(same_str(a->created, b->created));
	FUZZ_CHECK(a->ntags == b->ntags);
	for (size_t i = 0; i < a->ntags; i++) {
		FUZZ_CHECK(strcmp(a->tags[i].key, b->tags[i].key) == 0);
		FUZZ_CHECK(strcmp(a->tags[i].value, b->tags[i].value) == 0);
	}
	FUZZ_CHECK(a->has_value == b->has_value && a->binary == b->binary);
	FUZZ_CHECK(av->len == bv->len);
	if (av->len)
		FUZZ_CHECK(memcmp(av->data, bv->data, av->len) == 0);
}

static void add_string(json_object *o, const char *key, const char *value)
{
	if (value) {
		json_object *s = json_object_new_string(value);
		FUZZ_CHECK(s);
		json_object_object_add(o, key, s);
	}
}

/* The record's metadata as sm_describe shapes it. */
static char *describe_of(const struct exchange_record *r, bool with_tags)
{
	json_object *o = json_object_new_object();
	FUZZ_CHECK(o);
	add_string(o, "ARN", r->arn);
	add_string(o, "Name", r->name);
	add_string(o, "Description", r->description);
	add_string(o, "KmsKeyId", r->kms_key_id);
	if (with_tags) {
		json_object *tags = json_object_new_array();
		FUZZ_CHECK(tags);
		for (size_t i = 0; i < r->ntags; i++) {
			json_object *t = json_object_new_object();
			FUZZ_CHECK(t);
			add_string(t, "Key", r->tags[i].key);
			add_string(t, "Value", r->tags[i].value);
			json_object_array_add(tags, t);
		}
		json_object_object_add(o, "Tags", tags);
	}
	add_string(o, "CreatedDate", r->created);
	char *text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								 JSON_C_TO_STRING_NOSLASHESCAPE));
	FUZZ_CHECK(text);
	json_object_put(o);
	return text;
}

static void round_trip(const struct exchange_record *r, const struct secbuf *value)
{
	struct secbuf line = { 0 }, value2 = { 0 };
	struct exchange_record r2;
	const char *why = NULL;
	char *describe = describe_of(r, r->ntags > 0);

	int rc = exchange_encode(describe, r->version_id, "AWSCURRENT,custom",
				 r->has_value ? value : NULL, r->binary, &line);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(line.len >= 3 && line.data[line.len - 1] == '\n');
	FUZZ_CHECK(memchr(line.data, '\n', line.len - 1) == NULL); /* one line */
	rc = exchange_decode(line.data, line.len - 1, &r2, &value2, &why);
	if (rc)
		fprintf(stderr, "fuzz_exchange: re-import refused: %s\n", why ? why : "?");
	FUZZ_CHECK(rc == 0);
	check_same_record(r, value, &r2, &value2, true);

	exchange_record_free(&r2);
	secbuf_free(&value2);
	secbuf_free(&line);
	free(describe);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct exchange_record r;
	struct secbuf value = { 0 };
	const char *why = NULL;

	fuzz_crypto_init();
	if (size > EXCHANGE_LINE_MAX)
		return 0;
	int rc = exchange_decode(data, size, &r, &value, &why);
	if (rc) {
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM);
		if (rc == -EINVAL)
			FUZZ_CHECK(why != NULL && why[0] != '\0');
		FUZZ_CHECK(r.name == NULL && r.tags == NULL && r.ntags == 0);
		secbuf_free(&value);
		return 0;
	}
	FUZZ_CHECK(r.name && name_check(r.name, NULL) == 0);
	FUZZ_CHECK(r.ntags == 0 || r.tags);
	for (size_t i = 0; i < r.ntags; i++)
		FUZZ_CHECK(r.tags[i].key && r.tags[i].value);
	FUZZ_CHECK(r.has_value || (!r.binary && value.len == 0));

	/* The same line into a buffer that holds a value already. */
	struct exchange_record again;
	struct secbuf copy = { 0 };
	FUZZ_CHECK(secbuf_set(&copy, value.data, value.len) == 0);
	FUZZ_CHECK(exchange_decode(data, size, &again, &value, &why) == 0);
	check_same_record(&r, &copy, &again, &value, false);
	exchange_record_free(&again);

	round_trip(&r, &copy);

	secbuf_free(&copy);
	secbuf_free(&value);
	exchange_record_free(&r);
	return 0;
}
