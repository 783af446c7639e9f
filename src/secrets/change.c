/* The records one transaction writes (see secrets/internal.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/timeutil.h"


void change_add(struct change *c, const char *key, char *val, size_t len)
{
	struct change_op *ops = realloc(c->ops, (c->count + 1) * sizeof(*ops));
	char *k = strdup(key);
	if (!ops || !k) {
		free(k);
		free(val);
		if (ops)
			c->ops = ops;
		c->error = -ENOMEM;
		return;
	}
	c->ops = ops;
	c->ops[c->count++] = (struct change_op){ k, val, len };
}

void change_put_secret(struct change *c, struct sm_secret *s)
{
	char key[SM_NAME_MAX + 32];
	/* Every write of the record a step up, kept by s as it goes into the
	 * index: what a replica compares to refuse an older copy (a failed
	 * commit leaves a gap, which is harmless). */
	s->seq++;
	char *text = record_encode_secret(s);
	if (!text || record_key_secret(s->name, key, sizeof(key))) {
		free(text);
		c->error = -ENOMEM;
		return;
	}
	change_add(c, key, text, strlen(text));
}

void change_del_secret(struct change *c, const char *name)
{
	char key[SM_NAME_MAX + 32];
	if (record_key_secret(name, key, sizeof(key)) == 0)
		change_add(c, key, NULL, 0);
}

void change_del_versions(struct change *c, const struct sm_secret *s)
{
	char key[SM_VERSION_ID_MAX + SM_UUID_HEX_LEN + 16];
	for (size_t i = 0; i < s->nversions; i++)
		if (record_key_version(s->uuid, s->versions[i].id, key, sizeof(key)) == 0)
			change_add(c, key, NULL, 0);
}

void change_put_folder(struct change *c, struct sm_folder *f)
{
	char key[SM_NAME_MAX + 32];
	f->seq++; /* as change_put_secret */
	char *text = record_encode_folder(f);
	if (!text || record_key_folder(f->path, key, sizeof(key))) {
		free(text);
		c->error = -ENOMEM;
		return;
	}
	change_add(c, key, text, strlen(text));
}

void change_free(struct change *c)
{
	for (size_t i = 0; i < c->count; i++) {
		free(c->ops[i].key);
		free(c->ops[i].val);
	}
	free(c->ops);
	memset(c, 0, sizeof(*c));
}

/* One transaction for the whole change: all of it lands, or none. */
int change_commit(struct sm *sm, struct change *c)
{
	int rc = c->error;
	if (rc)
		return rc;
	if (sm->opt.readonly)
		return -EROFS;
	rc = authstore_begin(sm->as);
	if (rc) {
		log_error("cannot start a store transaction: %s", strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < c->count && !rc; i++) {
		struct change_op *op = &c->ops[i];
		if (op->val)
			rc = authstore_put(sm->as, op->key, op->val, op->len);
		else if ((rc = authstore_delete(sm->as, op->key)) == -ENOENT)
			rc = 0;
	}
	if (!rc)
		rc = catalog_apply(sm->as, c); /* in the same transaction */
	if (rc)
		authstore_cancel(sm->as);
	else
		rc = authstore_commit(sm->as);
	if (rc && rc != -ESTALE) /* stale: planned again, logged there */
		log_error("store commit failed, nothing changed: %s",
			  rc == -EBADMSG ? "a record it replaces fails authentication" : strerror(-rc));
	return rc;
}
