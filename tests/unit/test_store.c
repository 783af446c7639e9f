/* Unit tests of store/store: the tdb file, its guards and its transactions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/types.h> /* before tdb.h, which uses mode_t */
#include <sys/wait.h>
#include <tdb.h>
#include <time.h>

#include "testutil.h"
#include "store/store.h"
#include "util/strlist.h"

struct fx {
	char dir[TU_PATH_MAX];
	char path[TU_PATH_MAX];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || tu_mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	tu_path(f->path, f->dir, "store.tdb");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	unsetenv("TDB_NO_FSYNC");
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* A store at path holding n records "k<i>" = "v<i>", committed. */
static void make_store(const char *path, int n)
{
	struct store *st;
	char key[32], val[32];
	assert_int_equal(store_open(path, STORE_CREATE, &st), 0);
	assert_int_equal(store_begin(st), 0);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		snprintf(val, sizeof(val), "v%d", i);
		assert_int_equal(store_put(st, key, val, strlen(val)), 0);
	}
	assert_int_equal(store_commit(st), 0);
	store_close(st);
}

static void assert_record(struct store *st, const char *key, const char *want)
{
	uint8_t *val = NULL;
	size_t len = 0;
	int rc = store_get(st, key, &val, &len);
	if (rc)
		fail_msg("store_get(%s) gave %d", key, rc);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(val, want, len);
	free(val);
}

static void assert_absent(struct store *st, const char *key)
{
	uint8_t *val = NULL;
	size_t len = 0;
	int rc = store_get(st, key, &val, &len);
	if (rc != -ENOENT)
		fail_msg("store_get(%s) gave %d, expected -ENOENT", key, rc);
}

static void test_create_then_reopen(void **state)
{
	struct fx *f = *state;
	struct store *st;
	struct stat sb;

	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	assert_non_null(st);
	assert_string_equal(store_path(st), f->path);
	assert_int_equal(store_check_structure(st), 0);
	store_close(st);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);

	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_non_null(st);
	assert_absent(st, "anything");
	store_close(st);
	assert_int_equal(store_open(f->path, STORE_READONLY, &st), 0);
	store_close(st);
}

static void test_create_existing_is_eexist(void **state)
{
	struct fx *f = *state;
	struct store *st = (struct store *)1;
	uint8_t *before;
	size_t len;

	make_store(f->path, 20);
	assert_int_equal(tu_read_file(f->path, &before, &len), 0);
	assert_int_equal(store_open(f->path, STORE_CREATE, &st), -EEXIST);
	assert_null(st);
	assert_int_equal(tu_file_equals(f->path, before, len), 1);
	/* An existing non-store file too. */
	char other[TU_PATH_MAX];
	tu_path(other, f->dir, "notes.txt");
	assert_int_equal(tu_write_file(other, "hello\n", 6), 0);
	assert_int_equal(store_open(other, STORE_CREATE, &st), -EEXIST);
	assert_int_equal(tu_file_equals(other, (const uint8_t *)"hello\n", 6), 1);
	free(before);

	/* The records are all still there. */
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_record(st, "k0", "v0");
	assert_record(st, "k19", "v19");
	store_close(st);
}

static void test_open_missing_is_enoent(void **state)
{
	struct fx *f = *state;
	struct store *st = (struct store *)1;
	assert_int_equal(store_open(f->path, 0, &st), -ENOENT);
	assert_null(st);
	assert_false(tu_exists(f->path));
	assert_int_equal(store_open(f->path, STORE_READONLY, &st), -ENOENT);
	assert_false(tu_exists(f->path));
}

static void damage_and_check(const char *path, size_t offset)
{
	struct store *st = (struct store *)1;
	uint8_t *data, *after;
	size_t len, after_len;

	assert_int_equal(tu_read_file(path, &data, &len), 0);
	assert_true(len > offset);
	data[offset] ^= 0x20;
	assert_int_equal(tu_write_file(path, data, len), 0);

	int rc = store_open(path, 0, &st);
	assert_true(rc < 0);
	assert_null(st);
	/* Not replaced by an empty database: the bytes are what we wrote. */
	assert_int_equal(tu_read_file(path, &after, &after_len), 0);
	assert_int_equal(after_len, len);
	assert_memory_equal(after, data, len);
	free(after);
	assert_true(store_open(path, STORE_READONLY, &st) < 0);
	assert_int_equal(tu_file_equals(path, data, len), 1);

	/* Put the byte back: every record is there again. */
	data[offset] ^= 0x20;
	assert_int_equal(tu_write_file(path, data, len), 0);
	free(data);
	assert_int_equal(store_open(path, 0, &st), 0);
	assert_record(st, "k0", "v0");
	assert_record(st, "k999", "v999");
	store_close(st);
}

