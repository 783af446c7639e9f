/* Unit tests of the credentials file (api/sigv4.h): who may own it and read
 * it, its lines, the shapes of what they hold, and what a refusal logs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sigv4_test.h"

static struct {
	char dir[TU_PATH_MAX];
	char path[TU_PATH_MAX];
} fx;

static int group_setup(void **state)
{
	(void)state;
	if (tu_crypto_init() || tu_mkdtemp(fx.dir))
		return -1;
	tu_path(fx.path, fx.dir, "credentials");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return tu_rmrf(fx.dir);
}

/* Loads text written with mode; the result, and the loaded keys' count. */
static int load(const char *text, mode_t mode, size_t *count)
{
	struct sigv4_credentials *creds = NULL;
	assert_int_equal(st_write_mode(fx.path, text, mode), 0);
	int rc = sigv4_credentials_load(fx.path, &creds);
	if (count)
		*count = sigv4_credentials_count(creds);
	if (rc)
		assert_null(creds);
	sigv4_credentials_free(creds);
	return rc;
}

/* The principal a request signed by key_id/secret is verified as ("" if refused). */
static void principal_of(const struct sigv4_credentials *creds, const char *key_id,
			 const char *secret, char out[SIGV4_PRINCIPAL_MAX])
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	struct sigv4_identity who;
	struct sigv4_error err;
	s.key_id = key_id;
	s.secret = secret;
	st_req_init(&r);
	sigv4_verify(creds, NULL, st_req_sign(&r, &s), ST_NOW, &who, &err);
	snprintf(out, SIGV4_PRINCIPAL_MAX, "%s", who.principal);
}

