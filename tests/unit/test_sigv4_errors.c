/* Unit tests of api/sigv4: every refusal of aws-endpoint.md §2.3 with its
 * __type and message, in AWS's order of checks; what a refusal logs. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <ctype.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sigv4_test.h"

#define MSG_MISMATCH                                                                       \
	"The request signature we calculated does not match the signature you provided. "  \
	"Check your AWS Secret Access Key and signing method. Consult the service "         \
	"documentation for details."
#define MSG_TOKEN "The security token included in the request is invalid."

static struct {
	char dir[TU_PATH_MAX];
	struct sigv4_credentials *creds;
} fx;

static int group_setup(void **state)
{
	(void)state;
	if (tu_crypto_init() || tu_mkdtemp(fx.dir))
		return -1;
	return st_load_creds(fx.dir,
			     "# the test keys\n" ST_KEY_ID " " ST_SECRET " " ST_PRINCIPAL "\n"
			     "AKIDEXAMPLE wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY bob\n",
			     &fx.creds);
}

static int group_teardown(void **state)
{
	(void)state;
	sigv4_credentials_free(fx.creds);
	return tu_rmrf(fx.dir);
}

static void expect_ok_at(const struct sigv4_request *req, time_t now,
			 const struct sigv4_options *opt, const char *region)
{
	struct sigv4_identity who;
	struct sigv4_error err;
	int rc = sigv4_verify(fx.creds, opt, req, now, &who, &err);
	if (rc)
		fail_msg("refused (%d): %s: %s", rc, err.type, err.message);
	assert_string_equal(who.access_key_id, ST_KEY_ID);
	assert_string_equal(who.principal, ST_PRINCIPAL);
	assert_string_equal(who.region, region);
}

static void expect_ok(const struct sigv4_request *req)
{
	expect_ok_at(req, ST_NOW, NULL, "us-east-1");
}

/* Refused with type, and a message that is exactly message (or, when
 * prefix_only, starts with it). */
static void expect_refused_at(const struct sigv4_request *req, time_t now,
			      const struct sigv4_options *opt, const char *type,
			      const char *message, bool prefix_only)
{
	struct sigv4_identity who;
	struct sigv4_error err;
	int rc = sigv4_verify(fx.creds, opt, req, now, &who, &err);
	if (rc != -EACCES)
		fail_msg("expected %s (%s), got %d", type, message, rc);
	assert_string_equal(err.type, type);
	if (prefix_only ? strncmp(err.message, message, strlen(message)) != 0
			: strcmp(err.message, message) != 0)
		fail_msg("message\n  %s\nexpected\n  %s", err.message, message);
	assert_string_equal(who.principal, "");
}

static void expect_refused(const struct sigv4_request *req, const char *type, const char *message)
{
	expect_refused_at(req, ST_NOW, NULL, type, message, false);
}

static void test_valid_request(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	(void)state;
	st_req_init(&r);
	expect_ok(st_req_sign(&r, &s));
	/* The key in the other column of the file is another principal. */
	s.key_id = "AKIDEXAMPLE";
	s.secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	struct sigv4_identity who;
	struct sigv4_error err;
	assert_int_equal(sigv4_verify(fx.creds, NULL, st_req_sign(&r, &s), ST_NOW, &who, &err), 0);
	assert_string_equal(who.principal, "bob");
	assert_string_equal(who.access_key_id, "AKIDEXAMPLE");
}

static void test_missing_authentication(void **state)
{
	struct st_req r;
	(void)state;
	st_req_init(&r);
	expect_refused(st_req_view(&r), "MissingAuthenticationTokenException",
		       "Request is missing Authentication Token");
	static const char *const not_aws4[] = { "", "   ", "Basic dXNlcjpwYXNz",
						"AWS3-HTTPS AWSAccessKeyId=x", "aws4-hmac-sha256 x" };
	for (size_t i = 0; i < sizeof(not_aws4) / sizeof(not_aws4[0]); i++) {
		st_req_set(&r, "Authorization", not_aws4[i]);
		expect_refused(st_req_view(&r), "MissingAuthenticationTokenException",
			       "Request is missing Authentication Token");
	}
}