static void test_damaged_magic_refused_not_replaced(void **state)
{
	struct fx *f = *state;
	make_store(f->path, 1000);
	damage_and_check(f->path, 0); /* "TDB file\n" */
	damage_and_check(f->path, 4);
}

static void test_empty_file_refused(void **state)
{
	struct fx *f = *state;
	struct store *st;
	struct stat sb;
	assert_int_equal(tu_write_file(f->path, "", 0), 0);
	assert_true(store_open(f->path, 0, &st) < 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_size, 0); /* no header written into it */
}

static void test_tdb_no_fsync_refused(void **state)
{
	struct fx *f = *state;
	struct store *st = (struct store *)1;
	char fresh[TU_PATH_MAX];

	make_store(f->path, 3);
	tu_path(fresh, f->dir, "fresh.tdb");
	assert_int_equal(setenv("TDB_NO_FSYNC", "1", 1), 0);
	assert_int_equal(store_open(f->path, 0, &st), -EPERM);
	assert_null(st);
	st = (struct store *)1;
	assert_int_equal(store_open(f->path, STORE_READONLY, &st), -EPERM);
	assert_null(st);
	assert_int_equal(store_open(fresh, STORE_CREATE, &st), -EPERM);
	assert_false(tu_exists(fresh));
	/* Whatever its value. */
	assert_int_equal(setenv("TDB_NO_FSYNC", "", 1), 0);
	assert_int_equal(store_open(f->path, 0, &st), -EPERM);
	assert_int_equal(unsetenv("TDB_NO_FSYNC"), 0);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_record(st, "k2", "v2");
	store_close(st);
}

/* One writer process per store: a second one gets -EBUSY until the first is gone. */
static void test_second_writer_busy(void **state)
{
	struct fx *f = *state;
	struct store *st = (struct store *)1;
	int ready[2], done[2], status;
	char c = 0;

	make_store(f->path, 3);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *mine;
		close(ready[0]);
		close(done[1]);
		char ok = store_open(f->path, 0, &mine) == 0 ? 'y' : 'n';
		if (write(ready[1], &ok, 1) != 1)
			_exit(3);
		if (read(done[0], &ok, 1) < 0)
			_exit(3);
		store_close(mine);
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	assert_int_equal(store_open(f->path, 0, &st), -EBUSY);
	assert_null(st);
	/* Readers are welcome. */
	assert_int_equal(store_open(f->path, STORE_READONLY, &st), 0);
	assert_record(st, "k1", "v1");
	store_close(st);
	/* The writer leaves: the store is free again. */
	assert_int_equal(write(done[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
	close(done[1]);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	store_close(st);
}

/*
 * Close and open again in one process after transactions that grew the file
 * (a daemon that reopens, a command that opens twice, these tests). The lock
 * that keeps out a second writer must go with store_close.
 */
static void test_reopen_after_growth(void **state)
{
	struct fx *f = *state;
	struct store *st;
	char key[32], val[300];

	memset(val, 'x', sizeof(val));
	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		assert_int_equal(tu_store_put_tx(st, key, val, sizeof(val)), 0);
	}
	store_close(st);
	st = (struct store *)1;
	int rc = store_open(f->path, 0, &st);
	if (rc)
		fail_msg("store_open after store_close in the same process gave %d", rc);
	assert_int_equal(tu_store_put_tx(st, "k0", "y", 1), 0);
	store_close(st);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_record(st, "k0", "y");
	store_close(st);
}

static void test_commit_visible_after_reopen(void **state)
{
	struct fx *f = *state;
	struct store *st;
	int seq0;

	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	seq0 = store_seqnum(st);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "secret/a", "one", 3), 0);
	assert_int_equal(store_put(st, "secret/b", "two", 3), 0);
	assert_int_equal(store_put(st, "bin", "\0\1\2\0", 4), 0);
	assert_int_equal(store_put(st, "empty", "", 0), 0);
	/* Reads inside the transaction see its writes. */
	assert_record(st, "secret/a", "one");
	assert_int_equal(store_commit(st), 0);
	assert_true(store_seqnum(st) != seq0);
	store_close(st);

	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_record(st, "secret/a", "one");
	assert_record(st, "secret/b", "two");
	uint8_t *val;
	size_t len;
	assert_int_equal(store_get(st, "bin", &val, &len), 0);
	assert_int_equal(len, 4);
	assert_memory_equal(val, "\0\1\2\0", 4);
	free(val);
	assert_int_equal(store_get(st, "empty", &val, &len), 0);
	assert_int_equal(len, 0);
	free(val);
	assert_absent(st, "secret/c");

	/* Replace and delete, committed. */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "secret/a", "uno", 3), 0);
	assert_int_equal(store_delete(st, "secret/b"), 0);
	assert_int_equal(store_delete(st, "secret/zz"), -ENOENT);
	assert_int_equal(store_commit(st), 0);
	store_close(st);

	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_record(st, "secret/a", "uno");
	assert_absent(st, "secret/b");
	assert_int_equal(store_check_structure(st), 0);
	store_close(st);
}

