/*
 * etcd_wire: the JSON messages of etcd 3.4's gRPC gateway, without any I/O.
 *
 * Requests are built as malloc'd NUL-terminated JSON strings; responses are
 * parsed from (pointer, length) into structs the caller frees. The gateway
 * marshals with grpc-gateway's JSONPb{OrigName:true} (etcd 3.4.23), so:
 *   - bytes fields (key, value, range_end) are standard base64 with padding;
 *   - int64 fields travel as JSON strings ("12"); numbers are accepted too;
 *   - a field holding its proto default is OMITTED: absent means 0, false,
 *     an empty list, or PUT for an event type. A failed txn has no
 *     "succeeded"; a deleted key's event kv has no "version".
 * Keys and values are raw bytes (not strings); every decoded buffer also
 * ends in a NUL that is not counted in its length, for keys that are text.
 *
 * Every answer carries a header (so does every answer inside a txn, and
 * every watch message but the stream's error object): one without it is
 * -EBADMSG, never an answer at revision 0. The header of a unary answer
 * (range, put, delete_range, txn, compaction, status) must also have a
 * revision, since etcd's start at 1; a watch's cancel may have none.
 *
 * Bounds: a message is at most ETCD_WIRE_MSG_MAX bytes of JSON, nested at
 * most ETCD_WIRE_DEPTH deep; a key at most ETCD_KEY_MAX bytes and a value
 * at most ETCD_VALUE_MAX (etcd's default request limit, 1.5 MiB). Building
 * a request over a bound is -EFBIG. Parsing is total: any input that is not
 * the expected message (bad JSON, wrong types, bad base64, numbers out of
 * range, a NUL byte, trailing bytes, no header) is -EBADMSG and leaves the
 * output struct empty; an over-bound message is -EFBIG. Out of memory:
 * -ENOMEM. One exception: a watch message marked "fragment" (part of one
 * revision's events, which etcd sends only to a watch that asked for
 * fragments, and this client never does) is -EPROTO, so the watch can say
 * what it refused.
 *
 * The watch stream is newline-delimited JSON whose final error object comes
 * WITHOUT a newline: struct etcd_lines splits arbitrary slices into lines
 * and hands over the unterminated tail at the end (etcd_lines_finish).
 *
 * Values here are what the layer above stores in etcd: sealed records, not
 * plaintext. They are still wiped when freed.
 */
#ifndef SECRETSFS_CLUSTER_ETCD_WIRE_H
#define SECRETSFS_CLUSTER_ETCD_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETCD_KEY_MAX (64u * 1024u)
#define ETCD_VALUE_MAX (1572864u)
#define ETCD_WIRE_MSG_MAX (32u * 1024u * 1024u)
#define ETCD_WIRE_DEPTH 16
#define ETCD_TXN_OPS_MAX 128 /* etcd's --max-txn-ops default */

/* ---- shared pieces ---------------------------------------------------- */

struct etcd_header {
	int64_t revision;   /* the store's revision when the answer was made */
	uint64_t cluster_id;
	uint64_t member_id; /* the member that answered */
	uint64_t raft_term;
};

struct etcd_kv {
	unsigned char *key; /* NUL-terminated copy; key_len excludes the NUL */
	size_t key_len;
	unsigned char *value; /* NULL with value_len 0 when absent (keys_only) */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version; /* 0 on a DELETE event's kv */
	int64_t lease;
};

void etcd_kv_free(struct etcd_kv *kv); /* wipes the value; leaves it zeroed */

/* ---- range ------------------------------------------------------------ */

struct etcd_range_req {
	const void *key;
	size_t key_len;
	const void *range_end; /* NULL: the single key */
	size_t range_end_len;
	int64_t revision; /* 0: the current revision; R: the store as of R */
	int64_t limit;    /* 0: no limit */
	bool keys_only;
	bool count_only;
	bool serializable; /* answered by the member alone, possibly stale */
};

