/*
 * Unit tests of api/sigv4 against published data: every case of AWS's
 * SigV4 test suite (tests/unit/data/sigv4/aws, from awslabs/aws-c-auth) and
 * a request Debian's botocore signed (tests/unit/data/sigv4/botocore). Each
 * request is parsed here from the file as published, verified, then every
 * signed header, the body and the signature are changed one byte at a time
 * and each copy must be refused. The canonical request and string to sign
 * the verifier builds are compared with AWS's through its debug echo.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <ctype.h>
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "sigv4_test.h"
#include "util/timeutil.h"

enum outcome {
	VERIFIES,
	TOKEN_REFUSED,  /* signed with a session token: this server has none */
	NOT_NORMALIZED, /* signed over a path left as it was (S3's rule, not this service's) */
};

static const struct {
	const char *name;
	enum outcome outcome;
} cases[] = {
	{ "get-header-key-duplicate", VERIFIES },
	{ "get-header-value-multiline", VERIFIES },
	{ "get-header-value-order", VERIFIES },
	{ "get-header-value-trim", VERIFIES },
	{ "get-relative-normalized", VERIFIES },
	{ "get-relative-relative-normalized", VERIFIES },
	{ "get-relative-relative-unnormalized", NOT_NORMALIZED },
	{ "get-relative-unnormalized", NOT_NORMALIZED },
	{ "get-slash-dot-slash-normalized", VERIFIES },
	{ "get-slash-dot-slash-unnormalized", NOT_NORMALIZED },
	{ "get-slash-normalized", VERIFIES },
	{ "get-slash-pointless-dot-normalized", VERIFIES },
	{ "get-slash-pointless-dot-unnormalized", NOT_NORMALIZED },
	{ "get-slash-unnormalized", NOT_NORMALIZED },
	{ "get-slashes-normalized", VERIFIES },
	{ "get-slashes-unnormalized", NOT_NORMALIZED },
	{ "get-space-normalized", VERIFIES },
	{ "get-space-unnormalized", VERIFIES }, /* nothing to normalise: the same request */
	{ "get-unreserved", VERIFIES },
	{ "get-utf8", VERIFIES },
	{ "get-vanilla", VERIFIES },
	{ "get-vanilla-empty-query-key", VERIFIES },
	{ "get-vanilla-query", VERIFIES },
	{ "get-vanilla-query-order-encoded", VERIFIES },
	{ "get-vanilla-query-order-key-case", VERIFIES },
	{ "get-vanilla-query-unreserved", VERIFIES },
	{ "get-vanilla-utf8-query", VERIFIES },
	{ "get-vanilla-with-session-token", TOKEN_REFUSED },
	{ "post-header-key-case", VERIFIES },
	{ "post-header-key-sort", VERIFIES },
	{ "post-header-value-case", VERIFIES },
	{ "post-sts-header-after", TOKEN_REFUSED },
	{ "post-sts-header-before", TOKEN_REFUSED },
	{ "post-vanilla", VERIFIES },
	{ "post-vanilla-empty-query-value", VERIFIES },
	{ "post-vanilla-query", VERIFIES },
	{ "post-x-www-form-urlencoded", VERIFIES },
	{ "post-x-www-form-urlencoded-parameters", VERIFIES },
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static struct {
	char dir[TU_PATH_MAX];
	const char *data;
} fx;

/* One published request, parsed, with what its context says. */
struct vector {
	char *method, *path, *query;
	struct sigv4_header h[32];
	size_t n;
	uint8_t *body;
	size_t body_len;
	char key_id[64], secret[64], region[32], service[32];
	time_t when;
};

static char *read_text(const char *dir, const char *name)
{
	char path[TU_PATH_MAX];
	uint8_t *data;
	size_t len;
	if (tu_read_file(tu_path(path, dir, name), &data, &len) != 0)
		fail_msg("%s: cannot read", path);
	char *text = realloc(data, len + 1);
	assert_non_null(text);
	text[len] = '\0';
	return text;
}

/* The next line of [*p, end) without its "\n" or "\r\n"; *p moves past it. */
static const char *next_line(const char **p, const char *end, size_t *len)
{
	const char *start = *p;
	if (start >= end) {
		*len = 0;
		return start;
	}
	const char *nl = memchr(start, '\n', (size_t)(end - start));
	const char *stop = nl ? nl : end;
	*p = nl ? nl + 1 : end;
	if (stop > start && stop[-1] == '\r')
		stop--;
	*len = (size_t)(stop - start);
	return start;
}

/*
 * An HTTP/1.1 request as the test suite writes it: "METHOD TARGET HTTP/1.1"
 * (the target may hold spaces: the version is after the last one), then
 * "Name:value" lines, a line starting with white space continuing the
 * previous value (obs-fold, unfolded into one space as RFC 9112 §5.2 allows
 * a server to do), a blank line, and the body as the rest of the file.
 */
static void parse_request(const char *text, size_t len, struct vector *v)
{
	const char *p = text, *end = text + len, *line;
	size_t ll;
	line = next_line(&p, end, &ll);
	const char *sp1 = memchr(line, ' ', ll), *sp2 = line + ll;
	while (sp2 > line && sp2[-1] != ' ')
		sp2--;
	assert_true(sp1 && sp2 - 1 > sp1);
	v->method = strndup(line, (size_t)(sp1 - line));
	const char *target = sp1 + 1, *target_end = sp2 - 1;
	const char *q = memchr(target, '?', (size_t)(target_end - target));
	v->path = strndup(target, (size_t)((q ? q : target_end) - target));
	v->query = q ? strndup(q + 1, (size_t)(target_end - q - 1)) : strdup("");
	for (;;) {
		line = next_line(&p, end, &ll);
		if (ll == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t') {
			assert_true(v->n > 0);
			char *joined;
			assert_true(asprintf(&joined, "%s %.*s", v->h[v->n - 1].value, (int)ll, line) > 0);
			free((char *)v->h[v->n - 1].value);
			v->h[v->n - 1].value = joined;
			continue;
		}
		const char *colon = memchr(line, ':', ll);
		assert_non_null(colon);
		assert_true(v->n < sizeof(v->h) / sizeof(v->h[0]));
		v->h[v->n].name = strndup(line, (size_t)(colon - line));
		v->h[v->n].value = strndup(colon + 1, (size_t)(line + ll - colon - 1));
		v->n++;
	}
	v->body_len = (size_t)(end - p);
	v->body = malloc(v->body_len + 1);
	memcpy(v->body, p, v->body_len);
}

static void copy_field(json_object *obj, const char *key, char *out, size_t cap)
{
	json_object *f;
	if (!json_object_object_get_ex(obj, key, &f))
		fail_msg("context.json: no %s", key);
	snprintf(out, cap, "%s", json_object_get_string(f));
}

static void load_vector(const char *dir, struct vector *v)
{
	char path[TU_PATH_MAX];
	uint8_t *raw;
	size_t len;
	memset(v, 0, sizeof(*v));
	assert_int_equal(tu_read_file(tu_path(path, dir, "header-signed-request.txt"), &raw, &len), 0);
	parse_request((const char *)raw, len, v);
	free(raw);
	char *ctx_text = read_text(dir, "context.json");
	json_object *ctx = json_tokener_parse(ctx_text), *cred;
	assert_non_null(ctx);
	assert_true(json_object_object_get_ex(ctx, "credentials", &cred));
	copy_field(cred, "access_key_id", v->key_id, sizeof(v->key_id));
	copy_field(cred, "secret_access_key", v->secret, sizeof(v->secret));
	copy_field(ctx, "region", v->region, sizeof(v->region));
	copy_field(ctx, "service", v->service, sizeof(v->service));
	char stamp[64];
	int64_t ms;
	copy_field(ctx, "timestamp", stamp, sizeof(stamp));
	assert_int_equal(time_parse_iso8601(stamp, &ms), 0);
	v->when = (time_t)(ms / 1000);
	json_object_put(ctx);
	free(ctx_text);
}

static void free_vector(struct vector *v)
{
	free(v->method);
	free(v->path);
	free(v->query);
	for (size_t i = 0; i < v->n; i++) {
		free((char *)v->h[i].name);
		free((char *)v->h[i].value);
	}
	free(v->body);
}

static struct sigv4_request view(const struct vector *v)
{
	return (struct sigv4_request){ v->method, v->path, v->query, v->h, v->n, v->body,
				       v->body_len };
}

static struct sigv4_header *header(struct vector *v, const char *name, size_t name_len)
{
	for (size_t i = 0; i < v->n; i++)
		if (strlen(v->h[i].name) == name_len && strncasecmp(v->h[i].name, name, name_len) == 0)
			return &v->h[i];
	return NULL;
}

/* verify, expecting a refusal of type (NULL: success); returns the message. */
static void check(const struct sigv4_credentials *creds, const struct sigv4_options *o,
		  struct vector *v, time_t now, const char *type, const char *what,
		  struct sigv4_error *err)
{
	struct sigv4_identity who;
	struct sigv4_request req = view(v);
	int rc = sigv4_verify(creds, o, &req, now, &who, err);
	if (!type && rc)
		fail_msg("%s: refused: %s: %s", what, err->type, err->message);
	if (type && (rc != -EACCES || strcmp(err->type, type) != 0))
		fail_msg("%s: expected %s, got %d %s", what, type, rc, rc ? err->type : "(success)");
	if (!type) {
		assert_string_equal(who.access_key_id, v->key_id);
		assert_string_equal(who.region, v->region);
		assert_string_equal(who.principal, "vector-signer");
	}
}

/* A byte of text changed so that trimming cannot undo it: a digit to the
 * next, else a letter to the other case, else the last character to 'X'. */
static void mutate(char *text)
{
	for (size_t i = strlen(text); i-- > 0;)
		if (isdigit((unsigned char)text[i])) {
			text[i] = text[i] == '9' ? '0' : (char)(text[i] + 1);
			return;
		}
	for (size_t i = strlen(text); i-- > 0;)
		if (isalpha((unsigned char)text[i])) {
			text[i] = (char)(islower((unsigned char)text[i]) ? toupper((unsigned char)text[i])
									 : tolower((unsigned char)text[i]));
			return;
		}
	size_t n = strlen(text);
	assert_true(n > 0);
	text[n - 1] = text[n - 1] == 'X' ? 'Y' : 'X';
}

/* Each signed header, the body and the signature, changed by one byte: refused. */
static void check_mutations(const struct sigv4_credentials *creds, const struct sigv4_options *o,
			    struct vector *v, const char *name)
{
	struct sigv4_error err;
	char what[256];
	struct sigv4_header *auth = header(v, "Authorization", 13);
	assert_non_null(auth);
	const char *sh = strstr(auth->value, "SignedHeaders=");
	assert_non_null(sh);
	sh += 14;
	for (const char *p = sh; *p && *p != ',';) {
		size_t nl = strcspn(p, ";,");
		struct sigv4_header *h = header(v, p, nl);
		assert_non_null(h);
		const char *saved = h->value;
		char *changed = strdup(saved);
		mutate(changed);
		h->value = changed;
		snprintf(what, sizeof(what), "%s with %s changed", name, h->name);
		check(creds, o, v, v->when, "InvalidSignatureException", what, &err);
		h->value = saved;
		free(changed);
		p += nl + (p[nl] == ';' ? 1 : 0);
	}

	uint8_t *saved_body = v->body;
	size_t saved_len = v->body_len;
	uint8_t one[1] = { 'x' };
	if (saved_len) {
		v->body = malloc(saved_len);
		memcpy(v->body, saved_body, saved_len);
		v->body[saved_len / 2] ^= 0x01;
	} else {
		v->body = one;
		v->body_len = 1;
	}
	snprintf(what, sizeof(what), "%s with its body changed", name);
	check(creds, o, v, v->when, "InvalidSignatureException", what, &err);
	if (saved_len)
		free(v->body);
	v->body = saved_body;
	v->body_len = saved_len;

	const char *saved_auth = auth->value;
	char *changed = strdup(saved_auth);
	char *sig = strstr(changed, "Signature=") + 10;
	assert_int_equal(strlen(sig), 64);
	for (size_t i = 0; i < 64; i += 9) {
		char was = sig[i];
		sig[i] = was == 'f' ? '0' : was == '9' ? 'a' : (char)(was + 1);
		auth->value = changed;
		snprintf(what, sizeof(what), "%s with signature digit %zu changed", name, i);
		check(creds, o, v, v->when, "InvalidSignatureException", what, &err);
		sig[i] = was;
	}
	auth->value = saved_auth;
	free(changed);
}

/* The canonical request and string to sign the verifier built, as its
 * debug echo gives them after a forged signature. */
static void echoed(const struct sigv4_credentials *creds, const struct sigv4_options *o,
		   struct vector *v, struct sigv4_error *err)
{
	struct sigv4_options debug = *o;
	struct sigv4_header *auth = header(v, "Authorization", 13);
	const char *saved = auth->value;
	char *forged = strdup(saved);
	char *sig = strstr(forged, "Signature=") + 10;
	sig[0] = sig[0] == '0' ? '1' : '0';
	auth->value = forged;
	debug.debug = true;
	check(creds, &debug, v, v->when, "InvalidSignatureException", "forged", err);
	auth->value = saved;
	free(forged);
}

static void contains_quoted(const char *message, const char *text, const char *what)
{
	char *quoted;
	assert_true(asprintf(&quoted, "'%s'", text) > 0);
	if (!strstr(message, quoted))
		fail_msg("%s: %s not in the echo:\n%s", what, quoted, message);
	free(quoted);
}

static void run_case(size_t i)
{
	char dir[TU_PATH_MAX], creds_text[256], what[128];
	struct sigv4_credentials *creds;
	struct vector v;
	struct sigv4_error err;
	snprintf(dir, sizeof(dir), "%s/aws/%s", fx.data, cases[i].name);
	load_vector(dir, &v);
	snprintf(creds_text, sizeof(creds_text), "%s %s vector-signer\n", v.key_id, v.secret);
	assert_int_equal(st_load_creds(fx.dir, creds_text, &creds), 0);
	struct sigv4_options o = { .service = v.service, .target_optional = true };

	/* The signed request is the published request.txt plus what signing added. */
	struct vector plain = { 0 };
	uint8_t *raw;
	size_t raw_len;
	char path[TU_PATH_MAX];
	assert_int_equal(tu_read_file(tu_path(path, dir, "request.txt"), &raw, &raw_len), 0);
	parse_request((const char *)raw, raw_len, &plain);
	free(raw);
	assert_string_equal(plain.method, v.method);
	assert_string_equal(plain.path, v.path);
	assert_string_equal(plain.query, v.query);
	assert_int_equal(plain.body_len, v.body_len);
	assert_memory_equal(plain.body, v.body, v.body_len);
	for (size_t k = 0; k < plain.n; k++) {
		bool found = false;
		for (size_t j = 0; j < v.n; j++)
			found |= strcmp(plain.h[k].name, v.h[j].name) == 0 &&
				 strcmp(plain.h[k].value, v.h[j].value) == 0;
		if (!found)
			fail_msg("%s: %s of request.txt not in the signed request", cases[i].name,
				 plain.h[k].name);
	}
	free_vector(&plain);

	/* The published signature is the one in the signed request. */
	char *want_sig = read_text(dir, "header-signature.txt");
	struct sigv4_header *auth = header(&v, "Authorization", 13);
	assert_non_null(auth);
	assert_string_equal(strstr(auth->value, "Signature=") + 10, want_sig);

	switch (cases[i].outcome) {
	case VERIFIES:
		check(creds, &o, &v, v.when, NULL, cases[i].name, &err);
		break;
	case TOKEN_REFUSED:
		check(creds, &o, &v, v.when, "UnrecognizedClientException", cases[i].name, &err);
		break;
	case NOT_NORMALIZED:
		check(creds, &o, &v, v.when, "InvalidSignatureException", cases[i].name, &err);
		break;
	}

	char *canon = read_text(dir, "header-canonical-request.txt");
	char *sts = read_text(dir, "header-string-to-sign.txt");
	echoed(creds, &o, &v, &err);
	if (cases[i].outcome == NOT_NORMALIZED) {
		/* What was built is the normalised twin's canonical request. */
		char twin[TU_PATH_MAX];
		snprintf(twin, sizeof(twin), "%.*s-normalized", (int)(strlen(dir) - 13), dir);
		char *twin_canon = read_text(twin, "header-canonical-request.txt");
		snprintf(what, sizeof(what), "%s (as its normalised twin)", cases[i].name);
		contains_quoted(err.message, twin_canon, what);
		assert_null(strstr(err.message, canon));
		free(twin_canon);
	} else {
		contains_quoted(err.message, canon, cases[i].name);
		contains_quoted(err.message, sts, cases[i].name);
		check_mutations(creds, &o, &v, cases[i].name);
	}
	free(canon);
	free(sts);
	free(want_sig);
	sigv4_credentials_free(creds);
	free_vector(&v);
}

static void test_aws_suite(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCASES; i++)
		run_case(i);
}

