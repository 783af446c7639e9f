/* Unit tests of cluster/etcd_wire: the gateway's JSON, both directions, the
 * absent-field rules, base64, and the stream's line framing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "testutil.h"
#include "cluster/etcd_wire.h"

#define S(lit) (lit), (sizeof(lit) - 1)
/* A header as etcd sends one: every answer must carry it. */
#define H "\"header\":{\"revision\":\"1\"}"

/* base64 of "a" "b" "v1": YQ== Yg== djE= */

static void test_base64(void **state)
{
	(void)state;
	static const struct { const char *plain; const char *b64; } cases[] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
		{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *enc;
		assert_int_equal(etcd_base64_encode(cases[i].plain, strlen(cases[i].plain), &enc), 0);
		assert_string_equal(enc, cases[i].b64);
		free(enc);
		unsigned char *dec;
		size_t n;
		assert_int_equal(etcd_base64_decode(cases[i].b64, strlen(cases[i].b64), &dec, &n), 0);
		assert_int_equal(n, strlen(cases[i].plain));
		assert_memory_equal(dec, cases[i].plain, n);
		assert_int_equal(dec[n], 0);
		free(dec);
	}
	/* every byte value round-trips */
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	char *enc;
	unsigned char *dec;
	size_t n;
	assert_int_equal(etcd_base64_encode(all, sizeof(all), &enc), 0);
	assert_int_equal(etcd_base64_decode(enc, strlen(enc), &dec, &n), 0);
	assert_int_equal(n, 256);
	assert_memory_equal(dec, all, 256);
	free(enc);
	free(dec);
	static const char *const bad[] = { "Zg=", "Zg", "Z===", "Zg=a", "Zm9v\n", "Zm-v",
					   "Zm_v", "=Zm9", "Zh==", "Zm9=" /* non-zero pad bits */,
					   "Zg==Zg==" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		dec = (unsigned char *)"x";
		if (etcd_base64_decode(bad[i], strlen(bad[i]), &dec, &n) != -EBADMSG)
			fail_msg("\"%s\" accepted", bad[i]);
		assert_null(dec);
	}
}

static json_object *parsed(const char *json)
{
	json_object *o = json_tokener_parse(json);
	assert_non_null(o);
	return o;
}

static const char *member(json_object *o, const char *name)
{
	json_object *v;
	if (!json_object_object_get_ex(o, name, &v))
		return NULL;
	return json_object_get_string(v);
}

static void test_range_request(void **state)
{
	(void)state;
	char *json;
	struct etcd_range_req req = { .key = "a", .key_len = 1 };
	assert_int_equal(etcd_wire_range_request(&req, &json), 0);
	assert_string_equal(json, "{\"key\":\"YQ==\"}"); /* defaults omitted */
	free(json);

	unsigned char end[8];
	size_t end_len = etcd_prefix_end("/sfs/", 5, end);
	assert_int_equal(end_len, 5);
	assert_memory_equal(end, "/sfs0", 5);
	req = (struct etcd_range_req){ .key = "/sfs/", .key_len = 5, .range_end = end,
				       .range_end_len = end_len, .revision = 12, .limit = 2,
				       .keys_only = true };
	assert_int_equal(etcd_wire_range_request(&req, &json), 0);
	json_object *o = parsed(json);
	assert_string_equal(member(o, "key"), "L3Nmcy8=");
	assert_string_equal(member(o, "range_end"), "L3NmczA=");
	assert_string_equal(member(o, "revision"), "12"); /* int64 as a string */
	assert_string_equal(member(o, "limit"), "2");
	assert_string_equal(member(o, "keys_only"), "true");
	assert_null(member(o, "serializable"));
	json_object_put(o);
	free(json);

	/* prefix ends: 0xff bytes carry; all 0xff means "no end" */
	assert_int_equal(etcd_prefix_end("a\xff\xff", 3, end), 1);
	assert_int_equal(end[0], 'b');
	assert_int_equal(etcd_prefix_end("\xff", 1, end), 0);

	req = (struct etcd_range_req){ .key = "", .key_len = 0 };
	assert_int_equal(etcd_wire_range_request(&req, &json), -EINVAL);
	req = (struct etcd_range_req){ .key = "a", .key_len = ETCD_KEY_MAX + 1 };
	assert_int_equal(etcd_wire_range_request(&req, &json), -EFBIG);
	req = (struct etcd_range_req){ .key = "a", .key_len = 1, .revision = -1 };
	assert_int_equal(etcd_wire_range_request(&req, &json), -EINVAL);
}

