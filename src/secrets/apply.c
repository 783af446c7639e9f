/*
 * sm_apply (secrets/secrets.h): the records of one commit made on another
 * host, applied to this replica as one transaction, and the index made to
 * match them (docs/replication.md). Every record is authenticated under
 * this store's key and every secret and folder record decoded before
 * anything commits: a batch with one record that fails is refused whole,
 * as a commit made by a key holder is whole.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "secrets/internal.h"
#include "util/log.h"

/* What one record of the batch becomes in memory once it has committed. */
struct applied {
	const char *key;
	enum { A_NONE, A_SECRET, A_FOLDER, A_KEY } kind;
	const char *name;        /* the secret's name or folder's path (in key) */
	struct sm_secret *secret; /* NULL: gone */
	struct sm_folder *folder; /* NULL: gone */
	bool skipped;             /* declined by keep: not written */
	int64_t held_seq;         /* the stored secret or folder record's change counter; -1: none */
};

static bool has_prefix(const char *key, const char *prefix)
{
	return strncmp(key, prefix, strlen(prefix)) == 0;
}

/* Records a host writes to be replicated; the rest ("sfs/state",
 * "sfs/format", anything unknown) belong to each replica alone. */
static int check_key(const char *key, bool deleted)
{
	/* A deletion carries no tag: the header's or a named key's would
	 * leave this replica unable to open or to decrypt, a catalog
	 * bucket's would take its change counter with it, and no host
	 * deletes any of them. */
	if (deleted && (has_prefix(key, RECORD_PREFIX_KEY) || has_prefix(key, RECORD_PREFIX_CATALOG) ||
			strcmp(key, RECORD_KEY_HEADER) == 0)) {
		log_error("replication: refused the deletion of record %s: no host deletes it", key);
		return -EPERM;
	}
	if (has_prefix(key, RECORD_PREFIX_SECRET) || has_prefix(key, RECORD_PREFIX_FOLDER) ||
	    has_prefix(key, RECORD_PREFIX_VERSION) || has_prefix(key, RECORD_PREFIX_KEY) ||
	    has_prefix(key, RECORD_PREFIX_CATALOG) || strcmp(key, RECORD_KEY_HEADER) == 0)
		return 0;
	log_error("replication: refused a change of record %s: a replica keeps it alone", key);
	return -EPERM;
}

/*
 * A version record has no tag the replica can check before it is opened;
 * a host writes one only in the commit that lists it in its secret's
 * record. So a version put must be listed by a secret record of the same
 * batch (those are authenticated first): one that nothing lists would
 * make every later load refuse the store.
 */
static bool lists(const struct sm_secret *s, const char *uuid, size_t uuid_len, const char *vid)
{
	if (!s || strncmp(s->uuid, uuid, uuid_len) != 0 || s->uuid[uuid_len] != '\0')
		return false;
	for (size_t k = 0; k < s->nversions; k++)
		if (strcmp(s->versions[k].id, vid) == 0)
			return true;
	return false;
}

/*
 * A version goes only with a change of its secret's record in the same
 * commit (a deprecated version dropped, a secret deleted for good), and
 * that record, as the batch leaves it, no longer lists it. A deletion
 * carries no tag, so on its own it would be anyone's data loss.
 */
static int check_version_deletion(const struct store_op *ops, size_t count,
				  const struct applied *a, size_t i)
{
	const char *uuid = ops[i].key + strlen(RECORD_PREFIX_VERSION);
	const char *vid = strchr(uuid, '/');
	bool secret_changed = false, still_listed = false;
	for (size_t j = 0; j < count; j++) {
		if (a[j].skipped || !has_prefix(ops[j].key, RECORD_PREFIX_SECRET))
			continue;
		secret_changed = true;
		if (vid && a[j].secret && lists(a[j].secret, uuid, (size_t)(vid - uuid), vid + 1))
			still_listed = true;
	}
	if (secret_changed && !still_listed)
		return 0;
	log_error("replication: refused the deletion of version record %s: %s", ops[i].key,
		  secret_changed ? "its secret's record still lists it"
				 : "no change of a secret's record goes with it");
	return -EBADMSG;
}

