/*
 * The operations on a secret's metadata: DescribeSecret, TagResource,
 * UntagResource and UpdateSecretVersionStage (reference §5.4, 5.8, 5.11).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "secrets/names.h"

int op_describe_secret(struct call *c)
{
	const char *id;
	char name[SM_NAME_MAX + 1], *text = NULL;
	struct sm_secret *s;
	bool deleted;

	if (in_secret_id(c, &id, name, &deleted) || call_authorize(c, "DescribeSecret", name))
		return -1;
	/* A secret scheduled for deletion is described, with its DeletedDate. */
	int rc = sm_secret_copy(c->sm, name, &s);
	if (!rc) {
		rc = sm_describe_secret(c->sm, s, SM_DESCRIBE_API, &text);
		secret_free(s);
	}
	if (call_done(c, rc, id, name, NULL, NULL)) {
		free(text);
		return -1;
	}
	c->reply->status = 200;
	c->reply->content_type = "application/x-amz-json-1.1";
	c->reply->body = text;
	c->reply->len = strlen(text);
	return 0;
}

/* The checks every change of a secret's metadata makes first. */
static int change_of(struct call *c, const char **id, char name[SM_NAME_MAX + 1])
{
	bool deleted;
	if (in_secret_id(c, id, name, &deleted) || call_authorize(c, c->op, name))
		return -1;
	if (deleted) {
		call_deleted(c);
		return call_done(c, -EBUSY, *id, name, NULL, NULL);
	}
	return 0;
}

/* Tag and Untag answer with an empty body (the protocol's "no output"). */
static void empty_answer(struct call *c)
{
	c->reply->status = 200;
	c->reply->content_type = "application/x-amz-json-1.1";
	c->reply->body = calloc(1, 1);
	c->reply->len = 0;
}

int op_tag_resource(struct call *c)
{
	const char *id;
	char name[SM_NAME_MAX + 1];
	struct json_object *list;

	if (change_of(c, &id, name) || in_array(c, "Tags", true, &list))
		return -1;
	size_t n = json_object_array_length(list);
	struct sm_tag_arg *tags = calloc(n ? n : 1, sizeof(*tags));
	if (!tags)
		return call_fail(c, "InternalServiceError", "Out of memory.");
	for (size_t i = 0; i < n; i++) {
		struct json_object *t = json_object_array_get_idx(list, i), *k, *v;
		if (!json_object_is_type(t, json_type_object) ||
		    !json_object_object_get_ex(t, "Key", &k) || !json_object_is_type(k, json_type_string) ||
		    !json_object_object_get_ex(t, "Value", &v) || !json_object_is_type(v, json_type_string)) {
			free(tags);
			return call_fail(c, "SerializationException",
					 "Tags is a list of {Key, Value} with string members.");
		}
		tags[i].key = json_object_get_string(k);
		tags[i].value = json_object_get_string(v);
	}
	if (call_begin(c, name)) {
		free(tags);
		return -1;
	}
	int rc = sm_tag_secret(c->sm, name, tags, n);
	free(tags);
	if (call_done(c, rc, id, name, NULL, NULL))
		return -1;
	empty_answer(c);
	return 0;
}

int op_untag_resource(struct call *c)
{
	const char *id, **keys;
	char name[SM_NAME_MAX + 1];
	size_t n;

	if (change_of(c, &id, name) ||
	    in_strings(c, "TagKeys", true, 0, 200, 1, SM_TAG_KEY_MAX, &keys, &n))
		return -1;
	int rc = call_begin(c, name) ? 0 : sm_untag_secret(c->sm, name, keys, n);
	free(keys);
	if (c->failed || call_done(c, rc, id, name, NULL, NULL))
		return -1;
	empty_answer(c);
	return 0;
}

int op_update_secret_version_stage(struct call *c)
{
	const char *id, *stage, *from, *to;
	char name[SM_NAME_MAX + 1];

	if (in_string(c, "VersionStage", true, 1, SM_LABEL_MAX, &stage) ||
	    in_string(c, "RemoveFromVersionId", false, SM_VERSION_ID_MIN, SM_VERSION_ID_MAX,
		      &from) < 0 ||
	    in_string(c, "MoveToVersionId", false, SM_VERSION_ID_MIN, SM_VERSION_ID_MAX, &to) < 0 ||
	    change_of(c, &id, name) || call_begin(c, name))
		return -1;
	int rc = sm_move_stage(c->sm, name, stage, from, to);
	if (call_done(c, rc, id, name, to ? to : from, stage))
		return -1;
	out_arn_name(c, out_object(c), name);
	return 0;
}