static void test_range_response(void **state)
{
	(void)state;
	struct etcd_range_resp r;
	/* As etcd 3.4.23 answers: int64 as strings, base64 bytes. */
	const char ok[] =
		"{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
		"\"10276657743932975437\",\"revision\":\"7\",\"raft_term\":\"2\"},"
		"\"kvs\":[{\"key\":\"YQ==\",\"create_revision\":\"2\",\"mod_revision\":\"5\","
		"\"version\":\"3\",\"value\":\"djE=\"},{\"key\":\"Yg==\",\"create_revision\":6,"
		"\"mod_revision\":6,\"version\":1,\"lease\":\"7587\"}],\"more\":true,\"count\":\"3\"}\n";
	assert_int_equal(etcd_wire_range_response(S(ok), &r), 0);
	assert_int_equal(r.header.revision, 7);
	assert_true(r.header.cluster_id == 14841639068965178418ull);
	assert_true(r.header.member_id == 10276657743932975437ull);
	assert_int_equal(r.header.raft_term, 2);
	assert_int_equal(r.n_kvs, 2);
	assert_int_equal(r.kvs[0].key_len, 1);
	assert_string_equal((char *)r.kvs[0].key, "a");
	assert_int_equal(r.kvs[0].value_len, 2);
	assert_memory_equal(r.kvs[0].value, "v1", 2);
	assert_int_equal(r.kvs[0].create_revision, 2);
	assert_int_equal(r.kvs[0].mod_revision, 5);
	assert_int_equal(r.kvs[0].version, 3);
	assert_int_equal(r.kvs[0].lease, 0);
	/* numbers as JSON numbers are accepted; a value "" is omitted by etcd */
	assert_int_equal(r.kvs[1].version, 1);
	assert_int_equal(r.kvs[1].lease, 7587);
	assert_null(r.kvs[1].value);
	assert_int_equal(r.kvs[1].value_len, 0);
	assert_true(r.more);
	assert_int_equal(r.count, 3);
	etcd_range_resp_free(&r);
	assert_null(r.kvs);

	/* Nothing matched: no kvs, no count, no more. */
	const char none[] = "{\"header\":{\"revision\":\"9\"}}";
	assert_int_equal(etcd_wire_range_response(S(none), &r), 0);
	assert_int_equal(r.header.revision, 9);
	assert_int_equal(r.n_kvs, 0);
	assert_null(r.kvs);
	assert_false(r.more);
	assert_int_equal(r.count, 0);
	etcd_range_resp_free(&r);
}

/* An answer without its header, or whose header has no revision, is refused:
 * never taken for an answer at revision 0. */
static void test_header_required(void **state)
{
	(void)state;
	static const char *const headless[] = {
		"{}", "{\"header\":{}}", "{\"header\":null}", "{\"header\":{\"revision\":\"0\"}}",
		"{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"3\"}],\"count\":\"1\"}",
	};
	for (size_t i = 0; i < sizeof(headless) / sizeof(headless[0]); i++) {
		const char *j = headless[i];
		size_t n = strlen(j);
		struct etcd_range_resp rr;
		struct etcd_put_resp pr;
		struct etcd_delete_resp dr;
		struct etcd_txn_resp tr;
		struct etcd_header h;
		struct etcd_status st;
		if (etcd_wire_range_response(j, n, &rr) != -EBADMSG ||
		    etcd_wire_put_response(j, n, &pr) != -EBADMSG ||
		    etcd_wire_delete_response(j, n, &dr) != -EBADMSG ||
		    etcd_wire_txn_response(j, n, &tr) != -EBADMSG ||
		    etcd_wire_header_response(j, n, &h) != -EBADMSG ||
		    etcd_wire_status_response(j, n, &st) != -EBADMSG)
			fail_msg("accepted without a header: %s", j);
		assert_null(rr.kvs);
		assert_int_equal(rr.header.revision, 0);
		assert_int_equal(tr.n_responses, 0);
	}
	/* inside a txn too */
	struct etcd_txn_resp tr;
	assert_int_equal(etcd_wire_txn_response(S("{" H ",\"responses\":[{\"response_put\":{}}]}"),
					       &tr),
			 -EBADMSG);
	assert_null(tr.responses);
	/* a watch message's result: its header may lack a revision (a cancel
	 * for compaction has none), but not be absent */
	struct etcd_watch_msg m;
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"created\":true}}"), &m), -EBADMSG);
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"header\":{\"cluster_id\":\"1\"},"
						"\"canceled\":true,\"compact_revision\":\"2\"}}"),
					     &m),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_CANCELED);
	assert_int_equal(m.compact_revision, 2);
	etcd_watch_msg_free(&m);
}

