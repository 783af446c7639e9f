#include "store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <tdb.h>

#include "util/files.h"
#include "util/log.h"
#include "util/hashmap.h"
#include "util/strlist.h"

struct store {
	struct tdb_context *tdb;
	pthread_mutex_t lock; /* recursive: a transaction's thread reads inside it */
	char *path;
	int lock_fd; /* our own open of the file, holding the one-writer flock */
	int tdb_flags, open_flags; /* as opened, for store_drop_mapped_pages */
	bool in_transaction;
	store_commit_hook_fn commit_hook;
	void *commit_hook_ctx;
	struct hashmap *touched; /* with a hook: key -> struct touched, this transaction's */
	int touch_error;         /* a key that could not be noted: the commit is refused */
};

/* The one mapping of tdb's error space onto errno. */
static int tdb_to_errno(struct tdb_context *tdb)
{
	enum TDB_ERROR err = tdb_error(tdb);
	switch (err) {
	case TDB_SUCCESS: return 0;
	case TDB_ERR_NOEXIST: return -ENOENT;
	case TDB_ERR_EXISTS: return -EEXIST;
	case TDB_ERR_OOM: return -ENOMEM;
	case TDB_ERR_RDONLY: return -EROFS;
	case TDB_ERR_LOCK:
	case TDB_ERR_LOCK_TIMEOUT:
	case TDB_ERR_NOLOCK: return -EBUSY;
	case TDB_ERR_EINVAL: return -EINVAL;
	case TDB_ERR_NESTING: return -EDEADLK;
	case TDB_ERR_CORRUPT:
	case TDB_ERR_IO:
	default: {
		/* tdb sets errno on most I/O failures, but not when growing the
		 * file fails (posix_fallocate returns its error): ask the
		 * filesystem, so a full disk is ENOSPC and not EIO. */
		struct statvfs sv;
		if (errno == ENOSPC || errno == EDQUOT)
			return -errno;
		if (fstatvfs(tdb_fd(tdb), &sv) == 0 &&
		    (unsigned long long)sv.f_bavail * sv.f_frsize < (1ULL << 20))
			return -ENOSPC;
		return -EIO;
	}
	}
}

static void tdb_log(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* While tdb_check runs at open: which kinds of complaint it made. */
static __thread bool checking, check_benign, check_damage;

static void tdb_log(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	(void)tdb;
	if (level > TDB_DEBUG_WARNING)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (checking) {
		/* What a commit cut short while growing the file leaves behind:
		 * every record intact. Anything else is damage. */
		if (strstr(text, "Dead space") || strstr(text, "Expected a recovery area"))
			check_benign = true;
		else
			check_damage = true;
	}
	text[strcspn(text, "\n")] = '\0';
	log_msg(level == TDB_DEBUG_FATAL ? LOG_ERR : LOG_WARNING, "tdb: %s", text);
}

static int lock_store(struct store *st, const char *path)
{
	st->lock_fd = open(path, O_RDWR | O_CLOEXEC);
	if (st->lock_fd < 0)
		return -errno;
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0)
		return errno == EWOULDBLOCK ? -EBUSY : -errno;
	return 0;
}

/*
 * tdb's on-disk layout, read only to finish a recovery tdb leaves half
 * done: the header names the recovery area (recovery_start, after the
 * 32-byte magic and three 32-bit fields), and a live recovery record
 * (magic 0xf53bc0e7) holds in key_len the file size before the commit.
 */
enum {
	TDB_FILE_VERSION = 0x26011967 + 6,
	TDB_HEADER_VERSION_OFF = 32,
	TDB_HEADER_RECOVERY_OFF = 44,
	TDB_RECORD_LEN_OFF = 4,
	TDB_RECORD_KEY_LEN_OFF = 8,
	TDB_RECORD_MAGIC_OFF = 20,
	TDB_RECORD_HEADER_LEN = 24,
	TDB_RECOVERY_RECORD_MAGIC = 0xf53bc0e7,
};

static uint32_t read_u32(int fd, off_t at, bool *ok)
{
	uint32_t v = 0;
	if (pread(fd, &v, sizeof(v), at) != (ssize_t)sizeof(v))
		*ok = false;
	return v;
}

