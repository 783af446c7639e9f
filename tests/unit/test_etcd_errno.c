/* Unit tests of cluster/etcd's one error mapping (etcd_errno): the classes
 * a writer acts on (not sent, unknown outcome, compacted) and the rest. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "testutil.h"
#include "cluster/etcd.h"

static void test_curl_codes(void **state)
{
	(void)state;
	/* nothing sent: definitely not applied, whatever the code */
	assert_int_equal(etcd_errno(CURLE_COULDNT_CONNECT, false, 0, 0, NULL), ETCD_E_NOTSENT);
	assert_int_equal(etcd_errno(CURLE_COULDNT_RESOLVE_HOST, false, 0, 0, NULL), ETCD_E_NOTSENT);
	assert_int_equal(etcd_errno(CURLE_OPERATION_TIMEDOUT, false, 0, 0, NULL), ETCD_E_NOTSENT);
	assert_int_equal(etcd_errno(CURLE_SSL_CONNECT_ERROR, false, 0, 0, NULL), ETCD_E_NOTSENT);
	/* sent, then no answer: unknown */
	assert_int_equal(etcd_errno(CURLE_OPERATION_TIMEDOUT, true, 0, 0, NULL), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_GOT_NOTHING, true, 0, 0, NULL), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_RECV_ERROR, true, 0, 0, NULL), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_SEND_ERROR, true, 0, 0, NULL), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_PARTIAL_FILE, true, 200, 0, NULL), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_OUT_OF_MEMORY, true, 0, 0, NULL), -ENOMEM);
	assert_int_equal(etcd_errno(CURLE_URL_MALFORMAT, false, 0, 0, NULL), -EINVAL);
	assert_int_equal(etcd_errno(CURLE_OK, true, 200, 0, NULL), 0);
	/* the distinct classes are distinct */
	assert_int_not_equal(ETCD_E_NOTSENT, ETCD_E_UNKNOWN);
	assert_int_not_equal(ETCD_E_UNKNOWN, ETCD_E_COMPACTED);
}

static void test_grpc_and_http(void **state)
{
	(void)state;
	const char *compacted = "etcdserver: mvcc: required revision has been compacted";
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 11, compacted), ETCD_E_COMPACTED);
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 11,
				    "etcdserver: mvcc: required revision is a future revision"),
			 -EINVAL);
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 3, "etcdserver: request is too large"),
			 -EFBIG);
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 3,
				    "etcdserver: too many operations in txn request"),
			 -EFBIG);
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 3,
				    "etcdserver: duplicate key given in txn request"),
			 -EINVAL);
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 3, "etcdserver: user name is empty"),
			 -EACCES);
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 3,
				    "etcdserver: authentication failed, invalid user ID or password"),
			 -EACCES);
	assert_int_equal(etcd_errno(CURLE_OK, true, 403, 7, "etcdserver: permission denied"),
			 -EACCES);
	assert_int_equal(etcd_errno(CURLE_OK, true, 401, 16, "etcdserver: invalid auth token"),
			 -EACCES);
	assert_int_equal(etcd_errno(CURLE_OK, true, 429, 8,
				    "etcdserver: mvcc: database space exceeded"),
			 -ENOSPC);
	assert_int_equal(etcd_errno(CURLE_OK, true, 503, 14, "etcdserver: request timed out"),
			 ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_OK, true, 503, 14, "etcdserver: no leader"),
			 ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_OK, true, 500, 2, "context deadline exceeded"),
			 ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 9, "etcdserver: not leader"), -EINVAL);
	/* a gRPC code wins over a 200 */
	assert_int_equal(etcd_errno(CURLE_OK, true, 200, 14, "no leader"), ETCD_E_UNKNOWN);
	/* HTTP status alone (a body that was no error object) */
	assert_int_equal(etcd_errno(CURLE_OK, true, 400, 0, NULL), -EINVAL);
	assert_int_equal(etcd_errno(CURLE_OK, true, 401, 0, NULL), -EACCES);
	assert_int_equal(etcd_errno(CURLE_OK, true, 403, 0, NULL), -EACCES);
	assert_int_equal(etcd_errno(CURLE_OK, true, 413, 0, NULL), -EFBIG);
	assert_int_equal(etcd_errno(CURLE_OK, true, 429, 0, NULL), -ENOSPC);
	assert_int_equal(etcd_errno(CURLE_OK, true, 500, 0, NULL), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_OK, true, 503, 0, NULL), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_errno(CURLE_OK, true, 418, 0, NULL), -EIO);
}