static void test_cancel_not_visible(void **state)
{
	struct fx *f = *state;
	struct store *st;

	make_store(f->path, 2);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	int seq0 = store_seqnum(st);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "new", "x", 1), 0);
	assert_int_equal(store_put(st, "k0", "changed", 7), 0);
	assert_int_equal(store_delete(st, "k1"), 0);
	store_cancel(st);
	assert_absent(st, "new");
	assert_record(st, "k0", "v0");
	assert_record(st, "k1", "v1");
	assert_int_equal(store_seqnum(st), seq0);
	store_close(st);

	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_absent(st, "new");
	assert_record(st, "k0", "v0");
	assert_record(st, "k1", "v1");
	/* Closing with a transaction open cancels it. */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "left-open", "x", 1), 0);
	store_close(st);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_absent(st, "left-open");
	store_close(st);
}

static void test_nesting_refused(void **state)
{
	struct fx *f = *state;
	struct store *st;
	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "outer", "1", 1), 0);
	assert_true(store_begin(st) < 0); /* no nested transaction */
	assert_int_equal(store_put(st, "outer2", "2", 1), 0);
	assert_int_equal(store_commit(st), 0);
	store_close(st);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_record(st, "outer", "1");
	assert_record(st, "outer2", "2");
	store_close(st);
}

static void test_readonly_refuses_writes(void **state)
{
	struct fx *f = *state;
	struct store *st;
	make_store(f->path, 1);
	assert_int_equal(store_open(f->path, STORE_READONLY, &st), 0);
	assert_record(st, "k0", "v0");
	assert_true(store_put(st, "k0", "x", 1) < 0);
	assert_true(store_delete(st, "k0") < 0);
	assert_record(st, "k0", "v0");
	store_close(st);
}

static void test_backup_copies_and_leaves_a_foreign_tmp_alone(void **state)
{
	struct fx *f = *state;
	struct store *st;
	char dest[TU_PATH_MAX], tmp[TU_PATH_MAX];
	make_store(f->path, 3);
	tu_path(dest, f->dir, "copy.tdb");
	tu_path(tmp, f->dir, "copy.tdb.tmp");
	assert_int_equal(store_open(f->path, 0, &st), 0);

	/* Someone else's copy.tdb.tmp: the backup fails and keeps its hands off. */
	assert_int_equal(tu_write_file(tmp, "not ours\n", 9), 0);
	assert_int_equal(store_backup(st, dest), -EEXIST);
	assert_int_equal(tu_file_equals(tmp, (const uint8_t *)"not ours\n", 9), 1);
	assert_int_equal(access(dest, F_OK), -1);

	/* Without it: a copy that opens, and no temporary left behind. */
	assert_int_equal(unlink(tmp), 0);
	assert_int_equal(store_backup(st, dest), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	/* An existing destination is never replaced, and our tmp is cleaned up. */
	assert_int_equal(store_backup(st, dest), -EEXIST);
	assert_int_equal(access(tmp, F_OK), -1);
	store_close(st);
	assert_int_equal(store_open(dest, STORE_READONLY, &st), 0);
	assert_record(st, "k2", "v2");
	store_close(st);
}

static void test_compact_keeps_owner_group_and_mode(void **state)
{
	struct fx *f = *state;
	struct store *st;
	struct stat sb;
	uint64_t before = 0, after = 0;
	/* Root can give the file away; anyone else keeps their own ids. */
	uid_t uid = geteuid() == 0 ? 4242 : geteuid();
	gid_t gid = geteuid() == 0 ? 4343 : getegid();
	make_store(f->path, 5);
	assert_int_equal(chown(f->path, uid, gid), 0);
	assert_int_equal(chmod(f->path, 0640), 0);
	assert_int_equal(store_compact(f->path, &before, &after), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_uid, uid);
	assert_int_equal(sb.st_gid, gid);
	assert_int_equal(sb.st_mode & 07777, 0640);
	assert_true(before > 0 && after > 0);
	assert_int_equal(store_open(f->path, 0, &st), 0);
	assert_record(st, "k4", "v4");
	store_close(st);
}

struct seen {
	char keys[16][32];
	char vals[16][32];
	int n;
	int stop_at;
};

static int collect(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	struct seen *s = ctx;
	if (s->n >= 16)
		return -E2BIG;
	snprintf(s->keys[s->n], 32, "%s", key);
	snprintf(s->vals[s->n], 32, "%.*s", (int)len, (const char *)val);
	s->n++;
	return (s->stop_at && s->n == s->stop_at) ? 77 : 0;
}

static int seen_has(const struct seen *s, const char *key, const char *val)
{
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->keys[i], key) == 0 && strcmp(s->vals[i], val) == 0)
			return 1;
	return 0;
}