/*
 * The size the file had before a commit that died after its recovery data
 * was made durable, or 0 when there is no such commit (or the file is not
 * a tdb this host wrote). tdb replays the old bytes on open but leaves the
 * file at its grown size, and the tail may hold records the dead commit
 * wrote there: reachable from nothing, and tdb_check calls the mismatch
 * damage. Cutting the file back to this size gives exactly the old file.
 */
static off_t pending_recovery_eof(int fd)
{
	bool ok = true;
	if (read_u32(fd, TDB_HEADER_VERSION_OFF, &ok) != TDB_FILE_VERSION || !ok)
		return 0;
	uint32_t head = read_u32(fd, TDB_HEADER_RECOVERY_OFF, &ok);
	if (!ok || head == 0)
		return 0;
	if (read_u32(fd, (off_t)head + TDB_RECORD_MAGIC_OFF, &ok) != TDB_RECOVERY_RECORD_MAGIC || !ok)
		return 0;
	uint32_t eof = read_u32(fd, (off_t)head + TDB_RECORD_KEY_LEN_OFF, &ok);
	return ok ? (off_t)eof : 0;
}

/*
 * A commit killed after it grew the file for a new recovery area and named
 * it in the header, but before it wrote the area's record, leaves the
 * header pointing at zeros (or fill bytes). tdb sees nothing to recover
 * and its check passes with "dead space", but the next commit frees that
 * "area" as a record of length 0 (or of the fill's length), and a kill
 * during that commit leaves a store no tdb_check accepts. The pointer is
 * cleared here, with the store locked and before tdb maps it: tdb then
 * makes a fresh recovery area, and the dead space is repacked after the
 * check. 1 if the header was mended, 0 if it needed nothing, or -errno.
 */
static int drop_unwritten_recovery_area(int fd, const char *path)
{
	bool ok = true;
	struct stat sb;
	if (fstat(fd, &sb) != 0)
		return -errno;
	if (read_u32(fd, TDB_HEADER_VERSION_OFF, &ok) != TDB_FILE_VERSION || !ok)
		return 0;
	uint32_t head = read_u32(fd, TDB_HEADER_RECOVERY_OFF, &ok);
	if (!ok || head == 0)
		return 0;
	uint32_t magic = read_u32(fd, (off_t)head + TDB_RECORD_MAGIC_OFF, &ok);
	uint32_t len = read_u32(fd, (off_t)head + TDB_RECORD_LEN_OFF, &ok);
	if (!ok || magic == TDB_RECOVERY_RECORD_MAGIC)
		return 0; /* unreadable: tdb's open and check judge it */
	if (len != 0 && (uint64_t)head + TDB_RECORD_HEADER_LEN + len <= (uint64_t)sb.st_size)
		return 0;
	log_warn("%s: an interrupted commit left the header naming a recovery area it never "
		 "wrote; cleared", path);
	uint32_t none = 0;
	if (pwrite(fd, &none, sizeof(none), TDB_HEADER_RECOVERY_OFF) != (ssize_t)sizeof(none))
		return errno ? -errno : -EIO;
	return fsync(fd) ? -errno : 1;
}

