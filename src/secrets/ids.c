/*
 * What a SecretId names (reference §4, §9.2): a secret's name, its full
 * ARN, or its partial ARN (the ARN without "-" and the 6-character
 * suffix), of this store's region and account; and the names of every
 * stored secret, for ListSecrets and BatchGetSecretValue.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"

/* A secret the API can see: stored, not a scratch file or an editor's hidden copy. */
static bool stored(const struct sm_secret *s)
{
	return s && s->persisted && !s->scratch && !s->hidden;
}

/* The name part of an ARN of this store ("arn:aws:secretsmanager:REGION:
 * ACCOUNT:secret:REST"), or NULL when id is not one. */
static const char *arn_rest(struct sm *sm, const char *id)
{
	char prefix[256];
	int n = snprintf(prefix, sizeof(prefix), "arn:aws:secretsmanager:%s:%s:secret:",
			 keyring_region(sm->kr), keyring_account(sm->kr));
	if (n < 0 || (size_t)n >= sizeof(prefix) || strncmp(id, prefix, (size_t)n) != 0)
		return NULL;
	return id + n;
}

static bool has_suffix(const char *rest, size_t len)
{
	if (len <= SM_ARN_SUFFIX_LEN + 1 || len - SM_ARN_SUFFIX_LEN - 1 > SM_NAME_MAX ||
	    rest[len - SM_ARN_SUFFIX_LEN - 1] != '-')
		return false;
	for (size_t i = len - SM_ARN_SUFFIX_LEN; i < len; i++)
		if (!isalnum((unsigned char)rest[i]))
			return false;
	return true;
}

int sm_resolve_id(struct sm *sm, const char *id, char name[SM_NAME_MAX + 1], bool *deleted)
{
	const struct sm_secret *s = NULL;
	int rc = -ENOENT;

	if (strncmp(id, "arn:", 4) != 0) {
		pthread_rwlock_rdlock(&sm->index_lock);
		s = find_secret(sm, id);
		goto found;
	}
	const char *rest = arn_rest(sm, id);
	if (!rest)
		return -ENOENT; /* another partition, region or account: not this store's */
	size_t len = strlen(rest);
	char base[SM_NAME_MAX + 1];
	pthread_rwlock_rdlock(&sm->index_lock);
	/* An ARN that ends in "-" and six letters or digits is a full one, as
	 * the service reads it: NAME-SUFFIX, the suffix the secret's own. So
	 * a partial ARN of a name that itself ends so finds nothing (§9.1). */
	if (has_suffix(rest, len)) {
		snprintf(base, sizeof(base), "%.*s", (int)(len - SM_ARN_SUFFIX_LEN - 1), rest);
		s = find_secret(sm, base);
		if (s && strcmp(s->arn_suffix, rest + len - SM_ARN_SUFFIX_LEN) != 0)
			s = NULL;
	} else {
		s = len <= SM_NAME_MAX ? find_secret(sm, rest) : NULL;
	}
found:
	if (stored(s)) {
		snprintf(name, SM_NAME_MAX + 1, "%s", s->name);
		*deleted = s->deleted_ms != 0;
		rc = 0;
	}
	pthread_rwlock_unlock(&sm->index_lock);
	return rc;
}

struct names_ctx {
	struct sm_listing *out;
	bool deleted;
};

static int collect_name(const char *name, void *value, void *ctx)
{
	struct names_ctx *nc = ctx;
	const struct sm_secret *s = value;
	if (!stored(s) || (s->deleted_ms && !nc->deleted))
		return 0;
	struct sm_dirent *e = realloc(nc->out->entries, (nc->out->count + 1) * sizeof(*e));
	if (!e)
		return -ENOMEM;
	nc->out->entries = e;
	if (!(e[nc->out->count].name = strdup(name)))
		return -ENOMEM;
	e[nc->out->count++].kind = SM_KIND_SECRET;
	return 0;
}

int sm_secret_names(struct sm *sm, bool deleted, struct sm_listing *out)
{
	struct names_ctx nc = { out, deleted };
	memset(out, 0, sizeof(*out));
	pthread_rwlock_rdlock(&sm->index_lock);
	int rc = hashmap_foreach(sm->secrets, collect_name, &nc);
	pthread_rwlock_unlock(&sm->index_lock);
	if (rc)
		sm_listing_free(out);
	return rc;
}
