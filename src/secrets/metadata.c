/*
 * The metadata operations of Secrets Manager that are not values:
 * UpdateSecret (description, KMS key), TagResource/UntagResource,
 * UpdateSecretVersionStage, and the ClientRequestToken of the next commit.
 * Each is one transaction on a private copy, swapped in after the commit.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"


/*
 * Applies edit to a copy of the live secret name and commits it (persist:
 * false keeps the change in memory, for tokens). An edit returning 1 means
 * "nothing to change".
 */
static int edit_once(struct sm *sm, const char *name, edit_fn edit, void *ctx,
		     enum edit_mode mode)
{
	struct change c = { 0 };
	struct sm_secret *s = NULL;
	int rc;

	/* What stays in memory (tokens) needs no say from the cluster. */
	if ((rc = mode == EDIT_MEMORY ? write_begin_local(sm) : write_begin(sm)))
		return rc;
	struct sm_secret *old = find_secret(sm, name);
	if (!is_live(old)) {
		rc = -ENOENT;
		goto out;
	}
	if (!(s = secret_clone(old))) {
		rc = -ENOMEM;
		goto out;
	}
	rc = edit(sm, s, ctx);
	if (rc == 1) {
		rc = 0;
		goto out;
	}
	if (rc)
		goto out;
	if (mode != EDIT_MEMORY) {
		if (mode == EDIT_CHANGE)
			s->changed_ms = time_now_ms();
		if (s->persisted) {
			change_put_secret(&c, s);
			if ((rc = change_commit(sm, &c)))
				goto out;
			s->restore_pending = false; /* the record stored says live */
		}
	}
	index_replace(sm, name, s);
	s = NULL;
out:
	write_end(sm);
	secret_free(s);
	change_free(&c);
	return rc;
}

int edit_secret(struct sm *sm, const char *name, edit_fn edit, void *ctx, enum edit_mode mode)
{
	int rc, tries = 0;
	do
		rc = edit_once(sm, name, edit, ctx, mode);
	while (write_again(sm, name, &rc, &tries));
	return rc;
}

struct text_arg {
	const char *text;
	size_t len;
	const char *key;
	int flags;
};

static int utf8_chars(const char *text, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < len; i++)
		if (((unsigned char)text[i] & 0xc0) != 0x80)
			n++;
	return n;
}

int apply_description(struct sm_secret *s, const char *text, size_t len, bool must_exist)
{
	struct text_arg arg = { text, len, NULL, must_exist ? SM_SET_REPLACE : 0 }, *a = &arg;
	if (!value_is_string((const unsigned char *)a->text, a->len))
		return refuse(-EINVAL, s->name, "a description is UTF-8 text");
	if (utf8_chars(a->text, a->len) > SM_DESCRIPTION_MAX)
		return refuse(-E2BIG, s->name, "a description may be at most 2,048 characters");
	if (a->flags & SM_SET_REPLACE && !s->description)
		return -ENODATA; /* removing what is not there */
	free(s->description);
	s->description = a->len ? strndup(a->text, a->len) : NULL;
	return a->len && !s->description ? -ENOMEM : 0;
}

static int edit_description(struct sm *sm, struct sm_secret *s, void *ctx)
{
	struct text_arg *a = ctx;
	(void)sm;
	return apply_description(s, a->text, a->len, a->flags & SM_SET_REPLACE);
}

int sm_set_description(struct sm *sm, const char *name, const char *text, size_t len)
{
	struct text_arg a = { text, len, NULL, 0 };
	return edit_secret(sm, name, edit_description, &a, EDIT_CHANGE);
}

int sm_remove_description(struct sm *sm, const char *name)
{
	struct text_arg a = { "", 0, NULL, SM_SET_REPLACE };
	return edit_secret(sm, name, edit_description, &a, EDIT_CHANGE);
}