struct etcd_range_resp {
	struct etcd_header header; /* header.revision is the CURRENT revision
				    * even for a read pinned at an older one */
	struct etcd_kv *kvs;
	size_t n_kvs;
	bool more;     /* limit cut the answer: more keys match */
	int64_t count; /* keys matching in total */
};

/* The prefix query: range_end = prefix with its last byte plus one (bytes
 * 0xff are dropped first); out must hold len bytes. Returns the range_end's
 * length; 0 means "no end" (the prefix was empty or all 0xff): send "\0". */
size_t etcd_prefix_end(const void *prefix, size_t len, unsigned char *out);

int etcd_wire_range_request(const struct etcd_range_req *req, char **json);
int etcd_wire_range_response(const char *json, size_t len, struct etcd_range_resp *out);
void etcd_range_resp_free(struct etcd_range_resp *resp);

/* ---- put, delete_range ------------------------------------------------ */

struct etcd_put_req {
	const void *key;
	size_t key_len;
	const void *value;
	size_t value_len;
	int64_t lease;
	bool prev_kv;
};

struct etcd_put_resp {
	struct etcd_header header;
	bool has_prev_kv;
	struct etcd_kv prev_kv;
};

struct etcd_delete_req {
	const void *key;
	size_t key_len;
	const void *range_end;
	size_t range_end_len;
	bool prev_kv;
};

struct etcd_delete_resp {
	struct etcd_header header;
	int64_t deleted;
	struct etcd_kv *prev_kvs;
	size_t n_prev_kvs;
};

int etcd_wire_put_request(const struct etcd_put_req *req, char **json);
int etcd_wire_put_response(const char *json, size_t len, struct etcd_put_resp *out);
void etcd_put_resp_free(struct etcd_put_resp *resp);
int etcd_wire_delete_request(const struct etcd_delete_req *req, char **json);
int etcd_wire_delete_response(const char *json, size_t len, struct etcd_delete_resp *out);
void etcd_delete_resp_free(struct etcd_delete_resp *resp);

/* ---- txn -------------------------------------------------------------- */

enum etcd_cmp_target { ETCD_CMP_VERSION, ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VALUE };
enum etcd_cmp_result { ETCD_CMP_EQUAL, ETCD_CMP_NOT_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS };

struct etcd_compare {
	const void *key;
	size_t key_len;
	enum etcd_cmp_target target;
	enum etcd_cmp_result result;
	int64_t number;    /* version, create_revision or mod_revision */
	const void *value; /* ETCD_CMP_VALUE */
	size_t value_len;
};

enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };

struct etcd_op {
	enum etcd_op_type type;
	union {
		struct etcd_range_req range;
		struct etcd_put_req put;
		struct etcd_delete_req del;
	} u;
};

struct etcd_txn_req {
	const struct etcd_compare *compare;
	size_t n_compare;
	const struct etcd_op *success;
	size_t n_success;
	const struct etcd_op *failure;
	size_t n_failure;
};

struct etcd_op_resp {
	enum etcd_op_type type;
	union {
		struct etcd_range_resp range;
		struct etcd_put_resp put;
		struct etcd_delete_resp del;
	} u;
};

struct etcd_txn_resp {
	struct etcd_header header; /* the txn's revision when it wrote */
	bool succeeded;            /* false: the failure branch ran */
	struct etcd_op_resp *responses; /* one per op of the branch that ran */
	size_t n_responses;
};

/* More than ETCD_TXN_OPS_MAX ops in a branch, or compares: -EFBIG. */
int etcd_wire_txn_request(const struct etcd_txn_req *req, char **json);
int etcd_wire_txn_response(const char *json, size_t len, struct etcd_txn_resp *out);
void etcd_txn_resp_free(struct etcd_txn_resp *resp);

/* ---- compaction, status, auth, errors --------------------------------- */

int etcd_wire_compaction_request(int64_t revision, bool physical, char **json);
/* Any answer that is an object with an optional header (compaction, ...). */
int etcd_wire_header_response(const char *json, size_t len, struct etcd_header *out);

