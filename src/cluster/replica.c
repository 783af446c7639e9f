/*
 * replica (cluster/replica.h): the commit path. A local commit's shared
 * records go to etcd as one compare-and-swap txn before tdb commits them;
 * an answer that never came is read back. The watch side is in
 * replica_sync.c.
 */
#include "cluster/replica.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/internal.h"
#include "util/log.h"
#include "util/timeutil.h"

/* How long a commit whose outcome is unknown is read back before -EIO. */
#define RESOLVE_DEADLINE_MS 8000

char *replica_etcd_key(const struct replica *r, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	char *k = malloc(r->prefix_len + klen + 1);
	if (!k)
		return NULL;
	memcpy(k, r->prefix, r->prefix_len);
	memcpy(k + r->prefix_len, key, klen + 1);
	*len = r->prefix_len + klen;
	return k;
}

void replica_heard(struct replica *r, enum replica_state s)
{
	pthread_mutex_lock(&r->lock);
	if (r->state != s)
		log_info("etcd replica: %s (was %s)", replica_state_name(s),
			 replica_state_name(r->state));
	r->state = s;
	if (s != REPLICA_OFFLINE)
		r->last_contact_ms = time_now_ms();
	pthread_mutex_unlock(&r->lock);
}

/* An answer to a call (not the watch): etcd is there, whatever the watch says. */
static void replica_answered(struct replica *r)
{
	pthread_mutex_lock(&r->lock);
	if (r->state == REPLICA_OFFLINE) {
		log_info("etcd replica: degraded (was offline): etcd answers again");
		r->state = REPLICA_DEGRADED;
	}
	r->last_contact_ms = time_now_ms();
	pthread_mutex_unlock(&r->lock);
}

int64_t replica_own_revision(struct replica *r, const char *key)
{
	pthread_mutex_lock(&r->lock);
	int64_t *rev = hashmap_get(r->own, key);
	int64_t v = rev ? *rev : 0;
	pthread_mutex_unlock(&r->lock);
	return v;
}

static void note_own(struct replica *r, const struct store_op *ops, size_t n, int64_t revision)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < n; i++) {
		int64_t *rev = hashmap_get(r->own, ops[i].key);
		if (!rev) {
			if (!(rev = malloc(sizeof(*rev))) || hashmap_put(r->own, ops[i].key, rev, NULL)) {
				/* Without the note, the watch applies this host's
				 * older write of the key again, briefly: logged. */
				free(rev);
				log_warn("etcd replica: out of memory noting the write of %s",
					 ops[i].key);
				continue;
			}
		}
		*rev = revision;
	}
	pthread_mutex_unlock(&r->lock);
}

/* The shared ops of a commit as a CAS txn; keys kept in keys[] to free. */
struct cas {
	struct etcd_compare *cmp;
	struct etcd_op *put;
	struct etcd_op *look; /* on failure: what each key holds now */
	char **keys;
	size_t n;
};

/*
 * A refused txn whose failure branch shows a record this commit created,
 * with this commit's bytes (a sealed version's nonce is fresh): the txn
 * was applied, and what failed was a copy of it (an HTTP client sends a
 * request again on a connection that died before any answer). Its revision
 * is the commit's; 0 when there is no such record.
 */
static int64_t applied_copy(const struct etcd_txn_resp *a, const struct store_op *ops, size_t n)
{
	for (size_t i = 0; i < n && i < a->n_responses; i++) {
		if (!ops[i].val || ops[i].old || a->responses[i].type != ETCD_OP_RANGE)
			continue;
		const struct etcd_range_resp *rr = &a->responses[i].u.range;
		if (rr->n_kvs && rr->kvs[0].value_len == ops[i].len &&
		    memcmp(rr->kvs[0].value, ops[i].val, ops[i].len) == 0)
			return rr->kvs[0].mod_revision;
	}
	return 0;
}

