/*
 * replica_sync (cluster/replica.h): other hosts' changes into this
 * replica. A watch from the revision applied hands each revision's records
 * to the apply function; a replica that has applied nothing, or whose
 * revision etcd compacted away, reads the whole prefix at one revision.
 * Nothing moves back: revisions at or below the one applied, and keys this
 * host wrote at a later revision, are skipped.
 */
#include "cluster/replica.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/internal.h"
#include "util/log.h"
#include "util/strlist.h"

#define PAGE_KEYS 500

struct keeping {
	struct replica *r;
	int64_t revision;
};

/* Asked under the domain's writer lock: a key this host wrote at this
 * revision or later keeps this host's bytes (deciding it before the lock
 * let a write committed meanwhile be overwritten by an older one). */
static bool keep_unless_own_newer(void *ctx, const char *key)
{
	const struct keeping *k = ctx;
	return replica_own_revision(k->r, key) < k->revision;
}

struct below {
	int64_t applied;
	struct strlist keys;
};

static int note_below(const char *key, void *value, void *ctx)
{
	struct below *b = ctx;
	return *(int64_t *)value <= b->applied ? strlist_add(&b->keys, key) : 0;
}

/*
 * This host's writes at or below the revision applied can hold back no
 * revision still to come: forgotten, or the map would grow by every
 * version this host ever wrote. Swept when it has grown. Lock held.
 */
static void forget_own_below(struct replica *r)
{
	if (hashmap_count(r->own) < 1024)
		return;
	struct below b = { r->applied, { 0 } };
	if (!hashmap_foreach(r->own, note_below, &b))
		for (size_t i = 0; i < b.keys.count; i++)
			free(hashmap_remove(r->own, b.keys.items[i]));
	strlist_free(&b.keys);
}

int replica_apply_batch(struct replica *r, const struct store_op *ops, size_t n, int64_t revision)
{
	struct keeping keeping = { r, revision };
	char text[32];
	int rc = 0;
	snprintf(text, sizeof(text), "%lld", (long long)revision);
	struct store_op local = { .key = REPLICA_KEY_APPLIED, .val = (const uint8_t *)text,
				  .len = strlen(text) };
	/* A revision that brings nothing this replica lacks (this host's own
	 * writes) moves the revision in memory only: after a restart the
	 * watch delivers those writes again, and they are the bytes held. */
	if (n) {
		r->applier = pthread_self();
		atomic_store(&r->applying, true);
		rc = r->apply(r->apply_ctx, ops, n, &local, keep_unless_own_newer, &keeping);
		atomic_store(&r->applying, false);
	}
	if (rc == -EBADMSG) {
		/* Not applied, and never will be: nothing built on it. The
		 * replica goes on past it and says so. */
		log_error("etcd replica: revision %lld refused (the line above says which record "
			  "and why: written into etcd without the key, or an older copy put back)",
			  (long long)revision);
		rc = 0;
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&r->lock);
	if (revision > r->applied)
		r->applied = revision;
	pthread_cond_broadcast(&r->applied_cond);
	forget_own_below(r);
	pthread_mutex_unlock(&r->lock);
	return 0;
}

/* The tdb key of an etcd key under the prefix, or NULL (not ours). */
static const char *local_key(const struct replica *r, const struct etcd_kv *kv)
{
	const char *k = (const char *)kv->key;
	if (kv->key_len <= r->prefix_len || memcmp(k, r->prefix, r->prefix_len) != 0 ||
	    strlen(k) != kv->key_len)
		return NULL;
	return k + r->prefix_len;
}