int apply_kms_key(struct sm *sm, struct sm_secret *s, const char *text, size_t len,
		  bool must_exist)
{
	struct text_arg arg = { text, len, NULL, must_exist ? SM_SET_REPLACE : 0 }, *a = &arg;
	char spec[2049], key_id[SM_KEY_ID_LEN + 1];
	if (a->len >= sizeof(spec))
		return refuse(-E2BIG, s->name, "a KmsKeyId may be at most 2,048 characters");
	memcpy(spec, a->text, a->len);
	spec[a->len] = '\0';
	if (a->flags & SM_SET_REPLACE && !s->kms_key_id)
		return -ENODATA; /* removing what is not there */
	if (a->len) {
		int rc = keyring_resolve(sm->kr, spec, key_id);
		if (rc == -ENOENT)
			return refuse(-EINVAL, s->name, "no KMS key by that alias, id or ARN");
		if (rc)
			return refuse(-EINVAL, s->name,
				      "a KmsKeyId is alias/NAME, a key id, or an ARN of this store's region and account");
	}
	free(s->kms_key_id);
	/* The default key is shown as no key at all, as DescribeSecret does. */
	bool is_default = !a->len || strcmp(spec, "alias/" KEYRING_DEFAULT_ALIAS) == 0;
	s->kms_key_id = is_default ? NULL : strdup(spec);
	return !is_default && !s->kms_key_id ? -ENOMEM : 0;
}

static int edit_kms_key(struct sm *sm, struct sm_secret *s, void *ctx)
{
	struct text_arg *a = ctx;
	return apply_kms_key(sm, s, a->text, a->len, a->flags & SM_SET_REPLACE);
}

int sm_set_kms_key(struct sm *sm, const char *name, const char *spec, size_t len)
{
	struct text_arg a = { spec, len, NULL, 0 };
	return edit_secret(sm, name, edit_kms_key, &a, EDIT_CHANGE);
}

int sm_remove_kms_key(struct sm *sm, const char *name)
{
	struct text_arg a = { "", 0, NULL, SM_SET_REPLACE };
	return edit_secret(sm, name, edit_kms_key, &a, EDIT_CHANGE);
}

static struct sm_tag *find_tag(struct sm_secret *s, const char *key)
{
	for (size_t i = 0; i < s->ntags; i++)
		if (strcmp(s->tags[i].key, key) == 0)
			return &s->tags[i];
	return NULL;
}

int apply_tag(struct sm_secret *s, const char *key, const char *text, size_t len, int flags)
{
	struct text_arg arg = { text, len, key, flags }, *a = &arg;
	size_t klen = strlen(a->key);
	if (klen == 0 || utf8_chars(a->key, klen) > SM_TAG_KEY_MAX)
		return refuse(-EINVAL, s->name, "a tag key is 1 to 128 characters");
	if (strncasecmp(a->key, "aws:", 4) == 0)
		return refuse(-EINVAL, s->name, "tag keys beginning with aws: are reserved");
	if (!value_is_string((const unsigned char *)a->key, klen) ||
	    (a->len && !value_is_string((const unsigned char *)a->text, a->len)))
		return refuse(-EINVAL, s->name, "tag keys and values are UTF-8 text");
	if (utf8_chars(a->text, a->len) > SM_TAG_VALUE_MAX)
		return refuse(-E2BIG, s->name, "a tag value may be at most 256 characters");
	struct sm_tag *t = find_tag(s, a->key);
	if (t && (a->flags & SM_SET_CREATE))
		return -EEXIST;
	if (!t && (a->flags & SM_SET_REPLACE))
		return -ENODATA;
	char *value = strndup(a->text, a->len);
	if (!value)
		return -ENOMEM;
	if (t) {
		free(t->value);
		t->value = value;
		return 0;
	}
	if (s->ntags >= SM_MAX_TAGS) {
		free(value);
		return refuse(-ENOSPC, s->name, "a secret may carry at most 50 tags");
	}
	struct sm_tag *tags = realloc(s->tags, (s->ntags + 1) * sizeof(*tags));
	if (!tags) {
		free(value);
		return -ENOMEM;
	}
	s->tags = tags;
	tags[s->ntags].key = strdup(a->key);
	tags[s->ntags].value = value;
	if (!tags[s->ntags].key) {
		free(value);
		return -ENOMEM;
	}
	s->ntags++;
	s->tags_ever = true;
	return 0;
}

static int edit_tag(struct sm *sm, struct sm_secret *s, void *ctx)
{
	struct text_arg *a = ctx;
	(void)sm;
	return apply_tag(s, a->key, a->text, a->len, a->flags);
}