/* A refused txn's failure branch: the newest revision among the keys it
 * compared, which the replica must reach before the change is planned
 * again (a key deleted meanwhile has none: the wait then times out). */
static int64_t newest_seen(const struct etcd_txn_resp *a)
{
	int64_t newest = 0;
	for (size_t i = 0; i < a->n_responses; i++) {
		if (a->responses[i].type != ETCD_OP_RANGE)
			continue;
		const struct etcd_range_resp *rr = &a->responses[i].u.range;
		for (size_t j = 0; j < rr->n_kvs; j++)
			if (rr->kvs[j].mod_revision > newest)
				newest = rr->kvs[j].mod_revision;
	}
	return newest;
}

static void cas_free(struct cas *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->keys[i]);
	free(c->keys);
	free(c->cmp);
	free(c->put);
	free(c->look);
	memset(c, 0, sizeof(*c));
}

static int cas_build(struct replica *r, const struct store_op *ops, size_t n, struct cas *c)
{
	if (!(c->cmp = calloc(n, sizeof(*c->cmp))) || !(c->put = calloc(n, sizeof(*c->put))) ||
	    !(c->look = calloc(n, sizeof(*c->look))) || !(c->keys = calloc(n, sizeof(*c->keys))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t klen;
		if (!(c->keys[i] = replica_etcd_key(r, ops[i].key, &klen)))
			return -ENOMEM;
		c->n = i + 1;
		/* What this change was planned on: the value this replica holds,
		 * or nothing. A value compare, not a revision one: a replica's
		 * records carry no etcd revision, and equal bytes are the same
		 * state whatever happened in between. */
		c->cmp[i] = (struct etcd_compare){ .key = c->keys[i], .key_len = klen };
		if (ops[i].old) {
			c->cmp[i].target = ETCD_CMP_VALUE;
			c->cmp[i].result = ETCD_CMP_EQUAL;
			c->cmp[i].value = ops[i].old;
			c->cmp[i].value_len = ops[i].old_len;
		} else {
			c->cmp[i].target = ETCD_CMP_CREATE;
			c->cmp[i].result = ETCD_CMP_EQUAL;
			c->cmp[i].number = 0;
		}
		c->look[i].type = ETCD_OP_RANGE;
		/* the values of records this commit creates: the proof that it was
		 * applied after all, if a copy of it is what failed */
		c->look[i].u.range = (struct etcd_range_req){ .key = c->keys[i], .key_len = klen,
							      .keys_only = ops[i].old || !ops[i].val };
		if (ops[i].val) {
			c->put[i].type = ETCD_OP_PUT;
			c->put[i].u.put = (struct etcd_put_req){ .key = c->keys[i], .key_len = klen,
								 .value = ops[i].val,
								 .value_len = ops[i].len };
		} else {
			c->put[i].type = ETCD_OP_DELETE;
			c->put[i].u.del = (struct etcd_delete_req){ .key = c->keys[i], .key_len = klen };
		}
	}
	return 0;
}

/* Does etcd hold what ops say now: their new values (committed: 1), their
 * old ones (not committed: 0), or neither (-ESTALE)? *revision: the
 * commit's own revision when it committed (never a later writer's: this
 * host would then skip that writer's change of the key), else the newest
 * seen. */
static int read_back(struct replica *r, const struct store_op *ops, const struct cas *c,
		     int64_t *revision)
{
	bool all_new = true, all_old = true, created_ours = false;
	int64_t ours = 0, newest = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct etcd_range_req q = { .key = c->keys[i], .key_len = strlen(c->keys[i]) };
		struct etcd_range_resp a = { 0 };
		int rc = etcd_range(r->etcd, &q, &a);
		if (rc)
			return rc;
		const struct etcd_kv *kv = a.n_kvs ? &a.kvs[0] : NULL;
		bool is_new = ops[i].val ? kv && kv->value_len == ops[i].len &&
						   memcmp(kv->value, ops[i].val, ops[i].len) == 0
					 : !kv;
		bool is_old = ops[i].old ? kv && kv->value_len == ops[i].old_len &&
						   memcmp(kv->value, ops[i].old, ops[i].old_len) == 0
					 : !kv;
		/* A record this commit created with its own bytes (a sealed
		 * version's nonce is fresh) is proof it committed, and its
		 * revision is the commit's. */
		if (is_new && ops[i].val && !ops[i].old) {
			created_ours = true;
			ours = kv->mod_revision;
		}
		if (kv && kv->mod_revision > newest)
			newest = kv->mod_revision;
		all_new &= is_new;
		all_old &= is_old;
		etcd_range_resp_free(&a);
	}
	*revision = created_ours ? ours : newest;
	if (all_new || created_ours)
		return 1;
	return all_old ? 0 : -ESTALE;
}