static void test_incomplete_authorization(void **state)
{
	static const struct { const char *auth, *message; } cases[] = {
		{ "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc",
		  "Authorization header requires 'Credential' parameter. "
		  "Authorization=AWS4-HMAC-SHA256 SignedHeaders=host, Signature=abc" },
		{ "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host",
		  "Authorization header requires 'Signature' parameter. "
		  "Authorization=AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host" },
		{ "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Signature=abc",
		  "Authorization header requires 'SignedHeaders' parameter. "
		  "Authorization=AWS4-HMAC-SHA256 Credential=a/b/c/d/e, Signature=abc" },
		{ "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=",
		  "Authorization header requires 'Credential' parameter. Authorization header "
		  "requires 'Signature' parameter. Authorization=AWS4-HMAC-SHA256 Credential=, "
		  "SignedHeaders=host, Signature=" },
		{ "AWS4-HMAC-SHA256",
		  "Authorization header requires 'Credential' parameter. Authorization header "
		  "requires 'Signature' parameter. Authorization header requires 'SignedHeaders' "
		  "parameter. Authorization=AWS4-HMAC-SHA256" },
		{ "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=abc",
		  "'Credential' not a valid key=value pair (missing equal-sign) in Authorization "
		  "header: 'AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=abc'." },
		{ "AWS4-HMAC-SHA256 Signature=a, Credential=a/b/c/d/e, SignedHeaders=host, Signature=b",
		  "Authorization header has parameter 'Signature' more than once. "
		  "Authorization=AWS4-HMAC-SHA256 Signature=a, Credential=a/b/c/d/e, "
		  "SignedHeaders=host, Signature=b" },
	};
	struct st_req r;
	(void)state;
	st_req_init(&r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		st_req_set(&r, "Authorization", cases[i].auth);
		expect_refused(st_req_view(&r), "IncompleteSignatureException", cases[i].message);
	}
	/* Without any date header, that is one more sentence, before the echo. */
	st_req_del(&r, "X-Amz-Date");
	st_req_set(&r, "Authorization", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, "
					"SignedHeaders=host, Signature=abc");
	expect_refused(st_req_view(&r), "IncompleteSignatureException",
		       "Authorization header requires existence of either a 'X-Amz-Date' or a "
		       "'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=a/b/c/d/e, "
		       "SignedHeaders=host, Signature=abc");
	/* Two Authorization headers: which one was meant is not guessed. */
	struct st_signer s = st_signer_default();
	st_req_init(&r);
	st_req_sign(&r, &s);
	r.h[r.n++] = (struct sigv4_header){ "authorization", r.auth };
	expect_refused(st_req_view(&r), "IncompleteSignatureException",
		       "Authorization header must appear only once.");
}

static void test_no_date(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	char want[4096];
	(void)state;
	st_req_init(&r);
	st_req_sign(&r, &s);
	st_req_del(&r, "X-Amz-Date");
	snprintf(want, sizeof(want), "Authorization header requires existence of either a "
		 "'X-Amz-Date' or a 'Date' header. Authorization=%s", r.auth);
	expect_refused(st_req_view(&r), "IncompleteSignatureException", want);
	st_req_set(&r, "X-Amz-Date", "  "); /* blank is no date */
	expect_refused(st_req_view(&r), "IncompleteSignatureException", want);
}

