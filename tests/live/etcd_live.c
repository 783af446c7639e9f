/*
 * etcd_live: the cluster/etcd client against a real etcd, one scenario per
 * run, driven by tests/fs/test_etcd_client.py (which starts the cluster and
 * injects the faults between runs).
 *
 *   etcd_live SCENARIO ENDPOINT[,ENDPOINT...] [USER PASSWORD_FILE]
 *
 * Each scenario checks its own results and exits 0 only if all held; a
 * failed check prints "FAIL file:line: condition" and exits 1. Lines
 * starting with "result " carry figures the Python side checks too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cluster/etcd.h"
#include "crypto/crypto.h"
#include "util/log.h"

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);     \
			exit(1);                                                   \
		}                                                                  \
	} while (0)
#define CHECK_RC(expr, want)                                                       \
	do {                                                                       \
		int rc_ = (expr);                                                  \
		if (rc_ != (want)) {                                               \
			printf("FAIL %s:%d: %s = %d (%s), want %d\n", __FILE__,    \
			       __LINE__, #expr, rc_, strerror(-rc_), (want));      \
			exit(1);                                                   \
		}                                                                  \
	} while (0)

#define K(s) (s), strlen(s)

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int64_t put(struct etcd *e, const char *key, const char *value)
{
	struct etcd_put_req req = { .key = key, .key_len = strlen(key), .value = value,
				    .value_len = strlen(value) };
	struct etcd_put_resp r;
	CHECK_RC(etcd_put(e, &req, &r), 0);
	int64_t rev = r.header.revision;
	CHECK(rev > 0);
	etcd_put_resp_free(&r);
	return rev;
}

static void kv(struct etcd *e)
{
	/* put three keys under a prefix, read them, page at a pinned revision */
	int64_t r1 = put(e, "/kv/a", "v1");
	int64_t r2 = put(e, "/kv/b", "v2");
	int64_t r3 = put(e, "/kv/c", "");
	CHECK(r1 < r2 && r2 < r3);
	put(e, "/kw", "outside");

	unsigned char end[8];
	size_t end_len = etcd_prefix_end("/kv/", 4, end);
	struct etcd_range_req req = { .key = "/kv/", .key_len = 4, .range_end = end,
				      .range_end_len = end_len };
	struct etcd_range_resp r;
	CHECK_RC(etcd_range(e, &req, &r), 0);
	CHECK(r.n_kvs == 3 && r.count == 3 && !r.more);
	CHECK(strcmp((char *)r.kvs[0].key, "/kv/a") == 0);
	CHECK(r.kvs[0].value_len == 2 && memcmp(r.kvs[0].value, "v1", 2) == 0);
	CHECK(r.kvs[0].create_revision == r1 && r.kvs[0].mod_revision == r1);
	CHECK(r.kvs[0].version == 1);
	CHECK(r.kvs[2].value_len == 0); /* empty value: absent on the wire */
	int64_t pinned = r.header.revision;
	etcd_range_resp_free(&r);

	/* change the set after pinning: the pages still show the old state */
	put(e, "/kv/a", "v1-changed");
	put(e, "/kv/b2", "new");
	req.revision = pinned;
	req.limit = 2;
	CHECK_RC(etcd_range(e, &req, &r), 0);
	CHECK(r.n_kvs == 2 && r.more && r.count == 3);
	CHECK(memcmp(r.kvs[0].value, "v1", 2) == 0 && r.kvs[0].value_len == 2);
	CHECK(r.header.revision > pinned); /* the header is the current revision */
	/* next page: from the last key plus a NUL byte */
	char next[16];
	size_t nl = r.kvs[1].key_len;
	memcpy(next, r.kvs[1].key, nl);
	next[nl++] = '\0';
	etcd_range_resp_free(&r);
	req.key = next;
	req.key_len = nl;
	CHECK_RC(etcd_range(e, &req, &r), 0);
	CHECK(r.n_kvs == 1 && !r.more);
	CHECK(strcmp((char *)r.kvs[0].key, "/kv/c") == 0);
	etcd_range_resp_free(&r);

	/* a missing key: no kvs, count 0 */
	struct etcd_range_req miss = { .key = "/kv/none", .key_len = 8 };
	CHECK_RC(etcd_range(e, &miss, &r), 0);
	CHECK(r.n_kvs == 0 && r.count == 0);
	etcd_range_resp_free(&r);

	/* delete the prefix */
	struct etcd_delete_req del = { .key = "/kv/", .key_len = 4, .range_end = end,
				       .range_end_len = end_len };
	struct etcd_delete_resp d;
	CHECK_RC(etcd_delete_range(e, &del, &d), 0);
	CHECK(d.deleted == 4);
	etcd_delete_resp_free(&d);

	/* over the request limit: -EFBIG from etcd (the bound here is the same
	 * as the server's, so go through a txn of too many ops instead) */
	struct etcd_op ops[ETCD_TXN_OPS_MAX];
	char keys[ETCD_TXN_OPS_MAX][24]; /* "/big/" and an int, whatever its size */
	for (int i = 0; i < ETCD_TXN_OPS_MAX; i++) {
		snprintf(keys[i], sizeof(keys[i]), "/big/%03d", i);
		ops[i] = (struct etcd_op){ .type = ETCD_OP_PUT,
					   .u.put = { .key = keys[i], .key_len = strlen(keys[i]),
						      .value = "x", .value_len = 1 } };
	}
	struct etcd_txn_req many = { .success = ops, .n_success = ETCD_TXN_OPS_MAX };
	struct etcd_txn_resp t;
	CHECK_RC(etcd_txn(e, &many, &t), 0); /* 128 is the limit, and allowed */
	CHECK(t.succeeded && t.n_responses == ETCD_TXN_OPS_MAX);
	etcd_txn_resp_free(&t);
	/* a duplicate key in one txn is refused by etcd: -EINVAL */
	ops[1].u.put.key = keys[0];
	ops[1].u.put.key_len = strlen(keys[0]);
	CHECK_RC(etcd_txn(e, &many, &t), -EINVAL);
	/* a future revision is refused */
	struct etcd_range_req future = { .key = "/x", .key_len = 2, .revision = 1000000 };
	CHECK_RC(etcd_range(e, &future, &r), -EINVAL);

	struct etcd_status st;
	CHECK_RC(etcd_status(e, &st), 0);
	CHECK(strncmp(st.version, "3.4", 3) == 0 && st.leader != 0);
	printf("result version %s\n", st.version);
}