static void test_malformed(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", " ", "[]", "\"x\"", "null", "{", "{}x", "{}{}", "{" H ",\"kvs\":{}}",
		"{" H ",\"kvs\":[1]}", "{" H ",\"kvs\":[{\"key\":\"YQ\"}]}",
		"{" H ",\"kvs\":[{\"key\":7}]}",
		"{\"header\":{\"revision\":\"x\"}}", "{\"header\":{\"revision\":\"1.5\"}}",
		"{\"header\":{\"revision\":\"-1\"}}", "{\"header\":{\"revision\":\" 1\"}}",
		"{\"header\":{\"revision\":\"99999999999999999999\"}}",
		"{\"header\":{\"revision\":1e3}}", "{\"header\":{\"revision\":true}}",
		"{\"header\":{\"revision\":\"1\",\"member_id\":\"-1\"}}", "{\"header\":[]}",
		"{" H ",\"more\":\"true\"}", "{" H ",\"count\":\"-4\"}",
		"{" H ",\"kvs\":[{\"key\":\"YQ==\",\"version\":\"-1\"}]}",
		"{\"header\":{\"revision\":\"1\"}}\n{}",
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct etcd_range_resp r;
		int rc = etcd_wire_range_response(bad[i], strlen(bad[i]), &r);
		if (rc != -EBADMSG)
			fail_msg("%s: %d, expected -EBADMSG", bad[i], rc);
		assert_null(r.kvs);
		assert_int_equal(r.n_kvs, 0);
	}
	/* a NUL inside the message */
	struct etcd_range_resp r;
	assert_int_equal(etcd_wire_range_response("{\"more\":true}\0", 15, &r), -EBADMSG);
	assert_int_equal(etcd_wire_range_response("{\0}", 3, &r), -EBADMSG);
	/* depth beyond the bound */
	char deep[2 * ETCD_WIRE_DEPTH + 16];
	size_t n = 0;
	deep[n++] = '{';
	deep[n++] = '"';
	deep[n++] = 'x';
	deep[n++] = '"';
	deep[n++] = ':';
	for (int i = 0; i < ETCD_WIRE_DEPTH; i++)
		deep[n++] = '[';
	for (int i = 0; i < ETCD_WIRE_DEPTH; i++)
		deep[n++] = ']';
	deep[n++] = '}';
	assert_int_equal(etcd_wire_range_response(deep, n, &r), -EBADMSG);
	/* over the size bound: refused before parsing */
	assert_int_equal(etcd_wire_range_response("{}", ETCD_WIRE_MSG_MAX + 1, &r), -EFBIG);
	/* a key longer than the bound */
	size_t big = ETCD_KEY_MAX + 3;
	char *msg = malloc(big / 3 * 4 + 64);
	char *keyb64;
	char *raw = calloc(1, big);
	assert_non_null(msg);
	assert_non_null(raw);
	assert_int_equal(etcd_base64_encode(raw, big, &keyb64), 0);
	snprintf(msg, big / 3 * 4 + 64, "{" H ",\"kvs\":[{\"key\":\"%s\"}]}", keyb64);
	assert_int_equal(etcd_wire_range_response(msg, strlen(msg), &r), -EBADMSG);
	free(msg);
	free(keyb64);
	free(raw);
}