static void test_bad_date_syntax(void **state)
{
	static const char *const bad[] = {
		"2026-11-27T19:57:02Z", "20261127T195702", "20261127T195702z", "20261327T195702Z",
		"20260230T195702Z", "20261127T245702Z", "20261127T196002Z", "20261127 195702Z",
		"2026112T1957020Z", "Fri, 27 Nov 2026 19:57:02 GMT", "19691231T235959Z",
	};
	struct st_req r;
	struct st_signer s = st_signer_default();
	char want[512];
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st_req_init(&r);
		st_req_set(&r, "X-Amz-Date", bad[i]);
		s.amz_date = bad[i];
		s.day = "20261127";
		snprintf(want, sizeof(want), "Date must be in ISO-8601 'basic format'. Got '%s'. "
			 "See http://en.wikipedia.org/wiki/ISO_8601", bad[i]);
		expect_refused(st_req_sign(&r, &s), "IncompleteSignatureException", want);
	}
	/* The Date header may carry HTTP's own form, but not just any. */
	st_req_init(&r);
	st_req_del(&r, "X-Amz-Date");
	st_req_set(&r, "Date", "Fri, 27 Nov 2026 19:57:02 UTC");
	s = st_signer_default();
	s.signed_headers = "content-type;date;host;x-amz-target";
	expect_refused(st_req_sign(&r, &s), "IncompleteSignatureException",
		       "Date must be in ISO-8601 'basic format'. Got 'Fri, 27 Nov 2026 19:57:02 "
		       "UTC'. See http://en.wikipedia.org/wiki/ISO_8601");
}

static void test_clock_skew(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	struct sigv4_options o = { .skew_s = 90 };
	(void)state;
	st_req_init(&r);
	const struct sigv4_request *req = st_req_sign(&r, &s);
	expect_ok_at(req, ST_NOW + 300, NULL, "us-east-1");
	expect_ok_at(req, ST_NOW - 300, NULL, "us-east-1");
	expect_refused_at(req, ST_NOW + 301, NULL, "InvalidSignatureException",
			  "Signature expired: 20261127T195702Z is now earlier than 20261127T195703Z "
			  "(20261127T200203Z - 5 min.)", false);
	expect_refused_at(req, ST_NOW - 301, NULL, "InvalidSignatureException",
			  "Signature not yet current: 20261127T195702Z is still later than "
			  "20261127T195701Z (20261127T195201Z + 5 min.)", false);
	expect_refused_at(req, ST_NOW + 86400, NULL, "InvalidSignatureException",
			  "Signature expired: ", true);
	/* A window of the caller's choosing, said in seconds when not whole minutes. */
	expect_ok_at(req, ST_NOW + 90, &o, "us-east-1");
	expect_refused_at(req, ST_NOW + 91, &o, "InvalidSignatureException",
			  "Signature expired: 20261127T195702Z is now earlier than 20261127T195703Z "
			  "(20261127T195833Z - 90 s.)", false);
	o.skew_s = 60;
	expect_refused_at(req, ST_NOW - 61, &o, "InvalidSignatureException",
			  "Signature not yet current: 20261127T195702Z is still later than "
			  "20261127T195701Z (20261127T195601Z + 1 min.)", false);
}

static void test_headers_that_must_be_signed(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	struct sigv4_options o = { .target_optional = true };
	(void)state;
	st_req_init(&r);
	s.signed_headers = "content-type;x-amz-date;x-amz-target";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "'Host' must be a 'SignedHeader' in the AWS Authorization.");
	s.signed_headers = "content-type;host;x-amz-target";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
	s.signed_headers = "content-type;host;x-amz-date";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.");
	/* AWS's test vectors sign no target: the option lets them through. */
	expect_ok_at(st_req_sign(&r, &s), ST_NOW, &o, "us-east-1");
	/* The order of checks: the clock comes before Host, Host before the algorithm. */
	s.signed_headers = "content-type;x-amz-date;x-amz-target";
	s.algorithm = "AWS4-HMAC-SHA512";
	st_req_sign(&r, &s);
	expect_refused_at(st_req_view(&r), ST_NOW + 400, NULL, "InvalidSignatureException",
			  "Signature expired: ", true);
	expect_refused(st_req_view(&r), "InvalidSignatureException",
		       "'Host' must be a 'SignedHeader' in the AWS Authorization.");
}

