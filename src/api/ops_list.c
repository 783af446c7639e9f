/*
 * The listings: ListSecrets (Filters, SortOrder, IncludePlannedDeletion,
 * MaxResults and NextToken; reference §5.5) and ListSecretVersionIds
 * (IncludeDeprecated, paging; §5.6). A NextToken is opaque to the client:
 * base64 of where the page ended (a secret's CreatedDate and name, or a
 * version's id), so that pages neither repeat nor skip while the store
 * changes between them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/internal.h"
#include "secrets/filters.h"
#include "util/base64.h"

static char *make_token(const char *text)
{
	size_t len = strlen(text), n = base64_encoded_len(len);
	char *t = malloc(n + 1);
	if (t) {
		base64_encode((const uint8_t *)text, len, t);
		t[n] = '\0';
	}
	return t;
}

/* The text a token carries, or -1 with InvalidNextTokenException. */
static int read_token(struct call *c, const char *token, char *text, size_t cap)
{
	size_t len = strlen(token), n;
	if (base64_decoded_max(len) >= cap ||
	    base64_decode(token, len, (uint8_t *)text, &n) || memchr(text, 0, n))
		return call_fail(c, "InvalidNextTokenException", "The NextToken value is invalid.");
	text[n] = '\0';
	return 0;
}

static void filters_free(struct sm_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((void *)f[i].values);
	free(f);
}

/* The call's Filters, checked: ValidationException as the service words it. */
static int in_filters(struct call *c, struct sm_filter **out, size_t *n)
{
	struct json_object *a;
	*out = NULL;
	*n = 0;
	int rc = in_array(c, "Filters", false, &a);
	if (rc)
		return rc < 0 ? -1 : 0;
	size_t count = json_object_array_length(a);
	if (count > FILTERS_MAX)
		return call_fail(c, "ValidationException", "1 validation error detected: Value at "
				 "'filters' failed to satisfy constraint: Member must have length "
				 "less than or equal to %d", FILTERS_MAX);
	struct sm_filter *f = calloc(count ? count : 1, sizeof(*f));
	if (!f)
		return call_fail(c, "InternalServiceError", "Out of memory.");
	for (size_t i = 0; i < count; i++) {
		struct json_object *o = json_object_array_get_idx(a, i), *key, *values;
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, "Key", &key) || !json_object_is_type(key, json_type_string) ||
		    !json_object_object_get_ex(o, "Values", &values) ||
		    !json_object_is_type(values, json_type_array)) {
			filters_free(f, i);
			return call_fail(c, "SerializationException",
					 "Filters is a list of {Key, Values}.");
		}
		if (filter_key_parse(json_object_get_string(key), &f[i].key)) {
			filters_free(f, i);
			return call_fail(c, "ValidationException", "1 validation error detected: Value "
					 "'%.64s' at 'filters.%zu.member.key' failed to satisfy constraint: "
					 "Member must satisfy enum value set: [all, name, tag-key, "
					 "description, tag-value, primary-region, owning-service]",
					 json_object_get_string(key), i + 1);
		}
		size_t nv = json_object_array_length(values);
		const char **v = calloc(nv ? nv : 1, sizeof(*v));
		f[i].values = v;
		f[i].nvalues = nv;
		if (!v) {
			filters_free(f, i + 1);
			return call_fail(c, "InternalServiceError", "Out of memory.");
		}
		const char *why = "Values holds 1 to 10 values";
		bool bad = nv < 1 || nv > FILTER_VALUES_MAX;
		for (size_t k = 0; !bad && k < nv; k++) {
			struct json_object *e = json_object_array_get_idx(values, k);
			bad = !json_object_is_type(e, json_type_string) ||
			      filter_value_check(json_object_get_string(e), &why);
			v[k] = bad ? NULL : json_object_get_string(e);
		}
		if (bad) {
			filters_free(f, i + 1);
			return call_fail(c, "ValidationException", "1 validation error detected: Value "
					 "at 'filters.%zu.member.values' failed to satisfy constraint: "
					 "%s.", i + 1, why);
		}
	}
	*out = f;
	*n = count;
	return 0;
}

/* CreatedDate, then the name: one order that the store's changes keep. */
static int compare(int64_t created_ms, const char *name, int64_t other_ms, const char *other)
{
	int r = created_ms < other_ms ? -1 : created_ms > other_ms;
	return r ? r : strcmp(name, other);
}