static void test_put_delete(void **state)
{
	(void)state;
	char *json;
	struct etcd_put_req put = { .key = "a", .key_len = 1, .value = "v\0z", .value_len = 3 };
	assert_int_equal(etcd_wire_put_request(&put, &json), 0);
	assert_string_equal(json, "{\"key\":\"YQ==\",\"value\":\"dgB6\"}");
	free(json);
	put.value = NULL;
	put.value_len = 0;
	put.prev_kv = true;
	assert_int_equal(etcd_wire_put_request(&put, &json), 0);
	assert_string_equal(json, "{\"key\":\"YQ==\",\"value\":\"\",\"prev_kv\":true}");
	free(json);
	put.value_len = ETCD_VALUE_MAX + 1;
	put.value = "x";
	assert_int_equal(etcd_wire_put_request(&put, &json), -EFBIG);

	struct etcd_put_resp pr;
	assert_int_equal(etcd_wire_put_response(S("{\"header\":{\"revision\":\"4\"}}"), &pr), 0);
	assert_int_equal(pr.header.revision, 4);
	assert_false(pr.has_prev_kv);
	etcd_put_resp_free(&pr);
	assert_int_equal(etcd_wire_put_response(
				 S("{\"header\":{\"revision\":\"5\"},\"prev_kv\":{\"key\":\"YQ==\","
				   "\"create_revision\":\"4\",\"mod_revision\":\"4\",\"version\":\"1\","
				   "\"value\":\"djE=\"}}"),
				 &pr),
			 0);
	assert_true(pr.has_prev_kv);
	assert_memory_equal(pr.prev_kv.value, "v1", 2);
	etcd_put_resp_free(&pr);

	struct etcd_delete_req del = { .key = "a", .key_len = 1, .range_end = "b",
				       .range_end_len = 1 };
	assert_int_equal(etcd_wire_delete_request(&del, &json), 0);
	assert_string_equal(json, "{\"key\":\"YQ==\",\"range_end\":\"Yg==\"}");
	free(json);
	struct etcd_delete_resp dr;
	assert_int_equal(etcd_wire_delete_response(S("{\"header\":{\"revision\":\"6\"}}"), &dr), 0);
	assert_int_equal(dr.deleted, 0); /* absent = 0 */
	etcd_delete_resp_free(&dr);
	assert_int_equal(etcd_wire_delete_response(
				 S("{\"header\":{\"revision\":\"6\"},\"deleted\":\"2\"}"), &dr),
			 0);
	assert_int_equal(dr.deleted, 2);
	etcd_delete_resp_free(&dr);

	assert_int_equal(etcd_wire_compaction_request(8, true, &json), 0);
	assert_string_equal(json, "{\"revision\":\"8\",\"physical\":true}");
	free(json);
	assert_int_equal(etcd_wire_compaction_request(0, false, &json), -EINVAL);
}

static void test_txn_request(void **state)
{
	(void)state;
	static const char *const targets[] = { "VERSION", "CREATE", "MOD", "VALUE" };
	static const char *const fields[] = { "version", "create_revision", "mod_revision",
					      "value" };
	static const char *const results[] = { "EQUAL", "NOT_EQUAL", "GREATER", "LESS" };
	for (int t = 0; t <= ETCD_CMP_VALUE; t++)
		for (int r = 0; r <= ETCD_CMP_LESS; r++) {
			struct etcd_compare c = { .key = "k", .key_len = 1, .target = t,
						  .result = r, .number = 0, .value = "v1",
						  .value_len = 2 };
			struct etcd_txn_req req = { .compare = &c, .n_compare = 1 };
			char *json;
			assert_int_equal(etcd_wire_txn_request(&req, &json), 0);
			json_object *o = parsed(json), *arr, *c0;
			assert_true(json_object_object_get_ex(o, "compare", &arr));
			c0 = json_object_array_get_idx(arr, 0);
			assert_string_equal(member(c0, "key"), "aw==");
			assert_string_equal(member(c0, "target"), targets[t]);
			assert_string_equal(member(c0, "result"), results[r]);
			/* the compared field is sent even at 0 ("create if absent") */
			assert_string_equal(member(c0, fields[t]), t == ETCD_CMP_VALUE ? "djE=" : "0");
			json_object_put(o);
			free(json);
		}
	struct etcd_compare cas = { .key = "k", .key_len = 1, .target = ETCD_CMP_MOD,
				    .result = ETCD_CMP_EQUAL, .number = 3 };
	struct etcd_op ops[] = {
		{ .type = ETCD_OP_PUT, .u.put = { .key = "k", .key_len = 1, .value = "x",
						  .value_len = 1 } },
		{ .type = ETCD_OP_DELETE, .u.del = { .key = "j", .key_len = 1 } },
	};
	struct etcd_op fail_op = { .type = ETCD_OP_RANGE, .u.range = { .key = "k", .key_len = 1 } };
	struct etcd_txn_req req = { .compare = &cas, .n_compare = 1, .success = ops,
				    .n_success = 2, .failure = &fail_op, .n_failure = 1 };
	char *json;
	assert_int_equal(etcd_wire_txn_request(&req, &json), 0);
	assert_string_equal(
		json,
		"{\"compare\":[{\"key\":\"aw==\",\"target\":\"MOD\",\"result\":\"EQUAL\","
		"\"mod_revision\":\"3\"}],\"success\":[{\"request_put\":{\"key\":\"aw==\","
		"\"value\":\"eA==\"}},{\"request_delete_range\":{\"key\":\"ag==\"}}],"
		"\"failure\":[{\"request_range\":{\"key\":\"aw==\"}}]}");
	free(json);
	/* a bad op inside fails the whole request */
	ops[1].u.del.key_len = 0;
	assert_int_equal(etcd_wire_txn_request(&req, &json), -EINVAL);
	req.n_success = ETCD_TXN_OPS_MAX + 1;
	assert_int_equal(etcd_wire_txn_request(&req, &json), -EFBIG);
	struct etcd_txn_req empty = { 0 };
	assert_int_equal(etcd_wire_txn_request(&empty, &json), 0);
	assert_string_equal(json, "{}");
	free(json);
}