static void test_foreach_prefix(void **state)
{
	struct fx *f = *state;
	struct store *st;
	static const char *kv[][2] = {
		{ "secret/a", "1" }, { "secret/b/c", "2" }, { "secret", "3" }, { "secrets/x", "4" },
		{ "dir/a", "5" }, { "ver/u/1", "6" }, { "sec", "7" },
	};
	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	assert_int_equal(store_begin(st), 0);
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		assert_int_equal(store_put(st, kv[i][0], kv[i][1], 1), 0);
	assert_int_equal(store_commit(st), 0);

	struct seen s = { 0 };
	assert_int_equal(store_foreach(st, "secret/", collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_true(seen_has(&s, "secret/a", "1"));
	assert_true(seen_has(&s, "secret/b/c", "2"));

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_foreach(st, "secret", collect, &s), 0);
	assert_int_equal(s.n, 4);
	assert_true(seen_has(&s, "secret", "3"));
	assert_true(seen_has(&s, "secrets/x", "4"));

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_foreach(st, "", collect, &s), 0);
	assert_int_equal(s.n, 7);

	memset(&s, 0, sizeof(s));
	assert_int_equal(store_foreach(st, "nothing/", collect, &s), 0);
	assert_int_equal(s.n, 0);

	/* A non-zero return stops the walk and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(store_foreach(st, "", collect, &s), 77);
	assert_int_equal(s.n, 2);

	/* Inside a transaction the walk sees its uncommitted writes. */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "secret/z", "8", 1), 0);
	assert_int_equal(store_delete(st, "secret/a"), 0);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_foreach(st, "secret/", collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_true(seen_has(&s, "secret/z", "8"));
	assert_true(seen_has(&s, "secret/b/c", "2"));
	store_cancel(st);
	memset(&s, 0, sizeof(s));
	assert_int_equal(store_foreach(st, "secret/", collect, &s), 0);
	assert_int_equal(s.n, 2);
	assert_true(seen_has(&s, "secret/a", "1"));
	store_close(st);
}

/*
 * Keys no C string can name, planted with tdb itself (secretsfs never
 * writes them): one with a NUL inside, and ones of 2 KiB and more. Beside
 * them a key of 2047 bytes, the longest that is a name.
 */
#define LONGEST_NAME 2047

static void plant_raw(const char *path, const void *key, size_t key_len, const char *val)
{
	struct tdb_context *tdb = tdb_open(path, 0, TDB_INCOMPATIBLE_HASH, O_RDWR, 0);
	assert_non_null(tdb);
	TDB_DATA k = { (unsigned char *)key, key_len }, v = { (unsigned char *)val, strlen(val) };
	assert_int_equal(tdb_store(tdb, k, v, TDB_INSERT), 0);
	assert_int_equal(tdb_close(tdb), 0);
}

/* A store holding "a"=1, "b/c"=2, "x\0y"=3, 2048 'k's=4, 4096 'k's=5 and
 * the longest name (2047 'n's)=6. */
static void make_store_with_nameless_keys(const char *path, char *longest)
{
	char big[4096];
	struct store *st;
	assert_int_equal(store_open(path, STORE_CREATE, &st), 0);
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "a", "1", 1), 0);
	assert_int_equal(store_put(st, "b/c", "2", 1), 0);
	memset(longest, 'n', LONGEST_NAME);
	longest[LONGEST_NAME] = '\0';
	assert_int_equal(store_put(st, longest, "6", 1), 0);
	assert_int_equal(store_commit(st), 0);
	store_close(st);
	plant_raw(path, "x\0y", 3, "3");
	memset(big, 'k', sizeof(big));
	plant_raw(path, big, 2048, "4");
	plant_raw(path, big, sizeof(big), "5");
}

/* What a walk handed over: each key's length (the name's) and value. */
struct walked {
	size_t key_len[16];
	char val[16];
	int n, nameless, stop_at;
};

static int note(struct walked *w, const char *key, char val)
{
	if (w->n >= 16)
		return -E2BIG;
	w->key_len[w->n] = strlen(key);
	w->val[w->n] = val;
	w->nameless += key[0] == '\0';
	w->n++;
	return w->stop_at && w->n == w->stop_at ? 55 : 0;
}

static int walk_record(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	return note(ctx, key, len == 1 ? (char)val[0] : '?');
}

static int walk_key(const char *key, void *ctx)
{
	return note(ctx, key, '-'); /* no value read */
}