/* Every case of the suite as copied is in the table: none skipped unseen. */
static void test_aws_suite_complete(void **state)
{
	char path[TU_PATH_MAX];
	size_t seen = 0;
	(void)state;
	snprintf(path, sizeof(path), "%s/aws", fx.data);
	DIR *d = opendir(path);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.' || e->d_type != DT_DIR)
			continue;
		bool known = false;
		for (size_t i = 0; i < NCASES; i++)
			known |= strcmp(cases[i].name, e->d_name) == 0;
		if (!known)
			fail_msg("%s: a case of the suite the test does not run", e->d_name);
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, NCASES);
}

/* A GetSecretValue that Debian's boto3/botocore signed (make-request.py). */
static void test_botocore_request(void **state)
{
	char dir[TU_PATH_MAX], creds_text[256];
	struct sigv4_credentials *creds;
	struct vector v;
	struct sigv4_error err;
	struct sigv4_options o = { 0 };
	(void)state;
	snprintf(dir, sizeof(dir), "%s/botocore", fx.data);
	load_vector(dir, &v);
	assert_string_equal(v.service, "secretsmanager");
	snprintf(creds_text, sizeof(creds_text), "%s %s vector-signer\n", v.key_id, v.secret);
	assert_int_equal(st_load_creds(fx.dir, creds_text, &creds), 0);

	check(creds, &o, &v, v.when, NULL, "botocore", &err);
	check(creds, &o, &v, v.when + 300, NULL, "botocore, 300 s later", &err);
	check(creds, &o, &v, v.when + 301, "InvalidSignatureException", "botocore, 301 s later",
	      &err);
	assert_non_null(strstr(err.message, "Signature expired: 20261127T195702Z"));
	check(creds, &o, &v, v.when - 301, "InvalidSignatureException", "botocore, 301 s early",
	      &err);
	assert_non_null(strstr(err.message, "Signature not yet current: 20261127T195702Z"));
	check_mutations(creds, &o, &v, "botocore");

	/* What botocore adds after signing may change on the way. */
	static const char *const unsigned_headers[] = { "User-Agent", "amz-sdk-invocation-id",
							"amz-sdk-request", "Content-Length" };
	for (size_t i = 0; i < sizeof(unsigned_headers) / sizeof(unsigned_headers[0]); i++) {
		struct sigv4_header *h = header(&v, unsigned_headers[i], strlen(unsigned_headers[i]));
		assert_non_null(h);
		const char *saved = h->value;
		char *changed = strdup(saved);
		mutate(changed);
		h->value = changed;
		check(creds, &o, &v, v.when, NULL, unsigned_headers[i], &err);
		h->value = saved;
		free(changed);
	}
	sigv4_credentials_free(creds);
	free_vector(&v);
}

static int group_setup(void **state)
{
	(void)state;
	fx.data = getenv("SECRETSFS_SIGV4_DATA");
	if (!fx.data)
		fx.data = "tests/unit/data/sigv4";
	return tu_crypto_init() || tu_mkdtemp(fx.dir) ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return tu_rmrf(fx.dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_suite),
		cmocka_unit_test(test_aws_suite_complete),
		cmocka_unit_test(test_botocore_request),
	};
	return tu_run_group("sigv4_vectors", tests, group_setup, group_teardown);
}