static void test_txn_response(void **state)
{
	(void)state;
	struct etcd_txn_resp r;
	/* The CAS lost: no "succeeded"; the failure branch's range answers. */
	const char lost[] =
		"{\"header\":{\"revision\":\"4\"},\"responses\":[{\"response_range\":{\"header\":"
		"{\"revision\":\"4\"},\"kvs\":[{\"key\":\"aw==\",\"create_revision\":\"2\","
		"\"mod_revision\":\"4\",\"version\":\"2\",\"value\":\"djI=\"}],\"count\":\"1\"}}]}";
	assert_int_equal(etcd_wire_txn_response(S(lost), &r), 0);
	assert_false(r.succeeded);
	assert_int_equal(r.header.revision, 4);
	assert_int_equal(r.n_responses, 1);
	assert_int_equal(r.responses[0].type, ETCD_OP_RANGE);
	assert_int_equal(r.responses[0].u.range.n_kvs, 1);
	assert_int_equal(r.responses[0].u.range.kvs[0].mod_revision, 4);
	assert_memory_equal(r.responses[0].u.range.kvs[0].value, "v2", 2);
	etcd_txn_resp_free(&r);

	const char won[] =
		"{\"header\":{\"revision\":\"5\"},\"succeeded\":true,\"responses\":[{\"response_put\":"
		"{\"header\":{\"revision\":\"5\"}}},{\"response_delete_range\":{\"header\":{},"
		"\"deleted\":\"1\"}}]}";
	assert_int_equal(etcd_wire_txn_response(S(won), &r), 0);
	assert_true(r.succeeded);
	assert_int_equal(r.n_responses, 2);
	assert_int_equal(r.responses[0].type, ETCD_OP_PUT);
	assert_int_equal(r.responses[1].type, ETCD_OP_DELETE);
	assert_int_equal(r.responses[1].u.del.deleted, 1);
	etcd_txn_resp_free(&r);

	/* A failed txn with an empty failure branch: nothing but the header. */
	assert_int_equal(etcd_wire_txn_response(S("{\"header\":{\"revision\":\"5\"}}"), &r), 0);
	assert_false(r.succeeded);
	assert_int_equal(r.n_responses, 0);
	etcd_txn_resp_free(&r);

	static const char *const bad[] = {
		"{" H ",\"responses\":[{}]}",
		"{" H ",\"responses\":[{\"response_put\":{" H "},\"response_range\":{" H "}}]}",
		"{" H ",\"responses\":[{\"response_put\":{" H "}},{\"response_range\":{" H
		",\"kvs\":[{\"key\":\"!\"}]}}]}",
		"{" H ",\"succeeded\":1}",
		"{" H ",\"responses\":{}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (etcd_wire_txn_response(bad[i], strlen(bad[i]), &r) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
}

static void test_watch_request(void **state)
{
	(void)state;
	char *json;
	struct etcd_watch_req req = { .key = "/p/", .key_len = 3, .range_end = "/p0",
				      .range_end_len = 3, .start_revision = 2,
				      .progress_notify = true };
	assert_int_equal(etcd_wire_watch_request(&req, &json), 0);
	assert_string_equal(json, "{\"create_request\":{\"key\":\"L3Av\",\"range_end\":\"L3Aw\","
				  "\"start_revision\":\"2\",\"progress_notify\":true}}");
	free(json);
	req = (struct etcd_watch_req){ .key = "k", .key_len = 1, .prev_kv = true };
	assert_int_equal(etcd_wire_watch_request(&req, &json), 0);
	assert_string_equal(json, "{\"create_request\":{\"key\":\"aw==\",\"prev_kv\":true}}");
	free(json);
	req.key_len = 0;
	assert_int_equal(etcd_wire_watch_request(&req, &json), -EINVAL);
}

static void test_watch_messages(void **state)
{
	(void)state;
	struct etcd_watch_msg m;
	/* watch id 0 has no watch_id; created with the current revision */
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"header\":{\"revision\":\"3\"},"
						"\"created\":true}}"),
					     &m),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_CREATED);
	assert_int_equal(m.watch_id, 0);
	assert_int_equal(m.header.revision, 3);
	etcd_watch_msg_free(&m);

	/* A PUT has no "type"; a DELETE's kv has no version and no value. */
	const char events[] =
		"{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":{\"key\":\"YQ==\","
		"\"create_revision\":\"4\",\"mod_revision\":\"5\",\"version\":\"2\",\"value\":"
		"\"djI=\"},\"prev_kv\":{\"key\":\"YQ==\",\"create_revision\":\"4\",\"mod_revision\":"
		"\"4\",\"version\":\"1\",\"value\":\"djE=\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":"
		"\"Yg==\",\"mod_revision\":\"5\"}}]}}";
	assert_int_equal(etcd_wire_watch_msg(S(events), &m), 0);
	assert_int_equal(m.kind, ETCD_WATCH_EVENTS);
	assert_int_equal(m.n_events, 2);
	assert_int_equal(m.events[0].type, ETCD_EVENT_PUT);
	assert_int_equal(m.events[0].kv.version, 2);
	assert_memory_equal(m.events[0].kv.value, "v2", 2);
	assert_true(m.events[0].has_prev_kv);
	assert_memory_equal(m.events[0].prev_kv.value, "v1", 2);
	assert_int_equal(m.events[1].type, ETCD_EVENT_DELETE);
	assert_string_equal((char *)m.events[1].kv.key, "b");
	assert_int_equal(m.events[1].kv.mod_revision, 5);
	assert_int_equal(m.events[1].kv.version, 0);
	assert_null(m.events[1].kv.value);
	assert_false(m.events[1].has_prev_kv);
	etcd_watch_msg_free(&m);

	/* Start before the compaction: canceled with the oldest revision kept. */
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"header\":{\"revision\":\"9\"},"
						"\"canceled\":true,\"compact_revision\":\"5\"}}"),
					     &m),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_CANCELED);
	assert_int_equal(m.compact_revision, 5);
	etcd_watch_msg_free(&m);
	/* Denied: created and canceled at once, with a reason. */
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"header\":{},\"watch_id\":\"1\","
						"\"created\":true,\"canceled\":true,\"cancel_reason\":"
						"\"rpc error: code = PermissionDenied\"}}"),
					     &m),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_CANCELED);
	assert_true(m.created);
	assert_int_equal(m.watch_id, 1);
	assert_string_equal(m.cancel_reason, "rpc error: code = PermissionDenied");
	etcd_watch_msg_free(&m);
	/* Progress: the header only. */
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"header\":{\"revision\":\"9\"}}}"),
					     &m),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_PROGRESS);
	assert_int_equal(m.header.revision, 9);
	etcd_watch_msg_free(&m);
	/* The stream's error object */
	assert_int_equal(etcd_wire_watch_msg(S("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
						"\"message\":\"no leader\",\"http_status\":"
						"\"Service Unavailable\"}}"),
					     &m),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_ERROR);
	assert_int_equal(m.grpc_code, 14);
	assert_int_equal(m.http_code, 503);
	assert_string_equal(m.message, "no leader");
	etcd_watch_msg_free(&m);

	static const char *const bad[] = {
		"{}", "{\"result\":{" H "},\"error\":{\"grpc_code\":14}}", "{\"result\":[]}",
		"{\"error\":{\"grpc_code\":0}}", "{\"error\":{\"grpc_code\":\"x\"}}",
		"{\"result\":{" H ",\"events\":[{\"type\":\"MOVE\",\"kv\":{\"key\":\"YQ==\","
		"\"mod_revision\":\"1\"}}]}}",
		"{\"result\":{" H ",\"events\":[{\"type\":\"DELETE\"}]}}",
		"{\"result\":{" H ",\"events\":[{\"kv\":{\"mod_revision\":\"1\"}}]}}",
		"{\"result\":{" H ",\"events\":[{\"kv\":{\"key\":\"YQ==\"}}]}}",
		"{\"result\":{" H ",\"created\":true,\"events\":[{\"kv\":{\"key\":\"YQ==\","
		"\"mod_revision\":\"1\"}}]}}",
		"{\"result\":{" H ",\"events\":[{\"kv\":{\"key\":\"YQ==\",\"mod_revision\":\"1\"}},7]}}",
		"{\"result\":{" H ",\"compact_revision\":\"-2\"}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (etcd_wire_watch_msg(bad[i], strlen(bad[i]), &m) != -EBADMSG)
			fail_msg("accepted: %s", bad[i]);
		assert_null(m.events);
	}

	/* A fragment (part of one revision's events) is refused on its own
	 * errno: its events are not a whole revision, and this client never
	 * asks for fragments. */
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"header\":{\"revision\":\"5\"},"
						"\"fragment\":true,\"events\":[{\"kv\":{\"key\":"
						"\"YQ==\",\"mod_revision\":\"5\"}}]}}"),
					     &m),
			 -EPROTO);
	assert_null(m.events);
	assert_int_equal(m.n_events, 0);
	/* false is the field's default: an ordinary message */
	assert_int_equal(etcd_wire_watch_msg(S("{\"result\":{\"header\":{\"revision\":\"5\"},"
						"\"fragment\":false}}"),
					     &m),
			 0);
	etcd_watch_msg_free(&m);
}