static bool walked_value(const struct walked *w, size_t key_len, char val)
{
	for (int i = 0; i < w->n; i++)
		if (w->key_len[i] == key_len && w->val[i] == val)
			return true;
	return false;
}

static bool listed(const struct strlist *l, const char *key)
{
	for (size_t i = 0; i < l->count; i++)
		if (strcmp(l->items[i], key) == 0)
			return true;
	return false;
}

static struct store *open_nameless_store(struct fx *f, char *longest, unsigned flags)
{
	struct store *st;
	make_store_with_nameless_keys(f->path, longest);
	assert_int_equal(store_open(f->path, flags, &st), 0);
	return st;
}

/* Every record once: each nameless key as "" (with its own value when the
 * walk reads values, else '-'), never cut short into another record's
 * name ("x", 2047 'k's). */
static void assert_walked_all(const struct walked *w, bool values)
{
	assert_int_equal(w->n, 6);
	assert_int_equal(w->nameless, 3);
	assert_true(walked_value(w, 0, values ? '3' : '-') && walked_value(w, 0, values ? '4' : '-') &&
		    walked_value(w, 0, values ? '5' : '-'));
	assert_true(walked_value(w, 1, values ? '1' : '-') && walked_value(w, 3, values ? '2' : '-') &&
		    walked_value(w, LONGEST_NAME, values ? '6' : '-'));
}

static void test_nameless_keys_reach_a_walk_as_empty(void **state)
{
	char longest[LONGEST_NAME + 1];
	struct store *st = open_nameless_store(*state, longest, STORE_READONLY);
	struct walked w = { 0 };
	assert_int_equal(store_foreach(st, "", walk_record, &w), 0);
	assert_walked_all(&w, true);
	/* A prefix walk matches no nameless key, even one its bytes begin
	 * with ("x\0y", the 'k's); the longest name it does. */
	static const struct { const char *prefix; int n; } walks[] = { { "x", 0 }, { "k", 0 },
								       { "n", 1 } };
	for (size_t i = 0; i < sizeof(walks) / sizeof(walks[0]); i++) {
		memset(&w, 0, sizeof(w));
		assert_int_equal(store_foreach(st, walks[i].prefix, walk_record, &w), 0);
		assert_int_equal(w.n, walks[i].n);
	}
	assert_int_equal(w.key_len[0], LONGEST_NAME);
	store_close(st);
}

static void test_store_foreach_key(void **state)
{
	struct fx *f = *state;
	char longest[LONGEST_NAME + 1];
	struct store *st = open_nameless_store(f, longest, STORE_READONLY);
	struct walked w = { 0 };
	assert_int_equal(store_foreach_key(st, walk_key, &w), 0);
	assert_walked_all(&w, false);

	/* A non-zero return stops the walk and is returned. */
	memset(&w, 0, sizeof(w));
	w.stop_at = 2;
	assert_int_equal(store_foreach_key(st, walk_key, &w), 55);
	assert_int_equal(w.n, 2);
	store_close(st);

	/* An empty store: no call, 0. */
	char empty[TU_PATH_MAX];
	tu_path(empty, f->dir, "empty.tdb");
	assert_int_equal(store_open(empty, STORE_CREATE, &st), 0);
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_foreach_key(st, walk_key, &w), 0);
	assert_int_equal(w.n, 0);
	store_close(st);
}

static void test_store_keys(void **state)
{
	char longest[LONGEST_NAME + 1];
	struct store *st = open_nameless_store(*state, longest, 0);
	struct strlist l = { 0 };

	/* Names only: a nameless key is nothing a caller could act on. */
	assert_int_equal(store_keys(st, "", &l), 0);
	assert_int_equal(l.count, 3);
	assert_true(listed(&l, "a") && listed(&l, "b/c") && listed(&l, longest));
	/* Appended to, under a prefix. */
	assert_int_equal(store_keys(st, "b/", &l), 0);
	assert_int_equal(l.count, 4);
	assert_string_equal(l.items[3], "b/c");
	strlist_free(&l);
	assert_int_equal(l.count, 0);

	/* Inside a transaction: its own writes and deletions, not yet committed. */
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "b/d", "7", 1), 0);
	assert_int_equal(store_delete(st, "a"), 0);
	assert_int_equal(store_keys(st, "", &l), 0);
	assert_int_equal(l.count, 3);
	assert_true(listed(&l, "b/c") && listed(&l, "b/d") && !listed(&l, "a"));
	strlist_free(&l);
	store_cancel(st);
	assert_int_equal(store_keys(st, "b/", &l), 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.items[0], "b/c");
	strlist_free(&l);
	store_close(st);
}

/* A reader on another thread waits for a transaction and sees its result whole. */
struct reader_arg {
	struct store *st;
	volatile int started;
	int rc;
	char val[32];
};

