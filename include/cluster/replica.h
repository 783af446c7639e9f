/*
 * replica: this host's store as a replica of one store kept in etcd
 * (docs/replication.md). etcd is the source of truth; the local tdb is a
 * copy of the records under one etcd key prefix, byte for byte.
 *
 * Writes: replica_open installs a commit hook on the store. Each local
 * commit's replicated records (every key but those a replica keeps alone:
 * "sfs/state", "sfs/cluster", "sfs/replica") go to etcd first as one txn
 * that compares every record's value with the one this replica held (a
 * record it did not hold must be absent), then tdb commits. A compare that
 * fails is -ESTALE (another host changed what this change was planned on:
 * wait for the replica to catch up, replica_wait, and plan again); an
 * unknown outcome is read back until a deadline, then -EIO; no member
 * reachable, or no quorum, is -EROFS (offline: nothing was applied).
 *
 * Reads of other hosts' changes: a thread watches the prefix from the
 * revision this replica has applied, and hands each revision's records to
 * the apply function the layer above sets (the domain's sm_apply, which
 * authenticates them and commits them in one tdb transaction together with
 * the "sfs/replica" record naming the revision). Events at or below what
 * was applied, or below this host's own later write of a key, are skipped:
 * nothing moves back. A watch that fell behind etcd's compaction resyncs
 * in full. The state (synced, degraded, offline, resyncing) follows what
 * etcd answers.
 *
 * The replica does not know what a record means; the domain does not
 * know that etcd exists. 0 or a negative errno everywhere.
 */
#ifndef SECRETSFS_CLUSTER_REPLICA_H
#define SECRETSFS_CLUSTER_REPLICA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster/etcd.h"
#include "store/store.h"

/* Local records: never sent to etcd, never taken from it. */
#define REPLICA_KEY_CLUSTER "sfs/cluster" /* how to reach etcd (replica_config_*) */
#define REPLICA_KEY_APPLIED "sfs/replica" /* the etcd revision applied, decimal */

/* Whether a tdb key is one the store shares through etcd. */
bool replica_key_shared(const char *key);

enum replica_state {
	REPLICA_SYNCED,    /* the watch is live and commits are answered */
	REPLICA_DEGRADED,  /* the watch is reconnecting; commits still answered */
	REPLICA_OFFLINE,   /* no member answers, or no quorum: writes refused */
	REPLICA_RESYNCING, /* reading the whole prefix again after a compaction */
};
const char *replica_state_name(enum replica_state s);

/*
 * How a replica reaches etcd: what "sfs/cluster" holds (JSON), written
 * by init and read by mount. Strings are owned by the struct.
 */
struct replica_config {
	char **endpoints;
	size_t n_endpoints;
	char *prefix;        /* etcd key prefix, ends with '/' */
	char *user;          /* NULL: no etcd auth */
	char *password_file;
	char *ca_file, *cert_file, *key_file;
};
int replica_config_encode(const struct replica_config *c, char **json);
int replica_config_decode(const uint8_t *json, size_t len, struct replica_config *out);
/* "URL[,URL...]" into c->endpoints; -EINVAL names the rule in the log. */
int replica_config_set_endpoints(struct replica_config *c, const char *list);
void replica_config_free(struct replica_config *c);

/* The domain's apply (sm_apply with "sfs/replica" committed alongside):
 * records of one or more etcd revisions, all-or-nothing. local is the
 * "sfs/replica" record to write in the same transaction. keep(kctx, key)
 * must be asked of each op once the domain's writer lock is held (false:
 * leave it out): whether this host wrote the key at a later revision is
 * only settled under that lock. */
typedef int (*replica_apply_fn)(void *ctx, const struct store_op *ops, size_t count,
				const struct store_op *local, bool (*keep)(void *kctx, const char *key),
				void *kctx);

struct replica;

/*
 * A replica of store st (already open; not owned) through etcd as c says.
 * Installs the commit hook; starts nothing. st NULL: a client only, for
 * replica_fetch_header before a store file exists. applied is the revision the
 * store's "sfs/replica" names (0: none yet).
 */
int replica_open(const struct replica_config *c, struct store *st, int64_t applied,
		 struct replica **out);
/* Removes the hook, stops the thread, closes the client. */
void replica_close(struct replica *r);

/*
 * The store in etcd: -ENOENT when the prefix holds no store, 0 when it
 * does (its "sfs/format" and "sfs/header" into *format / *header,
 * malloc'd, for a joining host to create its local file from).
 */
int replica_fetch_header(struct replica *r, uint8_t **format, size_t *format_len,
			 uint8_t **header, size_t *header_len);
/*
 * A new store's records (every shared record st holds now) into an empty
 * prefix, in txns that each create only absent keys, the header's first:
 * two hosts that init one prefix at once cannot both win (-EEXIST).
 */
int replica_publish(struct replica *r);

/*
 * A replica that has applied nothing yet (a host joining) is filled before
 * it serves: a paged read of the whole prefix at one revision, applied
 * through apply as one batch (records etcd no longer has are deleted).
 * One that holds a revision serves it at once, and the thread catches up
 * (reads may lag; a write planned on a record that changed meanwhile
 * fails its compare and is planned again).
 */
int replica_catch_up(struct replica *r, replica_apply_fn apply, void *ctx);
/* The thread that applies other hosts' changes from now on. */
int replica_start(struct replica *r, replica_apply_fn apply, void *ctx);

/* Waits until the revision applied is at least the one the last refused
 * commit (-ESTALE) saw, or timeout_ms passes (-ETIMEDOUT). */
int replica_wait(struct replica *r, long timeout_ms);

/* Refuses writes while offline (-EROFS), at once. */
int replica_writable(struct replica *r);

struct replica_status {
	enum replica_state state;
	int64_t applied_revision;
	int64_t last_contact_ms; /* epoch ms of the last word from etcd; 0: none */
	char endpoint[256];      /* the member talked to last */
	const char *const *endpoints; /* all configured (the replica's: valid while it is) */
	size_t n_endpoints;
};
void replica_status(struct replica *r, struct replica_status *out);

#endif
