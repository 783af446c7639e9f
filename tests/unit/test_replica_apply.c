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

struct fx {
	char dir[TU_PATH_MAX], a_path[TU_PATH_MAX], b_path[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
	struct sm_options opt;
	struct sm *a, *b;
	struct replica *r;
	struct tu_capture commits; /* A's commits, each one revision in etcd */
};

static int apply_to_domain(void *ctx, const struct store_op *ops, size_t count,
			   const struct store_op *local, bool (*keep)(void *kctx, const char *key),
			   void *kctx)
{
	return sm_apply(ctx, ops, count, local, keep, kctx);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct replica_config cfg = { 0 };
	if (!f)
		return -1;
	f->opt = tu_sm_options(30);
	if (tu_new_store_pair(f->dir, f->a_path, f->b_path, f->key) ||
	    tu_open_sm_hooked(f->a_path, f->key, &f->opt, tu_capture_hook, &f->commits, &f->a) ||
	    tu_open_sm(f->b_path, f->key, &f->opt, &f->b))
		goto fail;
	/* B's replica: an endpoint nobody listens on (nothing here calls etcd) */
	if (replica_config_set_endpoints(&cfg, "http://127.0.0.1:9") ||
	    !(cfg.prefix = strdup(PREFIX)) ||
	    replica_open(&cfg, sm_store(f->b), 1, &f->r) ||
	    replica_catch_up(f->r, apply_to_domain, f->b))
		goto fail;
	replica_config_free(&cfg);
	*state = f;
	return 0;
fail:
	replica_config_free(&cfg);
	if (f->dir[0])
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
	tu_capture_clear(&f->commits);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* The records of A's commit i (0-based) a replica sends to etcd. */
static size_t shared_ops(struct fx *f, size_t i, struct store_op ops[TU_CAPTURE_OPS])
{
	const struct tu_commit *c = &f->commits.commits[i];
	size_t n = 0;
	for (size_t j = 0; j < c->count; j++)
		if (replica_key_shared(c->ops[j].key))
			ops[n++] = c->ops[j];
	return n;
}

/* A's commit i as etcd sends it: one watch message, the events of one
 * revision (2, 3, ...: 1 is the store's making). */
static int feed(struct fx *f, size_t i)
{
	struct store_op ops[TU_CAPTURE_OPS];
	struct etcd_event ev[TU_CAPTURE_OPS];
	char keys[TU_CAPTURE_OPS][256];
	size_t n = shared_ops(f, i, ops);
	for (size_t j = 0; j < n; j++) {
		snprintf(keys[j], sizeof(keys[j]), "%s%s", PREFIX, ops[j].key);
		ev[j] = (struct etcd_event){
			.type = ops[j].val ? ETCD_EVENT_PUT : ETCD_EVENT_DELETE,
			.kv = { .key = (unsigned char *)keys[j], .key_len = strlen(keys[j]),
				.value = (unsigned char *)ops[j].val,
				.value_len = ops[j].val ? ops[j].len : 0,
				.mod_revision = (int64_t)i + 2 },
		};
	}
	struct etcd_watch_msg m = { .kind = ETCD_WATCH_EVENTS, .events = ev, .n_events = n };
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
	assert_true(f->commits.n >= 4);
}

static void test_in_order_repeated_and_older(void **state)
{
	struct fx *f = *state;
	write_on_a(f);
	size_t last = f->commits.n - 1; /* "v3" */
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
	assert_int_equal(tu_open_sm(f->b_path, f->key, &f->opt, &f->b), 0);
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
	size_t last = f->commits.n - 1;
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
	size_t last = f->commits.n - 1;
	for (size_t i = 0; i < last; i++)
		assert_int_equal(feed(f, i), 0);
	/* B "sent" A's last commit and got no answer: remember its records */
	struct store_op ops[TU_CAPTURE_OPS];
	replica_note_unresolved(f->r, ops, shared_ops(f, last, ops));
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
