/*
 * Unit test of the replica's apply loop (issue 12, test 7): watch messages
 * made from one host's commits, fed to another host's replica in order,
 * duplicated, reordered and older: nothing ever moves back. No etcd: the
 * messages are built here and handed to replica_on_watch_message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "cluster/etcd_wire.h"
#include "cluster/internal.h" /* the replica's memory of unresolved commits */
#include "cluster/replica.h"
#include "secrets/secrets.h"

#define PREFIX "/p/"
#define MAX_OPS 64
#define MAX_COMMITS 16

struct commit {
	struct etcd_event events[MAX_OPS];
	size_t n;
};

struct fx {
	char dir[TU_PATH_MAX], a_path[TU_PATH_MAX], b_path[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm_options opt;
	struct sm *a, *b;
	struct replica *r;
	struct commit commits[MAX_COMMITS]; /* A's commits, as etcd would send them */
	size_t ncommits;
};

static void commit_free(struct commit *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->events[i].kv.key);
		free(c->events[i].kv.value);
	}
	c->n = 0;
}

/* A's commit hook: each commit becomes one revision's events. */
static int capture(void *ctx, const struct store_op *ops, size_t count)
{
	struct fx *f = ctx;
	if (f->ncommits == MAX_COMMITS)
		return -ENOBUFS;
	struct commit *c = &f->commits[f->ncommits++];
	int64_t revision = (int64_t)f->ncommits + 1; /* 2, 3, ...: 1 is the store's making */
	for (size_t i = 0; i < count && c->n < MAX_OPS; i++) {
		if (!replica_key_shared(ops[i].key))
			continue;
		struct etcd_event *e = &c->events[c->n++];
		e->type = ops[i].val ? ETCD_EVENT_PUT : ETCD_EVENT_DELETE;
		if (asprintf((char **)&e->kv.key, "%s%s", PREFIX, ops[i].key) < 0)
			return -ENOMEM;
		e->kv.key_len = strlen((char *)e->kv.key);
		if (ops[i].val) {
			e->kv.value = malloc(ops[i].len ? ops[i].len : 1);
			memcpy(e->kv.value, ops[i].val, ops[i].len);
			e->kv.value_len = ops[i].len;
		}
		e->kv.mod_revision = revision;
	}
	return 0;
}

static int apply_to_domain(void *ctx, const struct store_op *ops, size_t count,
			   const struct store_op *local, bool (*keep)(void *kctx, const char *key),
			   void *kctx)
{
	return sm_apply(ctx, ops, count, local, keep, kctx);
}