static void test_errors_status_auth(void **state)
{
	(void)state;
	int code;
	char msg[64];
	assert_int_equal(etcd_wire_error(S("{\"error\":\"etcdserver: mvcc: required revision has "
					   "been compacted\",\"message\":\"etcdserver: mvcc: "
					   "required revision has been compacted\",\"code\":11,"
					   "\"details\":[]}"),
					 &code, msg, sizeof(msg)),
			 0);
	assert_int_equal(code, 11);
	assert_string_equal(msg, "etcdserver: mvcc: required revision has been compacted");
	assert_int_equal(etcd_wire_error(S("{\"error\":{\"grpc_code\":16,\"http_code\":401,"
					   "\"message\":\"etcdserver: invalid auth token\"}}"),
					 &code, msg, sizeof(msg)),
			 0);
	assert_int_equal(code, 16);
	/* truncated into a small buffer */
	char tiny[5];
	assert_int_equal(etcd_wire_error(S("{\"code\":3,\"message\":\"request is too large\"}"),
					 &code, tiny, sizeof(tiny)),
			 0);
	assert_string_equal(tiny, "requ");
	assert_int_equal(etcd_wire_error(S("{\"header\":{}}"), &code, msg, sizeof(msg)), -EBADMSG);
	assert_int_equal(etcd_wire_error(S("<html>"), &code, msg, sizeof(msg)), -EBADMSG);
	assert_int_equal(code, 0);

	struct etcd_status st;
	assert_int_equal(etcd_wire_status_response(
				 S("{\"header\":{\"revision\":\"1\"},\"version\":\"3.4.23\",\"dbSize\":"
				   "\"20480\",\"leader\":\"10276657743932975437\",\"raftIndex\":\"8\","
				   "\"raftTerm\":\"2\"}"),
				 &st),
			 0);
	assert_string_equal(st.version, "3.4.23");
	assert_int_equal(st.db_size, 20480);
	assert_true(st.leader == 10276657743932975437ull);
	assert_false(st.is_learner);

	char *json;
	size_t cap;
	assert_int_equal(etcd_wire_auth_request("sfs", "p\"w\\\n", &json, &cap), 0);
	assert_string_equal(json, "{\"name\":\"sfs\",\"password\":\"p\\\"w\\\\\\u000a\"}");
	json_object *o = parsed(json);
	assert_string_equal(member(o, "password"), "p\"w\\\n");
	json_object_put(o);
	assert_true(cap >= strlen(json) + 1);
	explicit_bzero(json, cap);
	free(json);
	assert_int_equal(etcd_wire_auth_request("", "x", &json, &cap), -EINVAL);

	char *token;
	assert_int_equal(etcd_wire_auth_response(S("{\"header\":{},\"token\":\"abc.12\"}"), &token), 0);
	assert_string_equal(token, "abc.12");
	free(token);
	assert_int_equal(etcd_wire_auth_response(S("{\"header\":{}}"), &token), -EBADMSG);
	assert_int_equal(etcd_wire_auth_response(S("{\"token\":\"a\\r\\nX: y\"}"), &token), -EBADMSG);
	assert_null(token);
}