static int check_versions_listed(struct sm *sm, const struct store_op *ops, size_t count,
				 const struct applied *a)
{
	for (size_t i = 0; i < count; i++) {
		if (a[i].skipped || !has_prefix(ops[i].key, RECORD_PREFIX_VERSION))
			continue;
		if (!ops[i].val) {
			int rc = check_version_deletion(ops, count, a, i);
			if (rc)
				return rc;
			continue;
		}
		const char *uuid = ops[i].key + strlen(RECORD_PREFIX_VERSION);
		const char *vid = strchr(uuid, '/');
		bool listed = false;
		/* by the batch's secret record, or, where keep left that record
		 * out (this host wrote it since), by the one held */
		for (size_t j = 0; vid && !listed && j < count; j++)
			if (has_prefix(ops[j].key, RECORD_PREFIX_SECRET))
				listed = lists(a[j].skipped ? find_secret(sm, ops[j].key +
									strlen(RECORD_PREFIX_SECRET))
							    : a[j].secret,
					       uuid, (size_t)(vid - uuid), vid + 1);
		if (!listed) {
			log_error("replication: refused version record %s: no secret record of its "
				  "commit lists it", ops[i].key);
			return -EBADMSG;
		}
	}
	return 0;
}

/*
 * Every secret and folder record the batch puts must be listed in its
 * catalog bucket as the batch leaves it, and every one it deletes must
 * not be: a host changes both in one commit. With the buckets' change
 * counters (decode), a secret deleted for good cannot come back by its
 * old records put back in etcd: the bucket that listed it is older than
 * the one held, and without that bucket the record is listed nowhere.
 */
static int check_catalogued(struct sm *sm, const struct store_op *ops, size_t count,
			    const struct applied *a)
{
	for (size_t i = 0; i < count; i++) {
		if (a[i].skipped || !catalog_is_catalogued(ops[i].key))
			continue;
		char bucket[32];
		uint8_t *body = NULL;
		size_t len = 0;
		catalog_bucket_key_of(ops[i].key, bucket);
		int rc = authstore_get(sm->as, bucket, &body, &len);
		if (rc && rc != -ENOENT)
			return rc;
		bool listed = !rc && catalog_bucket_lists(body, len, ops[i].key);
		free(body);
		if (listed != (ops[i].val != NULL)) {
			log_error("replication: refused record %s: its catalog bucket %s %s it (a "
				  "record put back or removed in etcd on its own)", ops[i].key,
				  bucket, listed ? "still lists" : "does not list");
			return -EBADMSG;
		}
	}
	return 0;
}

/* A named key's record must be newer than the one held: a disabled key
 * enabled again by an old copy put back would open what it must not. */
static int64_t stored_seq(struct sm *sm, const char *key);

static int check_key_counter(struct sm *sm, const char *key)
{
	int64_t seq = stored_seq(sm, key);
	if (seq < 0)
		return -EBADMSG; /* just written: it reads back, or it is damaged */
	int64_t held = keyring_key_seq(sm->kr, key + strlen(RECORD_PREFIX_KEY));
	if (held >= 0 && (held || seq) && seq <= held) {
		log_error("replication: record %s is older than the one this replica holds "
			  "(change %lld, held %lld): a rollback, refused", key, (long long)seq,
			  (long long)held);
		return -EBADMSG;
	}
	return 0;
}

/* A catalog bucket must be newer than the one held (its counter). */
static int check_bucket_counter(struct sm *sm, const struct applied *a)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rc = authstore_get(sm->as, a->key, &body, &len);
	if (rc)
		return rc;
	int64_t seq = catalog_bucket_counter(body, len);
	free(body);
	if (seq < 0) {
		log_error("replication: record %s authenticates but does not decode", a->key);
		return -EBADMSG;
	}
	if (a->held_seq >= 0 && (a->held_seq || seq) && seq <= a->held_seq) {
		log_error("replication: record %s is older than the one this replica holds "
			  "(change %lld, held %lld): a rollback, refused", a->key, (long long)seq,
			  (long long)a->held_seq);
		return -EBADMSG;
	}
	return 0;
}

