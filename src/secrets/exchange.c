#include "secrets/exchange.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "secrets/fields.h"
#include "secrets/names.h"
#include "util/timeutil.h"

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

/* --- versions as the mount lists them --- */

void exchange_versions_free(struct exchange_version *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].id);
		free(v[i].created);
		for (size_t j = 0; j < v[i].nstages; j++)
			free(v[i].stages[j]);
		free(v[i].stages);
	}
	free(v);
}

static int add_stage(struct exchange_version *v, const char *stage, size_t len)
{
	char **stages = realloc(v->stages, (v->nstages + 1) * sizeof(*stages));
	if (!stages)
		return -ENOMEM;
	v->stages = stages;
	if (!(stages[v->nstages] = strndup(stage, len)))
		return -ENOMEM;
	v->nstages++;
	return 0;
}

int exchange_versions_parse(const char *text, struct exchange_version **out, size_t *n)
{
	struct exchange_version *list = NULL;
	size_t count = 0;
	int rc = 0;

	for (const char *line = text; !rc && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		/* "ID DATE LABELS": the labels may be empty, never the rest. */
		const char *sp1 = memchr(line, ' ', len);
		const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
		struct exchange_version *grown = realloc(list, (count + 1) * sizeof(*list));
		if (!grown) {
			rc = -ENOMEM;
			break;
		}
		list = grown;
		struct exchange_version *v = &list[count++];
		memset(v, 0, sizeof(*v));
		if (!sp1 || !sp2 || sp1 == line) {
			rc = -EINVAL;
			break;
		}
		v->id = strndup(line, (size_t)(sp1 - line));
		v->created = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
		if (!v->id || !v->created)
			rc = -ENOMEM;
		for (const char *p = sp2 + 1, *end = line + len; !rc && p < end;) {
			const char *comma = memchr(p, ',', (size_t)(end - p));
			const char *stop = comma ? comma : end;
			if (stop > p)
				rc = add_stage(v, p, (size_t)(stop - p));
			p = stop + 1;
		}
		line += len + (eol ? 1 : 0);
	}
	if (rc) {
		exchange_versions_free(list, count);
		return rc;
	}
	*out = list;
	*n = count;
	return 0;
}

bool exchange_version_has(const struct exchange_version *v, const char *stage)
{
	for (size_t i = 0; i < v->nstages; i++)
		if (strcmp(v->stages[i], stage) == 0)
			return true;
	return false;
}

const struct exchange_version *exchange_version_find(const struct exchange_version *list,
						     size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i].id, id) == 0)
			return &list[i];
	return NULL;
}

/* --- export --- */

/* Adds value under key; a failed allocation shows as a NULL value. */
static int put(json_object *o, const char *key, json_object *value)
{
	if (!value)
		return -ENOMEM;
	if (json_object_object_add(o, key, value)) {
		json_object_put(value);
		return -ENOMEM;
	}
	return 0;
}

static json_object *string_array(char *const *items, size_t n)
{
	json_object *a = json_object_new_array();
	for (size_t i = 0; a && i < n; i++) {
		json_object *s = json_object_new_string(items[i]);
		if (!s || json_object_array_add(a, s)) {
			json_object_put(s);
			json_object_put(a);
			return NULL;
		}
	}
	return a;
}

/* VersionId, VersionStages and CreatedDate (when known) of v into o. */
static int put_version(json_object *o, const struct exchange_version *v)
{
	int rc = put(o, "VersionId", json_object_new_string(v->id));
	if (!rc)
		rc = put(o, "VersionStages", string_array(v->stages, v->nstages));
	if (!rc && v->created)
		rc = put(o, "CreatedDate", json_object_new_string(v->created));
	return rc;
}