int sm_set_tag(struct sm *sm, const char *name, const char *key, const char *value, size_t len,
	       int flags)
{
	struct text_arg a = { value, len, key, flags };
	return edit_secret(sm, name, edit_tag, &a, EDIT_CHANGE);
}

int apply_untag(struct sm_secret *s, const char *key)
{
	struct sm_tag *t = find_tag(s, key);
	if (!t)
		return -ENODATA;
	free(t->key);
	free(t->value);
	size_t i = (size_t)(t - s->tags);
	memmove(&s->tags[i], &s->tags[i + 1], (s->ntags - i - 1) * sizeof(*s->tags));
	s->ntags--;
	return 0;
}

static int edit_untag(struct sm *sm, struct sm_secret *s, void *ctx)
{
	(void)sm;
	return apply_untag(s, ctx);
}

int sm_remove_tag(struct sm *sm, const char *name, const char *key)
{
	return edit_secret(sm, name, edit_untag, (void *)key, EDIT_CHANGE);
}

struct stage_arg {
	const char *label;
	const char *version_id; /* NULL: remove */
};

/* UpdateSecretVersionStage (reference §5.8, §6.3). */
int apply_stage(struct sm_secret *s, const char *label, const char *version_id)
{
	struct stage_arg arg = { label, version_id }, *a = &arg;
	const char *why;
	if (name_check_label(a->label, &why))
		return refuse(-EINVAL, s->name, why);
	const char *holder = secret_label_version(s, a->label);
	if (!a->version_id) {
		if (!holder)
			return -ENODATA;
		if (strcmp(a->label, "AWSCURRENT") == 0)
			return refuse(-EINVAL, s->name,
				      "AWSCURRENT cannot be removed, only moved to another version");
		secret_label_remove(s, a->label);
		return 0;
	}
	if (!secret_find_version(s, a->version_id))
		return refuse(-EINVAL, s->name, "no version with that id");
	if (holder && strcmp(holder, a->version_id) == 0)
		return 1; /* already there */
	if (!holder && s->nlabels >= SM_MAX_LABELS)
		return refuse(-ENOSPC, s->name, "a secret may carry at most 20 staging labels");
	int rc = 0;
	if (strcmp(a->label, "AWSCURRENT") == 0 && holder) {
		/* The old current becomes AWSPREVIOUS; AWSPENDING stays where it is. */
		char old_current[SM_VERSION_ID_MAX + 1];
		snprintf(old_current, sizeof(old_current), "%s", holder);
		rc = secret_label_set(s, "AWSPREVIOUS", old_current);
	}
	if (!rc)
		rc = secret_label_set(s, a->label, a->version_id);
	if (!rc && s->nlabels > SM_MAX_LABELS)
		rc = refuse(-ENOSPC, s->name, "a secret may carry at most 20 staging labels");
	return rc;
}

static int edit_stage(struct sm *sm, struct sm_secret *s, void *ctx)
{
	struct stage_arg *a = ctx;
	(void)sm;
	return apply_stage(s, a->label, a->version_id);
}

int sm_update_stage(struct sm *sm, const char *name, const char *label, const char *version_id)
{
	struct stage_arg a = { label, version_id };
	return edit_secret(sm, name, edit_stage, &a, EDIT_CHANGE);
}

static int edit_token(struct sm *sm, struct sm_secret *s, void *ctx)
{
	struct text_arg *a = ctx;
	char token[SM_VERSION_ID_MAX + 1];
	const char *why;
	(void)sm;
	if (!a->text) {
		free(s->request_token); /* the commit it was for was refused */
		s->request_token = NULL;
		s->request_created_ms = 0;
		return 0;
	}
	if (a->len < SM_VERSION_ID_MIN || a->len > SM_VERSION_ID_MAX)
		return refuse(-EINVAL, s->name, "a client request token is 32 to 64 characters");
	memcpy(token, a->text, a->len);
	token[a->len] = '\0';
	if (name_check_version_id(token, &why))
		return refuse(-EINVAL, s->name, why);
	free(s->request_token);
	s->request_token = strdup(token);
	return s->request_token ? 0 : -ENOMEM;
}

int sm_set_request_token(struct sm *sm, const char *name, const char *token, size_t len)
{
	struct text_arg a = { token, len, NULL, 0 };
	return edit_secret(sm, name, edit_token, &a, EDIT_MEMORY);
}

