/* secretsfs check: every version decrypted (the records' tags and how they
 * fit together were checked by the load: sm_problems). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"

struct verify_ctx {
	struct sm *sm;
	struct sm_verify_report *r;
};

static int verify_secret(const char *name, void *value, void *ctx)
{
	struct verify_ctx *v = ctx;
	const struct sm_secret *s = value;
	struct secbuf plain = { 0 };
	(void)name;
	if (s->scratch || !s->persisted)
		return 0;
	v->r->secrets++;
	for (size_t i = 0; i < s->nversions; i++) {
		v->r->versions++;
		if (read_version(v->sm, s, &s->versions[i], &plain) != 0) {
			v->r->bad_versions++;
			log_error("check: %s: version %s does not open", s->name, s->versions[i].id);
		}
		secbuf_free(&plain);
	}
	return 0;
}

static int count_record(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	(void)key;
	(void)val;
	(void)len;
	((struct verify_ctx *)ctx)->r->records++;
	return 0;
}

int sm_verify(struct sm *sm, struct sm_verify_report *r)
{
	struct verify_ctx v = { sm, r };
	memset(r, 0, sizeof(*r));
	r->problems = sm->nproblems;
	pthread_mutex_lock(&sm->write_lock);
	int rc = hashmap_foreach(sm->secrets, verify_secret, &v);
	if (!rc)
		rc = store_foreach(sm->store, RECORD_PREFIX_VERSION, count_record, &v);
	pthread_mutex_unlock(&sm->write_lock);
	return rc;
}

int sm_backup(struct sm *sm, const char *dest)
{
	return store_backup(sm->store, dest);
}