int store_open(const char *path, unsigned flags, struct store **out)
{
	struct tdb_logging_context log_ctx = { .log_fn = tdb_log };
	int open_flags = (flags & STORE_READONLY) ? O_RDONLY : O_RDWR;
	/*
	 * TDB_NOLOCK: one process writes a store (our flock below), and tdb
	 * opens read-only ones without locks anyway, so its per-chain fcntl
	 * locks would only cost system calls on every fetch and commit.
	 */
	int tdb_flags = TDB_DISALLOW_NESTING | TDB_SEQNUM | TDB_INCOMPATIBLE_HASH | TDB_NOLOCK;
	int rc;

	*out = NULL;
	/* tdb silently drops every fsync when this is set. */
	if (getenv("TDB_NO_FSYNC"))
		return -EPERM; /* no durable commits: the caller says so */
	if (flags & STORE_CREATE)
		open_flags = O_RDWR | O_CREAT | O_EXCL;

	struct store *st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&st->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	st->lock_fd = -1;
	st->path = strdup(path);
	if (!st->path) {
		rc = -ENOMEM;
		goto fail;
	}

	/*
	 * One writer process per store: two daemons with two in-memory indexes
	 * would overwrite each other's metadata, and without tdb's locks a
	 * second opener could replay the recovery area of a commit in flight.
	 * So the flock comes before tdb touches an existing file. It is on a
	 * descriptor of our own: tdb's mappings can outlive tdb_close and would
	 * keep a lock on tdb's descriptor alive.
	 */
	if (!(flags & (STORE_READONLY | STORE_CREATE)) && (rc = lock_store(st, path)))
		goto fail;
	off_t recovered_eof = st->lock_fd >= 0 ? pending_recovery_eof(st->lock_fd) : 0;
	if (st->lock_fd >= 0 && recovered_eof == 0 &&
	    (rc = drop_unwritten_recovery_area(st->lock_fd, path)) < 0)
		goto fail;
	if (flags & STORE_READONLY) {
		/* tdb cannot roll back read-only and says only "corrupt". */
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		bool pending = fd >= 0 && pending_recovery_eof(fd) > 0;
		if (fd >= 0)
			close(fd);
		if (pending) {
			rc = -EAGAIN;
			goto fail;
		}
	}
	errno = 0;
	st->tdb = tdb_open_ex(path, STORE_HASH_SIZE, tdb_flags, open_flags | O_CLOEXEC, 0600,
			      &log_ctx, NULL);
	if (!st->tdb) {
		rc = errno ? -errno : -EIO;
		goto fail;
	}
	struct stat sb;
	if (recovered_eof > 0 && fstat(tdb_fd(st->tdb), &sb) == 0 && sb.st_size > recovered_eof) {
		/* tdb has replayed the old bytes; now the old size. Not under
		 * tdb's mapping: close, cut, sync, open again. */
		log_warn("%s: an interrupted commit was rolled back; trimming its %lld bytes of "
			 "growth", path, (long long)(sb.st_size - recovered_eof));
		tdb_close(st->tdb);
		st->tdb = NULL;
		if (ftruncate(st->lock_fd, recovered_eof) != 0 || fsync(st->lock_fd) != 0) {
			rc = -errno;
			goto fail;
		}
		errno = 0;
		st->tdb = tdb_open_ex(path, STORE_HASH_SIZE, tdb_flags, open_flags | O_CLOEXEC,
				      0600, &log_ctx, NULL);
		if (!st->tdb) {
			rc = errno ? -errno : -EIO;
			goto fail;
		}
	}
	/* A new file is ours alone until it is locked. */
	if ((flags & STORE_CREATE) && (rc = lock_store(st, path)))
		goto fail;
	checking = true;
	check_benign = check_damage = false;
	int checked = (flags & (STORE_READONLY | STORE_CREATE)) ? 0 : tdb_check(st->tdb, NULL, NULL);
	checking = false;
	if (checked != 0 || check_benign) {
		/*
		 * A writer killed while a commit grew the file leaves dead space
		 * (which tdb's check may pass) and a header naming a recovery
		 * area never written: every record is intact, and tdb_repack
		 * rewrites them in one transaction, the dead space made free.
		 * Any other complaint is damage: a repack would keep only the
		 * records still reachable, so the store is refused instead, as it
		 * is, for a backup or by hand.
		 */
		if (check_damage || (checked != 0 && !check_benign)) {
			log_error("%s: tdb's structure check finds damage; refusing the store "
				  "(restore a backup, or inspect it with tdbtool)", path);
			rc = -EUCLEAN;
			goto fail;
		}
		log_warn("%s: an interrupted commit left dead space; repacking", path);
		if (tdb_repack(st->tdb) != 0 || tdb_check(st->tdb, NULL, NULL) != 0) {
			rc = -EUCLEAN;
			goto fail;
		}
	}
	if (flags & STORE_CREATE) {
		/* tdb writes a new header without syncing it or its folder. */
		if (fsync(tdb_fd(st->tdb))) {
			rc = -errno;
			goto fail;
		}
		if ((rc = files_sync_parent(path)))
			goto fail;
	}
	st->tdb_flags = tdb_flags;
	st->open_flags = open_flags & ~(O_CREAT | O_EXCL);
	*out = st;
	return 0;
fail:
	store_close(st);
	return rc;
}

