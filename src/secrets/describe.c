/* DescribeSecret: a secret's metadata as JSON with AWS's field names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "secrets/internal.h"
#include "util/timeutil.h"

/* ISO 8601 text for the mount's attribute; for the API a number of
 * seconds with milliseconds, printed exactly so (aws-endpoint.md §1.3). */
static json_object *date_as(int64_t ms, enum sm_describe_style style)
{
	char text[40];
	if (style == SM_DESCRIBE_XATTR) {
		time_format_iso8601(ms, text, sizeof(text));
		return json_object_new_string(text);
	}
	snprintf(text, sizeof(text), "%lld.%03d", (long long)(ms / 1000), (int)(ms % 1000));
	return json_object_new_double_s((double)ms / 1000.0, text);
}

#define date(ms) date_as((ms), style)

/* Fields are omitted when empty, as the service does (reference §5.4). */
static char *describe_json(struct sm *sm, const struct sm_secret *s, enum sm_describe_style style)
{
	char arn[SM_NAME_MAX + 128];
	json_object *o = json_object_new_object();
	char *text = NULL;

	if (!o)
		return NULL;
	sm_arn(sm, s, arn, sizeof(arn));
	json_object_object_add(o, "ARN", json_object_new_string(arn));
	json_object_object_add(o, "Name", json_object_new_string(s->name));
	if (s->description)
		json_object_object_add(o, "Description", json_object_new_string(s->description));
	if (s->kms_key_id)
		json_object_object_add(o, "KmsKeyId", json_object_new_string(s->kms_key_id));
	/* Once configured, rotation is described even when turned off
	 * (CancelRotateSecret): RotationEnabled false, the rules kept. */
	if (s->rotation_command || s->rotation_days || s->rotation_schedule || s->last_rotated_ms) {
		bool enabled = s->rotation_command && (s->rotation_days || s->rotation_schedule);
		json_object_object_add(o, "RotationEnabled", json_object_new_boolean(enabled));
		json_object *rules = json_object_new_object();
		if (s->rotation_days)
			json_object_object_add(rules, "AutomaticallyAfterDays",
					       json_object_new_int64(s->rotation_days));
		if (s->rotation_schedule)
			json_object_object_add(rules, "ScheduleExpression",
					       json_object_new_string(s->rotation_schedule));
		json_object_object_add(o, "RotationRules", rules);
		if (s->last_rotated_ms)
			json_object_object_add(o, "LastRotatedDate", date(s->last_rotated_ms));
		if (enabled && s->next_rotation_ms)
			json_object_object_add(o, "NextRotationDate", date(s->next_rotation_ms));
	}
	json_object_object_add(o, "LastChangedDate", date(s->changed_ms));
	if (s->accessed_ms)
		json_object_object_add(o, "LastAccessedDate", date(s->accessed_ms));
	if (s->deleted_ms)
		json_object_object_add(o, "DeletedDate", date(s->purge_ms));
	if (s->ntags || s->tags_ever) {
		json_object *tags = json_object_new_array();
		for (size_t i = 0; tags && i < s->ntags; i++) {
			json_object *t = json_object_new_object();
			json_object_object_add(t, "Key", json_object_new_string(s->tags[i].key));
			json_object_object_add(t, "Value", json_object_new_string(s->tags[i].value));
			json_object_array_add(tags, t);
		}
		json_object_object_add(o, "Tags", tags);
	}
	json_object *stages = json_object_new_object();
	bool any = false;
	for (size_t v = 0; stages && v < s->nversions; v++) {
		json_object *labels = NULL;
		for (size_t l = 0; l < s->nlabels; l++) {
			if (strcmp(s->labels[l].version_id, s->versions[v].id) != 0)
				continue;
			if (!labels)
				labels = json_object_new_array();
			json_object_array_add(labels, json_object_new_string(s->labels[l].name));
		}
		if (labels) {
			json_object_object_add(stages, s->versions[v].id, labels);
			any = true;
		}
	}
	if (any)
		json_object_object_add(o, style == SM_DESCRIBE_LIST ? "SecretVersionsToStages"
								    : "VersionIdsToStages", stages);
	else
		json_object_put(stages);
	json_object_object_add(o, "CreatedDate", date(s->created_ms));
	const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (t)
		text = strdup(t);
	json_object_put(o);
	return text;
}

int sm_describe(struct sm *sm, const char *name, char **json)
{
	struct sm_secret *s;
	int rc = sm_secret_copy(sm, name, &s);
	if (rc)
		return rc;
	*json = describe_json(sm, s, SM_DESCRIBE_XATTR);
	secret_free(s);
	return *json ? 0 : -ENOMEM;
}

int sm_describe_secret(struct sm *sm, const struct sm_secret *s, enum sm_describe_style style,
		       char **json)
{
	*json = describe_json(sm, s, style);
	return *json ? 0 : -ENOMEM;
}