/* One revision's events, in the order etcd gave them. */
static int apply_revision(struct replica *r, const struct etcd_event *ev, size_t n,
			  int64_t revision)
{
	struct store_op *ops;
	size_t m = 0;
	pthread_mutex_lock(&r->lock);
	int64_t applied = r->applied;
	pthread_mutex_unlock(&r->lock);
	if (revision == applied)
		return 0; /* a repeat (3.4.23 can send one) */
	if (revision < applied) {
		/* Older than one applied: a watch going back in time (etcd
		 * 3.4.23 has such bugs). Never applied over the newer one; but
		 * what that older revision created is missing here, so the
		 * whole store is read again. */
		log_warn("etcd replica: revision %lld arrived after %lld (the watch went back in "
			 "time): reading the whole store again", (long long)revision,
			 (long long)applied);
		return -ESTALE;
	}
	if (!(ops = calloc(n, sizeof(*ops))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *key = local_key(r, &ev[i].kv);
		if (!key || !replica_key_shared(key)) {
			log_warn("etcd replica: revision %lld: key %s is not a store record; ignored",
				 (long long)revision, key ? key : "(outside the prefix)");
			continue;
		}
		ops[m].key = key;
		if (ev[i].type == ETCD_EVENT_PUT) {
			ops[m].val = ev[i].kv.value ? ev[i].kv.value : (const uint8_t *)"";
			ops[m].len = ev[i].kv.value_len;
			replica_check_unresolved(r, key, ops[m].val, ops[m].len, revision);
		}
		m++;
	}
	int rc = replica_apply_batch(r, ops, m, revision);
	free(ops);
	return rc;
}

struct watching {
	struct replica *r;
	int64_t until; /* catch-up: stop once applied reaches it; 0: never */
	bool heard;
};

static int on_message(void *ctx, const struct etcd_watch_msg *m)
{
	struct watching *w = ctx;
	struct replica *r = w->r;
	int rc = 0;
	if (m->kind == ETCD_WATCH_CANCELED || m->kind == ETCD_WATCH_ERROR)
		return 0; /* the watch ends with its error */
	w->heard = true;
	replica_heard(r, REPLICA_SYNCED);
	if (m->kind == ETCD_WATCH_EVENTS) {
		for (size_t i = 0; !rc && i < m->n_events;) {
			int64_t rev = m->events[i].kv.mod_revision;
			size_t j = i;
			while (j < m->n_events && m->events[j].kv.mod_revision == rev)
				j++;
			rc = apply_revision(r, m->events + i, j - i, rev);
			i = j;
		}
	}
	if (rc)
		return rc;
	pthread_mutex_lock(&r->lock);
	bool done = w->until && r->applied >= w->until;
	pthread_mutex_unlock(&r->lock);
	return done ? 1 : 0;
}

int replica_on_watch_message(struct replica *r, const struct etcd_watch_msg *m)
{
	struct watching w = { r, 0, false };
	return on_message(&w, m);
}

static int watch_from_applied(struct replica *r, int64_t until, bool *heard)
{
	unsigned char end[1024];
	size_t end_len = etcd_prefix_end(r->prefix, r->prefix_len, end);
	struct watching w = { r, until, false };
	pthread_mutex_lock(&r->lock);
	int64_t from = r->applied + 1;
	pthread_mutex_unlock(&r->lock);
	struct etcd_watch_req req = { .key = r->prefix, .key_len = r->prefix_len,
				      .range_end = end, .range_end_len = end_len,
				      .start_revision = from, .progress_notify = true };
	int rc = etcd_watch(r->etcd, &req, on_message, &w, &r->stop);
	*heard = w.heard;
	return rc;
}

/* ---- reading the whole prefix ---- */

struct snapshot {
	struct store_op *ops;
	size_t n, cap;
	struct hashmap *in_etcd; /* tdb keys etcd holds */
	struct replica *r;
	int rc;
};

static void snapshot_free(struct snapshot *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free((void *)s->ops[i].key);
		free((void *)s->ops[i].val);
	}
	free(s->ops);
	hashmap_free(s->in_etcd);
	memset(s, 0, sizeof(*s));
}

static int snapshot_add(struct snapshot *s, const char *key, const uint8_t *val, size_t len)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 256;
		struct store_op *grown = realloc(s->ops, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		s->ops = grown;
		s->cap = cap;
	}
	char *k = strdup(key);
	uint8_t *v = NULL;
	if (!k || (val && !(v = malloc(len ? len : 1)))) {
		free(k);
		return -ENOMEM;
	}
	if (val)
		memcpy(v, val, len);
	s->ops[s->n++] = (struct store_op){ .key = k, .val = v, .len = len };
	return 0;
}

/* A record etcd holds: taken unless this replica holds the same bytes. */
static int take_kv(struct snapshot *s, const struct etcd_kv *kv)
{
	const char *key = local_key(s->r, kv);
	if (!key || !replica_key_shared(key))
		return 0;
	if (hashmap_put(s->in_etcd, key, (void *)1, NULL))
		return -ENOMEM;
	uint8_t *held = NULL;
	size_t held_len = 0;
	int rc = store_get(s->r->st, key, &held, &held_len);
	bool same = !rc && held_len == kv->value_len && memcmp(held, kv->value, held_len) == 0;
	free(held);
	if (rc && rc != -ENOENT)
		return rc;
	return same ? 0 : snapshot_add(s, key, kv->value ? kv->value : (const uint8_t *)"",
				       kv->value_len);
}

/* A shared record this replica holds that etcd no longer has: deleted. */
static int take_gone(const char *key, void *ctx)
{
	struct snapshot *s = ctx;
	if (!key[0] || !replica_key_shared(key) || hashmap_get(s->in_etcd, key))
		return 0;
	return snapshot_add(s, key, NULL, 0);
}