static void test_algorithm(void **state)
{
	static const char *const bad[] = { "AWS4-HMAC-SHA512", "AWS4-ECDSA-P256-SHA256",
					   "AWS4-HMAC-SHA25" };
	struct st_req r;
	struct st_signer s = st_signer_default();
	char want[256];
	(void)state;
	st_req_init(&r);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s.algorithm = bad[i];
		snprintf(want, sizeof(want), "Unsupported AWS 'algorithm': '%s' (only "
			 "AWS4-HMAC-SHA256 for now).", bad[i]);
		expect_refused(st_req_sign(&r, &s), "IncompleteSignatureException", want);
	}
}

static void test_credential_elements(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	(void)state;
	st_req_init(&r);
	s.credential = ST_KEY_ID "/20261127/us-east-1/secretsmanager";
	expect_refused(st_req_sign(&r, &s), "IncompleteSignatureException",
		       "Credential must have exactly 5 slash-delimited elements, e.g. "
		       "keyid/date/region/service/term, got '" ST_KEY_ID
		       "/20261127/us-east-1/secretsmanager'");
	s.credential = ST_KEY_ID "/20261127/us-east-1/secretsmanager/aws4_request/x";
	expect_refused(st_req_sign(&r, &s), "IncompleteSignatureException",
		       "Credential must have exactly 5 slash-delimited elements, e.g. "
		       "keyid/date/region/service/term, got '" ST_KEY_ID
		       "/20261127/us-east-1/secretsmanager/aws4_request/x'");
	/* Trailing slashes are not elements (AWS ignores them). */
	s.credential = ST_KEY_ID "/20261127/us-east-1/secretsmanager/aws4_request//";
	expect_ok(st_req_sign(&r, &s));
}

static void test_credential_scope(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	struct sigv4_options o = { .service = "service" };
	(void)state;
	st_req_init(&r);
	/* Any region: it is reported, for ARNs. */
	static const char *const regions[] = { "ap-southeast-2", "eu-west-3", "us-gov-west-1",
					       "local" };
	for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
		s.region = regions[i];
		expect_ok_at(st_req_sign(&r, &s), ST_NOW, NULL, regions[i]);
	}
	s.region = "US_EAST_1";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "Credential should be scoped to a valid region, not 'US_EAST_1'.");
	s.region = "a-region-name-longer-than-31-chars";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "Credential should be scoped to a valid region, not "
		       "'a-region-name-longer-than-31-chars'.");
	s = st_signer_default();
	s.service = "s3";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "Credential should be scoped to correct service: 'secretsmanager'.");
	/* The service is the caller's to choose (AWS's vectors use "service"). */
	s.service = "secretsmanager";
	expect_refused_at(st_req_sign(&r, &s), ST_NOW, &o, "InvalidSignatureException",
			  "Credential should be scoped to correct service: 'service'.", false);
	s = st_signer_default();
	s.terminator = "aws4_requests";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "Credential should be scoped with a valid terminator: 'aws4_request', not "
		       "'aws4_requests'.");
	s = st_signer_default();
	s.day = "20261126";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
		       "date from HTTP: '20261126' != '20261127', from '20261127T195702Z'.");
	/* Every fault of the scope is named, in one message. */
	s.service = "kms";
	s.terminator = "aws5_request";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "Credential should be scoped to correct service: 'secretsmanager'. "
		       "Credential should be scoped with a valid terminator: 'aws4_request', not "
		       "'aws5_request'. Date in Credential scope does not match YYYYMMDD from "
		       "ISO-8601 version of date from HTTP: '20261126' != '20261127', from "
		       "'20261127T195702Z'.");
}

static void test_unknown_key(void **state)
{
	static const char *const ids[] = { "AKIAUNKNOWNEXAMPLE00", "AKIA-BAD", "akiaiosfodnn7example",
					   "" };
	struct st_req r;
	struct st_signer s = st_signer_default();
	(void)state;
	st_req_init(&r);
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		s.key_id = ids[i];
		expect_refused(st_req_sign(&r, &s), "UnrecognizedClientException", MSG_TOKEN);
	}
	/* No credentials at all: nobody is known. */
	struct sigv4_identity who;
	struct sigv4_error err;
	s = st_signer_default();
	assert_int_equal(sigv4_verify(NULL, NULL, st_req_sign(&r, &s), ST_NOW, &who, &err), -EACCES);
	assert_string_equal(err.type, "UnrecognizedClientException");
}

