/* Unit tests of cluster/replica_config: the "sfs/cluster" record and which
 * records a store shares through etcd. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/replica.h"

static void test_round_trip(void **state)
{
	(void)state;
	struct replica_config c = { 0 }, back = { 0 };
	char *json = NULL;
	assert_int_equal(replica_config_set_endpoints(&c, "http://127.0.0.1:2379,https://h:2379"),
			 0);
	c.prefix = strdup("/secretsfs/");
	c.user = strdup("host1");
	c.password_file = strdup("/etc/secretsfs/etcd.pw");
	assert_int_equal(replica_config_encode(&c, &json), 0);
	assert_int_equal(replica_config_decode((const uint8_t *)json, strlen(json), &back), 0);
	assert_int_equal(back.n_endpoints, 2);
	assert_string_equal(back.endpoints[1], "https://h:2379");
	assert_string_equal(back.prefix, "/secretsfs/");
	assert_string_equal(back.user, "host1");
	assert_string_equal(back.password_file, "/etc/secretsfs/etcd.pw");
	assert_null(back.ca_file);
	free(json);
	replica_config_free(&c);
	replica_config_free(&back);
}

static void test_bad_input_refused(void **state)
{
	(void)state;
	struct replica_config c = { 0 };
	assert_int_equal(replica_config_set_endpoints(&c, "ftp://x"), -EINVAL);
	replica_config_free(&c);
	assert_int_equal(replica_config_set_endpoints(&c, "http://a,,http://b"), -EINVAL);
	replica_config_free(&c);
	static const char *const bad[] = {
		"", "[]", "{}", "{\"endpoints\":[],\"prefix\":\"/p/\"}",
		"{\"endpoints\":[\"http://a\"]}", "{\"endpoints\":[1],\"prefix\":\"/p/\"}",
		"{\"endpoints\":[\"http://a\"],\"prefix\":7}",
		"{\"endpoints\":[\"http://a\"],\"prefix\":\"\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(replica_config_decode((const uint8_t *)bad[i], strlen(bad[i]), &c),
				 -EBADMSG);
		assert_int_equal(c.n_endpoints, 0);
		assert_null(c.prefix);
	}
}

static void test_shared_keys(void **state)
{
	(void)state;
	static const char *const shared[] = { "secret/a", "dir/x", "ver/0123/v", "key/k",
					      "cat/7", "sfs/header", "sfs/format" };
	static const char *const local[] = { "sfs/state", "sfs/cluster", "sfs/replica", "other",
					     "", "secret", "sfs/headers" };
	for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++)
		assert_true(replica_key_shared(shared[i]));
	for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
		assert_false(replica_key_shared(local[i]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bad_input_refused),
		cmocka_unit_test(test_shared_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
