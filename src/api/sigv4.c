/*
 * SigV4 verification (api/sigv4.h): the checks in the order AWS's JSON
 * front end makes them, with its error names and messages
 * (docs/api.md, "Authentication").
 *
 * Nothing here touches a secret access key: credentials.c derives the
 * signing key and computes the MAC. What this file builds (the canonical
 * request, the string to sign) holds header values and a body's hash,
 * never the body, and goes to the client only when the caller asks (debug).
 */
#include "api/sigv4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/canonical.h"
#include "api/credentials.h"
#include "crypto/crypto.h"
#include "util/hex.h"
#include "util/log.h"

#define ALGORITHM "AWS4-HMAC-SHA256"
#define TERMINATOR "aws4_request"
#define DEFAULT_SERVICE "secretsmanager"
#define DEFAULT_SKEW_S 300
#define BASIC_LEN 16 /* YYYYMMDDTHHMMSSZ */
#define ECHO_MAX 128 /* how much of a bad value a message repeats */

#define MSG_MISSING "Request is missing Authentication Token"
#define MSG_TOKEN "The security token included in the request is invalid."
#define MSG_MISMATCH                                                                       \
	"The request signature we calculated does not match the signature you provided. "  \
	"Check your AWS Secret Access Key and signing method. Consult the service "         \
	"documentation for details."

struct span {
	const char *p;
	size_t len;
};

static bool span_is(struct span s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

/* ---- dates ---------------------------------------------------------------- */

static bool digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

/* A broken-down UTC time that names a real second, as epoch seconds. */
static bool make_time(int y, int mo, int d, int h, int mi, int s, time_t *out)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			 .tm_hour = h, .tm_min = mi, .tm_sec = s };
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59)
		return false;
	time_t t = timegm(&tm);
	struct tm back;
	if (t == (time_t)-1 || !gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1)
		return false; /* 30 February */
	*out = t;
	return true;
}

/* YYYYMMDDTHHMMSSZ */
static bool parse_basic(const char *v, time_t *out)
{
	int y, mo, d, h, mi, s;
	return strlen(v) == BASIC_LEN && v[8] == 'T' && v[15] == 'Z' && digits(v, 4, &y) &&
	       digits(v + 4, 2, &mo) && digits(v + 6, 2, &d) && digits(v + 9, 2, &h) &&
	       digits(v + 11, 2, &mi) && digits(v + 13, 2, &s) && make_time(y, mo, d, h, mi, s, out);
}

/* HTTP's IMF-fixdate, "Sun, 30 Aug 2015 12:36:00 GMT": a Date header's form. */
static bool parse_http_date(const char *v, time_t *out)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	int y, mo = 0, d, h, mi, s;
	if (strlen(v) != 29 || v[3] != ',' || v[4] != ' ' || v[7] != ' ' || v[11] != ' ' ||
	    v[16] != ' ' || v[19] != ':' || v[22] != ':' || strcmp(v + 25, " GMT") != 0)
		return false;
	for (int i = 0; i < 12; i++)
		if (memcmp(v + 8, months + 3 * i, 3) == 0)
			mo = i + 1;
	return mo && digits(v + 5, 2, &d) && digits(v + 12, 4, &y) && digits(v + 17, 2, &h) &&
	       digits(v + 20, 2, &mi) && digits(v + 23, 2, &s) && make_time(y, mo, d, h, mi, s, out);
}