/* The request signed, its Signature= value replaced by sig (printf-style). */
static const struct sigv4_request *with_signature(struct st_req *r, const char *sig)
{
	char *p = strstr(r->auth, "Signature=");
	assert_non_null(p);
	snprintf(p + 10, sizeof(r->auth) - (size_t)(p + 10 - r->auth), "%s", sig);
	return st_req_view(r);
}

static void test_signature_shape(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	char good[65], bad[80];
	(void)state;
	st_req_init(&r);
	st_req_sign(&r, &s);
	snprintf(good, sizeof(good), "%s", strstr(r.auth, "Signature=") + 10);
	assert_int_equal(strlen(good), 64);
	expect_ok(with_signature(&r, good));
	/* 63 digits, 65 digits, a prefix of 1 byte (which gcry_mac_verify would
	 * accept), a non-hex digit, upper case, spaces inside: all refused. */
	snprintf(bad, sizeof(bad), "%.63s", good);
	expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	snprintf(bad, sizeof(bad), "%s0", good);
	expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	snprintf(bad, sizeof(bad), "%.2s", good);
	expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	snprintf(bad, sizeof(bad), "%.32s", good);
	expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	snprintf(bad, sizeof(bad), "%.63sg", good);
	expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	for (size_t i = 0; i < 64; i++)
		bad[i] = (char)toupper((unsigned char)good[i]);
	bad[64] = '\0';
	if (strcmp(bad, good) != 0)
		expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	snprintf(bad, sizeof(bad), "%.32s %s", good, good + 32);
	expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	/* Every single byte of the signature counts. */
	for (size_t i = 0; i < 64; i++) {
		snprintf(bad, sizeof(bad), "%s", good);
		bad[i] = bad[i] == '0' ? '1' : '0';
		expect_refused(with_signature(&r, bad), "InvalidSignatureException", MSG_MISMATCH);
	}
}

static void test_tampering(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	(void)state;
	st_req_init(&r);
	s.secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException", MSG_MISMATCH);
	s = st_signer_default();
	static const struct { const char *name, *value; } changed[] = {
		{ "X-Amz-Target", "secretsmanager.PutSecretValue" },
		{ "host", "127.0.0.1:8081" },
		{ "Content-Type", "application/json" },
		{ "X-Amz-Date", "20261127T195703Z" },
	};
	for (size_t i = 0; i < sizeof(changed) / sizeof(changed[0]); i++) {
		st_req_init(&r);
		st_req_sign(&r, &s);
		st_req_set(&r, changed[i].name, changed[i].value);
		expect_refused(st_req_view(&r), "InvalidSignatureException", MSG_MISMATCH);
	}
	st_req_init(&r);
	st_req_sign(&r, &s);
	r.body = "{\"SecretId\": \"prod/db/passwore\"}";
	expect_refused(st_req_view(&r), "InvalidSignatureException", MSG_MISMATCH);
	r.body = "";
	expect_refused(st_req_view(&r), "InvalidSignatureException", MSG_MISMATCH);
	/* What is not signed may change; names are any case, values trimmed. */
	st_req_init(&r);
	st_req_sign(&r, &s);
	st_req_set(&r, "User-Agent", "aws-cli/2.9.19");
	st_req_set(&r, "amz-sdk-request", "ttl=20261127T195802Z; attempt=2; max=5");
	st_req_set(&r, "Content-Length", "33");
	r.h[0].name = "X-AMZ-TARGET";
	st_req_set(&r, "Content-Type", " \t application/x-amz-json-1.1  ");
	expect_ok(st_req_view(&r));
}