static void *reader(void *p)
{
	struct reader_arg *a = p;
	uint8_t *val;
	size_t len;
	a->started = 1;
	a->rc = store_get(a->st, "x", &val, &len);
	if (!a->rc) {
		snprintf(a->val, sizeof(a->val), "%.*s", (int)len, (const char *)val);
		free(val);
	}
	return NULL;
}

static void test_reader_waits_for_transaction(void **state)
{
	struct fx *f = *state;
	struct store *st;
	pthread_t t;
	struct reader_arg a = { 0 };
	struct timespec pause = { 0, 50 * 1000 * 1000 };

	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	a.st = st;
	assert_int_equal(store_begin(st), 0);
	assert_int_equal(store_put(st, "x", "committed", 9), 0);
	assert_int_equal(pthread_create(&t, NULL, reader, &a), 0);
	while (!a.started)
		nanosleep(&pause, NULL);
	nanosleep(&pause, NULL);
	assert_int_equal(store_commit(st), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.rc, 0);
	assert_string_equal(a.val, "committed");
	store_close(st);
}

/* ---------- crash safety: a child killed in or around store_commit ---------- */

enum { NKEYS = 64 };

/* Generation g's value of key i: recognisable, and of a length that varies. */
static size_t gen_value(int g, int i, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "gen=%08d key=%03d ", g, i);
	size_t len = 64 + (size_t)((g * 131 + i * 17) % 900);
	if (len >= cap)
		len = cap - 1;
	for (size_t k = (size_t)n; k < len; k++)
		buf[k] = (char)('a' + (g + (int)k) % 26);
	buf[len] = '\0';
	return len;
}

/* One transaction writing generation g over every key (and a toggled key). */
static int write_generation(struct store *st, int g, bool kill_before_commit, int report_fd)
{
	char key[32], val[1024];
	int rc = store_begin(st);
	if (rc)
		return rc;
	for (int i = 0; i < NKEYS && !rc; i++) {
		snprintf(key, sizeof(key), "key/%03d", i);
		size_t len = gen_value(g, i, val, sizeof(val));
		rc = store_put(st, key, val, len);
	}
	snprintf(val, sizeof(val), "%d", g);
	if (!rc)
		rc = store_put(st, "gen", val, strlen(val));
	/* "odd" exists exactly in odd generations: deletes are atomic too. */
	if (!rc && g % 2)
		rc = store_put(st, "odd", val, strlen(val));
	else if (!rc && (rc = store_delete(st, "odd")) == -ENOENT)
		rc = 0;
	if (rc) {
		store_cancel(st);
		return rc;
	}
	if (kill_before_commit)
		raise(SIGKILL);
	if (report_fd >= 0) {
		int about = -g; /* negative: about to commit g */
		if (write(report_fd, &about, sizeof(about)) != sizeof(about))
			_exit(3);
	}
	rc = store_commit(st);
	if (!rc && report_fd >= 0 && write(report_fd, &g, sizeof(g)) != sizeof(g))
		_exit(3);
	return rc;
}

/*
 * The store holds exactly one generation, whole: every key/NNN, "gen" and
 * "odd" agree. 0 with *gen (0 when none was ever committed), or -1 and why.
 * No cmocka asserts: it runs in a checker process.
 */
static int verify_one_generation(const char *path, int *gen, char *why, size_t whylen)
{
	struct store *st;
	uint8_t *val;
	size_t len;
	char want[1024], text[16];
	int g = 0, rc, result = -1;

#define WHY(...) do { snprintf(why, whylen, __VA_ARGS__); goto out; } while (0)
	*gen = 0;
	if ((rc = store_open(path, 0, &st))) {
		snprintf(why, whylen, "store_open after the crash gave %d", rc);
		return -1;
	}
	rc = store_get(st, "gen", &val, &len);
	if (rc == 0) {
		snprintf(text, sizeof(text), "%.*s", (int)(len < 15 ? len : 15), (const char *)val);
		free(val);
		g = atoi(text);
		if (g <= 0)
			WHY("\"gen\" holds \"%s\"", text);
	} else if (rc != -ENOENT) {
		WHY("reading \"gen\" gave %d", rc);
	}
	for (int i = 0; i < NKEYS; i++) {
		char key[32];
		snprintf(key, sizeof(key), "key/%03d", i);
		rc = store_get(st, key, &val, &len);
		if (g == 0) {
			if (rc != -ENOENT)
				WHY("%s present (%d) although no generation was committed", key, rc);
			continue;
		}
		if (rc)
			WHY("%s missing (%d) in generation %d", key, rc, g);
		size_t wlen = gen_value(g, i, want, sizeof(want));
		bool same = len == wlen && memcmp(val, want, len) == 0;
		snprintf(text, sizeof(text), "%.*s", (int)(len < 15 ? len : 15), (const char *)val);
		free(val);
		if (!same)
			WHY("%s is not generation %d's value (\"%s...\", %zu bytes)", key, g, text, len);
	}
	rc = store_get(st, "odd", &val, &len);
	if (rc == 0) {
		snprintf(text, sizeof(text), "%.*s", (int)(len < 15 ? len : 15), (const char *)val);
		free(val);
		if (g % 2 == 0 || atoi(text) != g)
			WHY("\"odd\" holds \"%s\" in generation %d", text, g);
	} else if (g % 2) {
		WHY("\"odd\" missing (%d) in generation %d", rc, g);
	}
	/* The records are right; tdb's own structural check must agree. */
	if ((rc = store_check_structure(st)))
		WHY("every record is right (generation %d), but store_check_structure gave %d", g,
		    rc);
	/* Still a working store: the dead writer's locks are gone. */
	if ((rc = store_begin(st)))
		WHY("store_begin gave %d", rc);
	rc = store_put(st, "probe", "1", 1);
	store_cancel(st);
	if (rc)
		WHY("store_put gave %d", rc);
	*gen = g;
	result = 0;
out:
	store_close(st);
	return result;
#undef WHY
}