static void format_basic(time_t t, char out[BASIC_LEN + 1])
{
	struct tm tm;
	if (!gmtime_r(&t, &tm) || strftime(out, BASIC_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != BASIC_LEN)
		out[0] = '\0'; /* a year past 9999: no date matches it */
}

/* ---- the checks ----------------------------------------------------------- */

struct check {
	const struct sigv4_request *req;
	struct sigv4_error *err;
	char key_id[SIGV4_KEY_ID_MAX]; /* once known: the log names it (never a secret) */
};

static void say(struct sigv4_error *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends to err->message, cut at its size. */
static void say(struct sigv4_error *err, const char *fmt, ...)
{
	size_t used = strlen(err->message);
	va_list ap;
	if (used + 1 >= sizeof(err->message))
		return;
	va_start(ap, fmt);
	vsnprintf(err->message + used, sizeof(err->message) - used, fmt, ap);
	va_end(ap);
}

/* The one log line of a refusal: the rule, never a value of the request. */
static int refuse(struct check *c, const char *type, const char *rule)
{
	snprintf(c->err->type, sizeof(c->err->type), "%s", type);
	if (c->key_id[0])
		log_warn("api: request refused (%s): %s; access key id %s", type, rule, c->key_id);
	else
		log_warn("api: request refused (%s): %s", type, rule);
	return -EACCES;
}

/* Not a refusal: the request could not be checked (-ENOMEM, or crypto's error). */
static int failed(struct check *c, int rc)
{
	snprintf(c->err->type, sizeof(c->err->type), "InternalServiceError");
	snprintf(c->err->message, sizeof(c->err->message), "An error occurred on the server side.");
	log_error("api: request not verified: %s", strerror(-rc));
	return rc;
}

static const char *header_first(const struct sigv4_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (sigv4_name_eq(req->headers[i].name, name, strlen(name)))
			return req->headers[i].value ? req->headers[i].value : "";
	return NULL;
}

static int echo_len(size_t len)
{
	return (int)(len < ECHO_MAX ? len : ECHO_MAX);
}

struct authz {
	struct span algorithm, credential, signed_headers, signature;
	bool has_credential, has_signed_headers, has_signature;
};

static struct span trim(const char *p, size_t len)
{
	while (len && sigv4_is_ws(*p)) {
		p++;
		len--;
	}
	while (len && sigv4_is_ws(p[len - 1]))
		len--;
	return (struct span){ p, len };
}

/* "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=..." */
static int parse_authz(struct check *c, const char *auth, struct authz *z)
{
	const char *p = auth;
	while (sigv4_is_ws(*p))
		p++;
	const char *alg = p;
	while (*p && !sigv4_is_ws(*p))
		p++;
	z->algorithm = (struct span){ alg, (size_t)(p - alg) };
	while (*p) {
		const char *start = p;
		while (*p && *p != ',')
			p++;
		struct span piece = trim(start, (size_t)(p - start));
		if (*p)
			p++;
		if (!piece.len)
			continue;
		const char *eq = memchr(piece.p, '=', piece.len);
		if (!eq) {
			say(c->err, "'%.*s' not a valid key=value pair (missing equal-sign) in "
				    "Authorization header: '%s'.", echo_len(piece.len), piece.p, auth);
			return refuse(c, "IncompleteSignatureException",
				      "an Authorization parameter has no '='");
		}
		struct span key = { piece.p, (size_t)(eq - piece.p) };
		struct span val = { eq + 1, piece.len - key.len - 1 };
		struct span *slot = NULL;
		bool *seen = NULL;
		if (span_is(key, "Credential"))
			slot = &z->credential, seen = &z->has_credential;
		else if (span_is(key, "SignedHeaders"))
			slot = &z->signed_headers, seen = &z->has_signed_headers;
		else if (span_is(key, "Signature"))
			slot = &z->signature, seen = &z->has_signature;
		if (!slot)
			continue; /* AWS ignores parameters it does not know */
		if (*seen) {
			say(c->err, "Authorization header has parameter '%.*s' more than once. "
				    "Authorization=%s", (int)key.len, key.p, auth);
			return refuse(c, "IncompleteSignatureException",
				      "an Authorization parameter is repeated");
		}
		*seen = true;
		*slot = val;
	}
	return 0;
}

static bool is_signed(const struct authz *z, const char *name)
{
	const char *p = z->signed_headers.p, *end = p + z->signed_headers.len;
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		size_t len = semi ? (size_t)(semi - p) : (size_t)(end - p);
		if (sigv4_name_eq(name, p, len))
			return true;
		p += len + 1;
	}
	return false;
}

static bool region_valid(struct span r)
{
	if (!r.len || r.len >= SIGV4_REGION_MAX)
		return false;
	for (size_t i = 0; i < r.len; i++)
		if (!((r.p[i] >= 'a' && r.p[i] <= 'z') || (r.p[i] >= '0' && r.p[i] <= '9') ||
		      r.p[i] == '-'))
			return false;
	return true;
}

static bool lower_hex(struct span s, size_t len)
{
	if (s.len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s.p[i] >= '0' && s.p[i] <= '9') || (s.p[i] >= 'a' && s.p[i] <= 'f')))
			return false;
	return true;
}