static void test_content_sha256(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	uint8_t d[32];
	char hash[65], upper[65];
	(void)state;
	crypto_sha256(ST_BODY, strlen(ST_BODY), d);
	hex_encode(d, 32, hash);
	for (size_t i = 0; i < 65; i++)
		upper[i] = (char)toupper((unsigned char)hash[i]);
	st_req_init(&r);
	st_req_set(&r, "X-Amz-Content-SHA256", hash);
	expect_ok(st_req_sign(&r, &s));
	s.signed_headers = "content-type;host;x-amz-content-sha256;x-amz-date;x-amz-target";
	expect_ok(st_req_sign(&r, &s));
	static const char *const wrong[] = {
		"UNSIGNED-PAYLOAD", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "", NULL,
	};
	for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		st_req_set(&r, "X-Amz-Content-SHA256", wrong[i] ? wrong[i] : upper);
		expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
			       "The provided 'x-amz-content-sha256' header does not match what was "
			       "computed.");
	}
}

static void test_date_header(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	(void)state;
	st_req_init(&r);
	st_req_del(&r, "X-Amz-Date");
	st_req_set(&r, "Date", "Fri, 27 Nov 2026 19:57:02 GMT");
	s.signed_headers = "content-type;date;host;x-amz-target";
	expect_ok(st_req_sign(&r, &s));
	expect_refused_at(st_req_view(&r), ST_NOW + 301, NULL, "InvalidSignatureException",
			  "Signature expired: 20261127T195702Z is now earlier than 20261127T195703Z "
			  "(20261127T200203Z - 5 min.)", false);
	st_req_set(&r, "Date", ST_DATE);
	expect_ok(st_req_sign(&r, &s));
	s.signed_headers = "content-type;host;x-amz-target";
	expect_refused(st_req_sign(&r, &s), "InvalidSignatureException",
		       "'Date' must be a 'SignedHeader' in the AWS Authorization.");
	/* X-Amz-Date wins over Date. */
	st_req_init(&r);
	st_req_set(&r, "Date", "Sun, 30 Aug 2015 12:36:00 GMT");
	s = st_signer_default();
	expect_ok(st_req_sign(&r, &s));
}

static void test_session_token(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	(void)state;
	st_req_init(&r);
	st_req_set(&r, "X-Amz-Security-Token", "FwoGZXIvYXdzEBYaDH2example");
	s.signed_headers = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target";
	expect_refused(st_req_sign(&r, &s), "UnrecognizedClientException", MSG_TOKEN);
	s.signed_headers = ST_SIGNED;
	expect_refused(st_req_sign(&r, &s), "UnrecognizedClientException", MSG_TOKEN);
	/* The signature is checked first: a forged request says so. */
	r.body = "{}";
	expect_refused(st_req_view(&r), "InvalidSignatureException", MSG_MISMATCH);
}

static void test_debug_echo(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	struct sigv4_options o = { .debug = true };
	char canon[1024], sts[512], want[2048], hexd[65];
	uint8_t d[32];
	(void)state;
	st_req_init(&r);
	s.secret = "another secret key of 40 characters....";
	st_req_sign(&r, &s);
	expect_refused(st_req_view(&r), "InvalidSignatureException", MSG_MISMATCH);
	crypto_sha256(ST_BODY, strlen(ST_BODY), d);
	hex_encode(d, 32, hexd);
	snprintf(canon, sizeof(canon), "POST\n/\n\ncontent-type:application/x-amz-json-1.1\n"
		 "host:127.0.0.1:8080\nx-amz-date:" ST_DATE "\nx-amz-target:"
		 "secretsmanager.GetSecretValue\n\n" ST_SIGNED "\n%s", hexd);
	crypto_sha256(canon, strlen(canon), d);
	hex_encode(d, 32, hexd);
	snprintf(sts, sizeof(sts), "AWS4-HMAC-SHA256\n" ST_DATE
		 "\n20261127/us-east-1/secretsmanager/aws4_request\n%s", hexd);
	snprintf(want, sizeof(want), MSG_MISMATCH "\n\nThe Canonical String for this request "
		 "should have been\n'%s'\n\nThe String-to-Sign should have been\n'%s'\n", canon, sts);
	expect_refused_at(st_req_view(&r), ST_NOW, &o, "InvalidSignatureException", want, false);
}

