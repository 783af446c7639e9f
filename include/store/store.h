/*
 * store: the tdb file, as a transactional key-value map with string keys.
 *
 * Guards tdb's traps: a new store is created with O_EXCL and its folder
 * synced; an existing one is never opened with O_CREAT (a damaged header
 * must not become an empty store); nested transactions are disallowed;
 * TDB_NO_FSYNC in the environment is refused. A writable open holds an
 * exclusive flock: a second writer process gets -EBUSY. Every change is one
 * transaction: store_begin .. store_commit | store_cancel. The handle is
 * shared by threads: a transaction holds the store for its thread until it
 * ends, and reads from other threads wait. This file maps tdb's error space.
 */
#ifndef SECRETSFS_STORE_STORE_H
#define SECRETSFS_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

enum store_open_flags {
	STORE_CREATE = 1 << 0,   /* make a new file; fails with -EEXIST if present */
	STORE_READONLY = 1 << 1,
};

/* Chains in tdb's hash table, fixed when a store is created: a few records
 * per chain at 100k secrets, while each transaction copies all chain heads. */
#define STORE_HASH_SIZE 65521

/* -ENOENT, -EEXIST (STORE_CREATE), -EBUSY (in use), -EPERM (TDB_NO_FSYNC
 * set), -EUCLEAN (structure damaged beyond repair), -EAGAIN (read-only, and
 * an interrupted commit awaits its rollback), or another errno for a file
 * that is not a store. A writable open rolls an interrupted commit back to
 * the old bytes and old size, checks tdb's structure, and repacks what a
 * commit cut short before its rollback data left (all logged). */
int store_open(const char *path, unsigned flags, struct store **out);
void store_close(struct store *st);
/*
 * Gives back the pages of the file that tdb's mapping holds, by opening the
 * file again: a mapping keeps each page the process touched in its RSS, and
 * loading the index touches every page once. (Serving without the mapping,
 * TDB_NOMMAP, turns tdb's free-list walks into ~1,700 preads per commit:
 * updates ran 2.7x slower.) Read-only opens are left as they are. Not
 * inside a transaction (-EBUSY); -ESTALE if the path now names another
 * file. After an error other than -EBUSY the store can only be closed.
 */
int store_drop_mapped_pages(struct store *st);
const char *store_path(const struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_cancel(struct store *st);

/*
 * A commit hook sees what a transaction changed before tdb commits it: one
 * op per key put or deleted (each key once, sorted by key), with the value
 * the transaction leaves (val NULL: absent) and the one it found (old NULL:
 * absent): what a compare-and-swap elsewhere needs. It runs inside
 * store_commit, on the committing thread, with the store held, after tdb
 * has grown the file for the commit (so a full disk fails before the hook)
 * and before the commit itself; a nonzero return cancels the transaction
 * and is store_commit's result. This is where replication makes a commit
 * durable elsewhere first (docs/replication.md). Set before any
 * transaction begins; NULL removes it. Only keys changed through
 * store_put and store_delete are seen.
 */
struct store_op {
	const char *key;
	const uint8_t *val;
	size_t len;
	const uint8_t *old; /* commit hooks only */
	size_t old_len;
};
typedef int (*store_commit_hook_fn)(void *ctx, const struct store_op *ops, size_t count);
void store_set_commit_hook(struct store *st, store_commit_hook_fn fn, void *ctx);

/*
 * Durable (the default): a commit that returned 0 is on disk, at the cost of
 * tdb's four syncs. Not durable: a commit survives the death of the process
 * (tdb's rollback data still goes first, through the page cache), but a
 * power loss may leave the file torn. Only for a copy whose durable home is
 * elsewhere: a replica, whose every commit etcd holds first, and which is
 * made again from etcd when it cannot be read (docs/replication.md). Not
 * inside a transaction (-EBUSY).
 */
int store_set_durable(struct store *st, bool durable);
/* Every commit so far on disk (fdatasync); not inside a transaction. */
int store_sync(struct store *st);

/* *val is malloc'd (free it); -ENOENT when absent. */
int store_get(struct store *st, const char *key, uint8_t **val, size_t *len);
int store_put(struct store *st, const char *key, const void *val, size_t len);
/* -ENOENT when absent. */
int store_delete(struct store *st, const char *key);

/*
 * Calls fn for each record whose key starts with prefix; fn returns 0 to go
 * on, anything else to stop with that value. Reads take no write lock. A
 * key with a NUL byte inside, or of 2 KiB or more, which secretsfs never
 * writes, reaches fn as "" when prefix is "" (and matches no other prefix).
 */
typedef int (*store_visit_fn)(const char *key, const uint8_t *val, size_t len, void *ctx);
int store_foreach(struct store *st, const char *prefix, store_visit_fn fn, void *ctx);

/* The keys of the records under prefix, collected (read them, change them
 * after); inside a transaction too. *out is appended to. */
struct strlist;
int store_keys(struct store *st, const char *prefix, struct strlist *out);

/* Calls fn with every record's key, reading no values ("" for a key no C
 * string can name, as store_foreach); outside a transaction. */
typedef int (*store_key_fn)(const char *key, void *ctx);
int store_foreach_key(struct store *st, store_key_fn fn, void *ctx);

/* Bumped by every committed change, by any process: for change detection. */
int store_seqnum(struct store *st);

/* A consistent copy of the store at dest (which must not exist), taken
 * inside a transaction so no commit lands halfway; synced. */
int store_backup(struct store *st, const char *dest);

/* tdb files never shrink: rewrite the (unmounted) store's records into a
 * fresh file that replaces it by rename. Sizes before and after in bytes. */
int store_compact(const char *path, uint64_t *before, uint64_t *after);

/* tdb's own structural check (no decryption); 0 or -EIO. */
int store_check_structure(struct store *st);

#endif