static void test_lines(void **state)
{
	struct sigv4_credentials *creds;
	char who[SIGV4_PRINCIPAL_MAX];
	(void)state;
	/* Comments, blank lines, tabs, CRLF, and a last line with no newline. */
	assert_int_equal(st_write_mode(fx.path,
				       "# access key id, secret access key, principal\n"
				       "\n"
				       "   \t\n"
				       "  # an indented comment\n"
				       "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY alice\n"
				       "AKIDEXAMPLE\twJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY\t"
				       "arn:aws:iam::123456789012:user/bob\r\n"
				       "  ci_runner_1   0123456789abcdef#!~   ci  ",
				       0600),
			 0);
	assert_int_equal(sigv4_credentials_load(fx.path, &creds), 0);
	assert_int_equal(sigv4_credentials_count(creds), 3);
	principal_of(creds, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", who);
	assert_string_equal(who, "alice");
	principal_of(creds, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", who);
	assert_string_equal(who, "arn:aws:iam::123456789012:user/bob");
	principal_of(creds, "ci_runner_1", "0123456789abcdef#!~", who);
	assert_string_equal(who, "ci");
	/* One key's secret does not open another's id. */
	principal_of(creds, "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", who);
	assert_string_equal(who, "");
	sigv4_credentials_free(creds);

	size_t n = 99;
	assert_int_equal(load("# nobody yet\n\n", 0600, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(load("", 0600, &n), 0);
	assert_int_equal(n, 0);
	sigv4_credentials_free(NULL);
	assert_int_equal(sigv4_credentials_count(NULL), 0);
}

static void test_file_modes(void **state)
{
	static const mode_t refused[] = { 0644, 0640, 0604, 0660, 0606, 0620, 0602, 0610, 0601 };
	static const mode_t accepted[] = { 0600, 0400, 0700, 0200 };
	const char *text = ST_KEY_ID " " ST_SECRET " " ST_PRINCIPAL "\n";
	size_t n;
	(void)state;
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
		if (load(text, refused[i], NULL) != -EPERM)
			fail_msg("mode %04o accepted", (unsigned)refused[i]);
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		if (accepted[i] == 0200 && geteuid() != 0)
			continue; /* unreadable to anyone but root */
		if (load(text, accepted[i], &n) != 0 || n != 1)
			fail_msg("mode %04o refused", (unsigned)accepted[i]);
	}
}

static void test_owner_and_kind(void **state)
{
	struct sigv4_credentials *creds = NULL;
	char path[TU_PATH_MAX];
	(void)state;
	const char *text = ST_KEY_ID " " ST_SECRET " " ST_PRINCIPAL "\n";
	if (geteuid() == 0) {
		assert_int_equal(st_write_mode(fx.path, text, 0600), 0);
		assert_int_equal(chown(fx.path, 65534, 65534), 0);
		assert_int_equal(sigv4_credentials_load(fx.path, &creds), -EPERM);
		assert_null(creds);
	}
	assert_int_equal(sigv4_credentials_load(tu_path(path, fx.dir, "absent"), &creds), -ENOENT);
	assert_int_equal(mkdir(tu_path(path, fx.dir, "a-directory"), 0700), 0);
	assert_int_equal(sigv4_credentials_load(path, &creds), -EPERM);
	/* A FIFO is refused at once, not waited on. */
	assert_int_equal(mkfifo(tu_path(path, fx.dir, "a-fifo"), 0600), 0);
	assert_int_equal(sigv4_credentials_load(path, &creds), -EPERM);
	assert_null(creds);
	/* A symlink is followed (secret volumes are symlinks); the file is checked. */
	assert_int_equal(st_write_mode(fx.path, text, 0600), 0);
	assert_int_equal(symlink(fx.path, tu_path(path, fx.dir, "a-link")), 0);
	assert_int_equal(sigv4_credentials_load(path, &creds), 0);
	assert_int_equal(sigv4_credentials_count(creds), 1);
	sigv4_credentials_free(creds);
	assert_int_equal(chmod(fx.path, 0644), 0);
	assert_int_equal(sigv4_credentials_load(path, &creds), -EPERM);
}

static void test_malformed_lines(void **state)
{
	char long_line[1200];
	static char text[1400];
	(void)state;
	memset(long_line, 'A', sizeof(long_line));
	long_line[sizeof(long_line) - 1] = '\0';
	static const char *const bad[] = {
		ST_KEY_ID " " ST_SECRET "\n",
		ST_KEY_ID "\n",
		ST_KEY_ID " " ST_SECRET " alice extra\n",
		ST_KEY_ID " " ST_SECRET " alice # a comment after the fields\n",
		ST_KEY_ID " " ST_SECRET " alice\n" ST_KEY_ID " another-secret-of-40-characters-long-xx bob\n",
		ST_KEY_ID " short-secret-1 alice\n",
		ST_KEY_ID " wJalrXUtnFEMI/K7MDENG/bPx\x01RfiCYEXAMPLEKEY alice\n",
		ST_KEY_ID " wJalrXUtnFEMI/K7MDENG/bPx\xc3\xa9RfiCYEXAMPLEKEY alice\n",
		ST_KEY_ID " " ST_SECRET " al\x7fice\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (load(bad[i], 0600, NULL) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
	/* A line longer than 1024 bytes, even a comment. */
	snprintf(text, sizeof(text), "# %s\n", long_line);
	assert_int_equal(load(text, 0600, NULL), -EINVAL);
	/* A principal of 255 characters is the longest. */
	char principal[300];
	memset(principal, 'p', 256);
	principal[256] = '\0';
	snprintf(text, sizeof(text), ST_KEY_ID " " ST_SECRET " %s\n", principal);
	assert_int_equal(load(text, 0600, NULL), -EINVAL);
	principal[255] = '\0';
	snprintf(text, sizeof(text), ST_KEY_ID " " ST_SECRET " %s\n", principal);
	assert_int_equal(load(text, 0600, NULL), 0);
	/* Secrets of 16 to 128 characters. */
	assert_int_equal(load(ST_KEY_ID " 0123456789abcdef alice\n", 0600, NULL), 0);
	char secret[200];
	memset(secret, 's', 129);
	secret[129] = '\0';
	snprintf(text, sizeof(text), ST_KEY_ID " %s alice\n", secret);
	assert_int_equal(load(text, 0600, NULL), -EINVAL);
	secret[128] = '\0';
	snprintf(text, sizeof(text), ST_KEY_ID " %s alice\n", secret);
	assert_int_equal(load(text, 0600, NULL), 0);
}

static void test_key_id_shapes(void **state)
{
	char id[200], text[400];
	(void)state;
	static const char *const good[] = { "AKIAIOSFODNN7EXAMPLE", "AKIDEXAMPLE", "ASIA_lower_123",
					    "A", "0123456789" };
	static const char *const bad[] = { "AKIA/EXAMPLE", "AKIA-EXAMPLE", "AKIA.EXAMPLE",
					   "AKIA=EX", "AKIA,EX", "AKIA;EX", "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "%s " ST_SECRET " p\n", good[i]);
		if (load(text, 0600, NULL) != 0)
			fail_msg("refused key id %s", good[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s " ST_SECRET " p\n", bad[i]);
		if (load(text, 0600, NULL) != -EINVAL)
			fail_msg("accepted key id %s", bad[i]);
	}
	/* IAM's longest, 128 characters, and a request signed by it. */
	memset(id, 'K', 128);
	id[128] = '\0';
	snprintf(text, sizeof(text), "%s " ST_SECRET " long-id\n", id);
	struct sigv4_credentials *creds;
	assert_int_equal(st_load_creds(fx.dir, text, &creds), 0);
	char who[SIGV4_PRINCIPAL_MAX];
	principal_of(creds, id, ST_SECRET, who);
	assert_string_equal(who, "long-id");
	sigv4_credentials_free(creds);
	memset(id, 'K', 129);
	id[129] = '\0';
	snprintf(text, sizeof(text), "%s " ST_SECRET " p\n", id);
	assert_int_equal(load(text, 0600, NULL), -EINVAL);
}

/* More keys than the read window holds lines: each found, each its own. */
static void test_many_keys(void **state)
{
	size_t cap = 400 * 80, len = 0;
	char *text = malloc(cap);
	struct sigv4_credentials *creds;
	char id[32], secret[64], who[SIGV4_PRINCIPAL_MAX], want[32];
	(void)state;
	assert_non_null(text);
	for (int i = 0; i < 400; i++)
		len += (size_t)snprintf(text + len, cap - len,
					"AKIA%016d secret-key-number-%04d-of-the-test user%d\n", i, i, i);
	assert_int_equal(st_load_creds(fx.dir, text, &creds), 0);
	assert_int_equal(sigv4_credentials_count(creds), 400);
	for (int i = 0; i < 400; i += 57) {
		snprintf(id, sizeof(id), "AKIA%016d", i);
		snprintf(secret, sizeof(secret), "secret-key-number-%04d-of-the-test", i);
		snprintf(want, sizeof(want), "user%d", i);
		principal_of(creds, id, secret, who);
		assert_string_equal(who, want);
	}
	sigv4_credentials_free(creds);
	free(text);
}

/* A refusal names the file, the line and the rule; never the line's text. */
static void test_log_names_line_not_content(void **state)
{
	char log_path[TU_PATH_MAX];
	(void)state;
	assert_int_equal(st_log_begin(log_path, fx.dir), 0);
	assert_int_equal(load("# keys\n\n" ST_KEY_ID " " ST_SECRET "\n", 0600, NULL), -EINVAL);
	assert_int_equal(load(ST_KEY_ID " " ST_SECRET " alice\n# again\n" ST_KEY_ID
			      " Xsecret-key-for-a-repeated-id-40-chars-x bob\n", 0600, NULL), -EINVAL);
	assert_int_equal(load(ST_KEY_ID " wJalrXUtnFEMI/K7MDENG/bPx\x01RfiCYEXAMPLEKEY alice\n",
			      0600, NULL), -EINVAL);
	assert_int_equal(load("AKIA-WRONG-SHAPE " ST_SECRET " alice\n", 0600, NULL), -EINVAL);
	assert_int_equal(load(ST_KEY_ID " " ST_SECRET " alice\n", 0644, NULL), -EPERM);
	size_t n;
	assert_int_equal(load(ST_KEY_ID " " ST_SECRET " alice\n", 0600, &n), 0);
	char *log = st_log_end(log_path);
	assert_non_null(log);
	assert_int_equal(st_count(log, "\n"), 5);
	assert_non_null(strstr(log, "line 3: a line must be ACCESS_KEY_ID SECRET_ACCESS_KEY "
				    "PRINCIPAL, found 2 fields"));
	assert_non_null(strstr(log, "line 3: an access key id may appear once; it is already on "
				    "line 1"));
	assert_non_null(strstr(log, "line 1: a secret access key is 16 to 128 printable ASCII"));
	assert_non_null(strstr(log, "line 1: an access key id is 1 to 128 letters, digits or "
				    "underscores"));
	assert_non_null(strstr(log, "refused: mode 0644 lets group or others read secret keys"));
	assert_null(strstr(log, "EXAMPLEKEY"));
	assert_null(strstr(log, "Xsecret"));
	assert_null(strstr(log, "AKIA"));
	assert_null(strstr(log, "alice"));
	free(log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_file_modes),
		cmocka_unit_test(test_owner_and_kind),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_key_id_shapes),
		cmocka_unit_test(test_many_keys),
		cmocka_unit_test(test_log_names_line_not_content),
	};
	return tu_run_group("sigv4_credentials", tests, group_setup, group_teardown);
}