/*
 * Checks the store from a fresh process, as the next mount would (tdb runs
 * its recovery at open): returns the generation it holds, or fails the test.
 */
static int check_one_generation_ctx(const char *path, const char *ctx)
{
	struct { int rc, gen; char why[256]; } res = { -1, 0, "checker died" };
	int fds[2], status;
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		res.why[0] = '\0';
		res.rc = verify_one_generation(path, &res.gen, res.why, sizeof(res.why));
		_exit(write(fds[1], &res, sizeof(res)) == sizeof(res) ? 0 : 3);
	}
	close(fds[1]);
	ssize_t got = read(fds[0], &res, sizeof(res));
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (got != (ssize_t)sizeof(res) || res.rc != 0)
		fail_msg("after the crash (%s): %s", ctx, res.why);
	return res.gen;
}

static int check_one_generation(const char *path)
{
	return check_one_generation_ctx(path, "writer killed");
}

/* A child process: opens the store, commits generation first_gen (and on, when
 * loop), reporting "about to commit g" (-g) and "committed g" (g) on report_fd. */
static pid_t spawn_writer(const char *path, int first_gen, bool loop, bool kill_before_commit,
			  int pipefd[2])
{
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st;
		close(pipefd[0]);
		if (store_open(path, 0, &st))
			_exit(2);
		for (int g = first_gen;; g++) {
			if (write_generation(st, g, kill_before_commit, pipefd[1]))
				_exit(5);
			if (!loop)
				break;
		}
		store_close(st);
		_exit(0);
	}
	close(pipefd[1]);
	return pid;
}

static void test_crash_before_commit(void **state)
{
	struct fx *f = *state;
	struct store *st;
	int fds[2], status;

	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	store_close(st);
	/* Generation 1, committed by one process. */
	pid_t pid = spawn_writer(f->path, 1, false, false, fds);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fds[0]);
	assert_int_equal(check_one_generation(f->path), 1);
	/* Generation 2 put in full by another, which dies before store_commit. */
	pid = spawn_writer(f->path, 2, false, true, fds);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGKILL);
	close(fds[0]);
	assert_int_equal(check_one_generation(f->path), 1);
}

/* Reads the child's reports: returns the last committed generation seen. */
static int drain_reports(int fd, int last_committed, int *about)
{
	int v;
	while (read(fd, &v, sizeof(v)) == sizeof(v)) {
		if (v < 0)
			*about = -v;
		else
			last_committed = v;
	}
	return last_committed;
}

/* How kills landed: the commit in flight was kept, lost, or none was in flight. */
static int crash_kept, crash_lost, crash_idle;