static void txn(struct etcd *e)
{
	/* create-if-absent: CREATE == 0 */
	struct etcd_compare absent = { .key = "/t/k", .key_len = 4, .target = ETCD_CMP_CREATE,
				       .result = ETCD_CMP_EQUAL, .number = 0 };
	struct etcd_op create = { .type = ETCD_OP_PUT,
				  .u.put = { .key = "/t/k", .key_len = 4, .value = "one",
					     .value_len = 3 } };
	struct etcd_op read = { .type = ETCD_OP_RANGE, .u.range = { .key = "/t/k", .key_len = 4 } };
	struct etcd_txn_req req = { .compare = &absent, .n_compare = 1, .success = &create,
				    .n_success = 1, .failure = &read, .n_failure = 1 };
	struct etcd_txn_resp r;
	CHECK_RC(etcd_txn(e, &req, &r), 0);
	CHECK(r.succeeded && r.n_responses == 1 && r.responses[0].type == ETCD_OP_PUT);
	int64_t created = r.header.revision;
	etcd_txn_resp_free(&r);
	/* again: the key exists, so the failure branch reads it */
	CHECK_RC(etcd_txn(e, &req, &r), 0);
	CHECK(!r.succeeded && r.n_responses == 1 && r.responses[0].type == ETCD_OP_RANGE);
	CHECK(r.responses[0].u.range.n_kvs == 1);
	CHECK(r.responses[0].u.range.kvs[0].mod_revision == created);
	etcd_txn_resp_free(&r);

	/* CAS on mod_revision: the first wins, the same again loses and gets the kv */
	struct etcd_compare cas = { .key = "/t/k", .key_len = 4, .target = ETCD_CMP_MOD,
				    .result = ETCD_CMP_EQUAL, .number = created };
	struct etcd_op update = { .type = ETCD_OP_PUT,
				  .u.put = { .key = "/t/k", .key_len = 4, .value = "two",
					     .value_len = 3 } };
	struct etcd_txn_req casreq = { .compare = &cas, .n_compare = 1, .success = &update,
				       .n_success = 1, .failure = &read, .n_failure = 1 };
	CHECK_RC(etcd_txn(e, &casreq, &r), 0);
	CHECK(r.succeeded);
	int64_t updated = r.header.revision;
	CHECK(updated > created);
	etcd_txn_resp_free(&r);
	CHECK_RC(etcd_txn(e, &casreq, &r), 0);
	CHECK(!r.succeeded);
	const struct etcd_kv *cur = &r.responses[0].u.range.kvs[0];
	CHECK(cur->mod_revision == updated && cur->version == 2 && cur->create_revision == created);
	CHECK(cur->value_len == 3 && memcmp(cur->value, "two", 3) == 0);
	etcd_txn_resp_free(&r);

	/* value and version compares */
	struct etcd_compare both[] = {
		{ .key = "/t/k", .key_len = 4, .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL,
		  .value = "two", .value_len = 3 },
		{ .key = "/t/k", .key_len = 4, .target = ETCD_CMP_VERSION,
		  .result = ETCD_CMP_GREATER, .number = 1 },
		{ .key = "/t/k", .key_len = 4, .target = ETCD_CMP_MOD, .result = ETCD_CMP_LESS,
		  .number = updated + 1 },
		{ .key = "/t/k", .key_len = 4, .target = ETCD_CMP_CREATE,
		  .result = ETCD_CMP_NOT_EQUAL, .number = 0 },
	};
	struct etcd_op del = { .type = ETCD_OP_DELETE, .u.del = { .key = "/t/k", .key_len = 4 } };
	struct etcd_txn_req cmp = { .compare = both, .n_compare = 4, .success = &del,
				    .n_success = 1 };
	CHECK_RC(etcd_txn(e, &cmp, &r), 0);
	CHECK(r.succeeded && r.responses[0].type == ETCD_OP_DELETE);
	CHECK(r.responses[0].u.del.deleted == 1);
	etcd_txn_resp_free(&r);
	/* deleted: the same compares fail, the empty failure branch answers nothing */
	CHECK_RC(etcd_txn(e, &cmp, &r), 0);
	CHECK(!r.succeeded && r.n_responses == 0);
	etcd_txn_resp_free(&r);
}