/* The record just written (or deleted) under a->key, decoded for the index. */
static int decode(struct sm *sm, struct applied *a, bool deleted)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int rc = 0;
	if (has_prefix(a->key, RECORD_PREFIX_KEY)) {
		a->kind = A_KEY;
		return deleted ? 0 : check_key_counter(sm, a->key);
	}
	if (has_prefix(a->key, RECORD_PREFIX_SECRET)) {
		a->kind = A_SECRET;
		a->name = a->key + strlen(RECORD_PREFIX_SECRET);
	} else if (has_prefix(a->key, RECORD_PREFIX_FOLDER)) {
		a->kind = A_FOLDER;
		a->name = a->key + strlen(RECORD_PREFIX_FOLDER);
	} else if (has_prefix(a->key, RECORD_PREFIX_CATALOG)) {
		return deleted ? 0 : check_bucket_counter(sm, a);
	} else {
		return 0; /* versions and the header: read when needed */
	}
	if (deleted)
		return 0;
	if ((rc = authstore_get(sm->as, a->key, &body, &len)))
		return rc;
	if (a->kind == A_SECRET) {
		rc = record_decode_secret(body, len, &a->secret) ? -EBADMSG : 0;
		if (!rc && strcmp(a->secret->name, a->name) != 0)
			rc = -EBADMSG; /* a tag binds the key, so only a key holder's bug */
		/* Against the record this replica stores (the index's copy can
		 * run ahead of it: a write refused elsewhere raised it). */
		if (!rc && a->held_seq >= 0 && (a->held_seq || a->secret->seq) &&
		    a->secret->seq <= a->held_seq) {
			/* Genuine but older: put back by whoever can write to etcd. */
			log_error("replication: record %s is older than the one this replica holds "
				  "(change %lld, held %lld): a rollback, refused", a->key,
				  (long long)a->secret->seq, (long long)a->held_seq);
			free(body);
			return -EBADMSG;
		}
	} else {
		rc = record_decode_folder(a->name, body, len, &a->folder) ? -EBADMSG : 0;
		if (!rc && a->held_seq >= 0 && (a->held_seq || a->folder->seq) &&
		    a->folder->seq <= a->held_seq) {
			log_error("replication: record %s is older than the one this replica holds "
				  "(change %lld, held %lld): a rollback, refused", a->key,
				  (long long)a->folder->seq, (long long)a->held_seq);
			free(body);
			return -EBADMSG;
		}
	}
	if (rc == -EBADMSG)
		log_error("replication: record %s authenticates but does not decode", a->key);
	free(body);
	return rc;
}

/* The replica holds these very bytes (a revision delivered again, or
 * this host's own write coming back): nothing to do. */
static bool holds_already(struct sm *sm, const struct store_op *op)
{
	uint8_t *held = NULL;
	size_t len = 0;
	int rc = store_get(sm->store, op->key, &held, &len);
	bool same = op->val ? rc == 0 && len == op->len && memcmp(held, op->val, len) == 0
			    : rc == -ENOENT;
	free(held);
	return same;
}

/* The change counter of the record stored under key now; -1: none (or
 * one that does not read, which the tag check then judges). */
static int64_t stored_seq(struct sm *sm, const char *key)
{
	uint8_t *body = NULL;
	size_t len = 0;
	int64_t seq = -1;
	if (authstore_get(sm->as, key, &body, &len) == 0 && has_prefix(key, RECORD_PREFIX_CATALOG)) {
		seq = catalog_bucket_counter(body, len);
	} else if (body) {
		struct json_object *o = record_json_parse(body, len);
		seq = 0;
		if (!o || record_json_int(o, "seq", false, &seq))
			seq = -1;
		json_object_put(o);
	}
	free(body);
	return seq;
}

/* The batch into the open transaction; 0 when every record went in. */
static int write_batch(struct sm *sm, const struct store_op *ops, size_t count,
		       struct applied *out, sm_apply_keep_fn keep, void *keep_ctx)
{
	int rc = 0;
	for (size_t i = 0; !rc && i < count; i++) {
		out[i].key = ops[i].key;
		if ((rc = check_key(ops[i].key, !ops[i].val)))
			break;
		if ((keep && !keep(keep_ctx, ops[i].key)) || holds_already(sm, &ops[i])) {
			out[i].skipped = true;
			continue;
		}
		out[i].held_seq = -1;
		if (ops[i].val && (has_prefix(ops[i].key, RECORD_PREFIX_SECRET) ||
				   has_prefix(ops[i].key, RECORD_PREFIX_FOLDER) ||
				   has_prefix(ops[i].key, RECORD_PREFIX_CATALOG)))
			out[i].held_seq = stored_seq(sm, ops[i].key);
		if (!ops[i].val) {
			rc = authstore_delete(sm->as, ops[i].key);
			if (rc == -ENOENT)
				rc = 0;
		} else {
			rc = authstore_put_raw(sm->as, ops[i].key, ops[i].val, ops[i].len);
		}
	}
	for (size_t i = 0; !rc && i < count; i++)
		if (!out[i].skipped)
			rc = decode(sm, &out[i], !ops[i].val);
	if (!rc)
		rc = check_versions_listed(sm, ops, count, out);
	return rc ? rc : check_catalogued(sm, ops, count, out);
}

