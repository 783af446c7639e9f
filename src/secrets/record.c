#include "secrets/record.h"
#include "secrets/schedule.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

/*
 * Interning. A mount holds every version and label of every secret, and
 * nearly all of them name the same key and the same three AWS labels: one
 * shared copy each keeps ~64 bytes per secret out of the index.
 */
static const char *const aws_labels[] = { "AWSCURRENT", "AWSPREVIOUS", "AWSPENDING" };

static const char *label_name_dup(const char *name)
{
	for (size_t i = 0; i < sizeof(aws_labels) / sizeof(aws_labels[0]); i++)
		if (strcmp(name, aws_labels[i]) == 0)
			return aws_labels[i];
	return strdup(name);
}

static void label_name_free(const char *name)
{
	for (size_t i = 0; i < sizeof(aws_labels) / sizeof(aws_labels[0]); i++)
		if (name == aws_labels[i])
			return;
	free((char *)name);
}

static pthread_mutex_t key_ids_lock = PTHREAD_MUTEX_INITIALIZER;
static char **key_ids;
static size_t nkey_ids;

const char *record_key_id(const char *key_id)
{
	const char *found = NULL;
	pthread_mutex_lock(&key_ids_lock);
	for (size_t i = 0; i < nkey_ids && !found; i++)
		if (strcmp(key_ids[i], key_id) == 0)
			found = key_ids[i];
	if (!found) {
		char **grown = realloc(key_ids, (nkey_ids + 1) * sizeof(*grown));
		char *copy = strdup(key_id);
		if (grown)
			key_ids = grown;
		if (grown && copy)
			found = key_ids[nkey_ids++] = copy;
		else
			free(copy);
	}
	pthread_mutex_unlock(&key_ids_lock);
	return found;
}

void secret_free(struct sm_secret *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->description);
	free(s->kms_key_id);
	free(s->request_token);
	free(s->rotation_command);
	free(s->rotation_schedule);
	free(s->rotation_status);
	free(s->versions);
	for (size_t i = 0; i < s->nlabels; i++)
		label_name_free(s->labels[i].name);
	free(s->labels);
	for (size_t i = 0; i < s->ntags; i++) {
		free(s->tags[i].key);
		free(s->tags[i].value);
	}
	free(s->tags);
	free(s);
}

static char *dup_or_null(const char *s, bool *failed)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

struct sm_secret *secret_clone(const struct sm_secret *s)
{
	bool failed = false;
	struct sm_secret *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	*c = *s;
	c->name = dup_or_null(s->name, &failed);
	c->description = dup_or_null(s->description, &failed);
	c->kms_key_id = dup_or_null(s->kms_key_id, &failed);
	c->request_token = dup_or_null(s->request_token, &failed);
	c->rotation_command = dup_or_null(s->rotation_command, &failed);
	c->rotation_schedule = dup_or_null(s->rotation_schedule, &failed);
	c->rotation_status = dup_or_null(s->rotation_status, &failed);
	c->versions = NULL;
	c->labels = NULL;
	c->tags = NULL;
	c->nversions = c->nlabels = c->ntags = 0;
	if (s->nversions) {
		c->versions = malloc(s->nversions * sizeof(*c->versions));
		if (c->versions) {
			memcpy(c->versions, s->versions, s->nversions * sizeof(*c->versions));
			c->nversions = s->nversions;
		} else {
			failed = true;
		}
	}
	if (s->nlabels) {
		c->labels = calloc(s->nlabels, sizeof(*c->labels));
		if (c->labels) {
			c->nlabels = s->nlabels;
			for (size_t i = 0; i < s->nlabels; i++) {
				c->labels[i] = s->labels[i];
				if (!(c->labels[i].name = label_name_dup(s->labels[i].name)))
					failed = true;
			}
		} else {
			failed = true;
		}
	}
	if (s->ntags) {
		c->tags = calloc(s->ntags, sizeof(*c->tags));
		if (c->tags) {
			c->ntags = s->ntags;
			for (size_t i = 0; i < s->ntags; i++) {
				c->tags[i].key = dup_or_null(s->tags[i].key, &failed);
				c->tags[i].value = dup_or_null(s->tags[i].value, &failed);
			}
		} else {
			failed = true;
		}
	}
	if (failed) {
		secret_free(c);
		return NULL;
	}
	return c;
}