struct seen {
	int created;
	int64_t created_rev;
	int n_events;
	enum etcd_event_type types[8];
	int64_t revs[8];
	char keys[8][16];
	int64_t compact_revision;
	int canceled;
	int progress;
	int want_events;
};

static int on_msg(void *ctx, const struct etcd_watch_msg *m)
{
	struct seen *s = ctx;
	switch (m->kind) {
	case ETCD_WATCH_CREATED:
		s->created++;
		s->created_rev = m->header.revision;
		break;
	case ETCD_WATCH_EVENTS:
		for (size_t i = 0; i < m->n_events && s->n_events < 8; i++) {
			s->types[s->n_events] = m->events[i].type;
			s->revs[s->n_events] = m->events[i].kv.mod_revision;
			snprintf(s->keys[s->n_events], sizeof(s->keys[0]), "%s",
				 (char *)m->events[i].kv.key);
			s->n_events++;
		}
		if (s->n_events >= s->want_events)
			return 1;
		break;
	case ETCD_WATCH_CANCELED:
		s->canceled++;
		s->compact_revision = m->compact_revision;
		break;
	case ETCD_WATCH_PROGRESS:
		s->progress++;
		if (s->want_events == 0 && s->progress >= 1)
			return 1;
		break;
	case ETCD_WATCH_ERROR:
		break;
	}
	return 0;
}