/* The committed batch into the index, and the kernel told (change hook). */
static void swap_in(struct sm *sm, struct applied *a, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		switch (a[i].kind) {
		case A_SECRET: {
			struct sm_secret *s = a[i].secret;
			a[i].secret = NULL;
			if (s && is_live(s)) {
				pthread_rwlock_wrlock(&sm->index_lock);
				if (ensure_parents(sm, s->name, s))
					log_error("replication: out of memory adding the folders of %s",
						  s->name);
				pthread_rwlock_unlock(&sm->index_lock);
			}
			index_apply(sm, a[i].name, s);
			break;
		}
		case A_FOLDER: {
			struct sm_folder *f = a[i].folder;
			a[i].folder = NULL;
			/* A folder whose record is gone stays, implied, while a
			 * secret below it lives (as the load would have it). */
			if (!f && folder_has_children(sm, a[i].name) &&
			    !(f = new_folder(a[i].name, 0755, 0, 0, 0)))
				log_error("replication: out of memory keeping folder %s", a[i].name);
			index_apply_folder(sm, a[i].name, f);
			break;
		}
		case A_KEY:
			if (keyring_reload_key(sm->kr, a[i].key))
				log_error("replication: out of memory reloading named key %s",
					  a[i].key);
			break;
		case A_NONE:
			break;
		}
	}
}

static bool local_key(const char *key)
{
	return strcmp(key, RECORD_KEY_CLUSTER) == 0 || strcmp(key, RECORD_KEY_REPLICA) == 0;
}

int sm_local_get(struct sm *sm, const char *key, uint8_t **body, size_t *len)
{
	if (!local_key(key))
		return -EPERM;
	return authstore_get(sm->as, key, body, len);
}

int sm_local_put(struct sm *sm, const char *key, const void *body, size_t len)
{
	if (!local_key(key))
		return -EPERM;
	int rc = write_begin_local(sm);
	if (rc)
		return rc;
	rc = authstore_begin(sm->as);
	if (!rc && (rc = authstore_put(sm->as, key, body, len)))
		authstore_cancel(sm->as);
	else if (!rc)
		rc = authstore_commit(sm->as);
	write_end(sm);
	return rc;
}

int sm_apply(struct sm *sm, const struct store_op *ops, size_t count,
	     const struct store_op *local, sm_apply_keep_fn keep, void *keep_ctx)
{
	struct applied *a = NULL;
	int rc;
	if (sm->nproblems)
		return -EBADMSG; /* what the load refused is not built on */
	if (local && !local_key(local->key))
		return -EPERM;
	if (!count && !local)
		return 0;
	if (!(a = calloc(count ? count : 1, sizeof(*a))))
		return -ENOMEM;
	pthread_mutex_lock(&sm->write_lock);
	if ((rc = authstore_begin(sm->as)))
		goto out;
	rc = write_batch(sm, ops, count, a, keep, keep_ctx);
	size_t written = 0;
	for (size_t i = 0; i < count; i++)
		written += !a[i].skipped;
	if (!rc && count && !written) {
		/* Nothing new (this host's own writes coming back): no commit;
		 * the revision is written with the next batch that brings one. */
		authstore_cancel(sm->as);
		goto out;
	}
	if (!rc && local)
		rc = authstore_put(sm->as, local->key, local->val, local->len);
	if (rc) {
		authstore_cancel(sm->as);
		log_error("replication: a change of %zu records refused whole (%s); this replica "
			  "keeps what it had", count, strerror(-rc));
		goto out;
	}
	if ((rc = authstore_commit(sm->as)))
		goto out;
	swap_in(sm, a, count);
out:
	pthread_mutex_unlock(&sm->write_lock);
	for (size_t i = 0; i < count; i++) {
		secret_free(a[i].secret);
		folder_free(a[i].folder);
	}
	free(a);
	return rc;
}