/* ---- framing ---- */

struct collected {
	char lines[16][256];
	int n;
	int stop_at; /* return 7 on this line (1-based), 0: never */
};

static int collect(void *ctx, const char *line, size_t len)
{
	struct collected *c = ctx;
	assert_true(len < 256);
	assert_true(c->n < 16);
	memcpy(c->lines[c->n], line, len);
	c->lines[c->n][len] = '\0';
	c->n++;
	return c->n == c->stop_at ? 7 : 0;
}

static const char stream[] =
	"{\"result\":{\"header\":{\"revision\":\"3\"},\"created\":true}}\n"
	"{\"result\":{\"header\":{\"revision\":\"4\"},\"events\":[{\"kv\":{\"key\":\"YQ==\","
	"\"mod_revision\":\"4\",\"create_revision\":\"4\",\"version\":\"1\"}}]}}\r\n"
	"\n"
	"{\"result\":{\"header\":{\"revision\":\"4\"}}}\n"
	"{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"no leader\"}}";

static void check_stream(struct collected *c)
{
	assert_int_equal(c->n, 4);
	struct etcd_watch_msg m;
	static const enum etcd_watch_kind kinds[] = { ETCD_WATCH_CREATED, ETCD_WATCH_EVENTS,
						      ETCD_WATCH_PROGRESS, ETCD_WATCH_ERROR };
	for (int i = 0; i < 4; i++) {
		assert_int_equal(etcd_wire_watch_msg(c->lines[i], strlen(c->lines[i]), &m), 0);
		assert_int_equal(m.kind, kinds[i]);
		etcd_watch_msg_free(&m);
	}
}

