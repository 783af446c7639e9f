/*
 * authstore: the store as the secrets domain sees it. Every record is
 * authenticated and bound to its place, and the records together to the
 * store's last commit (docs/store-format.md, format 3).
 *
 * A record is "SFA3" | tag(32) | body, the tag HMAC-SHA-256 under a key
 * derived from the master key over "secretsfs/record/v3" NUL store_id NUL
 * format NUL record-key NUL body: an edited, truncated, renamed, or
 * copied-from-another-store record fails. The record "sfs/state" holds the
 * XOR of every record's hidden term (HMAC-SHA-256 of its tag under a
 * second derived key) and their count, rewritten by every commit: a record
 * removed, added, or put back from an older copy changes the sum, which no
 * one without the key can recompute. Version records ("ver/...") are
 * sealed with AES-GCM bound to their store, secret and version (record.h)
 * and pass through as they are; "sfs/format" is read before any key exists
 * and is bound into every tag instead.
 *
 * Stores of format 1 and 2 (legacy) have no tags: their records are read
 * as they are until a rewrite (authstore_begin_rewrite) authenticates them.
 *
 * A record that fails authentication is -EBADMSG: a read leaves the
 * message to its caller, a write over such a record logs it by key.
 * Everything else is 0 or a negative errno. Transactions are the store's:
 * one writer at a time (callers serialise), reads from any thread.
 */
#ifndef SECRETSFS_SECRETS_AUTHSTORE_H
#define SECRETSFS_SECRETS_AUTHSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "secrets/record.h"
#include "store/store.h"

#define AUTHSTORE_FORMAT RECORD_FORMAT_VERSION /* the format this module writes */
#define AUTHSTORE_KEY_STATE "sfs/state"

struct authstore;

/* The format a store's "sfs/format" record names, or -EIO (absent, junk). */
int authstore_format(struct store *st);

/*
 * The body of record key without checking it: for the header, whose master
 * key must be opened before any record can be checked. Read it again with
 * authstore_get once the authstore is open. *body is malloc'd.
 */
int authstore_peek(struct store *st, int format, const char *key, uint8_t **body, size_t *len);

/*
 * Over an open store of the given format, with the store's master key
 * (copied into secure memory). A format-3 store's state record is read and
 * checked here (-EBADMSG when it fails or is missing). Every record read
 * from now until authstore_load_done counts towards the load's sum. Does
 * not own st.
 */
int authstore_open(struct store *st, const char *store_id, const uint8_t master[CRYPTO_KEY_LEN],
		   int format, struct authstore **out);
void authstore_free(struct authstore *as);
struct store *authstore_store(struct authstore *as);
int authstore_current_format(const struct authstore *as);
bool authstore_is_legacy(const struct authstore *as); /* format 1 or 2: no tags */

/*
 * The end of the load: were exactly the records of the last commit read,
 * each once? 0, or -EBADMSG when the sum or count differs (a
 * record removed, or an older copy of one put back). Legacy stores: 0.
 * Records that failed authentication during the load make the sum differ
 * too; *damaged (may be NULL) says how many did, so callers report those
 * by name rather than the sum.
 */
int authstore_load_done(struct authstore *as, uint64_t *damaged);

/* *body is malloc'd: -ENOENT, -EBADMSG, -ENOMEM. */
int authstore_get(struct authstore *as, const char *key, uint8_t **body, size_t *len);

/* fn sees each record under prefix with its checked body; a record that
 * fails authentication reaches fn with body NULL and err -EBADMSG. */
typedef int (*authstore_visit_fn)(const char *key, const uint8_t *body, size_t len, int err,
				  void *ctx);
int authstore_foreach(struct authstore *as, const char *prefix, authstore_visit_fn fn, void *ctx);

/* A transaction: begin, puts and deletes, commit (which writes the state
 * record) or cancel. A put or delete over a record that fails
 * authentication is refused (-EBADMSG): its term cannot be taken out of
 * the sum. -EROFS on a legacy store (authenticate it first). */
int authstore_begin(struct authstore *as);
int authstore_put(struct authstore *as, const char *key, const void *body, size_t len);
int authstore_delete(struct authstore *as, const char *key); /* -ENOENT when absent */
/*
 * A record as another host's commit wrote it (replication): raw is the
 * whole stored form, envelope and all. A record under the tag must hold
 * under this store's key (-EBADMSG, logged by key, and nothing written);
 * version records and "sfs/format" go in as they are (a version is
 * checked when it is opened). Inside an authstore_begin transaction.
 */
int authstore_put_raw(struct authstore *as, const char *key, const uint8_t *raw, size_t len);
int authstore_commit(struct authstore *as);
void authstore_cancel(struct authstore *as);

/*
 * Inside a transaction begun with authstore_begin_rewrite: every record
 * is authenticated anew, under a key derived from new_master (NULL: the
 * current master key), in format 3. Records put in the transaction are
 * written as given; at commit every other record is read (checked, unless
 * legacy), tagged under the new key and written back, the sum is made from
 * scratch, and "sfs/format" becomes 3. This is how a legacy store is
 * authenticated (once) and how rekey moves every record to a new master
 * key. A record deleted in it is simply gone (the sum is made from scratch).
 */
int authstore_begin_rewrite(struct authstore *as, const uint8_t *new_master);

#endif