struct etcd_status {
	struct etcd_header header;
	char version[32]; /* the server's version, "3.4.23" */
	int64_t db_size;
	uint64_t leader; /* member id of the leader, 0: none known */
	uint64_t raft_index;
	uint64_t raft_term;
	bool is_learner;
};
int etcd_wire_status_response(const char *json, size_t len, struct etcd_status *out);

/* The authenticate request carries the password: it is built into a buffer
 * the caller must wipe (*json_len bytes) before freeing. */
int etcd_wire_auth_request(const char *user, const char *password, char **json,
			   size_t *json_len);
/* *token: malloc'd, to be wiped before free (it is a credential). */
int etcd_wire_auth_response(const char *json, size_t len, char **token);

/*
 * An error answer, in either shape the gateway uses:
 *   unary:  {"error":"..","message":"..","code":N,"details":[]}
 *   stream: {"error":{"grpc_code":N,"http_code":N,"message":"..","http_status":".."}}
 * *message is copied into msg (truncated, NUL-terminated). -EBADMSG if the
 * text is neither shape.
 */
int etcd_wire_error(const char *json, size_t len, int *grpc_code, char *msg, size_t msg_size);

/* ---- watch ------------------------------------------------------------ */

struct etcd_watch_req {
	const void *key;
	size_t key_len;
	const void *range_end;
	size_t range_end_len;
	int64_t start_revision; /* inclusive; 0 means "after now", NOT "from 1" */
	bool prev_kv;
	bool progress_notify;
};

/* {"create_request":{...}} */
int etcd_wire_watch_request(const struct etcd_watch_req *req, char **json);

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv; /* DELETE: mod_revision is the deletion's revision */
	bool has_prev_kv;
	struct etcd_kv prev_kv;
};

enum etcd_watch_kind {
	ETCD_WATCH_CREATED,  /* the watch exists from header.revision on */
	ETCD_WATCH_CANCELED, /* final; compact_revision > 0: start was compacted */
	ETCD_WATCH_EVENTS,   /* all events of one revision come in one message */
	ETCD_WATCH_PROGRESS, /* header only: NOT proof of freshness */
	ETCD_WATCH_ERROR,    /* the stream's last word: grpc_code, message */
};

struct etcd_watch_msg {
	enum etcd_watch_kind kind;
	struct etcd_header header;
	int64_t watch_id;
	bool created;  /* created and canceled may come together (denied) */
	bool canceled;
	int64_t compact_revision;
	char cancel_reason[256];
	struct etcd_event *events;
	size_t n_events;
	int grpc_code; /* ETCD_WATCH_ERROR */
	int http_code;
	char message[256];
};

int etcd_wire_watch_msg(const char *json, size_t len, struct etcd_watch_msg *out);
void etcd_watch_msg_free(struct etcd_watch_msg *msg);

/*
 * Line framing of a stream. Feed it whatever slices arrive (one byte or many
 * lines at once); each complete line (without its '\n', never empty: blank
 * lines are skipped) goes to on_line. A line longer than max is -EFBIG. A
 * non-zero return of on_line stops the feed and is returned.
 */
typedef int (*etcd_line_fn)(void *ctx, const char *line, size_t len);

struct etcd_lines {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
};

void etcd_lines_init(struct etcd_lines *lines, size_t max);
int etcd_lines_feed(struct etcd_lines *lines, const void *data, size_t n, etcd_line_fn on_line,
		    void *ctx);
/* At the end of the stream: the unterminated tail, if not blank, is the last line. */
int etcd_lines_finish(struct etcd_lines *lines, etcd_line_fn on_line, void *ctx);
void etcd_lines_free(struct etcd_lines *lines);

/* Standard base64 (with padding) of len bytes: malloc'd string. */
int etcd_base64_encode(const void *data, size_t len, char **out);
/* Strict decoding: -EBADMSG on any other character, bad length or padding.
 * *out is malloc'd with a NUL after *out_len bytes. */
int etcd_base64_decode(const char *text, size_t text_len, unsigned char **out, size_t *out_len);

#endif
