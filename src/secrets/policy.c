#include "secrets/policy.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

struct statement {
	bool deny;
	bool anyone;
	uid_t *uids;
	size_t nuids;
	gid_t *gids;
	size_t ngids;
	char **principals; /* API principals ("AWS"), shell wildcards */
	size_t nprincipals;
	char **actions;
	size_t nactions;
	char **resources;
	size_t nresources;
};

struct policy {
	struct statement *st;
	size_t count;
	char *text; /* as written, for GetResourcePolicy */
};

static void free_strings(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->count; i++) {
		free(p->st[i].uids);
		free(p->st[i].gids);
		free_strings(p->st[i].principals, p->st[i].nprincipals);
		free_strings(p->st[i].actions, p->st[i].nactions);
		free_strings(p->st[i].resources, p->st[i].nresources);
	}
	free(p->st);
	free(p->text);
	free(p);
}

const char *policy_text(const struct policy *p)
{
	return p->text;
}

/* A string or a list of strings into a new array. */
static int strings(json_object *v, char ***out, size_t *n)
{
	size_t count = json_object_is_type(v, json_type_array) ? json_object_array_length(v) : 1;
	*out = calloc(count ? count : 1, sizeof(**out));
	*n = 0;
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < count; i++) {
		json_object *e = json_object_is_type(v, json_type_array) ? json_object_array_get_idx(v, i) : v;
		if (!json_object_is_type(e, json_type_string))
			return -EINVAL;
		if (!((*out)[(*n)++] = strdup(json_object_get_string(e))))
			return -ENOMEM;
	}
	return 0;
}

static int add_id(void **ids, size_t *n, size_t size, long value)
{
	void *grown = realloc(*ids, (*n + 1) * size);
	if (!grown)
		return -ENOMEM;
	*ids = grown;
	if (size == sizeof(uid_t))
		((uid_t *)grown)[*n] = (uid_t)value;
	else
		((gid_t *)grown)[*n] = (gid_t)value;
	(*n)++;
	return 0;
}

/* Principal: "*", or {"uid": 1000 | [..], "gid": .., "user": "name" | [..], "group": ..,
 * "AWS": "principal" | [..]} (the API's principals, from its credentials file). */
static int principal(json_object *v, struct statement *s, const char **why)
{
	if (json_object_is_type(v, json_type_string) && strcmp(json_object_get_string(v), "*") == 0) {
		s->anyone = true;
		return 0;
	}
	if (!json_object_is_type(v, json_type_object)) {
		*why = "Principal is \"*\" or an object of uid, gid, user, group, AWS";
		return -EINVAL;
	}
	json_object_object_foreach(v, key, val) {
		if (strcmp(key, "AWS") == 0) {
			char **names;
			size_t n;
			int rc = strings(val, &names, &n);
			if (rc == -EINVAL)
				*why = "AWS takes principal names";
			if (rc) {
				free_strings(names, n);
				return rc;
			}
			char **all = realloc(s->principals, (s->nprincipals + n) * sizeof(*all));
			if (!all) {
				free_strings(names, n);
				return -ENOMEM;
			}
			memcpy(all + s->nprincipals, names, n * sizeof(*names));
			s->principals = all;
			s->nprincipals += n;
			free(names);
			continue;
		}
		bool is_uid = strcmp(key, "uid") == 0 || strcmp(key, "user") == 0;
		bool names = strcmp(key, "user") == 0 || strcmp(key, "group") == 0;
		if (!is_uid && strcmp(key, "gid") != 0 && strcmp(key, "group") != 0) {
			*why = "Principal keys are uid, gid, user, group and AWS";
			return -EINVAL;
		}
		size_t count = json_object_is_type(val, json_type_array) ? json_object_array_length(val) : 1;
		for (size_t i = 0; i < count; i++) {
			json_object *e = json_object_is_type(val, json_type_array)
						 ? json_object_array_get_idx(val, i) : val;
			long id;
			if (names) {
				if (!json_object_is_type(e, json_type_string)) {
					*why = "user and group take names";
					return -EINVAL;
				}
				const char *n = json_object_get_string(e);
				struct passwd *pw = is_uid ? getpwnam(n) : NULL;
				struct group *gr = is_uid ? NULL : getgrnam(n);
				if ((is_uid && !pw) || (!is_uid && !gr)) {
					*why = is_uid ? "a user in Principal does not exist"
						      : "a group in Principal does not exist";
					return -EINVAL;
				}
				id = is_uid ? (long)pw->pw_uid : (long)gr->gr_gid;
			} else {
				if (!json_object_is_type(e, json_type_int) || json_object_get_int64(e) < 0) {
					*why = "uid and gid take numbers";
					return -EINVAL;
				}
				id = (long)json_object_get_int64(e);
			}
			int rc = is_uid ? add_id((void **)&s->uids, &s->nuids, sizeof(uid_t), id)
					: add_id((void **)&s->gids, &s->ngids, sizeof(gid_t), id);
			if (rc)
				return rc;
		}
	}
	return 0;
}