int store_drop_mapped_pages(struct store *st)
{
	struct tdb_logging_context log_ctx = { .log_fn = tdb_log };
	int rc = 0;

	struct stat locked, reopened;

	/* A read-only open (check, export) is short-lived and holds no lock: a
	 * writer's commit in flight could make tdb refuse it the second time. */
	if ((st->open_flags & O_ACCMODE) == O_RDONLY || st->lock_fd < 0)
		return 0;
	pthread_mutex_lock(&st->lock);
	if (st->in_transaction) {
		rc = -EBUSY;
		goto out;
	}
	/* tdb refuses a second open of a file it has open: close, then open.
	 * Our flock is on a descriptor of our own and stays held throughout. */
	tdb_close(st->tdb);
	errno = 0;
	st->tdb = tdb_open_ex(st->path, STORE_HASH_SIZE, st->tdb_flags, st->open_flags | O_CLOEXEC,
			      0600, &log_ctx, NULL);
	if (!st->tdb) {
		rc = errno ? -errno : -EIO;
		log_error("%s: cannot open the store again: %s", st->path, strerror(-rc));
		goto out;
	}
	/* By path: the file must still be the one we lock and have indexed. */
	if (fstat(st->lock_fd, &locked) != 0 || fstat(tdb_fd(st->tdb), &reopened) != 0 ||
	    locked.st_dev != reopened.st_dev || locked.st_ino != reopened.st_ino) {
		log_error("%s: the store file was replaced while it was being opened", st->path);
		tdb_close(st->tdb);
		st->tdb = NULL;
		rc = -ESTALE;
	}
out:
	pthread_mutex_unlock(&st->lock);
	return rc;
}

void store_close(struct store *st)
{
	if (!st)
		return;
	if (st->in_transaction)
		store_cancel(st);
	if (st->tdb)
		tdb_close(st->tdb);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	pthread_mutex_destroy(&st->lock);
	free(st->path);
	free(st);
}

const char *store_path(const struct store *st)
{
	return st->path;
}

void store_set_commit_hook(struct store *st, store_commit_hook_fn fn, void *ctx)
{
	pthread_mutex_lock(&st->lock);
	st->commit_hook = fn;
	st->commit_hook_ctx = ctx;
	pthread_mutex_unlock(&st->lock);
}