static void test_lines_slices(void **state)
{
	(void)state;
	size_t total = sizeof(stream) - 1;
	/* every slice size from 1 byte to the whole stream */
	for (size_t step = 1; step <= total; step++) {
		struct etcd_lines l;
		struct collected c = { .n = 0 };
		etcd_lines_init(&l, 4096);
		for (size_t off = 0; off < total; off += step) {
			size_t n = total - off < step ? total - off : step;
			assert_int_equal(etcd_lines_feed(&l, stream + off, n, collect, &c), 0);
		}
		assert_int_equal(c.n, 3); /* the error tail has no newline yet */
		assert_int_equal(etcd_lines_finish(&l, collect, &c), 0);
		check_stream(&c);
		etcd_lines_free(&l);
	}
	/* irregular slices: every split point into two, and three */
	for (size_t a = 0; a < total; a += 7)
		for (size_t b = a; b < total; b += 13) {
			struct etcd_lines l;
			struct collected c = { .n = 0 };
			etcd_lines_init(&l, 4096);
			assert_int_equal(etcd_lines_feed(&l, stream, a, collect, &c), 0);
			assert_int_equal(etcd_lines_feed(&l, stream + a, b - a, collect, &c), 0);
			assert_int_equal(etcd_lines_feed(&l, stream + b, total - b, collect, &c), 0);
			assert_int_equal(etcd_lines_finish(&l, collect, &c), 0);
			check_stream(&c);
			etcd_lines_free(&l);
		}
}

static void test_lines_limits(void **state)
{
	(void)state;
	struct etcd_lines l;
	struct collected c = { .n = 0, .stop_at = 2 };
	/* the callback's non-zero return stops the feed */
	etcd_lines_init(&l, 4096);
	assert_int_equal(etcd_lines_feed(&l, S("a\nb\nc\n"), collect, &c), 7);
	assert_int_equal(c.n, 2);
	etcd_lines_free(&l);
	/* a line over the bound, whole or in pieces */
	etcd_lines_init(&l, 8);
	c = (struct collected){ .n = 0 };
	assert_int_equal(etcd_lines_feed(&l, S("12345678\n"), collect, &c), 0);
	assert_int_equal(etcd_lines_feed(&l, S("123456789\n"), collect, &c), -EFBIG);
	etcd_lines_free(&l);
	etcd_lines_init(&l, 8);
	assert_int_equal(etcd_lines_feed(&l, S("12345"), collect, &c), 0);
	assert_int_equal(etcd_lines_feed(&l, S("6789"), collect, &c), -EFBIG);
	etcd_lines_free(&l);
	/* a blank tail is no message */
	etcd_lines_init(&l, 64);
	c = (struct collected){ .n = 0 };
	assert_int_equal(etcd_lines_feed(&l, S("x\n \r"), collect, &c), 0);
	assert_int_equal(etcd_lines_finish(&l, collect, &c), 0);
	assert_int_equal(c.n, 1);
	/* finishing twice hands nothing over twice */
	assert_int_equal(etcd_lines_finish(&l, collect, &c), 0);
	assert_int_equal(c.n, 1);
	etcd_lines_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_range_request),
		cmocka_unit_test(test_range_response),
		cmocka_unit_test(test_header_required),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_put_delete),
		cmocka_unit_test(test_txn_request),
		cmocka_unit_test(test_txn_response),
		cmocka_unit_test(test_watch_request),
		cmocka_unit_test(test_watch_messages),
		cmocka_unit_test(test_errors_status_auth),
		cmocka_unit_test(test_lines_slices),
		cmocka_unit_test(test_lines_limits),
	};
	return tu_run_group("etcd_wire", tests, NULL, NULL);
}
