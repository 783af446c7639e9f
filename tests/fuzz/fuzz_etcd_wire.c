/*
 * fuzz_etcd_wire: every parser of include/cluster/etcd_wire.h on arbitrary
 * bytes, and the stream's line framing on the same bytes cut at a point the
 * first byte chooses. Properties: each parser answers 0, -EBADMSG or -EFBIG
 * (a watch message also -EPROTO, for a fragment; never another code, never
 * a crash); a failed parse leaves its output empty; framing the input in
 * two slices gives the same lines as in one.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "cluster/etcd_wire.h"

static void check_rc(int rc)
{
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -EFBIG);
}

struct digest {
	uint64_t sum;
	size_t lines;
};

static int on_line(void *ctx, const char *line, size_t len)
{
	struct digest *d = ctx;
	d->lines++;
	for (size_t i = 0; i < len; i++)
		d->sum = d->sum * 1099511628211ull + (unsigned char)line[i];
	d->sum = d->sum * 31 + len;
	struct etcd_watch_msg m;
	int rc = etcd_wire_watch_msg(line, len, &m);
	check_rc(rc == -EPROTO ? 0 : rc);
	if (rc)
		FUZZ_CHECK(m.events == NULL && m.n_events == 0);
	etcd_watch_msg_free(&m);
	return 0;
}

static void frame(const uint8_t *data, size_t size, size_t cut, struct digest *d)
{
	struct etcd_lines l;
	etcd_lines_init(&l, 4096);
	int rc = etcd_lines_feed(&l, data, cut, on_line, d);
	if (rc == 0)
		rc = etcd_lines_feed(&l, data + cut, size - cut, on_line, d);
	if (rc == 0)
		rc = etcd_lines_finish(&l, on_line, d);
	FUZZ_CHECK(rc == 0 || rc == -EFBIG);
	if (rc)
		d->lines = (size_t)-1; /* compared: both framings must refuse */
	etcd_lines_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	int rc;

	struct etcd_range_resp range;
	check_rc(rc = etcd_wire_range_response(json, size, &range));
	if (rc)
		FUZZ_CHECK(range.kvs == NULL && range.n_kvs == 0);
	etcd_range_resp_free(&range);

	struct etcd_txn_resp txn;
	check_rc(rc = etcd_wire_txn_response(json, size, &txn));
	if (rc)
		FUZZ_CHECK(txn.responses == NULL && txn.n_responses == 0);
	etcd_txn_resp_free(&txn);

	struct etcd_put_resp put;
	check_rc(etcd_wire_put_response(json, size, &put));
	etcd_put_resp_free(&put);
	struct etcd_delete_resp del;
	check_rc(etcd_wire_delete_response(json, size, &del));
	etcd_delete_resp_free(&del);
	struct etcd_status st;
	check_rc(etcd_wire_status_response(json, size, &st));
	struct etcd_header h;
	check_rc(etcd_wire_header_response(json, size, &h));
	int code;
	char msg[32];
	check_rc(rc = etcd_wire_error(json, size, &code, msg, sizeof(msg)));
	FUZZ_CHECK(rc ? code == 0 : (code > 0 && code <= 16));
	FUZZ_CHECK(strlen(msg) < sizeof(msg));
	char *token;
	check_rc(rc = etcd_wire_auth_response(json, size, &token));
	FUZZ_CHECK(rc ? token == NULL : token != NULL);
	free(token);

	unsigned char *bytes;
	size_t n;
	rc = etcd_base64_decode(json, size, &bytes, &n);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG);
	if (rc == 0) { /* canonical: encoding gives the input back */
		char *again;
		FUZZ_CHECK(etcd_base64_encode(bytes, n, &again) == 0);
		FUZZ_CHECK(strlen(again) == size && memcmp(again, json, size) == 0);
		free(again);
	}
	free(bytes);

	struct digest whole = { 0 }, split = { 0 };
	frame(data, size, size, &whole);
	frame(data, size, size ? data[0] % (size + 1) : 0, &split);
	FUZZ_CHECK(whole.lines == split.lines);
	if (whole.lines != (size_t)-1)
		FUZZ_CHECK(whole.sum == split.sum);
	return 0;
}