/* Credential scope: keyid/date/region/service/terminator, trailing '/' ignored. */
static int split_credential(struct check *c, struct span cred, struct span part[5])
{
	size_t len = cred.len, n = 0;
	while (len && cred.p[len - 1] == '/')
		len--;
	const char *p = cred.p, *end = cred.p + len;
	for (;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		const char *stop = slash ? slash : end;
		if (n < 5)
			part[n] = (struct span){ p, (size_t)(stop - p) };
		n++;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (n != 5) {
		say(c->err, "Credential must have exactly 5 slash-delimited elements, e.g. "
			    "keyid/date/region/service/term, got '%.*s'", echo_len(cred.len), cred.p);
		return refuse(c, "IncompleteSignatureException",
			      "the Credential has not exactly 5 elements");
	}
	return 0;
}

static int check_scope(struct check *c, const struct span part[5], const char *service,
		       const char *basic)
{
	const char *rule = NULL;
	if (!region_valid(part[2])) {
		say(c->err, "Credential should be scoped to a valid region, not '%.*s'. ",
		    echo_len(part[2].len), part[2].p);
		rule = "the Credential's region is not a region name";
	}
	if (!span_is(part[3], service)) {
		say(c->err, "Credential should be scoped to correct service: '%s'. ", service);
		rule = rule ? rule : "the Credential is scoped to another service";
	}
	if (!span_is(part[4], TERMINATOR)) {
		say(c->err, "Credential should be scoped with a valid terminator: '" TERMINATOR
			    "', not '%.*s'. ", echo_len(part[4].len), part[4].p);
		rule = rule ? rule : "the Credential's terminator is not aws4_request";
	}
	if (part[1].len != 8 || memcmp(part[1].p, basic, 8) != 0) {
		say(c->err, "Date in Credential scope does not match YYYYMMDD from ISO-8601 "
			    "version of date from HTTP: '%.*s' != '%.8s', from '%s'. ",
		    echo_len(part[1].len), part[1].p, basic, basic);
		rule = rule ? rule : "the Credential's date is not the request's day";
	}
	if (!rule)
		return 0;
	size_t n = strlen(c->err->message);
	if (n && c->err->message[n - 1] == ' ')
		c->err->message[n - 1] = '\0';
	return refuse(c, "InvalidSignatureException", rule);
}

static void skew_text(long skew, char *buf, size_t len)
{
	if (skew % 60 == 0)
		snprintf(buf, len, "%ld min", skew / 60);
	else
		snprintf(buf, len, "%ld s", skew);
}

/*
 * The Authorization header's three parts and a date header, all named at once
 * when missing; then the date: X-Amz-Date (basic format), else Date (that or
 * HTTP's form), into *when, and which of the two it was.
 */
static int check_parts_and_date(struct check *c, const char *auth, const struct authz *z,
				time_t *when, const char **date_header, struct sigv4_text *value)
{
	char rule[128] = "";
	*date_header = "x-amz-date";
	sigv4_header_canonical(c->req, "x-amz-date", 10, value);
	if (!value->failed && value->len == 0) {
		*date_header = "date";
		sigv4_header_canonical(c->req, "date", 4, value);
	}
	if (value->failed)
		return failed(c, -ENOMEM);
	static const char *const names[] = { "Credential", "Signature", "SignedHeaders" };
	bool missing[] = { !z->has_credential || !z->credential.len,
			   !z->has_signature || !z->signature.len, !z->has_signed_headers };
	for (int i = 0; i < 3; i++)
		if (missing[i]) {
			say(c->err, "Authorization header requires '%s' parameter. ", names[i]);
			snprintf(rule + strlen(rule), sizeof(rule) - strlen(rule), "%s%s",
				 rule[0] ? ", " : "the Authorization header lacks ", names[i]);
		}
	if (value->len == 0) {
		say(c->err, "Authorization header requires existence of either a 'X-Amz-Date' or "
			    "a 'Date' header. ");
		snprintf(rule + strlen(rule), sizeof(rule) - strlen(rule), "%s",
			 rule[0] ? "; no X-Amz-Date or Date header" : "no X-Amz-Date or Date header");
	}
	if (rule[0]) {
		say(c->err, "Authorization=%s", auth);
		return refuse(c, "IncompleteSignatureException", rule);
	}
	bool ok = parse_basic(value->p, when) ||
		  (strcmp(*date_header, "date") == 0 && parse_http_date(value->p, when));
	if (!ok) {
		say(c->err, "Date must be in ISO-8601 'basic format'. Got '%.*s'. See "
			    "http://en.wikipedia.org/wiki/ISO_8601", echo_len(value->len), value->p);
		return refuse(c, "IncompleteSignatureException",
			      "the date is not in ISO 8601 basic format");
	}
	return 0;
}

static int check_window(struct check *c, time_t when, time_t now, long skew)
{
	char at[BASIC_LEN + 1], edge[BASIC_LEN + 1], now_s[BASIC_LEN + 1], window[32];
	format_basic(when, at);
	format_basic(now, now_s);
	skew_text(skew, window, sizeof(window));
	if (when < now - skew) {
		format_basic(now - skew, edge);
		say(c->err, "Signature expired: %s is now earlier than %s (%s - %s.)", at, edge,
		    now_s, window);
		return refuse(c, "InvalidSignatureException",
			      "the date is older than the clock-skew window");
	}
	if (when > now + skew) {
		format_basic(now + skew, edge);
		say(c->err, "Signature not yet current: %s is still later than %s (%s + %s.)", at,
		    edge, now_s, window);
		return refuse(c, "InvalidSignatureException",
			      "the date is later than the clock-skew window");
	}
	return 0;
}

/* AWS requires host and the x-amz-* headers it acts on to be signed. */
static int check_signed(struct check *c, const struct authz *z, const char *date_header,
			bool target_optional)
{
	const char *miss = NULL, *rule = NULL;
	if (!is_signed(z, "host"))
		miss = "Host", rule = "host is not a signed header";
	else if (!is_signed(z, date_header))
		miss = strcmp(date_header, "date") == 0 ? "Date" : "X-Amz-Date",
		rule = "the date header is not signed";
	else if (!target_optional && !is_signed(z, "x-amz-target"))
		miss = "X-Amz-Target", rule = "x-amz-target is not a signed header";
	if (!miss)
		return 0;
	say(c->err, "'%s' must be a 'SignedHeader' in the AWS Authorization.", miss);
	return refuse(c, "InvalidSignatureException", rule);
}

static void mismatch(struct check *c, bool debug, const struct sigv4_text *canon,
		     const struct sigv4_text *sts)
{
	say(c->err, MSG_MISMATCH);
	if (debug)
		say(c->err, "\n\nThe Canonical String for this request should have been\n'%s'\n\n"
			    "The String-to-Sign should have been\n'%s'\n", canon->p, sts->p);
}

/* The body as received is what was signed, whatever a client claims its hash is. */
static int check_payload(struct check *c, char payload_hex[65])
{
	struct sigv4_text claimed = { 0 };
	uint8_t digest[32];
	int rc = 0;
	crypto_sha256(c->req->body ? (const void *)c->req->body : "", c->req->body_len, digest);
	hex_encode(digest, 32, payload_hex);
	if (!sigv4_header_canonical(c->req, "x-amz-content-sha256", 20, &claimed))
		return 0;
	if (claimed.failed) {
		rc = failed(c, -ENOMEM);
	} else if (claimed.len != 64 || strcmp(claimed.p, payload_hex) != 0) {
		say(c->err, "The provided 'x-amz-content-sha256' header does not match what was "
			    "computed.");
		rc = refuse(c, "InvalidSignatureException",
			    "x-amz-content-sha256 is not the body's hash");
	}
	sigv4_text_free(&claimed);
	return rc;
}

/* SigV4 step 3: algorithm, date, scope, hash of the canonical request. */
static int string_to_sign(const char *basic, const struct span part[5], const char *service,
			  const struct sigv4_text *canon, struct sigv4_text *sts)
{
	uint8_t digest[32];
	char canon_hex[65];
	crypto_sha256(canon->p, canon->len, digest);
	hex_encode(digest, 32, canon_hex);
	sigv4_text_adds(sts, ALGORITHM "\n");
	sigv4_text_adds(sts, basic);
	sigv4_text_addc(sts, '\n');
	sigv4_text_add(sts, part[1].p, part[1].len);
	sigv4_text_addc(sts, '/');
	sigv4_text_add(sts, part[2].p, part[2].len);
	sigv4_text_addc(sts, '/');
	sigv4_text_adds(sts, service);
	sigv4_text_adds(sts, "/" TERMINATOR "\n");
	sigv4_text_adds(sts, canon_hex);
	return sts->failed ? -ENOMEM : 0;
}

/*
 * Steps 4 and 5: exactly 64 lowercase hex digits, then all 32 bytes
 * compared in constant time. A shorter signature must never pass as a
 * prefix (gcry_mac_verify would accept one, so it is not used).
 */
static int check_signature(struct check *c, const struct sigv4_key *key, const struct authz *z,
			   const struct span part[5], const char *service, bool debug,
			   const struct sigv4_text *canon, const struct sigv4_text *sts)
{
	char sig_text[65], day[9], region[SIGV4_REGION_MAX];
	uint8_t given[32], mac[32];
	bool shaped = lower_hex(z->signature, 64);
	if (shaped) {
		memcpy(sig_text, z->signature.p, 64);
		sig_text[64] = '\0';
		shaped = hex_decode(sig_text, given, sizeof(given)) == 0;
	}
	if (!shaped) {
		mismatch(c, debug, canon, sts);
		return refuse(c, "InvalidSignatureException",
			      "the signature is not 64 lowercase hex digits");
	}
	snprintf(day, sizeof(day), "%.8s", part[1].p);
	snprintf(region, sizeof(region), "%.*s", (int)part[2].len, part[2].p);
	int rc = sigv4_key_sign(key, day, region, service, sts->p, sts->len, mac);
	if (rc)
		return failed(c, rc);
	if (!crypto_equal(mac, given, sizeof(mac))) {
		mismatch(c, debug, canon, sts);
		return refuse(c, "InvalidSignatureException", "the signature does not match");
	}
	return 0;
}

int sigv4_verify(const struct sigv4_credentials *creds, const struct sigv4_options *opt,
		 const struct sigv4_request *req, time_t now, struct sigv4_identity *who,
		 struct sigv4_error *err)
{
	struct check c = { .req = req, .err = err };
	struct sigv4_text date_value = { 0 }, canon = { 0 }, sts = { 0 };
	struct authz z = { 0 };
	struct span part[5];
	const char *date_header;
	time_t when;
	int rc;

	memset(err, 0, sizeof(*err));
	memset(who, 0, sizeof(*who));
	long skew = opt && opt->skew_s > 0 ? opt->skew_s : DEFAULT_SKEW_S;
	const char *service = opt && opt->service ? opt->service : DEFAULT_SERVICE;
	bool debug = opt && opt->debug, target_optional = opt && opt->target_optional;

	size_t nauth = sigv4_header_count(req, "authorization");
	const char *auth = header_first(req, "authorization");
	struct span a = auth ? trim(auth, strlen(auth)) : (struct span){ "", 0 };
	if (a.len < 5 || memcmp(a.p, "AWS4-", 5) != 0) {
		say(err, MSG_MISSING);
		rc = refuse(&c, "MissingAuthenticationTokenException",
			    auth ? "the Authorization header is not AWS4-" : "no Authorization header");
		goto out;
	}
	if (nauth > 1) {
		say(err, "Authorization header must appear only once.");
		rc = refuse(&c, "IncompleteSignatureException", "the Authorization header repeats");
		goto out;
	}
	if ((rc = parse_authz(&c, auth, &z)) ||
	    (rc = check_parts_and_date(&c, auth, &z, &when, &date_header, &date_value)) ||
	    (rc = check_window(&c, when, now, skew)) ||
	    (rc = check_signed(&c, &z, date_header, target_optional)))
		goto out;
	if (!span_is(z.algorithm, ALGORITHM)) {
		say(err, "Unsupported AWS 'algorithm': '%.*s' (only " ALGORITHM " for now).",
		    echo_len(z.algorithm.len), z.algorithm.p);
		rc = refuse(&c, "IncompleteSignatureException", "the algorithm is not " ALGORITHM);
		goto out;
	}
	char basic[BASIC_LEN + 1];
	format_basic(when, basic);
	if ((rc = split_credential(&c, z.credential, part)) ||
	    (rc = check_scope(&c, part, service, basic)))
		goto out;

	const struct sigv4_key *key = NULL;
	if (sigv4_key_id_valid(part[0].p, part[0].len)) {
		memcpy(c.key_id, part[0].p, part[0].len);
		c.key_id[part[0].len] = '\0';
		key = sigv4_credentials_find(creds, c.key_id);
	}
	if (!key) {
		c.key_id[0] = '\0'; /* an unknown id may be anything a client typed */
		say(err, MSG_TOKEN);
		rc = refuse(&c, "UnrecognizedClientException", "unknown access key id");
		goto out;
	}

	char payload_hex[65];
	if ((rc = check_payload(&c, payload_hex)))
		goto out;
	if ((rc = sigv4_canonical_request(req, z.signed_headers.p, z.signed_headers.len,
					   payload_hex, &canon)) ||
	    (rc = string_to_sign(basic, part, service, &canon, &sts))) {
		rc = failed(&c, rc);
		goto out;
	}
	if ((rc = check_signature(&c, key, &z, part, service, debug, &canon, &sts)))
		goto out;

	/* Session tokens come from STS; this server has none to accept. */
	if (sigv4_header_count(req, "x-amz-security-token")) {
		say(err, MSG_TOKEN);
		rc = refuse(&c, "UnrecognizedClientException",
			    "a session token was sent and no session credentials exist");
		goto out;
	}

	snprintf(who->access_key_id, sizeof(who->access_key_id), "%s", c.key_id);
	snprintf(who->principal, sizeof(who->principal), "%s", sigv4_key_principal(key));
	snprintf(who->region, sizeof(who->region), "%.*s", (int)part[2].len, part[2].p);
	rc = 0;
out:
	sigv4_text_free(&date_value);
	sigv4_text_free(&canon);
	sigv4_text_free(&sts);
	return rc;
}