/* A watch's last message: its cancel or its error object. */
static void test_watch_endings(void **state)
{
	(void)state;
	struct etcd_watch_msg m = { .kind = ETCD_WATCH_CANCELED, .compact_revision = 5 };
	assert_int_equal(etcd_watch_errno(&m), ETCD_E_COMPACTED);
	m = (struct etcd_watch_msg){ .kind = ETCD_WATCH_CANCELED };
	snprintf(m.cancel_reason, sizeof(m.cancel_reason), "%s",
		 "rpc error: code = PermissionDenied desc = etcdserver: permission denied");
	assert_int_equal(etcd_watch_errno(&m), -EACCES);
	snprintf(m.cancel_reason, sizeof(m.cancel_reason), "%s",
		 "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token");
	assert_int_equal(etcd_watch_errno(&m), -EACCES);
	snprintf(m.cancel_reason, sizeof(m.cancel_reason), "%s", "");
	assert_int_equal(etcd_watch_errno(&m), -ECANCELED);
	/* the stream's error object: its codes through etcd_errno */
	m = (struct etcd_watch_msg){ .kind = ETCD_WATCH_ERROR, .grpc_code = 14, .http_code = 503 };
	snprintf(m.message, sizeof(m.message), "%s", "etcdserver: no leader");
	assert_int_equal(etcd_watch_errno(&m), ETCD_E_UNKNOWN);
	m.grpc_code = 11;
	snprintf(m.message, sizeof(m.message), "%s",
		 "etcdserver: mvcc: required revision has been compacted");
	assert_int_equal(etcd_watch_errno(&m), ETCD_E_COMPACTED);
	m.grpc_code = 7;
	assert_int_equal(etcd_watch_errno(&m), -EACCES);
	/* anything else ends nothing */
	m = (struct etcd_watch_msg){ .kind = ETCD_WATCH_PROGRESS };
	assert_int_equal(etcd_watch_errno(&m), 0);
}

/* A 200 answer that does not parse: a write may have been applied. */
static void test_unreadable_answers(void **state)
{
	(void)state;
	assert_int_equal(etcd_answer_errno(true, -EBADMSG), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_answer_errno(true, -EFBIG), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_answer_errno(true, -ENOMEM), ETCD_E_UNKNOWN);
	assert_int_equal(etcd_answer_errno(false, -EBADMSG), -EBADMSG);
	assert_int_equal(etcd_answer_errno(false, -EFBIG), -EFBIG);
}

static void test_open_refuses_bad_configs(void **state)
{
	(void)state;
	struct etcd *e = (struct etcd *)1;
	const char *bad_scheme[] = { "ftp://127.0.0.1:2379" };
	struct etcd_config cfg = { .endpoints = bad_scheme, .n_endpoints = 1 };
	assert_int_equal(etcd_open(&cfg, &e), -EINVAL);
	assert_null(e);
	const char *ok[] = { "http://127.0.0.1:2379/" };
	cfg = (struct etcd_config){ .endpoints = ok, .n_endpoints = 0 };
	assert_int_equal(etcd_open(&cfg, &e), -EINVAL);
	cfg = (struct etcd_config){ .endpoints = ok, .n_endpoints = 1, .user = "u" };
	assert_int_equal(etcd_open(&cfg, &e), -EINVAL); /* a user without a password file */
	cfg = (struct etcd_config){ .endpoints = ok, .n_endpoints = 1, .cert_file = "c" };
	assert_int_equal(etcd_open(&cfg, &e), -EINVAL);
	cfg = (struct etcd_config){ .endpoints = ok, .n_endpoints = 1, .user = "u",
				    .password_file = "/nonexistent/etcd-password" };
	assert_int_equal(etcd_open(&cfg, &e), -ENOENT);
	cfg = (struct etcd_config){ .endpoints = ok, .n_endpoints = 1 };
	assert_int_equal(etcd_open(&cfg, &e), 0);
	assert_string_equal(etcd_endpoint(e), "http://127.0.0.1:2379"); /* trailing / dropped */
	etcd_close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_curl_codes),
		cmocka_unit_test(test_grpc_and_http),
		cmocka_unit_test(test_watch_endings),
		cmocka_unit_test(test_unreadable_answers),
		cmocka_unit_test(test_open_refuses_bad_configs),
	};
	return tu_run_group("etcd_errno", tests, NULL, NULL);
}