static void watch(struct etcd *e)
{
	int64_t r1 = put(e, "/w/a", "1");
	int64_t r2 = put(e, "/w/b", "2");
	struct etcd_delete_req dreq = { .key = "/w/a", .key_len = 4 };
	struct etcd_delete_resp d;
	CHECK_RC(etcd_delete_range(e, &dreq, &d), 0);
	int64_t r3 = d.header.revision;
	etcd_delete_resp_free(&d);
	put(e, "/x/outside", "no");

	unsigned char end[4];
	size_t end_len = etcd_prefix_end("/w/", 3, end);
	struct etcd_watch_req req = { .key = "/w/", .key_len = 3, .range_end = end,
				      .range_end_len = end_len, .start_revision = r1,
				      .progress_notify = true };
	struct seen s = { .want_events = 3 };
	CHECK_RC(etcd_watch(e, &req, on_msg, &s, NULL), 0);
	CHECK(s.created == 1 && s.n_events == 3);
	CHECK(s.types[0] == ETCD_EVENT_PUT && s.revs[0] == r1 && !strcmp(s.keys[0], "/w/a"));
	CHECK(s.types[1] == ETCD_EVENT_PUT && s.revs[1] == r2 && !strcmp(s.keys[1], "/w/b"));
	CHECK(s.types[2] == ETCD_EVENT_DELETE && s.revs[2] == r3 && !strcmp(s.keys[2], "/w/a"));

	/* idle watch: the 1 s progress notification arrives (header only) */
	struct seen p = { .want_events = 0 };
	req.start_revision = 0;
	CHECK_RC(etcd_watch(e, &req, on_msg, &p, NULL), 0);
	CHECK(p.created == 1 && p.progress >= 1 && p.n_events == 0);

	/* compact past r2, then watch from r1: canceled with the compaction */
	struct etcd_header h;
	CHECK_RC(etcd_compact(e, r3, true, &h), 0);
	struct seen c = { .want_events = 99 };
	req.start_revision = r1;
	CHECK_RC(etcd_watch(e, &req, on_msg, &c, NULL), ETCD_E_COMPACTED);
	CHECK(c.canceled == 1 && c.compact_revision == r3 && c.n_events == 0);
	/* a read at a compacted revision: the same errno */
	struct etcd_range_req old = { .key = "/w/b", .key_len = 4, .revision = r1 };
	struct etcd_range_resp rr;
	CHECK_RC(etcd_range(e, &old, &rr), ETCD_E_COMPACTED);
	/* compacting again at an older revision */
	CHECK_RC(etcd_compact(e, r1, false, &h), ETCD_E_COMPACTED);
	/* From the compaction revision itself: still watchable (created, not
	 * canceled). The DELETE at r3 is a tombstone compaction may drop, so a
	 * put after it is the event that must arrive. */
	int64_t r4 = put(e, "/w/c", "3");
	struct seen ok = { .want_events = 1 };
	req.start_revision = r3;
	CHECK_RC(etcd_watch(e, &req, on_msg, &ok, NULL), 0);
	CHECK(ok.created == 1 && ok.canceled == 0 && ok.n_events >= 1);
	CHECK(ok.revs[0] >= r3 && ok.revs[ok.n_events - 1] <= r4);
	printf("result first_after_compaction %lld %s\n", (long long)ok.revs[0], ok.keys[0]);
}