static int open_host(struct fx *f, const char *path, bool hooked, struct sm **out)
{
	struct store *st;
	struct keyring *kr;
	struct unlock_secret u = tu_key_unlock(f->key);
	int rc = store_open(path, 0, &st);
	if (rc)
		return rc;
	if (hooked)
		store_set_commit_hook(st, capture, f);
	if ((rc = keyring_unlock(st, &u, &kr))) {
		store_close(st);
		return rc;
	}
	return sm_open(st, kr, &f->opt, out);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	uint8_t *copy = NULL;
	size_t len;
	char keyfile[TU_PATH_MAX];
	struct replica_config cfg = { 0 };
	if (!f || tu_crypto_init() || tu_mkdtemp(f->dir))
		goto fail;
	tu_path(f->a_path, f->dir, "a.tdb");
	tu_path(f->b_path, f->dir, "b.tdb");
	tu_path(keyfile, f->dir, "master.key");
	if (tu_make_key(keyfile, f->key) || tu_create_store(f->a_path, f->key) ||
	    tu_read_file(f->a_path, &copy, &len) || tu_write_file(f->b_path, copy, len))
		goto fail;
	f->opt = tu_sm_options(30);
	if (open_host(f, f->a_path, true, &f->a) || open_host(f, f->b_path, false, &f->b))
		goto fail;
	/* B's replica: an endpoint nobody listens on (nothing here calls etcd) */
	if (replica_config_set_endpoints(&cfg, "http://127.0.0.1:9") ||
	    !(cfg.prefix = strdup(PREFIX)) ||
	    replica_open(&cfg, sm_store(f->b), 1, &f->r) ||
	    replica_catch_up(f->r, apply_to_domain, f->b))
		goto fail;
	replica_config_free(&cfg);
	free(copy);
	*state = f;
	return 0;
fail:
	replica_config_free(&cfg);
	free(copy);
	if (f && f->dir[0])
		tu_rmrf(f->dir);
	free(f);
	return -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	replica_close(f->r);
	sm_close(f->a);
	sm_close(f->b);
	for (size_t i = 0; i < f->ncommits; i++)
		commit_free(&f->commits[i]);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* Commit i of A (0-based) as one watch message. */
static int feed(struct fx *f, size_t i)
{
	struct etcd_watch_msg m = { .kind = ETCD_WATCH_EVENTS,
				    .events = f->commits[i].events,
				    .n_events = f->commits[i].n };
	return replica_on_watch_message(f->r, &m);
}

static int64_t applied(struct fx *f)
{
	struct replica_status s;
	replica_status(f->r, &s);
	return s.applied_revision;
}

/* A's commits: the default key, the secret's value "v1", then "v2", "v3". */
static void write_on_a(struct fx *f)
{
	char vid[SM_VERSION_ID_MAX + 1];
	assert_int_equal(sm_create(f->a, "s", 0600, 1000, 1000), 0);
	for (int i = 1; i <= 3; i++) {
		char v[16];
		snprintf(v, sizeof(v), "v%d", i);
		assert_int_equal(tu_sm_put_str(f->a, "s", v, vid), 0);
	}
	assert_true(f->ncommits >= 4);
}

static void test_in_order_repeated_and_older(void **state)
{
	struct fx *f = *state;
	write_on_a(f);
	size_t last = f->ncommits - 1; /* "v3" */
	for (size_t i = 0; i < last; i++)
		assert_int_equal(feed(f, i), 0);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v2", 2), 1);
	int64_t at = applied(f);
	/* the same revision again: nothing; an older one: never applied, and
	 * the thread is told to read the whole store again */
	assert_int_equal(feed(f, last - 1), 0);
	assert_int_equal(feed(f, last - 2), -ESTALE);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v2", 2), 1);
	assert_int_equal(applied(f), at);
	assert_int_equal(feed(f, last), 0);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v3", 2), 1);
	assert_true(applied(f) > at);
	assert_int_equal(tu_sm_nversions(f->b, "s"), 3);
	/* what B applied it keeps across a restart, and the file is whole */
	at = applied(f);
	replica_close(f->r);
	f->r = NULL;
	sm_close(f->b);
	f->b = NULL;
	assert_int_equal(open_host(f, f->b_path, false, &f->b), 0);
	uint8_t *body = NULL;
	size_t len = 0;
	char text[32];
	assert_int_equal(sm_local_get(f->b, "sfs/replica", &body, &len), 0);
	snprintf(text, sizeof(text), "%.*s", (int)len, (char *)body);
	free(body);
	assert_int_equal(strtoll(text, NULL, 10), at);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v3", 2), 1);
}

static void test_newer_first_never_goes_back(void **state)
{
	struct fx *f = *state;
	write_on_a(f);
	size_t last = f->ncommits - 1;
	for (size_t i = 0; i + 1 < last; i++)
		assert_int_equal(feed(f, i), 0); /* up to "v1" */
	/* "v3" arrives before "v2": v2 never lands over it */
	assert_int_equal(feed(f, last), 0);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v3", 2), 1);
	assert_int_equal(feed(f, last - 1), -ESTALE);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v3", 2), 1);
}

/* A commit refused EIO (outcome unknown) that etcd applied after all is
 * recognised when its revision arrives, and then forgotten. */
static void test_unresolved_commit_recognised(void **state)
{
	struct fx *f = *state;
	write_on_a(f);
	size_t last = f->ncommits - 1;
	for (size_t i = 0; i < last; i++)
		assert_int_equal(feed(f, i), 0);
	/* B "sent" A's last commit and got no answer: remember its records */
	struct commit *c = &f->commits[last];
	struct store_op ops[MAX_OPS];
	for (size_t i = 0; i < c->n; i++)
		ops[i] = (struct store_op){ .key = (char *)c->events[i].kv.key + strlen(PREFIX),
					    .val = c->events[i].kv.value,
					    .len = c->events[i].kv.value_len };
	replica_note_unresolved(f->r, ops, c->n);
	size_t held = 0;
	for (size_t i = 0; i < 8; i++)
		held += f->r->unresolved[i].key != NULL;
	assert_int_equal(held, 1);
	/* a revision that is not it (a repeat of one applied) leaves the note */
	assert_int_equal(feed(f, last - 1), 0);
	held = 0;
	for (size_t i = 0; i < 8; i++)
		held += f->r->unresolved[i].key != NULL;
	assert_int_equal(held, 1);
	assert_int_equal(feed(f, last), 0);
	for (size_t i = 0; i < 8; i++)
		assert_null(f->r->unresolved[i].key);
	assert_int_equal(tu_sm_value_is(f->b, "s", NULL, "v3", 2), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_in_order_repeated_and_older, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_first_never_goes_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unresolved_commit_recognised, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
