/*
 * fuzz_exchange: exchange_decode (include/secrets/exchange.h), the reader
 * of `secretsfs import`, on arbitrary lines.
 *
 * Properties, besides "no crash, leak or undefined behaviour":
 *  - a refused line is -EINVAL with a reason (or -ENOMEM), a decoded one has
 *    a valid Name and VersionId (they become paths), tags with a Key and a
 *    Value, "Secretsfs" Versions with valid ids and labels, a Mode of
 *    permission bits, rotation days 1 to 1000 and not beside a
 *    ScheduleExpression;
 *  - decoding into a value buffer that already holds a value (as import
 *    reuses one) gives the same record and value;
 *  - a decoded line survives `export`: exchange_encode of what the line
 *    says (its metadata as a DescribeSecret JSON, its version, value and
 *    "Secretsfs" fields) makes one line that decodes to the same record,
 *    field by field. Encoded as the secret's own line (full), everything
 *    comes back, and Owner, Group, Mode and Versions are then always given;
 *    as an older version's line, only the version's fields, ARN, Name and
 *    KmsKeyId, and the line does not describe the secret.
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

static void check_same_stages(char *const *a, size_t na, char *const *b, size_t nb)
{
	FUZZ_CHECK(na == nb);
	for (size_t i = 0; i < na; i++)
		FUZZ_CHECK(strcmp(a[i], b[i]) == 0);
}

/* Every field of a and b, the value included. */
static void check_same_record(const struct exchange_record *a, const struct secbuf *av,
			      const struct exchange_record *b, const struct secbuf *bv)
{
	FUZZ_CHECK(same_str(a->name, b->name));
	FUZZ_CHECK(same_str(a->arn, b->arn));
	FUZZ_CHECK(same_str(a->version_id, b->version_id));
	FUZZ_CHECK(a->has_stages == b->has_stages);
	check_same_stages(a->stages, a->nstages, b->stages, b->nstages);
	FUZZ_CHECK(same_str(a->created, b->created));
	FUZZ_CHECK(same_str(a->description, b->description));
	FUZZ_CHECK(same_str(a->kms_key_id, b->kms_key_id));
	FUZZ_CHECK(a->has_tags == b->has_tags && a->ntags == b->ntags);
	for (size_t i = 0; i < a->ntags; i++) {
		FUZZ_CHECK(strcmp(a->tags[i].key, b->tags[i].key) == 0);
		FUZZ_CHECK(strcmp(a->tags[i].value, b->tags[i].value) == 0);
	}
	FUZZ_CHECK(a->has_value == b->has_value && a->binary == b->binary);
	FUZZ_CHECK(av->len == bv->len);
	if (av->len)
		FUZZ_CHECK(memcmp(av->data, bv->data, av->len) == 0);

	FUZZ_CHECK(a->has_owner == b->has_owner && a->uid == b->uid && a->gid == b->gid);
	FUZZ_CHECK(a->has_mode == b->has_mode && a->mode == b->mode);
	FUZZ_CHECK(a->has_versions == b->has_versions && a->nversions == b->nversions);
	for (size_t i = 0; i < a->nversions; i++) {
		FUZZ_CHECK(strcmp(a->versions[i].id, b->versions[i].id) == 0);
		FUZZ_CHECK(same_str(a->versions[i].created, b->versions[i].created));
		check_same_stages(a->versions[i].stages, a->versions[i].nstages,
				  b->versions[i].stages, b->versions[i].nstages);
	}
	FUZZ_CHECK(same_str(a->rotation_command, b->rotation_command));
	FUZZ_CHECK(same_str(a->rotation_schedule, b->rotation_schedule));
	FUZZ_CHECK(a->rotation_days == b->rotation_days);
	FUZZ_CHECK(exchange_record_describes_secret(a) == exchange_record_describes_secret(b));
}

/* What exchange_decode promises about a line it accepted. */
static void check_rules(const struct exchange_record *r, const struct secbuf *value)
{
	FUZZ_CHECK(r->name && name_check(r->name, NULL) == 0);
	FUZZ_CHECK(!r->version_id || name_check_version_id(r->version_id, NULL) == 0);
	FUZZ_CHECK(r->ntags == 0 || r->tags);
	for (size_t i = 0; i < r->ntags; i++)
		FUZZ_CHECK(r->tags[i].key && r->tags[i].value);
	FUZZ_CHECK(r->has_value || (!r->binary && value->len == 0));
	FUZZ_CHECK(r->has_stages || r->nstages == 0);
	for (size_t i = 0; i < r->nstages; i++)
		FUZZ_CHECK(name_check_label(r->stages[i], NULL) == 0);
	FUZZ_CHECK(r->has_versions || r->nversions == 0);
	for (size_t i = 0; i < r->nversions; i++) {
		FUZZ_CHECK(name_check_version_id(r->versions[i].id, NULL) == 0);
		for (size_t j = 0; j < r->versions[i].nstages; j++)
			FUZZ_CHECK(name_check_label(r->versions[i].stages[j], NULL) == 0);
	}
	FUZZ_CHECK(r->has_owner || (r->uid == 0 && r->gid == 0));
	FUZZ_CHECK(r->uid < UINT32_MAX && r->gid < UINT32_MAX);
	FUZZ_CHECK(r->has_mode ? r->mode <= 07777 : r->mode == 0);
	FUZZ_CHECK(r->rotation_days == 0 || (r->rotation_days >= 1 && r->rotation_days <= 1000));
	/* The two RotationRules exclude each other, as user.sm.rotation_days
	 * and user.sm.rotation_schedule do (docs/rotation.md). */
	FUZZ_CHECK(!(r->rotation_days && r->rotation_schedule));
}