/* A txn sent without an answer: read back until it is known. */
static int resolve(struct replica *r, const struct store_op *ops, const struct cas *c,
		   const struct etcd_txn_req *txn, int64_t *revision)
{
	int64_t deadline = time_now_ms() + RESOLVE_DEADLINE_MS;
	long pause_ms = 100;
	while (time_now_ms() < deadline) {
		/* Offline (no leader, no member): nothing will answer before the
		 * deadline; the outcome stays unknown, and the watch brings the
		 * change if etcd applies it later. */
		pthread_mutex_lock(&r->lock);
		bool offline = r->state == REPLICA_OFFLINE;
		pthread_mutex_unlock(&r->lock);
		if (offline)
			break;
		struct timespec ts = { pause_ms / 1000, (pause_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
		if (pause_ms < 1000)
			pause_ms *= 2;
		int rc = read_back(r, ops, c, revision);
		if (rc == 1)
			return 0;
		if (rc == -ESTALE)
			return rc;
		if (rc) {
			log_info("etcd replica: reading the commit back: %s; again", strerror(-rc));
			continue; /* still no answer */
		}
		/* Not applied, and what it compares still holds: the same txn
		 * again cannot apply twice. */
		struct etcd_txn_resp a = { 0 };
		rc = etcd_txn(r->etcd, txn, &a);
		if (!rc) {
			int64_t ours = a.succeeded ? a.header.revision : applied_copy(&a, ops, c->n);
			*revision = ours ? ours : newest_seen(&a);
			etcd_txn_resp_free(&a);
			return ours ? 0 : -ESTALE;
		}
		if (rc != ETCD_E_UNKNOWN && rc != ETCD_E_NOTSENT)
			return rc;
	}
	return -EIO;
}

void replica_note_unresolved(struct replica *r, const struct store_op *ops, size_t n)
{
	const struct store_op *mark = NULL;
	for (size_t i = 0; i < n && !mark; i++)
		if (ops[i].val && !ops[i].old)
			mark = &ops[i]; /* created here: its bytes are this commit's alone */
	for (size_t i = 0; i < n && !mark; i++)
		if (ops[i].val)
			mark = &ops[i];
	if (!mark)
		return;
	char *key = strdup(mark->key);
	uint8_t *val = malloc(mark->len ? mark->len : 1);
	if (!key || !val) {
		free(key);
		free(val);
		return;
	}
	memcpy(val, mark->val, mark->len);
	pthread_mutex_lock(&r->lock);
	struct unresolved *u = &r->unresolved[r->next_unresolved++ % 8];
	free(u->key);
	free(u->val);
	*u = (struct unresolved){ key, val, mark->len };
	pthread_mutex_unlock(&r->lock);
}

void replica_check_unresolved(struct replica *r, const char *key, const uint8_t *val, size_t len,
			      int64_t revision)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < 8; i++) {
		struct unresolved *u = &r->unresolved[i];
		if (u->key && strcmp(u->key, key) == 0 && u->len == len &&
		    memcmp(u->val, val, len) == 0) {
			log_warn("etcd replica: a commit refused here with EIO (its outcome unknown; "
				 "%s) was applied by etcd after all, at revision %lld: it is here now",
				 key, (long long)revision);
			free(u->key);
			free(u->val);
			memset(u, 0, sizeof(*u));
		}
	}
	pthread_mutex_unlock(&r->lock);
}