const struct sm_version *secret_find_version(const struct sm_secret *s, const char *id)
{
	for (size_t i = 0; i < s->nversions; i++)
		if (strcmp(s->versions[i].id, id) == 0)
			return &s->versions[i];
	return NULL;
}

const char *secret_label_version(const struct sm_secret *s, const char *label)
{
	for (size_t i = 0; i < s->nlabels; i++)
		if (strcmp(s->labels[i].name, label) == 0)
			return s->labels[i].version_id;
	return NULL;
}

const struct sm_version *secret_current(const struct sm_secret *s)
{
	const char *id = secret_label_version(s, "AWSCURRENT");
	return id ? secret_find_version(s, id) : NULL;
}

int secret_label_set(struct sm_secret *s, const char *label, const char *version_id)
{
	for (size_t i = 0; i < s->nlabels; i++) {
		if (strcmp(s->labels[i].name, label) == 0) {
			snprintf(s->labels[i].version_id, sizeof(s->labels[i].version_id), "%s",
				 version_id);
			return 0;
		}
	}
	struct sm_label *labels = realloc(s->labels, (s->nlabels + 1) * sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	s->labels = labels;
	struct sm_label *l = &labels[s->nlabels];
	l->name = label_name_dup(label);
	if (!l->name)
		return -ENOMEM;
	snprintf(l->version_id, sizeof(l->version_id), "%s", version_id);
	s->nlabels++;
	return 0;
}

void secret_label_remove(struct sm_secret *s, const char *label)
{
	for (size_t i = 0; i < s->nlabels; i++) {
		if (strcmp(s->labels[i].name, label) == 0) {
			label_name_free(s->labels[i].name);
			memmove(&s->labels[i], &s->labels[i + 1],
				(s->nlabels - i - 1) * sizeof(*s->labels));
			s->nlabels--;
			return;
		}
	}
}

void secret_version_labels(const struct sm_secret *s, const char *version_id, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < s->nlabels; i++) {
		if (strcmp(s->labels[i].version_id, version_id) != 0)
			continue;
		int n = snprintf(buf + used, len - used, "%s%s", used ? "," : "", s->labels[i].name);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}

void folder_free(struct sm_folder *f)
{
	if (!f)
		return;
	free(f->path);
	free(f);
}

/* ---- JSON metadata ---- */

int record_json_add(json_object *obj, const char *key, json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(obj, key, val) != 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

char *record_encode_secret(const struct sm_secret *s)
{
	json_object *o = json_object_new_object();
	json_object *versions = json_object_new_array();
	json_object *labels = json_object_new_object();
	json_object *tags = json_object_new_object();
	char *text = NULL;
	int rc = 0;

	if (!o || !versions || !labels || !tags) {
		json_object_put(versions);
		json_object_put(labels);
		json_object_put(tags);
		goto out;
	}
	rc |= record_json_add(o, "name", json_object_new_string(s->name));
	rc |= record_json_add(o, "id", json_object_new_string(s->uuid));
	rc |= record_json_add(o, "arn_suffix", json_object_new_string(s->arn_suffix));
	if (s->description)
		rc |= record_json_add(o, "description", json_object_new_string(s->description));
	if (s->kms_key_id)
		rc |= record_json_add(o, "kms_key_id", json_object_new_string(s->kms_key_id));
	rc |= record_json_add(o, "created", json_object_new_int64(s->created_ms));
	rc |= record_json_add(o, "changed", json_object_new_int64(s->changed_ms));
	rc |= record_json_add(o, "accessed", json_object_new_int64(s->accessed_ms));
	if (s->seq)
		rc |= record_json_add(o, "seq", json_object_new_int64(s->seq));
	if (s->deleted_ms) {
		rc |= record_json_add(o, "deleted", json_object_new_int64(s->deleted_ms));
		rc |= record_json_add(o, "purge", json_object_new_int64(s->purge_ms));
	}
	rc |= record_json_add(o, "mode", json_object_new_int64(s->mode));
	rc |= record_json_add(o, "uid", json_object_new_int64(s->uid));
	rc |= record_json_add(o, "gid", json_object_new_int64(s->gid));
	for (size_t i = 0; i < s->nversions; i++) {
		const struct sm_version *v = &s->versions[i];
		json_object *vo = json_object_new_object();
		if (!vo) {
			rc = -ENOMEM;
			break;
		}
		rc |= record_json_add(vo, "id", json_object_new_string(v->id));
		rc |= record_json_add(vo, "key", json_object_new_string(v->key_id));
		rc |= record_json_add(vo, "created", json_object_new_int64(v->created_ms));
		rc |= record_json_add(vo, "size", json_object_new_int64(v->size));
		rc |= record_json_add(vo, "binary", json_object_new_boolean(v->binary));
		json_object_array_add(versions, vo);
	}
	for (size_t i = 0; i < s->nlabels; i++)
		rc |= record_json_add(labels, s->labels[i].name, json_object_new_string(s->labels[i].version_id));
	for (size_t i = 0; i < s->ntags; i++)
		rc |= record_json_add(tags, s->tags[i].key, json_object_new_string(s->tags[i].value));
	json_object_object_add(o, "versions", versions);
	json_object_object_add(o, "labels", labels);
	json_object_object_add(o, "tags", tags);
	if (s->tags_ever)
		rc |= record_json_add(o, "tags_ever", json_object_new_boolean(1));
	/* Rotation settings outlive their command (CancelRotateSecret keeps them). */
	if (s->rotation_command || s->rotation_days || s->rotation_schedule || s->last_rotated_ms) {
		json_object *r = json_object_new_object();
		if (!r) {
			rc = -ENOMEM;
		} else {
			if (s->rotation_command)
				rc |= record_json_add(r, "command",
						      json_object_new_string(s->rotation_command));
			if (s->rotation_days)
				rc |= record_json_add(r, "days", json_object_new_int64(s->rotation_days));
			if (s->rotation_schedule)
				rc |= record_json_add(r, "schedule", json_object_new_string(s->rotation_schedule));
			if (s->last_rotated_ms)
				rc |= record_json_add(r, "last", json_object_new_int64(s->last_rotated_ms));
			if (s->next_rotation_ms)
				rc |= record_json_add(r, "next", json_object_new_int64(s->next_rotation_ms));
			json_object_object_add(o, "rotation", r);
		}
	}
	if (rc == 0) {
		const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		if (t)
			text = strdup(t);
	}
out:
	json_object_put(o);
	return text;
}

json_object *record_json_parse(const uint8_t *data, size_t len)
{
	if (len == 0 || len > 16 * 1024 * 1024)
		return NULL;
	json_tokener *tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_object *obj = json_tokener_parse_ex(tok, (const char *)data, (int)len);
	if (obj && (json_tokener_get_error(tok) != json_tokener_success ||
		    json_tokener_get_parse_end(tok) != len)) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	if (obj && !json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = NULL;
	}
	return obj;
}

int record_json_string(json_object *o, const char *key, bool required, const char **out)
{
	json_object *v;
	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return required ? -EIO : 0;
	if (!json_object_is_type(v, json_type_string))
		return -EIO;
	*out = json_object_get_string(v);
	return 0;
}

int record_json_int(json_object *o, const char *key, bool required, int64_t *out)
{
	json_object *v;
	*out = 0;
	if (!json_object_object_get_ex(o, key, &v))
		return required ? -EIO : 0;
	if (!json_object_is_type(v, json_type_int))
		return -EIO;
	*out = json_object_get_int64(v);
	return 0;
}

static int copy_fixed(char *dst, size_t cap, const char *src, size_t min, size_t max)
{
	size_t len = strlen(src);
	if (len < min || len > max || len >= cap)
		return -EIO;
	memcpy(dst, src, len + 1);
	return 0;
}

int record_decode_secret(const uint8_t *data, size_t len, struct sm_secret **out)
{
	/* The secret first: allocated before the parse's temporaries, it takes
	 * the room a previous decode freed instead of the heap's top (a load of
	 * 100k secrets otherwise leaves a struct-sized hole for each). */
	struct sm_secret *s = calloc(1, sizeof(*s));
	json_object *o = record_json_parse(data, len);
	const char *str;
	int64_t n;
	int rc = -EIO;

	*out = NULL;
	if (!o || !s)
		goto fail;
	if (record_json_string(o, "name", true, &str) || name_check(str, NULL) || !(s->name = strdup(str)))
		goto fail;
	if (record_json_string(o, "id", true, &str) ||
	    copy_fixed(s->uuid, sizeof(s->uuid), str, SM_UUID_HEX_LEN, SM_UUID_HEX_LEN))
		goto fail;
	if (record_json_string(o, "arn_suffix", true, &str) ||
	    copy_fixed(s->arn_suffix, sizeof(s->arn_suffix), str, SM_ARN_SUFFIX_LEN, SM_ARN_SUFFIX_LEN))
		goto fail;
	if (record_json_string(o, "description", false, &str) || (str && !(s->description = strdup(str))))
		goto fail;
	if (record_json_string(o, "kms_key_id", false, &str) || (str && !(s->kms_key_id = strdup(str))))
		goto fail;
	if (record_json_int(o, "created", true, &s->created_ms) || record_json_int(o, "changed", true, &s->changed_ms) ||
	    record_json_int(o, "accessed", false, &s->accessed_ms) ||
	    ((s->stored_accessed_ms = s->accessed_ms), false) ||
	    record_json_int(o, "seq", false, &s->seq) || s->seq < 0 ||
	    record_json_int(o, "deleted", false, &s->deleted_ms) || record_json_int(o, "purge", false, &s->purge_ms))
		goto fail;
	if (record_json_int(o, "mode", true, &n) || n < 0 || n > 07777)
		goto fail;
	s->mode = (uint32_t)n;
	if (record_json_int(o, "uid", true, &n) || n < 0 || n > UINT32_MAX)
		goto fail;
	s->uid = (uint32_t)n;
	if (record_json_int(o, "gid", true, &n) || n < 0 || n > UINT32_MAX)
		goto fail;
	s->gid = (uint32_t)n;

	json_object *arr;
	if (!json_object_object_get_ex(o, "versions", &arr) || !json_object_is_type(arr, json_type_array))
		goto fail;
	size_t nv = json_object_array_length(arr);
	if (nv) {
		s->versions = calloc(nv, sizeof(*s->versions));
		if (!s->versions)
			goto fail;
	}
	for (size_t i = 0; i < nv; i++) {
		json_object *vo = json_object_array_get_idx(arr, i);
		struct sm_version *v = &s->versions[i];
		json_object *b;
		if (!json_object_is_type(vo, json_type_object))
			goto fail;
		if (record_json_string(vo, "id", true, &str) || name_check_version_id(str, NULL) ||
		    copy_fixed(v->id, sizeof(v->id), str, SM_VERSION_ID_MIN, SM_VERSION_ID_MAX))
			goto fail;
		if (record_json_string(vo, "key", true, &str) || strlen(str) != SM_KEY_ID_LEN ||
		    !(v->key_id = record_key_id(str)))
			goto fail;
		if (record_json_int(vo, "created", true, &v->created_ms))
			goto fail;
		if (record_json_int(vo, "size", true, &n) || n < 1 || n > SM_VALUE_MAX)
			goto fail;
		v->size = (uint32_t)n;
		if (!json_object_object_get_ex(vo, "binary", &b) || !json_object_is_type(b, json_type_boolean))
			goto fail;
		v->binary = json_object_get_boolean(b);
		s->nversions++;
	}

	json_object *labels, *tags;
	if (!json_object_object_get_ex(o, "labels", &labels) ||
	    !json_object_is_type(labels, json_type_object))
		goto fail;
	json_object_object_foreach(labels, lname, lval) {
		if (name_check_label(lname, NULL) || s->nlabels >= SM_MAX_LABELS ||
		    !json_object_is_type(lval, json_type_string) ||
		    !secret_find_version(s, json_object_get_string(lval)))
			goto fail;
		if (secret_label_set(s, lname, json_object_get_string(lval)))
			goto fail;
	}
	if (!json_object_object_get_ex(o, "tags", &tags) || !json_object_is_type(tags, json_type_object))
		goto fail;
	json_object_object_foreach(tags, tkey, tval) {
		if (!json_object_is_type(tval, json_type_string))
			goto fail;
		struct sm_tag *t = realloc(s->tags, (s->ntags + 1) * sizeof(*t));
		if (!t)
			goto fail;
		s->tags = t;
		t[s->ntags].key = strdup(tkey);
		t[s->ntags].value = strdup(json_object_get_string(tval));
		s->ntags++;
		if (!t[s->ntags - 1].key || !t[s->ntags - 1].value)
			goto fail;
	}
	json_object *rot;
	if (json_object_object_get_ex(o, "rotation", &rot)) {
		int64_t days;
		if (!json_object_is_type(rot, json_type_object) ||
		    record_json_string(rot, "command", false, &str) ||
		    (str && !(s->rotation_command = strdup(str))) ||
		    record_json_int(rot, "days", false, &days) || days < 0 || days > 1000 ||
		    record_json_string(rot, "schedule", false, &str) ||
		    (str && !(s->rotation_schedule = strdup(str))) ||
		    record_json_int(rot, "last", false, &s->last_rotated_ms) ||
		    record_json_int(rot, "next", false, &s->next_rotation_ms) ||
		    s->last_rotated_ms < 0 || s->next_rotation_ms < 0 ||
		    (s->rotation_schedule && schedule_check(s->rotation_schedule, &str)))
			goto fail;
		s->rotation_days = (int)days;
	}
	json_object *ever;
	s->tags_ever = s->ntags > 0 || (json_object_object_get_ex(o, "tags_ever", &ever) &&
					json_object_get_boolean(ever));
	s->persisted = true;
	*out = s;
	s = NULL;
	rc = 0;
fail:
	secret_free(s);
	json_object_put(o);
	return rc;
}

char *record_encode_folder(const struct sm_folder *f)
{
	json_object *o = json_object_new_object();
	char *text = NULL;
	int rc = 0;
	if (!o)
		return NULL;
	rc |= record_json_add(o, "mode", json_object_new_int64(f->mode));
	rc |= record_json_add(o, "uid", json_object_new_int64(f->uid));
	rc |= record_json_add(o, "gid", json_object_new_int64(f->gid));
	rc |= record_json_add(o, "created", json_object_new_int64(f->created_ms));
	rc |= record_json_add(o, "changed", json_object_new_int64(f->changed_ms));
	if (f->seq)
		rc |= record_json_add(o, "seq", json_object_new_int64(f->seq));
	if (rc == 0) {
		const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		if (t)
			text = strdup(t);
	}
	json_object_put(o);
	return text;
}

int record_decode_folder(const char *path, const uint8_t *data, size_t len, struct sm_folder **out)
{
	json_object *o = record_json_parse(data, len);
	struct sm_folder *f = calloc(1, sizeof(*f));
	int64_t n;
	int rc = -EIO;

	*out = NULL;
	if (!o || !f || !(f->path = strdup(path)))
		goto fail;
	if (path[0] && name_check(path, NULL))
		goto fail;
	if (record_json_int(o, "mode", true, &n) || n < 0 || n > 07777)
		goto fail;
	f->mode = (uint32_t)n;
	if (record_json_int(o, "uid", true, &n) || n < 0 || n > UINT32_MAX)
		goto fail;
	f->uid = (uint32_t)n;
	if (record_json_int(o, "gid", true, &n) || n < 0 || n > UINT32_MAX)
		goto fail;
	f->gid = (uint32_t)n;
	if (record_json_int(o, "created", true, &f->created_ms) || record_json_int(o, "changed", true, &f->changed_ms) ||
	    record_json_int(o, "seq", false, &f->seq) || f->seq < 0)
		goto fail;
	f->persisted = true;
	*out = f;
	f = NULL;
	rc = 0;
fail:
	folder_free(f);
	json_object_put(o);
	return rc;
}

static int key_into(char *buf, size_t len, const char *prefix, const char *name)
{
	int n = snprintf(buf, len, "%s%s", prefix, name);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

int record_key_secret(const char *name, char *buf, size_t len)
{
	return key_into(buf, len, RECORD_PREFIX_SECRET, name);
}

int record_key_folder(const char *path, char *buf, size_t len)
{
	return key_into(buf, len, RECORD_PREFIX_FOLDER, path);
}

int record_key_version(const char *secret_uuid, const char *version_id, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s/%s", RECORD_PREFIX_VERSION, secret_uuid, version_id);
	return (n < 0 || (size_t)n >= len) ? -ENAMETOOLONG : 0;
}

/* ---- binary sealed version: "SFV1" type keylen key deklen(2) dek vallen(4) val ---- */

static const uint8_t version_magic[4] = { 'S', 'F', 'V', '1' };

int record_encode_version(const struct sealed_version *v, uint8_t **out, size_t *out_len)
{
	size_t klen = strlen(v->key_id);
	size_t len = 4 + 1 + 1 + klen + 2 + v->wrapped_dek_len + 4 + v->sealed_value_len;
	uint8_t *b = malloc(len), *p = b;
	if (!b)
		return -ENOMEM;
	if (klen > 255 || v->wrapped_dek_len > 0xffff || v->sealed_value_len > 0xffffffffu) {
		free(b);
		return -EINVAL;
	}
	memcpy(p, version_magic, 4), p += 4;
	*p++ = v->binary ? 1 : 0;
	*p++ = (uint8_t)klen;
	memcpy(p, v->key_id, klen), p += klen;
	*p++ = (uint8_t)(v->wrapped_dek_len & 0xff);
	*p++ = (uint8_t)(v->wrapped_dek_len >> 8);
	memcpy(p, v->wrapped_dek, v->wrapped_dek_len), p += v->wrapped_dek_len;
	for (int i = 0; i < 4; i++)
		*p++ = (uint8_t)(v->sealed_value_len >> (8 * i));
	memcpy(p, v->sealed_value, v->sealed_value_len);
	*out = b;
	*out_len = len;
	return 0;
}

int record_decode_version(const uint8_t *data, size_t len, struct sealed_version *v)
{
	const uint8_t *p = data, *end = data + len;
	memset(v, 0, sizeof(*v));
	if (len < 6 || memcmp(p, version_magic, 4) != 0)
		return -EIO;
	p += 4;
	if (*p > 1)
		return -EIO;
	v->binary = *p++ == 1;
	size_t klen = *p++;
	if (klen != SM_KEY_ID_LEN || (size_t)(end - p) < klen + 2)
		return -EIO;
	for (size_t i = 0; i < klen; i++)
		if (!(p[i] == '-' || (p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return -EIO; /* a key id is a UUID */
	memcpy(v->key_id, p, klen);
	v->key_id[klen] = '\0';
	p += klen;
	v->wrapped_dek_len = (size_t)p[0] | ((size_t)p[1] << 8);
	p += 2;
	if ((size_t)(end - p) < v->wrapped_dek_len + 4)
		return -EIO;
	v->wrapped_dek = p;
	p += v->wrapped_dek_len;
	v->sealed_value_len = (size_t)p[0] | ((size_t)p[1] << 8) | ((size_t)p[2] << 16) |
			      ((size_t)p[3] << 24);
	p += 4;
	if ((size_t)(end - p) != v->sealed_value_len)
		return -EIO;
	v->sealed_value = p;
	return 0;
}