/* The canonical URI and query the verifier builds, read from its debug echo
 * (AWS's vectors cover most forms; these are the ones they leave out). */
static void check_canonical(const char *path, const char *query, const char *want)
{
	struct sigv4_header h[] = {
		{ "Host", "example.amazonaws.com" },
		{ "X-Amz-Date", ST_DATE },
		{ "Authorization", "AWS4-HMAC-SHA256 Credential=" ST_KEY_ID "/20261127/us-east-1/"
				   "secretsmanager/aws4_request, SignedHeaders=host;x-amz-date, "
				   "Signature=0000000000000000000000000000000000000000000000000000000000000000" },
	};
	struct sigv4_request req = { "GET", path, query, h, 3, NULL, 0 };
	struct sigv4_options o = { .debug = true, .target_optional = true };
	struct sigv4_identity who;
	struct sigv4_error err;
	char expect[512];
	assert_int_equal(sigv4_verify(fx.creds, &o, &req, ST_NOW, &who, &err), -EACCES);
	snprintf(expect, sizeof(expect), "should have been\n'GET\n%s\nhost:", want);
	if (!strstr(err.message, expect))
		fail_msg("path '%s' query '%s': expected\n%s\nin\n%s", path, query, expect,
			 err.message);
}

static void test_canonical_forms(void **state)
{
	(void)state;
	/* Sorted by name, then by value: not as "name=value" strings ('-' < '='). */
	check_canonical("/", "Param-3=y&Param=x", "/\nParam=x&Param-3=y");
	check_canonical("/", "b=2&a=3&a=1&c", "/\na=1&a=3&b=2&c=");
	/* Decoded, then encoded again: one spelling for each character; '+' is
	 * a plus sign, a broken escape a percent sign. */
	check_canonical("/", "a%20b=c+d&%7e=%41", "/\na%20b=c%2Bd&~=A");
	check_canonical("/", "x=%zz%4&&y=", "/\nx=%25zz%254&y=");
	check_canonical("/", "k=%E1%88%b4&K=\xe1\x88\xb4", "/\nK=%E1%88%B4&k=%E1%88%B4");
	/* Dot segments and empty segments go; the path, already encoded by the
	 * client, is encoded again (not S3: its '%' becomes %25). */
	check_canonical("/a/./b/../c//d%2Fe/", "", "/a/c/d%252Fe/\n");
	check_canonical("/../..", "", "/\n");
	check_canonical("", "", "/\n");
	check_canonical("/a b/~x*", "", "/a%20b/~x%2A\n");
}

/* One log line per refusal, naming its rule; never a secret, a signature,
 * the body, or an id nobody has. */