int store_set_durable(struct store *st, bool durable)
{
	int rc = 0;
	pthread_mutex_lock(&st->lock);
	if (st->in_transaction) {
		rc = -EBUSY;
	} else if (durable) {
		tdb_remove_flags(st->tdb, TDB_NOSYNC);
		st->tdb_flags &= ~TDB_NOSYNC; /* and at store_drop_mapped_pages' reopen */
	} else {
		tdb_add_flags(st->tdb, TDB_NOSYNC);
		st->tdb_flags |= TDB_NOSYNC;
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_sync(struct store *st)
{
	int rc = 0;
	pthread_mutex_lock(&st->lock);
	if (st->in_transaction)
		rc = -EBUSY;
	else if (fdatasync(tdb_fd(st->tdb)) != 0)
		rc = -errno;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_begin(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	if (tdb_transaction_start(st->tdb) != 0) {
		int rc = tdb_to_errno(st->tdb);
		pthread_mutex_unlock(&st->lock);
		return rc ? rc : -EIO;
	}
	st->in_transaction = true;
	return 0;
}

/* A key the open transaction changed: what it held before (for a hook). */
struct touched {
	uint8_t *old; /* NULL: absent */
	size_t old_len;
};

static int free_touched(const char *key, void *value, void *ctx)
{
	struct touched *t = value;
	(void)key;
	(void)ctx;
	free(t->old);
	free(t);
	return 0;
}

static void end_transaction(struct store *st)
{
	if (st->touched) {
		hashmap_foreach(st->touched, free_touched, NULL);
		hashmap_free(st->touched);
		st->touched = NULL;
	}
	st->touch_error = 0;
	st->in_transaction = false;
	pthread_mutex_unlock(&st->lock);
}

/* Before key is first changed in a transaction with a hook set: its value
 * then. Store lock held. */
static void touch(struct store *st, TDB_DATA key_data, const char *key)
{
	struct touched *t = NULL;
	if (!st->commit_hook || !st->in_transaction || st->touch_error)
		return;
	if (!st->touched && !(st->touched = hashmap_new(64)))
		goto oom;
	if (hashmap_get(st->touched, key))
		return;
	if (!(t = calloc(1, sizeof(*t))))
		goto oom;
	TDB_DATA v = tdb_fetch(st->tdb, key_data);
	if (!v.dptr && tdb_error(st->tdb) != TDB_ERR_NOEXIST) {
		st->touch_error = tdb_to_errno(st->tdb) ?: -EIO;
		free(t);
		return;
	}
	t->old = v.dptr;
	t->old_len = v.dsize;
	if (hashmap_put(st->touched, key, t, NULL)) {
		free(t->old);
		free(t);
		goto oom;
	}
	return;
oom:
	st->touch_error = -ENOMEM;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(((const struct store_op *)a)->key, ((const struct store_op *)b)->key);
}

struct op_list {
	struct store_op *ops;
	size_t count;
	struct store *st;
	int rc;
};

static void op_list_free(struct op_list *l)
{
	for (size_t i = 0; i < l->count; i++)
		free((void *)l->ops[i].val);
	free(l->ops);
	l->ops = NULL;
	l->count = 0;
}

static int add_op(const char *key, void *value, void *ctx)
{
	struct op_list *l = ctx;
	struct touched *t = value;
	TDB_DATA k = { .dptr = (unsigned char *)key, .dsize = strlen(key) };
	TDB_DATA v = tdb_fetch(l->st->tdb, k);
	if (!v.dptr && tdb_error(l->st->tdb) != TDB_ERR_NOEXIST)
		return l->rc = tdb_to_errno(l->st->tdb) ?: -EIO;
	if (!v.dptr && !t->old)
		return 0; /* absent before and after: nothing changed */
	l->ops[l->count++] = (struct store_op){ key, v.dptr, v.dsize, t->old, t->old_len };
	return 0;
}

/* The touched keys with the values the transaction leaves: read before tdb
 * prepares the commit, while tdb still serves the open transaction's reads.
 * The ops point into st->touched, which lives until the transaction ends. */
static int collect_ops(struct store *st, struct op_list *out)
{
	size_t n = st->touched ? hashmap_count(st->touched) : 0;
	if (st->touch_error || !n)
		return st->touch_error;
	if (!(out->ops = calloc(n, sizeof(*out->ops))))
		return -ENOMEM;
	out->st = st;
	hashmap_foreach(st->touched, add_op, out);
	if (out->rc)
		return out->rc;
	qsort(out->ops, out->count, sizeof(*out->ops), by_key);
	return 0;
}

int store_commit(struct store *st)
{
	struct op_list ops = { 0 };
	int rc = st->commit_hook ? collect_ops(st, &ops) : 0;
	/* prepare_commit grows the file first, so ENOSPC shows before any
	 * change, here or (with a hook) elsewhere. */
	if (rc)
		;
	else if (tdb_transaction_prepare_commit(st->tdb) != 0)
		rc = tdb_to_errno(st->tdb) ?: -EIO;
	else if (ops.count && (rc = st->commit_hook(st->commit_hook_ctx, ops.ops, ops.count)))
		; /* refused elsewhere first: nothing lands here */
	else if (tdb_transaction_commit(st->tdb) != 0)
		rc = tdb_to_errno(st->tdb) ?: -EIO;
	if (rc)
		tdb_transaction_cancel(st->tdb);
	op_list_free(&ops);
	end_transaction(st);
	return rc;
}

void store_cancel(struct store *st)
{
	tdb_transaction_cancel(st->tdb);
	end_transaction(st);
}

static TDB_DATA key_of(const char *key)
{
	TDB_DATA k = { .dptr = (unsigned char *)key, .dsize = strlen(key) };
	return k;
}

int store_get(struct store *st, const char *key, uint8_t **val, size_t *len)
{
	pthread_mutex_lock(&st->lock);
	TDB_DATA data = tdb_fetch(st->tdb, key_of(key));
	int rc = data.dptr ? 0 : tdb_to_errno(st->tdb);
	pthread_mutex_unlock(&st->lock);
	if (!data.dptr)
		return rc ? rc : -ENOENT;
	*val = data.dptr;
	*len = data.dsize;
	return 0;
}

int store_put(struct store *st, const char *key, const void *val, size_t len)
{
	TDB_DATA data = { .dptr = (unsigned char *)val, .dsize = len };
	pthread_mutex_lock(&st->lock);
	touch(st, key_of(key), key);
	int rc = tdb_store(st->tdb, key_of(key), data, TDB_REPLACE) ? tdb_to_errno(st->tdb) : 0;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_delete(struct store *st, const char *key)
{
	pthread_mutex_lock(&st->lock);
	touch(st, key_of(key), key);
	int rc = tdb_delete(st->tdb, key_of(key)) ? tdb_to_errno(st->tdb) : 0;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

struct visit {
	const char *prefix;
	size_t prefix_len;
	store_visit_fn fn;
	void *ctx;
	int rc;
};

static int visit_record(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data, void *priv)
{
	struct visit *v = priv;
	char keybuf[2048];
	(void)tdb;
	/* A key no C string can name (a NUL inside, or too long) would reach
	 * fn cut short, as another record's key: a walk of everything hands
	 * it over as "", and a prefix walk cannot match it. */
	bool unnamed = key.dsize >= sizeof(keybuf) || memchr(key.dptr, 0, key.dsize);
	if (unnamed) {
		if (v->prefix_len)
			return 0;
		v->rc = v->fn("", data.dptr, data.dsize, v->ctx);
		return v->rc ? 1 : 0;
	}
	if (key.dsize < v->prefix_len || memcmp(key.dptr, v->prefix, v->prefix_len) != 0)
		return 0;
	memcpy(keybuf, key.dptr, key.dsize);
	keybuf[key.dsize] = '\0';
	v->rc = v->fn(keybuf, data.dptr, data.dsize, v->ctx);
	return v->rc ? 1 : 0;
}

int store_foreach(struct store *st, const char *prefix, store_visit_fn fn, void *ctx)
{
	struct visit v = { prefix, strlen(prefix), fn, ctx, 0 };
	pthread_mutex_lock(&st->lock);
	int n = st->in_transaction ? tdb_traverse(st->tdb, visit_record, &v)
				   : tdb_traverse_read(st->tdb, visit_record, &v);
	int rc = (n < 0 && !v.rc) ? tdb_to_errno(st->tdb) : 0;
	pthread_mutex_unlock(&st->lock);
	if (v.rc)
		return v.rc;
	return (n < 0) ? (rc ? rc : -EIO) : 0;
}

static int add_key(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	(void)val;
	(void)len;
	return key[0] ? strlist_add(ctx, key) : 0;
}

int store_keys(struct store *st, const char *prefix, struct strlist *out)
{
	return store_foreach(st, prefix, add_key, out);
}

int store_foreach_key(struct store *st, store_key_fn fn, void *ctx)
{
	char keybuf[2048];
	int rc = 0;
	pthread_mutex_lock(&st->lock);
	/* firstkey/nextkey read each record's key only: a traversal would
	 * copy every value too (the sealed versions are most of the file). */
	TDB_DATA key = tdb_firstkey(st->tdb);
	while (key.dptr && !rc) {
		bool unnamed = key.dsize >= sizeof(keybuf) || memchr(key.dptr, 0, key.dsize);
		if (!unnamed)
			memcpy(keybuf, key.dptr, key.dsize);
		keybuf[unnamed ? 0 : key.dsize] = '\0';
		rc = fn(keybuf, ctx);
		TDB_DATA next = tdb_nextkey(st->tdb, key);
		free(key.dptr);
		key = next;
	}
	free(key.dptr);
	if (!rc) {
		enum TDB_ERROR err = tdb_error(st->tdb);
		if (err != TDB_SUCCESS && err != TDB_ERR_NOEXIST)
			rc = tdb_to_errno(st->tdb);
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_seqnum(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	int seq = tdb_get_seqnum(st->tdb);
	pthread_mutex_unlock(&st->lock);
	return seq;
}

int store_check_structure(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	int rc = tdb_check(st->tdb, NULL, NULL) ? -EIO : 0;
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int store_backup(struct store *st, const char *dest)
{
	char *tmp = NULL;
	int in = -1, out = -1, rc;
	bool created = false; /* tmp is ours to remove only if this call made it */
	/* Inside a transaction the file holds exactly the last commit, and no
	 * other commit can start: the copy is consistent. */
	if ((rc = store_begin(st)))
		return rc;
	if (asprintf(&tmp, "%s.tmp", dest) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	in = open(st->path, O_RDONLY | O_CLOEXEC);
	out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	created = out >= 0;
	if (in < 0 || out < 0) {
		rc = -errno;
		goto out;
	}
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				rc = -errno;
				goto out;
			}
			off += w;
		}
	}
	if (n < 0 || fsync(out) != 0) {
		rc = -errno;
		goto out;
	}
	if (link(tmp, dest) != 0) { /* never replace an existing file */
		rc = -errno;
		goto out;
	}
	rc = files_sync_parent(dest);
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	/* An existing DEST.tmp (another backup running, or someone's file)
	 * made the O_EXCL open fail: it is left alone. */
	if (created)
		unlink(tmp);
	free(tmp);
	store_cancel(st);
	return rc;
}

struct copy_ctx {
	struct tdb_context *dst;
	int rc;
};

static int copy_record(struct tdb_context *src, TDB_DATA key, TDB_DATA data, void *priv)
{
	struct copy_ctx *c = priv;
	(void)src;
	if (tdb_store(c->dst, key, data, TDB_INSERT) != 0) {
		c->rc = tdb_to_errno(c->dst);
		return 1;
	}
	return 0;
}

int store_compact(const char *path, uint64_t *before, uint64_t *after)
{
	struct store *st = NULL;
	struct tdb_context *dst = NULL;
	struct stat orig, sb;
	char *tmp = NULL;
	int rc;

	/* Unmounted only: the exclusive lock of a writable open. */
	if ((rc = store_open(path, 0, &st)))
		return rc;
	if (fstat(tdb_fd(st->tdb), &orig) != 0) {
		rc = -errno;
		goto out;
	}
	*before = (uint64_t)orig.st_size;
	if (asprintf(&tmp, "%s.compact", path) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	unlink(tmp);
	dst = tdb_open(tmp, STORE_HASH_SIZE, TDB_DISALLOW_NESTING | TDB_SEQNUM | TDB_INCOMPATIBLE_HASH,
		       O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (!dst) {
		rc = errno ? -errno : -EIO;
		goto out;
	}
	/* Every record into a fresh file, which nobody sees until it is synced
	 * and replaces the store by rename: a crash leaves the old one whole.
	 * (No transaction on the copy: its undo area would be as big as it.) */
	struct copy_ctx c = { dst, 0 };
	if (tdb_transaction_start(st->tdb) != 0) {
		rc = -EIO;
		goto out;
	}
	int n = tdb_traverse(st->tdb, copy_record, &c);
	tdb_transaction_cancel(st->tdb);
	if (n < 0 || c.rc) {
		rc = c.rc ? c.rc : -EIO;
		goto out;
	}
	/* The copy replaces the store: it keeps the store's owner, group and
	 * mode (chown first, as it may clear set-id bits). One that cannot be
	 * given them (a caller not allowed to chown) is not installed. */
	if (fchown(tdb_fd(dst), orig.st_uid, orig.st_gid) != 0 ||
	    fchmod(tdb_fd(dst), orig.st_mode & 07777) != 0 || fsync(tdb_fd(dst)) != 0) {
		rc = -errno;
		goto out;
	}
	tdb_close(dst);
	dst = NULL;
	if (rename(tmp, path) != 0) {
		rc = -errno;
		goto out;
	}
	rc = files_sync_parent(path);
	if (!rc && stat(path, &sb) == 0)
		*after = (uint64_t)sb.st_size;
out:
	if (dst)
		tdb_close(dst);
	if (tmp) {
		if (rc)
			unlink(tmp);
		free(tmp);
	}
	store_close(st);
	return rc;
}