/* The commit hook: shared records to etcd first. */
static int on_commit(void *ctx, const struct store_op *all, size_t count)
{
	struct replica *r = ctx;
	struct store_op *ops = NULL;
	struct cas c = { 0 };
	size_t n = 0;
	int64_t revision = 0;
	int rc;
	if (atomic_load(&r->applying) && pthread_equal(r->applier, pthread_self()))
		return 0; /* other hosts' records, from etcd: nothing to send */
	if (!(ops = calloc(count, sizeof(*ops))))
		return -ENOMEM;
	for (size_t i = 0; i < count; i++)
		if (replica_key_shared(all[i].key))
			ops[n++] = all[i];
	if (!n) {
		rc = 0;
		goto out;
	}
	if (n > ETCD_TXN_OPS_MAX) {
		log_error("etcd replica: a change of %zu records is more than one etcd txn holds "
			  "(%u); refused", n, ETCD_TXN_OPS_MAX);
		rc = -EFBIG;
		goto out;
	}
	if ((rc = cas_build(r, ops, n, &c)))
		goto out;
	struct etcd_txn_req txn = { .compare = c.cmp, .n_compare = n, .success = c.put,
				    .n_success = n, .failure = c.look, .n_failure = n };
	struct etcd_txn_resp a = { 0 };
	rc = etcd_txn(r->etcd, &txn, &a);
	if (!rc) {
		revision = a.header.revision;
		rc = a.succeeded ? 0 : -ESTALE;
		int64_t ours = rc ? applied_copy(&a, ops, n) : 0;
		if (ours) {
			log_info("etcd replica: a commit was sent twice; the first copy applied");
			revision = ours;
			rc = 0;
		} else if (rc) {
			revision = newest_seen(&a);
		}
		etcd_txn_resp_free(&a);
		replica_answered(r);
	} else if (rc == ETCD_E_UNKNOWN) {
		log_warn("etcd replica: no answer to a commit of %zu records; reading it back", n);
		rc = resolve(r, ops, &c, &txn, &revision);
		if (rc == -EIO)
			replica_note_unresolved(r, ops, n);
		if (rc == -EIO)
			log_error("etcd replica: a commit's outcome is still unknown (no answer for "
				  "%d s, or etcd offline): refused here (%s first); if etcd applies "
				  "it later, it arrives like another host's change",
				  RESOLVE_DEADLINE_MS / 1000, ops[0].key);
		else
			log_info("etcd replica: the commit's outcome: %s",
				 rc ? "not applied" : "applied");
	} else if (rc == ETCD_E_NOTSENT) {
		replica_heard(r, REPLICA_OFFLINE);
		rc = -EROFS;
	}
	if (!rc) {
		note_own(r, ops, n, revision);
	} else if (rc == -ESTALE) {
		pthread_mutex_lock(&r->lock);
		if (revision > r->stale_revision)
			r->stale_revision = revision;
		pthread_mutex_unlock(&r->lock);
	}
out:
	cas_free(&c);
	free(ops);
	return rc;
}