static void test_log_lines(void **state)
{
	struct st_req r;
	struct st_signer s = st_signer_default();
	struct sigv4_identity who;
	struct sigv4_error err;
	char log_path[TU_PATH_MAX], sig[65];
	(void)state;
	assert_int_equal(st_log_begin(log_path, fx.dir), 0);
	size_t refusals = 0;
	const struct sigv4_request *req;

	st_req_init(&r);
	req = st_req_view(&r);
	assert_int_equal(sigv4_verify(fx.creds, NULL, req, ST_NOW, &who, &err), -EACCES);
	refusals++;
	req = st_req_sign(&r, &s);
	assert_int_equal(sigv4_verify(fx.creds, NULL, req, ST_NOW + 400, &who, &err), -EACCES);
	refusals++;
	s.key_id = "AKIANOBODYHASTHISKEY";
	req = st_req_sign(&r, &s);
	assert_int_equal(sigv4_verify(fx.creds, NULL, req, ST_NOW, &who, &err), -EACCES);
	refusals++;
	s = st_signer_default();
	s.secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
	req = st_req_sign(&r, &s);
	snprintf(sig, sizeof(sig), "%s", strstr(r.auth, "Signature=") + 10);
	struct sigv4_options o = { .debug = true };
	assert_int_equal(sigv4_verify(fx.creds, &o, req, ST_NOW, &who, &err), -EACCES);
	refusals++;
	st_req_set(&r, "Authorization", "AWS4-HMAC-SHA256 Credential=" ST_KEY_ID "/x");
	assert_int_equal(sigv4_verify(fx.creds, NULL, st_req_view(&r), ST_NOW, &who, &err),
			 -EACCES);
	refusals++;
	s = st_signer_default();
	req = st_req_sign(&r, &s);
	assert_int_equal(sigv4_verify(fx.creds, NULL, req, ST_NOW, &who, &err), 0);

	char *log = st_log_end(log_path);
	assert_non_null(log);
	assert_int_equal(st_count(log, "\n"), refusals);
	assert_int_equal(st_count(log, "api: request refused ("), refusals);
	assert_non_null(strstr(log, "(MissingAuthenticationTokenException): no Authorization header"));
	assert_non_null(strstr(log, "the date is older than the clock-skew window"));
	assert_non_null(strstr(log, "(UnrecognizedClientException): unknown access key id\n"));
	assert_non_null(strstr(log, "the signature does not match; access key id " ST_KEY_ID "\n"));
	assert_non_null(strstr(log, "(IncompleteSignatureException): the Authorization header "
				    "lacks Signature, SignedHeaders\n"));
	assert_null(strstr(log, "AKIANOBODYHASTHISKEY"));
	assert_null(strstr(log, "EXAMPLEKEY"));
	assert_null(strstr(log, "EXAMPLEKEZ"));
	assert_null(strstr(log, sig));
	assert_null(strstr(log, "prod/db/password"));
	assert_null(strstr(log, "Canonical"));
	free(log);
}

/* A loaded set is read-only: verifications on several threads at once. */
static void *verify_many(void *arg)
{
	long bad = 0;
	(void)arg;
	for (int i = 0; i < 200; i++) {
		struct st_req r;
		struct st_signer s = st_signer_default();
		struct sigv4_identity who;
		struct sigv4_error err;
		if (i % 2)
			s.secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ";
		st_req_init(&r);
		int rc = sigv4_verify(fx.creds, NULL, st_req_sign(&r, &s), ST_NOW, &who, &err);
		if (i % 2 ? rc != -EACCES : rc != 0 || strcmp(who.principal, ST_PRINCIPAL) != 0)
			bad++;
	}
	return (void *)bad;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	(void)state;
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, verify_many, NULL), 0);
	for (int i = 0; i < 4; i++) {
		void *bad;
		assert_int_equal(pthread_join(t[i], &bad), 0);
		assert_int_equal((long)bad, 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_request),
		cmocka_unit_test(test_missing_authentication),
		cmocka_unit_test(test_incomplete_authorization),
		cmocka_unit_test(test_no_date),
		cmocka_unit_test(test_bad_date_syntax),
		cmocka_unit_test(test_clock_skew),
		cmocka_unit_test(test_headers_that_must_be_signed),
		cmocka_unit_test(test_algorithm),
		cmocka_unit_test(test_credential_elements),
		cmocka_unit_test(test_credential_scope),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_signature_shape),
		cmocka_unit_test(test_tampering),
		cmocka_unit_test(test_content_sha256),
		cmocka_unit_test(test_date_header),
		cmocka_unit_test(test_session_token),
		cmocka_unit_test(test_debug_echo),
		cmocka_unit_test(test_canonical_forms),
		cmocka_unit_test(test_log_lines),
		cmocka_unit_test(test_threads),
	};
	return tu_run_group("sigv4_errors", tests, group_setup, group_teardown);
}