static void add_string(json_object *o, const char *key, const char *value)
{
	if (value) {
		json_object *s = json_object_new_string(value);
		FUZZ_CHECK(s);
		json_object_object_add(o, key, s);
	}
}

/* The record's metadata as sm_describe shapes it (user.sm.describe). */
static char *describe_of(const struct exchange_record *r)
{
	json_object *o = json_object_new_object();
	FUZZ_CHECK(o);
	add_string(o, "ARN", r->arn);
	add_string(o, "Name", r->name);
	add_string(o, "Description", r->description);
	add_string(o, "KmsKeyId", r->kms_key_id);
	if (r->has_tags) {
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

/*
 * r exported as the secret's own line (full) or as an older version's,
 * then imported: what comes back is r with what that line carries. d is
 * r's describe, parsed once for both lines as export does.
 */
static void round_trip(const struct exchange_record *r, const struct exchange_describe *d,
		       const struct secbuf *value, bool full)
{
	struct secbuf line = { 0 }, value2 = { 0 };
	struct exchange_record r2;
	const char *why = NULL;
	const struct exchange_secret s = { d,		     r->versions,	   r->nversions,
					   r->uid,	     r->gid,		   r->mode,
					   r->rotation_command, r->rotation_schedule, r->rotation_days };
	/* The line's own version; without a VersionId the line has none, and
	 * its CreatedDate is the describe's. */
	const struct exchange_version v = { r->version_id, r->created, r->stages, r->nstages };

	int rc = exchange_encode(&s, r->version_id ? &v : NULL, r->has_value ? value : NULL,
				 r->binary, full, &line);
	FUZZ_CHECK(rc == 0);
	FUZZ_CHECK(line.len >= 3 && line.data[line.len - 1] == '\n');
	FUZZ_CHECK(memchr(line.data, '\n', line.len - 1) == NULL); /* one line */
	rc = exchange_decode(line.data, line.len - 1, &r2, &value2, &why);
	if (rc)
		fprintf(stderr, "fuzz_exchange: re-import refused: %s\n", why ? why : "?");
	FUZZ_CHECK(rc == 0);

	/* What the line carries of r: a shallow copy, nothing of it freed. */
	struct exchange_record want = *r;
	if (!r->version_id) {
		want.stages = NULL;
		want.nstages = 0;
		want.has_stages = false;
	} else {
		want.has_stages = true; /* VersionStages is always written, maybe [] */
	}
	if (full) {
		want.has_owner = want.has_mode = want.has_versions = true;
	} else {
		want.description = NULL;
		want.tags = NULL;
		want.ntags = 0;
		want.has_tags = want.has_owner = want.has_mode = want.has_versions = false;
		want.uid = want.gid = 0;
		want.mode = 0;
		want.versions = NULL;
		want.nversions = 0;
		want.rotation_command = want.rotation_schedule = NULL;
		want.rotation_days = 0;
	}
	check_same_record(&want, value, &r2, &value2);
	FUZZ_CHECK(exchange_record_describes_secret(&r2) == full);

	exchange_record_free(&r2);
	secbuf_free(&value2);
	secbuf_free(&line);
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
		FUZZ_CHECK(r.name == NULL && r.tags == NULL && r.ntags == 0 && r.versions == NULL);
		secbuf_free(&value);
		return 0;
	}
	check_rules(&r, &value);

	/* The same line into a buffer that holds a value already. */
	struct exchange_record again;
	struct secbuf copy = { 0 };
	FUZZ_CHECK(secbuf_set(&copy, value.data, value.len) == 0);
	FUZZ_CHECK(exchange_decode(data, size, &again, &value, &why) == 0);
	check_same_record(&r, &copy, &again, &value);
	exchange_record_free(&again);

	char *describe = describe_of(&r);
	struct exchange_describe *d = NULL;
	FUZZ_CHECK(exchange_describe_parse(describe, &d) == 0);
	round_trip(&r, d, &copy, true);
	round_trip(&r, d, &copy, false);
	exchange_describe_free(d);
	free(describe);

	secbuf_free(&copy);
	secbuf_free(&value);
	exchange_record_free(&r);
	return 0;
}