/* The first endpoint is dead (the caller lists a closed port first). */
static void failover(struct etcd *e, const struct etcd_config *cfg)
{
	CHECK(strstr(etcd_endpoint(e), "127.0.0.1") != NULL);
	double t0 = now_s();
	int64_t rev = put(e, "/f/k", "v");
	struct etcd_range_req req = { .key = "/f/k", .key_len = 4 };
	struct etcd_range_resp r;
	CHECK_RC(etcd_range(e, &req, &r), 0);
	CHECK(r.n_kvs == 1);
	etcd_range_resp_free(&r);
	/* the client stays on the live member */
	printf("result endpoint %s\n", etcd_endpoint(e));
	/* a fresh client's watch starts at the dead endpoint too */
	struct etcd *e2;
	CHECK_RC(etcd_open(cfg, &e2), 0);
	CHECK(strcmp(etcd_endpoint(e2), cfg->endpoints[0]) == 0);
	struct seen s = { .want_events = 1 };
	struct etcd_watch_req wr = { .key = "/f/k", .key_len = 4, .start_revision = rev };
	CHECK_RC(etcd_watch(e2, &wr, on_msg, &s, NULL), 0);
	CHECK(s.n_events == 1 && s.revs[0] == rev);
	etcd_close(e2);
	printf("result seconds %.3f\n", now_s() - t0);
}

/* Every endpoint refuses the connection: definitely not applied. */
static void all_dead(struct etcd *e)
{
	struct etcd_put_req req = { .key = "/d", .key_len = 2, .value = "v", .value_len = 1 };
	struct etcd_put_resp r;
	CHECK_RC(etcd_put(e, &req, &r), ETCD_E_NOTSENT);
	struct seen s = { .want_events = 1 };
	struct etcd_watch_req wr = { .key = "/d", .key_len = 2 };
	CHECK_RC(etcd_watch(e, &wr, on_msg, &s, NULL), ETCD_E_NOTSENT);
}

/* Two of three members are stopped: a write has an unknown outcome. */
static void quorum_lost(struct etcd *e)
{
	double t0 = now_s();
	struct etcd_put_req req = { .key = "/q/k", .key_len = 4, .value = "v", .value_len = 1 };
	struct etcd_put_resp r;
	CHECK_RC(etcd_put(e, &req, &r), ETCD_E_UNKNOWN);
	printf("result put_seconds %.3f\n", now_s() - t0);
	/* a linearizable read cannot be answered either */
	t0 = now_s();
	struct etcd_range_req rq = { .key = "/q/k", .key_len = 4 };
	struct etcd_range_resp rr;
	CHECK_RC(etcd_range(e, &rq, &rr), ETCD_E_UNKNOWN);
	printf("result range_seconds %.3f\n", now_s() - t0);
	/* a watch with hasleader is refused or ended, or the watchdog ends it */
	t0 = now_s();
	struct seen s = { .want_events = 1 };
	struct etcd_watch_req wr = { .key = "/q/k", .key_len = 4 };
	CHECK_RC(etcd_watch(e, &wr, on_msg, &s, NULL), ETCD_E_UNKNOWN);
	printf("result watch_seconds %.3f\n", now_s() - t0);
}

/* Auth is on; the token TTL is short: the token expires between calls. */
static void auth(struct etcd *e, const char *ttl_s)
{
	put(e, "/sfs/a", "v");
	struct etcd_range_req req = { .key = "/sfs/a", .key_len = 6 };
	struct etcd_range_resp r;
	CHECK_RC(etcd_range(e, &req, &r), 0);
	CHECK(r.n_kvs == 1);
	etcd_range_resp_free(&r);
	/* outside the role's prefix: permission denied */
	struct etcd_put_req out = { .key = "/other", .key_len = 6, .value = "v", .value_len = 1 };
	struct etcd_put_resp pr;
	CHECK_RC(etcd_put(e, &out, &pr), -EACCES);
	/* a watch outside the prefix is denied too */
	struct seen s = { .want_events = 1 };
	struct etcd_watch_req wr = { .key = "/other", .key_len = 6 };
	CHECK_RC(etcd_watch(e, &wr, on_msg, &s, NULL), -EACCES);
	/* let the token expire: the next call re-authenticates once and works */
	struct timespec ts = { .tv_sec = atoi(ttl_s) + 2 };
	nanosleep(&ts, NULL);
	put(e, "/sfs/b", "v");
	nanosleep(&ts, NULL);
	struct seen w = { .want_events = 1 };
	struct etcd_watch_req ok = { .key = "/sfs/a", .key_len = 6, .start_revision = 1 };
	CHECK_RC(etcd_watch(e, &ok, on_msg, &w, NULL), 0);
	CHECK(w.n_events == 1);
}

