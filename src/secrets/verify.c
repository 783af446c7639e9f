/* secretsfs check: every record of a store opened and accounted for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"

struct verify_ctx {
	struct sm *sm;
	struct sm_verify_report *r;
	struct hashmap *listed; /* "uuid/version-id" of every version a secret lists */
};

static int verify_secret(const char *name, void *value, void *ctx)
{
	struct verify_ctx *v = ctx;
	const struct sm_secret *s = value;
	struct secbuf plain = { 0 };
	char key[SM_UUID_HEX_LEN + SM_VERSION_ID_MAX + 2];
	(void)name;
	if (s->scratch || !s->persisted)
		return 0;
	v->r->secrets++;
	for (size_t i = 0; i < s->nversions; i++) {
		v->r->versions++;
		snprintf(key, sizeof(key), "%s/%s", s->uuid, s->versions[i].id);
		if (hashmap_put(v->listed, key, (void *)1, NULL))
			return -ENOMEM;
		if (read_version(v->sm, s, &s->versions[i], &plain) != 0) {
			v->r->bad_versions++;
			log_error("check: %s: version %s does not open", s->name, s->versions[i].id);
		}
		secbuf_free(&plain);
	}
	return 0;
}

/* A version record no secret lists is not harmful, but unaccounted for. */
static int verify_record(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	struct verify_ctx *v = ctx;
	(void)val;
	(void)len;
	v->r->records++;
	if (!hashmap_get(v->listed, key + strlen(RECORD_PREFIX_VERSION))) {
		v->r->orphans++;
		log_error("check: record %s belongs to no secret", key);
	}
	return 0;
}

int sm_verify(struct sm *sm, struct sm_verify_report *r)
{
	struct verify_ctx v = { sm, r, hashmap_new(1024) };
	memset(r, 0, sizeof(*r));
	if (!v.listed)
		return -ENOMEM;
	pthread_mutex_lock(&sm->write_lock);
	int rc = hashmap_foreach(sm->secrets, verify_secret, &v);
	if (!rc)
		rc = store_foreach(sm->store, RECORD_PREFIX_VERSION, verify_record, &v);
	pthread_mutex_unlock(&sm->write_lock);
	hashmap_free(v.listed);
	return rc;
}

int sm_backup(struct sm *sm, const char *dest)
{
	return store_backup(sm->store, dest);
}