static int by_created(const void *a, const void *b, void *descending)
{
	const struct sm_secret *x = *(struct sm_secret *const *)a, *y = *(struct sm_secret *const *)b;
	int r = compare(x->created_ms, x->name, y->created_ms, y->name);
	return *(const bool *)descending ? -r : r;
}

void selection_free(struct selection *s)
{
	for (size_t i = 0; i < s->count; i++)
		secret_free(s->items[i]);
	free(s->items);
	free(s->next_token);
	memset(s, 0, sizeof(*s));
}

int select_secrets(struct call *c, bool include_deleted, bool descending, const char *next_token,
		   size_t max, struct selection *out)
{
	struct sm_filter *filters = NULL;
	struct sm_listing names = { 0 };
	struct sm_secret **all = NULL;
	size_t nfilters = 0, nall = 0;
	char after[SM_NAME_MAX + 64] = "", key[SM_NAME_MAX + 64];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if ((next_token && read_token(c, next_token, after, sizeof(after))) ||
	    in_filters(c, &filters, &nfilters))
		goto out;
	if (sm_secret_names(c->sm, include_deleted, &names) ||
	    !(all = calloc(names.count ? names.count : 1, sizeof(*all)))) {
		call_fail(c, "InternalServiceError", "Out of memory.");
		goto out;
	}
	for (size_t i = 0; i < names.count; i++) {
		struct sm_secret *s;
		if (sm_secret_copy(c->sm, names.entries[i].name, &s))
			continue; /* gone meanwhile */
		if ((s->deleted_ms && !include_deleted) || !filter_matches(s, filters, nfilters))
			secret_free(s);
		else
			all[nall++] = s;
	}
	qsort_r(all, nall, sizeof(*all), by_created, &descending);
	size_t start = 0;
	if (after[0]) {
		/* The first secret past the token's place in the order. */
		const char *aname = strchr(after, '\n');
		int64_t ms = strtoll(after, NULL, 10);
		while (start < nall) {
			int r = compare(all[start]->created_ms, all[start]->name, ms,
					aname ? aname + 1 : "");
			if (descending ? r < 0 : r > 0)
				break;
			start++;
		}
	}
	if (!(out->items = calloc(max ? max : 1, sizeof(*out->items)))) {
		call_fail(c, "InternalServiceError", "Out of memory.");
		goto out;
	}
	for (size_t i = start; i < nall && out->count < max; i++) {
		out->items[out->count++] = all[i];
		all[i] = NULL;
	}
	if (start + out->count < nall) {
		const struct sm_secret *last = out->items[out->count - 1];
		snprintf(key, sizeof(key), "%lld\n%s", (long long)last->created_ms, last->name);
		if (!(out->next_token = make_token(key))) {
			call_fail(c, "InternalServiceError", "Out of memory.");
			goto out;
		}
	}
	rc = 0;
out:
	for (size_t i = 0; i < nall; i++)
		secret_free(all[i]);
	free(all);
	sm_listing_free(&names);
	filters_free(filters, nfilters);
	if (rc)
		selection_free(out);
	return rc;
}