int replica_open(const struct replica_config *c, struct store *st, int64_t applied,
		 struct replica **out)
{
	struct etcd_config ec = { .endpoints = (const char *const *)c->endpoints,
				  .n_endpoints = c->n_endpoints,
				  .user = c->user,
				  .password_file = c->password_file,
				  .ca_file = c->ca_file,
				  .cert_file = c->cert_file,
				  .key_file = c->key_file,
				  /* Short: a member that hangs (no quorum, or stopped)
				   * must make this host offline, and its writes
				   * EROFS, within seconds. A slow answer past them
				   * is an unknown outcome, read back. */
				  .timeout_ms = 2000,
				  .connect_timeout_ms = 500,
				  .watch_idle_ms = 4000 };
	struct replica *r = calloc(1, sizeof(*r));
	int rc;
	*out = NULL;
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->applied_cond, NULL);
	r->st = st;
	r->applied = applied;
	r->state = REPLICA_DEGRADED; /* nothing heard yet */
	r->prefix_len = strlen(c->prefix);
	if (!(r->prefix = strdup(c->prefix)) || !(r->own = hashmap_new(256)) ||
	    !(r->endpoints = calloc(c->n_endpoints, sizeof(*r->endpoints)))) {
		rc = -ENOMEM;
		goto fail;
	}
	for (; r->n_endpoints < c->n_endpoints; r->n_endpoints++)
		if (!(r->endpoints[r->n_endpoints] = strdup(c->endpoints[r->n_endpoints]))) {
			rc = -ENOMEM;
			goto fail;
		}
	if ((rc = etcd_open(&ec, &r->etcd)))
		goto fail;
	etcd_prefer_leader(r->etcd); /* etcd offline now: the watch thread asks again */
	if (st)
		store_set_commit_hook(st, on_commit, r);
	*out = r;
	return 0;
fail:
	replica_close(r);
	return rc;
}

static int free_own(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	free(value);
	return 0;
}

void replica_close(struct replica *r)
{
	if (!r)
		return;
	if (r->running) {
		atomic_store(&r->stop, true);
		pthread_join(r->thread, NULL);
	}
	if (r->etcd && r->st)
		store_set_commit_hook(r->st, NULL, NULL);
	etcd_close(r->etcd);
	for (size_t i = 0; i < 8; i++) {
		free(r->unresolved[i].key);
		free(r->unresolved[i].val);
	}
	if (r->own) {
		hashmap_foreach(r->own, free_own, NULL);
		hashmap_free(r->own);
	}
	free(r->prefix);
	for (size_t i = 0; i < r->n_endpoints; i++)
		free(r->endpoints[i]);
	free(r->endpoints);
	pthread_cond_destroy(&r->applied_cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int replica_wait(struct replica *r, long timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	int rc = 0;
	pthread_mutex_lock(&r->lock);
	while (r->applied < r->stale_revision && !rc)
		rc = pthread_cond_timedwait(&r->applied_cond, &r->lock, &until) ? -ETIMEDOUT : 0;
	pthread_mutex_unlock(&r->lock);
	/* Two hosts that lost to each other would plan and send again in
	 * step, and lose again: a few random milliseconds part them. */
	unsigned seed = (unsigned)time_now_ms() ^ (unsigned)(uintptr_t)&until;
	struct timespec jitter = { 0, (long)(rand_r(&seed) % 8000) * 1000L };
	nanosleep(&jitter, NULL);
	return rc;
}

int replica_writable(struct replica *r)
{
	pthread_mutex_lock(&r->lock);
	bool offline = r->state == REPLICA_OFFLINE;
	pthread_mutex_unlock(&r->lock);
	return offline ? -EROFS : 0;
}

void replica_status(struct replica *r, struct replica_status *out)
{
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&r->lock);
	out->state = r->state;
	out->applied_revision = r->applied;
	out->last_contact_ms = r->last_contact_ms;
	pthread_mutex_unlock(&r->lock);
	snprintf(out->endpoint, sizeof(out->endpoint), "%s", etcd_endpoint(r->etcd));
	out->endpoints = (const char *const *)r->endpoints;
	out->n_endpoints = r->n_endpoints;
}

static int get_one(struct replica *r, const char *key, uint8_t **val, size_t *len)
{
	size_t klen;
	char *k = replica_etcd_key(r, key, &klen);
	if (!k)
		return -ENOMEM;
	struct etcd_range_req q = { .key = k, .key_len = klen };
	struct etcd_range_resp a = { 0 };
	int rc = etcd_range(r->etcd, &q, &a);
	free(k);
	if (rc)
		return rc;
	if (!a.n_kvs) {
		rc = -ENOENT;
	} else if (!(*val = malloc(a.kvs[0].value_len ? a.kvs[0].value_len : 1))) {
		rc = -ENOMEM;
	} else {
		memcpy(*val, a.kvs[0].value, a.kvs[0].value_len);
		*len = a.kvs[0].value_len;
	}
	etcd_range_resp_free(&a);
	return rc;
}

int replica_fetch_header(struct replica *r, uint8_t **format, size_t *format_len,
			 uint8_t **header, size_t *header_len)
{
	*format = *header = NULL;
	int rc = get_one(r, "sfs/header", header, header_len);
	if (!rc && (rc = get_one(r, "sfs/format", format, format_len)) == -ENOENT)
		rc = -EBADMSG; /* a header without its format: not a store */
	if (rc) {
		free(*header);
		*header = NULL;
	}
	if (!rc)
		replica_answered(r);
	return rc;
}

/* The shared records of the store, collected for publishing. */
struct collected {
	struct store_op *ops;
	size_t n, cap;
	int rc;
};

static int collect(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	struct collected *c = ctx;
	if (!replica_key_shared(key))
		return 0;
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct store_op *grown = realloc(c->ops, cap * sizeof(*grown));
		if (!grown)
			return c->rc = -ENOMEM;
		c->ops = grown;
		c->cap = cap;
	}
	char *k = strdup(key);
	uint8_t *v = malloc(len ? len : 1);
	if (!k || !v) {
		free(k);
		free(v);
		return c->rc = -ENOMEM;
	}
	memcpy(v, val, len);
	c->ops[c->n++] = (struct store_op){ .key = k, .val = v, .len = len };
	return 0;
}