static int edit_request_created(struct sm *sm, struct sm_secret *s, void *ctx)
{
	int64_t ms = *(const int64_t *)ctx;
	(void)sm;
	/* History only: a date to come would make a version newer than the
	 * commits after it; 0 and below are no date (1970 or before). */
	if (ms <= 0 || ms > time_now_ms())
		return refuse(-EINVAL, s->name,
			      "a version's CreatedDate lies after 1970-01-01T00:00:00Z and not in the future");
	s->request_created_ms = ms;
	return 0;
}

int sm_set_request_created(struct sm *sm, const char *name, int64_t ms)
{
	return edit_secret(sm, name, edit_request_created, &ms, EDIT_MEMORY);
}

/*
 * LastAccessedDate is a day (reference §5.4). A read marks the secret in
 * memory at once; sm_flush_access stores every mark in one transaction, so
 * reads never wait for a disk sync.
 */
int sm_note_access(struct sm *sm, const char *name)
{
	int64_t today = time_now_ms() / MS_PER_DAY * MS_PER_DAY;
	int rc = 0;
	if (sm->opt.readonly)
		return 0;
	/* Most reads find today's date there already: only look, then. */
	pthread_rwlock_rdlock(&sm->index_lock);
	struct sm_secret *seen = find_secret(sm, name);
	bool fresh = !seen || seen->accessed_ms == today || !seen->persisted;
	pthread_rwlock_unlock(&sm->index_lock);
	if (fresh)
		return 0;
	pthread_rwlock_wrlock(&sm->index_lock);
	struct sm_secret *s = find_secret(sm, name);
	bool mark = is_live(s) && s->persisted && s->accessed_ms != today;
	if (mark)
		s->accessed_ms = today; /* in place: readers copy under this lock */
	pthread_rwlock_unlock(&sm->index_lock);
	if (mark) {
		pthread_mutex_lock(&sm->access_lock);
		rc = hashmap_put(sm->accessed, name, (void *)1, NULL);
		pthread_mutex_unlock(&sm->access_lock);
		index_changed(sm, name, 0); /* its atime */
	}
	return rc;
}

static int take_name(const char *key, void *value, void *ctx)
{
	struct hashmap *into = ctx;
	(void)value;
	return hashmap_put(into, key, (void *)1, NULL);
}

static int stage_access(const char *name, void *value, void *ctx)
{
	void **args = ctx;
	struct sm *sm = args[0];
	struct change *c = args[1];
	(void)value;
	struct sm_secret *s = find_secret(sm, name);
	/* Already stored with this date (another host's flush, in a replica,
	 * got there first): writing it again would only raise its counter. */
	if (is_live(s) && s->persisted && s->accessed_ms != s->stored_accessed_ms)
		change_put_secret(c, s);
	return 0;
}

/* After the flush committed: the date each staged record now holds. */
static int note_stored_access(const char *name, void *value, void *ctx)
{
	struct sm_secret *s = find_secret(ctx, name);
	(void)value;
	if (s)
		s->stored_accessed_ms = s->accessed_ms;
	return 0;
}

int sm_flush_access(struct sm *sm)
{
	struct hashmap *names = hashmap_new(64);
	struct change c = { 0 };
	int rc;
	if (!names)
		return -ENOMEM;
	pthread_mutex_lock(&sm->access_lock);
	rc = hashmap_foreach(sm->accessed, take_name, names);
	if (!rc) {
		hashmap_free(sm->accessed);
		sm->accessed = hashmap_new(64);
		rc = sm->accessed ? 0 : -ENOMEM;
	}
	pthread_mutex_unlock(&sm->access_lock);
	if (rc || hashmap_count(names) == 0)
		goto out;
	/* Under the writer lock the indexed copies are stable and hold the
	 * dates. A store that cannot change now keeps them in memory only,
	 * as a store that another host made them stale on does: dates of
	 * reads, not worth a retry. */
	if ((rc = write_begin(sm)))
		goto out;
	void *args[2] = { sm, &c };
	hashmap_foreach(names, stage_access, args);
	rc = change_commit(sm, &c);
	if (!rc)
		hashmap_foreach(names, note_stored_access, sm);
	write_end(sm);
out:
	change_free(&c);
	hashmap_free(names);
	return rc;
}