/* The "Secretsfs" object: what the service's shape has no field for. */
static json_object *our_fields(const struct exchange_secret *s)
{
	json_object *o = json_object_new_object(), *list = json_object_new_array(), *rules = NULL;
	char mode[8];
	int rc = o && list ? 0 : -ENOMEM;

	snprintf(mode, sizeof(mode), "%04o", s->mode & 07777);
	if (!rc)
		rc = put(o, "Owner", json_object_new_int64((int64_t)s->uid));
	if (!rc)
		rc = put(o, "Group", json_object_new_int64((int64_t)s->gid));
	if (!rc)
		rc = put(o, "Mode", json_object_new_string(mode));
	for (size_t i = 0; !rc && i < s->nversions; i++) {
		json_object *v = json_object_new_object();
		rc = v ? put_version(v, &s->versions[i]) : -ENOMEM;
		if (!rc && json_object_array_add(list, v))
			rc = -ENOMEM;
		if (rc)
			json_object_put(v);
	}
	if (!rc) {
		rc = put(o, "Versions", list);
		list = NULL;
	}
	if (!rc && s->rotation_command)
		rc = put(o, "RotationCommand", json_object_new_string(s->rotation_command));
	if (!rc && (s->rotation_days || s->rotation_schedule)) {
		rules = json_object_new_object();
		rc = !rules ? -ENOMEM
		     : s->rotation_days
			     ? put(rules, "AutomaticallyAfterDays", json_object_new_int64(s->rotation_days))
			     : put(rules, "ScheduleExpression", json_object_new_string(s->rotation_schedule));
		if (!rc) {
			rc = put(o, "RotationRules", rules);
			rules = NULL;
		}
	}
	json_object_put(rules);
	json_object_put(list);
	if (rc) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

struct exchange_describe {
	json_object *json;
};

int exchange_describe_parse(const char *json, struct exchange_describe **out)
{
	json_object *o = json_tokener_parse(json);
	int rc = !o || !json_object_is_type(o, json_type_object) ? -EINVAL : 0;
	*out = rc ? NULL : malloc(sizeof(**out));
	if (!rc && !*out)
		rc = -ENOMEM;
	if (rc) {
		json_object_put(o);
		return rc;
	}
	(*out)->json = o;
	return 0;
}

void exchange_describe_free(struct exchange_describe *d)
{
	if (d)
		json_object_put(d->json);
	free(d);
}

static int copy_field(json_object *to, json_object *from, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(from, key, &v))
		return 0;
	return put(to, key, json_object_get(v));
}

int exchange_encode(const struct exchange_secret *s, const struct exchange_version *v,
		    const struct secbuf *value, bool binary, bool full, struct secbuf *line)
{
	json_object *d = s->describe->json, *o = json_object_new_object();
	int rc = 0;

	line->len = 0;
	if (!o)
		return -ENOMEM;
	/* get-secret-value's fields (CreatedDate is the version's), then
	 * describe-secret's: KmsKeyId on every line, so an import can choose
	 * the key before it writes the first version. */
	rc = copy_field(o, d, "ARN");
	if (!rc)
		rc = copy_field(o, d, "Name");
	if (!rc)
		rc = v ? put_version(o, v) : copy_field(o, d, "CreatedDate");
	if (!rc)
		rc = copy_field(o, d, "KmsKeyId");
	if (!rc && full)
		rc = copy_field(o, d, "Description");
	if (!rc && full)
		rc = copy_field(o, d, "Tags");
	if (!rc && full)
		rc = put(o, EXCHANGE_KEY, our_fields(s));
	const char *meta = rc ? NULL : json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
									 JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!rc && !meta)
		rc = -ENOMEM;
	if (rc)
		goto out;
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
	json_object_put(o);
	return rc;
}

/* --- import --- */

void exchange_record_free(struct exchange_record *r)
{
	free(r->name);
	free(r->arn);
	free(r->version_id);
	for (size_t i = 0; i < r->nstages; i++)
		free(r->stages[i]);
	free(r->stages);
	free(r->description);
	free(r->kms_key_id);
	free(r->created);
	for (size_t i = 0; i < r->ntags; i++) {
		free(r->tags[i].key);
		free(r->tags[i].value);
	}
	free(r->tags);
	exchange_versions_free(r->versions, r->nversions);
	free(r->rotation_command);
	free(r->rotation_schedule);
	memset(r, 0, sizeof(*r));
}

bool exchange_record_describes_secret(const struct exchange_record *r)
{
	return r->description || r->has_tags || r->has_owner || r->has_mode || r->has_versions ||
	       r->rotation_command || r->rotation_schedule || r->rotation_days;
}

/* A string field, or NULL when absent; -EINVAL in *rc when it is not a
 * string, or holds an escaped NUL ("\u0000"): the C string would stop there,
 * and what import used would not be what the line says. */
static char *dup_string(json_object *o, const char *key, int *rc)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
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