int op_list_secrets(struct call *c)
{
	const char *next_token, *order, *sort_by;
	struct selection sel;
	bool include_deleted = false;
	int64_t max = 100;
	char *text = NULL;
	size_t len = 0;

	if (in_bool(c, "IncludePlannedDeletion", &include_deleted) < 0 ||
	    in_int(c, "MaxResults", 1, 100, &max) < 0 ||
	    in_string(c, "NextToken", false, 1, 4096, &next_token) < 0 ||
	    in_string(c, "SortOrder", false, 1, 16, &order) < 0 ||
	    in_string(c, "SortBy", false, 1, 32, &sort_by) < 0)
		return -1;
	if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)
		return call_fail(c, "ValidationException", "1 validation error detected: Value "
				 "'%.16s' at 'sortOrder' failed to satisfy constraint: Member must "
				 "satisfy enum value set: [asc, desc]", order);
	if (sort_by && strcmp(sort_by, "created-date") != 0)
		return call_fail(c, "ValidationException", "SortBy %.32s is not built in secretsfs: "
				 "secrets are listed by created-date (docs/api.md).", sort_by);
	if (call_authorize(c, "ListSecrets", NULL) ||
	    select_secrets(c, include_deleted, order && strcmp(order, "desc") == 0, next_token,
			   (size_t)max, &sel))
		return -1;
	FILE *f = open_memstream(&text, &len);
	int rc = f ? 0 : -ENOMEM;
	if (f) {
		fputs("{\"SecretList\":[", f);
		for (size_t i = 0; !rc && i < sel.count; i++) {
			char *entry;
			if (!(rc = sm_describe_secret(c->sm, sel.items[i], SM_DESCRIBE_LIST, &entry))) {
				fprintf(f, "%s%s", i ? "," : "", entry);
				free(entry);
			}
		}
		fputs("]", f);
		if (sel.next_token)
			fprintf(f, ",\"NextToken\":\"%s\"", sel.next_token);
		fputs("}", f);
		if (fclose(f))
			rc = -ENOMEM;
	}
	selection_free(&sel);
	if (rc) {
		free(text);
		return call_done(c, rc, NULL, NULL, NULL, NULL);
	}
	call_audit(c, c->op, NULL, NULL, NULL, 0);
	c->reply->status = 200;
	c->reply->content_type = "application/x-amz-json-1.1";
	c->reply->body = text;
	c->reply->len = len;
	c->reply->secure = false;
	return 0;
}

int op_list_secret_version_ids(struct call *c)
{
	const char *id, *next_token;
	char name[SM_NAME_MAX + 1], after[SM_VERSION_ID_MAX + 8] = "", arn[SM_NAME_MAX + 128];
	bool deleted, deprecated = false;
	int64_t max = 100;
	struct sm_secret *s;

	if (in_secret_id(c, &id, name, &deleted) || in_int(c, "MaxResults", 1, 100, &max) < 0 ||
	    in_string(c, "NextToken", false, 1, 4096, &next_token) < 0 ||
	    in_bool(c, "IncludeDeprecated", &deprecated) < 0)
		return -1;
	if (next_token && read_token(c, next_token, after, sizeof(after)))
		return -1;
	if (call_authorize(c, "ListSecretVersionIds", name))
		return -1;
	int rc = sm_secret_copy(c->sm, name, &s);
	if (call_done(c, rc, id, name, NULL, NULL))
		return -1;
	struct json_object *o = out_object(c), *list = json_object_new_array();
	size_t count = 0;
	bool started = !after[0], more = false;
	const char *last = NULL;
	/* Newest first. */
	for (size_t i = s->nversions; i-- > 0;) {
		const struct sm_version *v = &s->versions[i];
		struct json_object *stages = NULL;
		for (size_t l = 0; l < s->nlabels; l++)
			if (strcmp(s->labels[l].version_id, v->id) == 0) {
				if (!stages)
					stages = json_object_new_array();
				json_object_array_add(stages, json_object_new_string(s->labels[l].name));
			}
		/* A version without a label is deprecated: listed only when asked,
		 * and then without VersionStages (reference §5.6). */
		if (!started || (!stages && !deprecated)) {
			started |= strcmp(v->id, after) == 0;
			json_object_put(stages);
			continue;
		}
		if (count == (size_t)max) {
			more = true;
			json_object_put(stages);
			break;
		}
		struct json_object *e = json_object_new_object();
		out_string(e, "VersionId", v->id);
		if (stages)
			json_object_object_add(e, "VersionStages", stages);
		out_date(e, "CreatedDate", v->created_ms);
		struct json_object *keys = json_object_new_array();
		keyring_key_arn(sm_keyring(c->sm), v->key_id, arn, sizeof(arn));
		json_object_array_add(keys, json_object_new_string(arn));
		json_object_object_add(e, "KmsKeyIds", keys);
		json_object_array_add(list, e);
		last = v->id;
		count++;
	}
	if (!started) {
		secret_free(s);
		json_object_put(list);
		return call_fail(c, "InvalidNextTokenException", "The NextToken value is invalid.");
	}
	json_object_object_add(o, "Versions", list);
	if (more && last) {
		char *token = make_token(last);
		out_string(o, "NextToken", token);
		free(token);
	}
	out_arn_name(c, o, name);
	secret_free(s);
	return 0;
}