static int header_first(const void *a, const void *b)
{
	bool x = strncmp(((const struct store_op *)a)->key, "sfs/", 4) == 0;
	bool y = strncmp(((const struct store_op *)b)->key, "sfs/", 4) == 0;
	return (int)y - (int)x;
}

int replica_publish(struct replica *r)
{
	struct collected all = { 0 };
	struct cas c = { 0 };
	int rc = store_foreach(r->st, "", collect, &all);
	if (!rc)
		rc = all.rc;
	/* The header and format go in the first txn: it decides which of two
	 * hosts that initialise one prefix at once wins. */
	if (!rc && all.n)
		qsort(all.ops, all.n, sizeof(*all.ops), header_first);
	for (size_t at = 0; !rc && at < all.n; at += ETCD_TXN_OPS_MAX) {
		size_t n = all.n - at < ETCD_TXN_OPS_MAX ? all.n - at : ETCD_TXN_OPS_MAX;
		/* old NULL: each key must be absent, so nothing is overwritten */
		if ((rc = cas_build(r, all.ops + at, n, &c)))
			break;
		struct etcd_txn_req txn = { .compare = c.cmp, .n_compare = n, .success = c.put,
					    .n_success = n };
		struct etcd_txn_resp a = { 0 };
		rc = etcd_txn(r->etcd, &txn, &a);
		if (!rc && !a.succeeded) {
			log_error("etcd replica: prefix %s already holds %s", r->prefix,
				  at ? "some of this store's records" : "a store");
			rc = -EEXIST;
		}
		if (!rc && a.header.revision > r->applied)
			r->applied = a.header.revision;
		etcd_txn_resp_free(&a);
		cas_free(&c);
	}
	for (size_t i = 0; i < all.n; i++) {
		free((void *)all.ops[i].key);
		free((void *)all.ops[i].val);
	}
	free(all.ops);
	return rc;
}