struct policy *policy_load(const char *path, char *why_buf, size_t why_len)
{
	FILE *f = fopen(path, "re");
	char *text = NULL;
	size_t len = 0;
	struct policy *p = NULL;
	if (f) {
		FILE *mem = open_memstream(&text, &len);
		char buf[4096];
		size_t n;
		while (mem && (n = fread(buf, 1, sizeof(buf), f)) > 0)
			fwrite(buf, 1, n, mem);
		if (!mem || fclose(mem) || ferror(f)) {
			free(text);
			text = NULL;
		}
		fclose(f);
	}
	if (!text)
		snprintf(why_buf, why_len, "cannot read the policy file");
	else
		p = policy_parse(text, why_buf, why_len);
	free(text);
	return p;
}

struct policy *policy_parse(const char *text, char *why_buf, size_t why_len)
{
	const char *why = NULL;
	struct policy *p = calloc(1, sizeof(*p));
	json_object *doc = json_tokener_parse(text), *list;
	if (!p || !doc || !(p->text = strdup(text))) {
		why = p && !doc ? "the policy is not JSON" : "out of memory";
		goto fail;
	}
	if (!json_object_object_get_ex(doc, "Statement", &list)) {
		why = "a policy needs a Statement";
		goto fail;
	}
	size_t n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 1;
	p->st = calloc(n ? n : 1, sizeof(*p->st));
	if (!p->st) {
		why = "out of memory";
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *o = json_object_is_type(list, json_type_array) ? json_object_array_get_idx(list, i) : list;
		struct statement *s = &p->st[p->count++];
		json_object *effect, *prin, *act, *res;
		if (!json_object_is_type(o, json_type_object) ||
		    !json_object_object_get_ex(o, "Effect", &effect) ||
		    !json_object_object_get_ex(o, "Principal", &prin) ||
		    !json_object_object_get_ex(o, "Action", &act) ||
		    !json_object_object_get_ex(o, "Resource", &res)) {
			why = "each statement has Effect, Principal, Action and Resource";
			goto fail;
		}
		const char *e = json_object_get_string(effect);
		if (strcmp(e, "Allow") != 0 && strcmp(e, "Deny") != 0) {
			why = "Effect is Allow or Deny";
			goto fail;
		}
		s->deny = strcmp(e, "Deny") == 0;
		if (principal(prin, s, &why))
			goto fail;
		if (strings(act, &s->actions, &s->nactions) || strings(res, &s->resources, &s->nresources)) {
			why = "Action and Resource are strings or lists of strings";
			goto fail;
		}
		for (size_t k = 0; k < s->nactions; k++)
			if (strncmp(s->actions[k], "secretsmanager:", 15) != 0 && strcmp(s->actions[k], "*") != 0) {
				why = "actions are secretsmanager:ACTION (wildcards allowed)";
				goto fail;
			}
	}
	json_object_put(doc);
	return p;
fail:
	snprintf(why_buf, why_len, "%s", why ? why : "invalid policy");
	json_object_put(doc);
	policy_free(p);
	return NULL;
}

static bool principal_matches(const struct statement *s, const struct policy_request *r)
{
	if (s->anyone)
		return true;
	/* An API caller is its principal; it has no uid or groups here. */
	if (r->principal) {
		for (size_t i = 0; i < s->nprincipals; i++)
			if (fnmatch(s->principals[i], r->principal, 0) == 0)
				return true;
		return false;
	}
	for (size_t i = 0; i < s->nuids; i++)
		if (s->uids[i] == r->uid)
			return true;
	for (size_t i = 0; i < s->ngids; i++)
		for (size_t j = 0; j < r->ngids; j++)
			if (s->gids[i] == r->gids[j])
				return true;
	return false;
}

static bool any_matches(char *const *patterns, size_t n, const char *value, int flags)
{
	for (size_t i = 0; value && i < n; i++)
		if (fnmatch(patterns[i], value, flags) == 0)
			return true;
	return false;
}

static bool resource_matches(const struct statement *s, const struct policy_request *r)
{
	for (size_t i = 0; i < s->nresources; i++) {
		const char *pat = s->resources[i];
		/* '*' crosses '/': a pattern names secrets, not one folder level. */
		const char *subject = strncmp(pat, "arn:", 4) == 0 ? r->arn : r->name;
		if (strcmp(pat, "*") == 0 || (subject && fnmatch(pat, subject, 0) == 0))
			return true;
	}
	return false;
}

bool policy_allows(const struct policy *p, const struct policy_request *r)
{
	bool allowed = false;
	if (!p)
		return true;
	for (size_t i = 0; i < p->count; i++) {
		const struct statement *s = &p->st[i];
		if (!principal_matches(s, r) || !any_matches(s->actions, s->nactions, r->action, 0) ||
		    !resource_matches(s, r))
			continue;
		if (s->deny)
			return false; /* an explicit Deny wins */
		allowed = true;
	}
	return allowed;
}