/* Kills the writer, then checks: returns the generation the store holds. */
static int kill_and_check(const char *path, pid_t pid, int fd, int committed, int about)
{
	int status;
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	/* A writer of one generation may finish before the kill lands (a
	 * busy machine delays the kill, not only the writer): then its
	 * commit must be there, which the checks below hold it to. */
	if (!WIFSIGNALED(status) && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
		fail_msg("writer failed on its own (status %d)", status);
	committed = drain_reports(fd, committed, &about);
	close(fd);
	char ctx[96];
	snprintf(ctx, sizeof(ctx), "last committed generation %d, in flight %d", committed, about);
	int g = check_one_generation_ctx(path, ctx);
	/* Durable: what commit reported is there; atomic: at most the one in flight. */
	if (g != committed && !(g == committed + 1 && about == committed + 1))
		fail_msg("store holds generation %d; last committed %d, in flight %d", g,
			 committed, about);
	if (about != committed + 1)
		crash_idle++;
	else if (g == about)
		crash_kept++;
	else
		crash_lost++;
	return g;
}

static void report_crashes(const char *what)
{
	printf("%s: in-flight commit kept %d, lost %d; between commits %d\n", what, crash_kept,
	       crash_lost, crash_idle);
	crash_kept = crash_lost = crash_idle = 0;
}

static void test_crash_during_commit(void **state)
{
	struct fx *f = *state;
	struct store *st;
	/* Kill right after "about to commit", after a growing pause. */
	static const long delays_us[] = { 0, 0, 50, 100, 200, 400, 700, 1000, 1500, 2500 };
	crash_kept = crash_lost = crash_idle = 0;

	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	store_close(st);
	int next = 1;
	for (size_t round = 0; round < sizeof(delays_us) / sizeof(delays_us[0]); round++) {
		int fds[2], v, committed = next - 1, about = 0;
		pid_t pid = spawn_writer(f->path, next, true, false, fds);
		/* Let it commit a couple of generations, then catch the next commit. */
		int abouts = 0;
		while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
			if (v > 0) {
				committed = v;
				continue;
			}
			about = -v;
			if (++abouts == 3)
				break;
		}
		if (delays_us[round]) {
			struct timespec ts = { 0, delays_us[round] * 1000 };
			nanosleep(&ts, NULL);
		}
		next = kill_and_check(f->path, pid, fds[0], committed, about) + 1;
	}
	report_crashes("kills after \"about to commit\"");
}

/*
 * The very first commit of a new store grows the file from its bare header:
 * a writer killed there must leave an empty store that tdb still checks as
 * sound (store_check_structure 0), not one that fails the check for good.
 */
static void test_crash_in_first_commit(void **state)
{
	struct fx *f = *state;
	static const long delays_us[] = { 0, 0, 0, 100, 300, 1000 };
	char path[TU_PATH_MAX];
	crash_kept = crash_lost = crash_idle = 0;

	for (size_t i = 0; i < sizeof(delays_us) / sizeof(delays_us[0]); i++) {
		struct store *st;
		int fds[2], v, about = 0, committed = 0;
		char name[32];
		snprintf(name, sizeof(name), "first-%zu.tdb", i);
		tu_path(path, f->dir, name);
		assert_int_equal(store_open(path, STORE_CREATE, &st), 0);
		store_close(st);
		pid_t pid = spawn_writer(path, 1, false, false, fds);
		while (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
			if (v < 0) {
				about = -v;
				break;
			}
		}
		if (delays_us[i]) {
			struct timespec ts = { 0, delays_us[i] * 1000 };
			nanosleep(&ts, NULL);
		}
		kill_and_check(path, pid, fds[0], committed, about);
	}
	report_crashes("kills in a new store's first commit");
}

static void test_crash_at_random_moments(void **state)
{
	struct fx *f = *state;
	struct store *st;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	int first_fds[2], status;
	crash_kept = crash_lost = crash_idle = 0;

	assert_int_equal(store_open(f->path, STORE_CREATE, &st), 0);
	store_close(st);
	/* Generation 1 committed whole first (the first commit has its own test). */
	pid_t first = spawn_writer(f->path, 1, false, false, first_fds);
	assert_int_equal(waitpid(first, &status, 0), first);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(first_fds[0]);
	printf("random crash rounds: seed %u\n", seed);
	srand(seed);
	int next = 2;
	for (int round = 0; round < 12; round++) {
		int fds[2], v, committed = next - 1, about = 0;
		pid_t pid = spawn_writer(f->path, next, true, false, fds);
		/* Wait for it to start writing, then kill at a random moment. */
		if (read(fds[0], &v, sizeof(v)) == sizeof(v)) {
			if (v < 0)
				about = -v;
			else
				committed = v;
		}
		struct timespec ts = { 0, (long)(rand() % 30000) * 1000 };
		nanosleep(&ts, NULL);
		/* Continue after whatever is now in the store. */
		next = kill_and_check(f->path, pid, fds[0], committed, about) + 1;
	}
	report_crashes("kills at random moments");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_then_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_existing_is_eexist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_missing_is_enoent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_magic_refused_not_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_empty_file_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tdb_no_fsync_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_writer_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_after_growth, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_visible_after_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_not_visible, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nesting_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_refuses_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backup_copies_and_leaves_a_foreign_tmp_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compact_keeps_owner_group_and_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach_prefix, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nameless_keys_reach_a_walk_as_empty, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_store_foreach_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_waits_for_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_during_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_in_first_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_at_random_moments, setup, teardown),
	};
	return tu_run_group("store", tests, NULL, NULL);
}