/* The prefix at one revision, page by page; -ERANGE when it was compacted meanwhile. */
static int read_prefix(struct replica *r, struct snapshot *s, int64_t *revision)
{
	unsigned char end[1024];
	size_t end_len = etcd_prefix_end(r->prefix, r->prefix_len, end);
	char *cursor = strdup(r->prefix);
	size_t cursor_len = r->prefix_len;
	int rc = cursor ? 0 : -ENOMEM;
	*revision = 0;
	while (!rc) {
		struct etcd_range_req q = { .key = cursor, .key_len = cursor_len,
					    .range_end = end, .range_end_len = end_len,
					    .revision = *revision, .limit = PAGE_KEYS };
		struct etcd_range_resp a = { 0 };
		if ((rc = etcd_range(r->etcd, &q, &a)))
			break;
		if (!*revision)
			*revision = a.header.revision; /* every later page pinned to it */
		for (size_t i = 0; !rc && i < a.n_kvs; i++)
			rc = take_kv(s, &a.kvs[i]);
		bool more = a.more && a.n_kvs;
		if (!rc && more) {
			/* next page: the last key with a NUL after it */
			const struct etcd_kv *last = &a.kvs[a.n_kvs - 1];
			char *next = malloc(last->key_len + 1);
			if (!next) {
				rc = -ENOMEM;
			} else {
				memcpy(next, last->key, last->key_len);
				next[last->key_len] = '\0';
				free(cursor);
				cursor = next;
				cursor_len = last->key_len + 1;
			}
		}
		etcd_range_resp_free(&a);
		if (!more)
			break;
	}
	free(cursor);
	return rc;
}

static int resync(struct replica *r)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		struct snapshot s = { .r = r };
		int64_t revision;
		int rc = (s.in_etcd = hashmap_new(1024)) ? 0 : -ENOMEM;
		if (!rc)
			rc = read_prefix(r, &s, &revision);
		if (!rc)
			rc = store_foreach_key(r->st, take_gone, &s);
		if (!rc) {
			log_info("etcd replica: read the whole store at revision %lld: %zu records to "
				 "change here", (long long)revision, s.n);
			rc = replica_apply_batch(r, s.ops, s.n, revision);
		}
		snapshot_free(&s);
		if (rc != ETCD_E_COMPACTED)
			return rc;
	}
	return ETCD_E_COMPACTED;
}

int replica_catch_up(struct replica *r, replica_apply_fn apply, void *ctx)
{
	r->apply = apply;
	r->apply_ctx = ctx;
	pthread_mutex_lock(&r->lock);
	int64_t applied = r->applied;
	pthread_mutex_unlock(&r->lock);
	/* A replica that holds a revision serves it at once: reads may lag
	 * (the watch catches up in the background), and a write planned on a
	 * record that changed since fails its compare and is planned again. */
	if (applied)
		return 0;
	replica_heard(r, REPLICA_RESYNCING);
	int rc = resync(r);
	if (!rc)
		replica_heard(r, REPLICA_SYNCED);
	return rc;
}

static void pause_ms(struct replica *r, long ms)
{
	for (long left = ms; left > 0 && !atomic_load(&r->stop); left -= 100) {
		struct timespec ts = { 0, (left < 100 ? left : 100) * 1000000L };
		nanosleep(&ts, NULL);
	}
}

static void *run(void *arg)
{
	struct replica *r = arg;
	long backoff = 100;
	while (!atomic_load(&r->stop)) {
		bool heard = false;
		int rc = watch_from_applied(r, 0, &heard);
		if (atomic_load(&r->stop))
			break;
		if (heard)
			backoff = 100;
		if (rc == ETCD_E_COMPACTED || rc == -ESTALE) {
			if (rc == ETCD_E_COMPACTED)
				log_warn("etcd replica: etcd compacted past revision %lld: reading "
					 "the whole store again", (long long)r->applied);
			replica_heard(r, REPLICA_RESYNCING);
			if (!(rc = resync(r))) {
				replica_heard(r, REPLICA_SYNCED);
				continue;
			}
		}
		/* No watch: is there a cluster to write to at all? Decided by
		 * one status first: a commit reading back an unknown outcome
		 * gives up when the replica is offline, and looking for the
		 * leader among members that do not answer (each a connect
		 * timeout, each call waiting behind that read-back for the
		 * client) put it off by 10 s when this host was cut off with
		 * a member that had lost its quorum. With a leader, it may
		 * have changed: commits go to it first. */
		struct etcd_status st;
		int src = etcd_status(r->etcd, &st);
		bool leader = !src && st.leader;
		replica_heard(r, leader ? REPLICA_DEGRADED : REPLICA_OFFLINE);
		if (leader)
			etcd_prefer_leader(r->etcd);
		log_info("etcd replica: the watch ended (%s); again in %ld ms", strerror(-rc), backoff);
		pause_ms(r, backoff);
		if (backoff < 2000)
			backoff *= 2;
	}
	return NULL;
}

int replica_start(struct replica *r, replica_apply_fn apply, void *ctx)
{
	r->apply = apply;
	r->apply_ctx = ctx;
	atomic_store(&r->stop, false);
	int rc = pthread_create(&r->thread, NULL, run, r);
	if (rc)
		return -rc;
	r->running = true;
	return 0;
}