/* A date as the service or the AWS CLI prints one (ISO 8601, or seconds
 * since the epoch as a number), into our form; NULL when absent. */
static int decode_date(json_object *o, const char *key, char **out, const char **why)
{
	json_object *v;
	int64_t ms;
	char text[40];
	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	if (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) {
		double secs = json_object_get_double(v);
		if (secs < 0 || secs > 1e11)
			return refuse_line(why, "CreatedDate is out of range");
		ms = (int64_t)(secs * 1000 + 0.5);
	} else if (!json_object_is_type(v, json_type_string) ||
		   time_parse_iso8601(json_object_get_string(v), &ms)) {
		return refuse_line(why, "CreatedDate is not an ISO 8601 date");
	}
	time_format_iso8601(ms, text, sizeof(text));
	return (*out = strdup(text)) ? 0 : -ENOMEM;
}

/* VersionStages and CreatedDate, of a line or of an entry of Versions;
 * *has (a line's, else NULL): VersionStages was given, possibly empty. */
static int decode_version_fields(json_object *o, char ***stages, size_t *nstages, bool *has,
				 char **created, const char **why)
{
	json_object *a;
	int rc = decode_date(o, "CreatedDate", created, why);
	if (rc || !json_object_object_get_ex(o, "VersionStages", &a))
		return rc;
	if (!json_object_is_type(a, json_type_array))
		return refuse_line(why, "VersionStages is not a list");
	size_t n = json_object_array_length(a);
	if (has)
		*has = true;
	if (!(*stages = calloc(n ? n : 1, sizeof(**stages))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		json_object *l = json_object_array_get_idx(a, i);
		if (!json_object_is_type(l, json_type_string) ||
		    name_check_label(json_object_get_string(l), why))
			return refuse_line(why, *why ? *why : "a version stage is not a string");
		if (!((*stages)[i] = strdup(json_object_get_string(l))))
			return -ENOMEM;
		(*nstages)++;
	}
	return 0;
}

/* A list of objects (what: its name in messages), and room for n items. */
static int object_list(json_object *a, const char *what, size_t item_size, void **items,
		       size_t *n, const char **why)
{
	if (!json_object_is_type(a, json_type_array))
		return refuse_line(why, what);
	*n = json_object_array_length(a);
	for (size_t i = 0; i < *n; i++)
		if (!json_object_is_type(json_object_array_get_idx(a, i), json_type_object))
			return refuse_line(why, what);
	return (*items = calloc(*n ? *n : 1, item_size)) ? 0 : -ENOMEM;
}

static int decode_tags(json_object *o, struct exchange_record *r, const char **why)
{
	json_object *tags;
	void *items = NULL;
	size_t n = 0;
	if (!json_object_object_get_ex(o, "Tags", &tags))
		return 0;
	int rc = object_list(tags, "Tags is not a list of objects", sizeof(*r->tags), &items, &n, why);
	r->tags = items;
	r->has_tags = true;
	for (size_t i = 0; !rc && i < n; i++) {
		json_object *t = json_object_array_get_idx(tags, i);
		r->tags[i].key = dup_string(t, "Key", &rc);
		r->tags[i].value = dup_string(t, "Value", &rc);
		r->ntags++;
		if (rc == -ENOMEM)
			return rc;
		if (rc || !r->tags[i].key)
			return refuse_line(why, "a tag needs a Key and a Value, strings without NUL");
		if (!r->tags[i].value && !(r->tags[i].value = strdup("")))
			rc = -ENOMEM;
	}
	return rc;
}

/* Owner or Group: a uid or gid as a number. */
static int decode_id(json_object *o, const char *key, unsigned long *out, bool *has,
		     const char **why)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return 0;
	int64_t n = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) || n < 0 || n >= UINT32_MAX)
		return refuse_line(why, "Secretsfs Owner and Group are user and group ids");
	*out = (unsigned long)n;
	*has = true;
	return 0;
}