/* A gateway that answers 200 with no header, and a watch with a fragment
 * (the test's fake server): a write's outcome is then unknown, a read is
 * refused as malformed, the watch refuses the fragment. */
static void headless(struct etcd *e)
{
	struct etcd_put_req p = { .key = "/h", .key_len = 2, .value = "v", .value_len = 1 };
	struct etcd_put_resp pr;
	CHECK_RC(etcd_put(e, &p, &pr), ETCD_E_UNKNOWN);
	CHECK(pr.header.revision == 0 && !pr.has_prev_kv);
	struct etcd_delete_req d = { .key = "/h", .key_len = 2 };
	struct etcd_delete_resp dr;
	CHECK_RC(etcd_delete_range(e, &d, &dr), ETCD_E_UNKNOWN);
	struct etcd_op put_op = { .type = ETCD_OP_PUT, .u.put = p };
	struct etcd_txn_req t = { .success = &put_op, .n_success = 1 };
	struct etcd_txn_resp tr;
	CHECK_RC(etcd_txn(e, &t, &tr), ETCD_E_UNKNOWN);
	struct etcd_header h;
	CHECK_RC(etcd_compact(e, 1, false, &h), ETCD_E_UNKNOWN);
	struct etcd_range_req q = { .key = "/h", .key_len = 2 };
	struct etcd_range_resp rr;
	CHECK_RC(etcd_range(e, &q, &rr), -EBADMSG);
	CHECK(rr.header.revision == 0 && rr.n_kvs == 0 && rr.kvs == NULL);
	struct etcd_status st;
	CHECK_RC(etcd_status(e, &st), -EBADMSG);
	struct seen s = { .want_events = 1 };
	struct etcd_watch_req wr = { .key = "/h", .key_len = 2 };
	CHECK_RC(etcd_watch(e, &wr, on_msg, &s, NULL), -EPROTO);
	CHECK(s.n_events == 0);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SCENARIO ENDPOINTS [USER PASSWORD_FILE [TTL]]\n", argv[0]);
		return 2;
	}
	if (crypto_init(1u << 16) != 0)
		return 2;
	log_open(LOG_TO_STDERR, NULL, true);
	const char *eps[ETCD_ENDPOINTS_MAX];
	size_t n = 0;
	char *list = strdup(argv[2]);
	for (char *tok = strtok(list, ","); tok && n < ETCD_ENDPOINTS_MAX; tok = strtok(NULL, ","))
		eps[n++] = tok;
	struct etcd_config cfg = { .endpoints = eps, .n_endpoints = n, .timeout_ms = 3000,
				   .connect_timeout_ms = 500, .watch_idle_ms = 4000 };
	if (argc >= 5) {
		cfg.user = argv[3];
		cfg.password_file = argv[4];
	}
	struct etcd *e;
	CHECK_RC(etcd_open(&cfg, &e), 0);
	const char *sc = argv[1];
	if (!strcmp(sc, "kv"))
		kv(e);
	else if (!strcmp(sc, "txn"))
		txn(e);
	else if (!strcmp(sc, "watch"))
		watch(e);
	else if (!strcmp(sc, "failover"))
		failover(e, &cfg);
	else if (!strcmp(sc, "all-dead"))
		all_dead(e);
	else if (!strcmp(sc, "quorum-lost"))
		quorum_lost(e);
	else if (!strcmp(sc, "headless"))
		headless(e);
	else if (!strcmp(sc, "auth") && argc >= 6)
		auth(e, argv[5]);
	else {
		fprintf(stderr, "unknown scenario %s\n", sc);
		return 2;
	}
	etcd_close(e);
	free(list);
	printf("ok %s\n", sc);
	return 0;
}