static int decode_versions(json_object *list, struct exchange_record *r, const char **why)
{
	void *items = NULL;
	size_t n = 0;
	int rc = object_list(list, "Secretsfs Versions is not a list of objects",
			     sizeof(*r->versions), &items, &n, why);
	r->versions = items;
	r->has_versions = true;
	for (size_t i = 0; !rc && i < n; i++) {
		json_object *e = json_object_array_get_idx(list, i);
		struct exchange_version *v = &r->versions[r->nversions++];
		v->id = dup_string(e, "VersionId", &rc);
		if (rc == -ENOMEM)
			return rc;
		if (rc || !v->id || name_check_version_id(v->id, why))
			return refuse_line(why, *why ? *why : "an entry of Secretsfs Versions has no VersionId");
		rc = decode_version_fields(e, &v->stages, &v->nstages, NULL, &v->created, why);
	}
	return rc;
}

static int decode_rules(json_object *rules, struct exchange_record *r, const char **why)
{
	json_object *v;
	int rc = 0;
	if (!json_object_is_type(rules, json_type_object))
		return refuse_line(why, "Secretsfs RotationRules is not an object");
	if (json_object_object_get_ex(rules, "AutomaticallyAfterDays", &v)) {
		int64_t days = json_object_get_int64(v);
		if (!json_object_is_type(v, json_type_int) || days < 1 || days > 1000)
			return refuse_line(why, "AutomaticallyAfterDays is 1 to 1000");
		r->rotation_days = (int)days;
	}
	r->rotation_schedule = dup_string(rules, "ScheduleExpression", &rc);
	if (rc)
		return rc == -EINVAL ? refuse_line(why, "ScheduleExpression is a string without NUL") : rc;
	/* The two exclude each other (user.sm.rotation_schedule clears
	 * rotation_days); the service derives the days from the schedule, so
	 * with both the schedule is the setting, as import would leave it. */
	if (r->rotation_schedule)
		r->rotation_days = 0;
	return 0;
}

/* The "Secretsfs" object, if the line has one. */
static int decode_ours(json_object *o, struct exchange_record *r, const char **why)
{
	json_object *ours, *v;
	int rc = 0;
	if (!json_object_object_get_ex(o, EXCHANGE_KEY, &ours))
		return 0;
	if (!json_object_is_type(ours, json_type_object))
		return refuse_line(why, "Secretsfs is not an object");
	if ((rc = decode_id(ours, "Owner", &r->uid, &r->has_owner, why)))
		return rc;
	bool has_group = false;
	if ((rc = decode_id(ours, "Group", &r->gid, &has_group, why)))
		return rc;
	if (r->has_owner != has_group)
		return refuse_line(why, "Secretsfs Owner and Group come together");
	if (json_object_object_get_ex(ours, "Mode", &v)) {
		const char *text = json_object_get_string(v);
		char *end;
		unsigned long mode = json_object_is_type(v, json_type_string) ? strtoul(text, &end, 8) : 0;
		if (!json_object_is_type(v, json_type_string) || !text[0] || *end || mode > 07777)
			return refuse_line(why, "Secretsfs Mode is octal text such as \"0600\"");
		r->mode = (unsigned)mode;
		r->has_mode = true;
	}
	if (json_object_object_get_ex(ours, "Versions", &v) && (rc = decode_versions(v, r, why)))
		return rc;
	r->rotation_command = dup_string(ours, "RotationCommand", &rc);
	if (rc)
		return rc == -EINVAL ? refuse_line(why, "RotationCommand is a string without NUL") : rc;
	if (json_object_object_get_ex(ours, "RotationRules", &v))
		return decode_rules(v, r, why);
	return 0;
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
	if (rc) {
		rc = rc == -EINVAL ? refuse_line(why, "Name, ARN, VersionId, Description and KmsKeyId "
						      "are strings without NUL")
				   : rc;
		goto fail;
	}
	/* Name and VersionId become path components under the mount (NAME,
	 * .versions/NAME/ID) and the client request token: the rules of names.h
	 * before anything uses them. */
	if (!r->name || name_check(r->name, why)) {
		rc = refuse_line(why, *why ? *why : "no Name");
		goto fail;
	}
	if (r->version_id && name_check_version_id(r->version_id, why)) {
		rc = refuse_line(why, *why);
		goto fail;
	}
	if ((rc = decode_version_fields(o, &r->stages, &r->nstages, &r->has_stages, &r->created,
					why)) ||
	    (rc = decode_tags(o, r, why)) || (rc = decode_ours(o, r, why)))
		goto fail;
	json_object_put(o);
	return 0;
fail:
	json_object_put(o);
	exchange_record_free(r);
	secbuf_free(value);
	return rc;
}
