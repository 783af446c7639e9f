/* Unit tests of secrets/keyring: key files, master key, named keys. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "secrets/keyring.h"

struct fx {
	char dir[TU_PATH_MAX];
	char store[TU_PATH_MAX];
	char keyfile[TU_PATH_MAX];
	uint8_t key[CRYPTO_KEY_LEN];
};

static int group_setup(void **state)
{
	(void)state;
	return tu_crypto_init();
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || tu_mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	tu_path(f->store, f->dir, "store.tdb");
	tu_path(f->keyfile, f->dir, "master.key");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* A key-file store at f->store, key in f->key. */
static void make_key_store(struct fx *f)
{
	assert_int_equal(tu_make_key(f->keyfile, f->key), 0);
	assert_int_equal(tu_create_store(f->store, f->key), 0);
}

static int unlock_with_key(const char *path, const uint8_t key[CRYPTO_KEY_LEN],
			   struct keyring **kr, struct store **st)
{
	struct unlock_secret u = tu_key_unlock(key);
	int rc = store_open(path, 0, st);
	if (rc)
		return rc;
	rc = keyring_unlock(*st, &u, kr);
	if (rc) {
		store_close(*st);
		*st = NULL;
	}
	return rc;
}

/* ---------- key files ---------- */

static void test_write_key_file(void **state)
{
	struct fx *f = *state;
	struct stat sb;
	uint8_t *text, key[CRYPTO_KEY_LEN], again[CRYPTO_KEY_LEN];
	size_t len;

	mode_t old = umask(0); /* the file is 0600 by itself, not thanks to the umask */
	int rc = keyring_write_key_file(f->keyfile);
	umask(old);
	assert_int_equal(rc, 0);
	assert_int_equal(stat(f->keyfile, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(sb.st_mode & 07777, 0600);

	/* 64 hex digits and a newline. */
	assert_int_equal(tu_read_file(f->keyfile, &text, &len), 0);
	assert_int_equal(len, 65);
	assert_int_equal(text[64], '\n');
	for (size_t i = 0; i < 64; i++)
		assert_non_null(strchr("0123456789abcdefABCDEF", text[i]));
	assert_int_equal(keyring_read_key_file(f->keyfile, key), 0);
	text[64] = '\0';
	uint8_t want[CRYPTO_KEY_LEN];
	assert_int_equal(tu_unhex((const char *)text, want, sizeof(want)), 32);
	assert_memory_equal(key, want, 32);

	/* Never overwritten. */
	assert_int_equal(keyring_write_key_file(f->keyfile), -EEXIST);
	assert_int_equal(keyring_read_key_file(f->keyfile, again), 0);
	assert_memory_equal(key, again, 32);
	text[64] = '\n';
	assert_int_equal(tu_file_equals(f->keyfile, text, len), 1);
	free(text);

	/* Two key files differ. */
	char second[TU_PATH_MAX];
	tu_path(second, f->dir, "second.key");
	assert_int_equal(keyring_write_key_file(second), 0);
	assert_int_equal(keyring_read_key_file(second, again), 0);
	assert_memory_not_equal(key, again, 32);

	/* A folder that does not exist. */
	char nowhere[TU_PATH_MAX];
	tu_path(nowhere, f->dir, "no/such/dir.key");
	assert_int_equal(keyring_write_key_file(nowhere), -ENOENT);
}

static void expect_key(const char *path, const void *content, size_t len, const uint8_t *want)
{
	uint8_t key[CRYPTO_KEY_LEN];
	assert_int_equal(tu_write_file(path, content, len), 0);
	memset(key, 0, sizeof(key));
	assert_int_equal(keyring_read_key_file(path, key), 0);
	assert_memory_equal(key, want, CRYPTO_KEY_LEN);
}

static void expect_bad_key(const char *path, const void *content, size_t len)
{
	uint8_t key[CRYPTO_KEY_LEN];
	assert_int_equal(tu_write_file(path, content, len), 0);
	int rc = keyring_read_key_file(path, key);
	if (rc != -EINVAL)
		fail_msg("key file of %zu bytes gave %d, expected -EINVAL", len, rc);
}

static void test_read_key_file_forms(void **state)
{
	struct fx *f = *state;
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	uint8_t want[CRYPTO_KEY_LEN], raw[CRYPTO_KEY_LEN];
	char buf[256];

	for (int i = 0; i < CRYPTO_KEY_LEN; i++)
		want[i] = (uint8_t)i;
	expect_key(f->keyfile, hex, 64, want);                     /* no newline */
	snprintf(buf, sizeof(buf), "%s\n", hex);
	expect_key(f->keyfile, buf, 65, want);
	snprintf(buf, sizeof(buf), "%s\r\n", hex);
	expect_key(f->keyfile, buf, 66, want);
	snprintf(buf, sizeof(buf), "%s\n\n  \t", hex);
	expect_key(f->keyfile, buf, strlen(buf), want);
	for (size_t i = 0; i < 64; i++) /* upper case */
		buf[i] = (char)((hex[i] >= 'a' && hex[i] <= 'f') ? hex[i] - 32 : hex[i]);
	expect_key(f->keyfile, buf, 64, want);

	/* 32 raw bytes, any values (NUL, newline, 0xff...). */
	for (int i = 0; i < CRYPTO_KEY_LEN; i++)
		raw[i] = (uint8_t)(i * 37 + 10);
	raw[0] = 0;
	raw[31] = '\n';
	expect_key(f->keyfile, raw, 32, raw);
	memset(raw, 0xff, sizeof(raw));
	expect_key(f->keyfile, raw, 32, raw);
}

static void test_read_key_file_rejects(void **state)
{
	struct fx *f = *state;
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
	char buf[256];
	uint8_t key[CRYPTO_KEY_LEN];

	expect_bad_key(f->keyfile, "", 0);
	expect_bad_key(f->keyfile, "\n", 1);
	expect_bad_key(f->keyfile, hex, 31);
	expect_bad_key(f->keyfile, hex, 33);
	expect_bad_key(f->keyfile, hex, 62);
	expect_bad_key(f->keyfile, hex, 63);
	snprintf(buf, sizeof(buf), "%sa", hex);        /* 65 hex digits */
	expect_bad_key(f->keyfile, buf, 65);
	snprintf(buf, sizeof(buf), "%s%s", hex, hex);  /* 128 hex digits */
	expect_bad_key(f->keyfile, buf, 128);
	snprintf(buf, sizeof(buf), "%s", hex);
	buf[10] = 'g';                                 /* not hex */
	expect_bad_key(f->keyfile, buf, 64);
	buf[10] = ' ';
	expect_bad_key(f->keyfile, buf, 64);
	snprintf(buf, sizeof(buf), " %s", hex);        /* leading space */
	expect_bad_key(f->keyfile, buf, 65);
	memset(buf, 'A', 33);                          /* 33 raw bytes */
	expect_bad_key(f->keyfile, buf, 33);
	memset(buf, 'A', 31);                          /* 31 raw bytes */
	expect_bad_key(f->keyfile, buf, 31);
	char *big = malloc(4096);
	assert_non_null(big);
	memset(big, 'b', 4096);
	expect_bad_key(f->keyfile, big, 4096);
	free(big);

	char missing[TU_PATH_MAX];
	tu_path(missing, f->dir, "missing.key");
	assert_int_equal(keyring_read_key_file(missing, key), -ENOENT);
}

/* The key of the file that was opened, whatever its name points to later;
 * from a pipe as well (/dev/stdin, <(...)). */
static void test_read_key_fd(void **state)
{
	struct fx *f = *state;
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	uint8_t want[CRYPTO_KEY_LEN], key[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
	for (int i = 0; i < CRYPTO_KEY_LEN; i++)
		want[i] = (uint8_t)i;

	assert_int_equal(tu_write_file(f->keyfile, hex, strlen(hex)), 0);
	int fd = open(f->keyfile, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	char moved[TU_PATH_MAX];
	tu_path(moved, f->dir, "moved.key");
	assert_int_equal(rename(f->keyfile, moved), 0);
	assert_int_equal(tu_make_key(f->keyfile, other), 0); /* another key at the name */
	memset(key, 0, sizeof(key));
	assert_int_equal(keyring_read_key_fd(fd, key), 0);
	assert_memory_equal(key, want, CRYPTO_KEY_LEN);
	close(fd);

	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], hex, 30), 30); /* in two writes */
	assert_int_equal(write(p[1], hex + 30, strlen(hex) - 30), (ssize_t)(strlen(hex) - 30));
	close(p[1]);
	memset(key, 0, sizeof(key));
	assert_int_equal(keyring_read_key_fd(p[0], key), 0);
	assert_memory_equal(key, want, CRYPTO_KEY_LEN);
	close(p[0]);

	/* Not a key: -EINVAL, as from a path. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], hex, 40), 40);
	close(p[1]);
	assert_int_equal(keyring_read_key_fd(p[0], key), -EINVAL);
	close(p[0]);
	assert_int_equal(keyring_read_key_fd(-1, key), -EBADF);
}

/* ---------- unlocking ---------- */

static void test_create_and_unlock_with_key_file(void **state)
{
	struct fx *f = *state;
	struct keyring *kr = NULL;
	struct store *st;

	make_key_store(f);
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	assert_non_null(kr);
	enum unlock_kind kind = UNLOCK_PASSPHRASE;
	assert_int_equal(keyring_store_kind(st, &kind), 0);
	assert_int_equal(kind, UNLOCK_KEY_FILE);
	assert_int_equal(strlen(keyring_store_id(kr)), KEYRING_STORE_ID_LEN);
	assert_string_equal(keyring_region(kr), "us-east-1");
	assert_string_equal(keyring_account(kr), "123456789012");
	char id[KEYRING_STORE_ID_LEN + 1];
	snprintf(id, sizeof(id), "%s", keyring_store_id(kr));
	keyring_free(kr);
	store_close(st);

	/* The same again after reopening; the format record is there. */
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	assert_string_equal(keyring_store_id(kr), id);
	uint8_t *val;
	size_t len;
	assert_int_equal(store_get(st, RECORD_KEY_FORMAT, &val, &len), 0);
	assert_int_equal(len, 1);
	assert_int_equal(val[0], '0' + RECORD_FORMAT_VERSION);
	free(val);
	keyring_free(kr);
	store_close(st);

	/* Another store has another id. */
	char other[TU_PATH_MAX];
	tu_path(other, f->dir, "other.tdb");
	assert_int_equal(tu_create_store(other, f->key), 0);
	assert_int_equal(unlock_with_key(other, f->key, &kr, &st), 0);
	assert_string_not_equal(keyring_store_id(kr), id);
	keyring_free(kr);
	store_close(st);
}

static void test_wrong_key_is_eacces_and_store_untouched(void **state)
{
	struct fx *f = *state;
	struct keyring *kr = (struct keyring *)1;
	struct store *st;
	uint8_t *before;
	size_t len;
	uint8_t wrong[CRYPTO_KEY_LEN];

	make_key_store(f);
	assert_int_equal(tu_read_file(f->store, &before, &len), 0);

	memcpy(wrong, f->key, sizeof(wrong));
	wrong[0] ^= 1;
	assert_int_equal(store_open(f->store, 0, &st), 0);
	struct unlock_secret u = tu_key_unlock(wrong);
	assert_int_equal(keyring_unlock(st, &u, &kr), -EACCES);
	assert_null(kr);
	/* A passphrase for a key-file store is the wrong kind of secret. */
	struct unlock_secret p = { UNLOCK_PASSPHRASE, (const uint8_t *)"secret", 6 };
	kr = (struct keyring *)1;
	assert_int_equal(keyring_unlock(st, &p, &kr), -ENOKEY);
	assert_null(kr);
	/* The right key still works on the same handle. */
	u = tu_key_unlock(f->key);
	assert_int_equal(keyring_unlock(st, &u, &kr), 0);
	keyring_free(kr);
	store_close(st);

	assert_int_equal(tu_file_equals(f->store, before, len), 1);
	free(before);
}

static void test_passphrase_store(void **state)
{
	struct fx *f = *state;
	struct store *st;
	struct keyring *kr = (struct keyring *)1;
	static const char pass[] = "correct horse battery staple";
	struct unlock_secret right = { UNLOCK_PASSPHRASE, (const uint8_t *)pass, sizeof(pass) - 1 };
	struct unlock_secret wrong = { UNLOCK_PASSPHRASE, (const uint8_t *)pass, sizeof(pass) - 2 };
	uint8_t *before, key[CRYPTO_KEY_LEN];
	size_t len;

	assert_int_equal(store_open(f->store, STORE_CREATE, &st), 0);
	assert_int_equal(keyring_create(st, &right, "eu-west-1", "000000000001"), 0);
	store_close(st);
	assert_int_equal(tu_read_file(f->store, &before, &len), 0);

	assert_int_equal(store_open(f->store, 0, &st), 0);
	enum unlock_kind kind = UNLOCK_KEY_FILE;
	assert_int_equal(keyring_store_kind(st, &kind), 0);
	assert_int_equal(kind, UNLOCK_PASSPHRASE);
	assert_int_equal(keyring_unlock(st, &wrong, &kr), -EACCES);
	assert_null(kr);
	/* A key file for a passphrase store is the wrong kind of secret. */
	assert_int_equal(tu_make_key(f->keyfile, key), 0);
	struct unlock_secret kf = tu_key_unlock(key);
	kr = (struct keyring *)1;
	assert_int_equal(keyring_unlock(st, &kf, &kr), -ENOKEY);
	assert_null(kr);
	store_close(st);
	assert_int_equal(tu_file_equals(f->store, before, len), 1);

	assert_int_equal(store_open(f->store, 0, &st), 0);
	assert_int_equal(keyring_unlock(st, &right, &kr), 0);
	assert_string_equal(keyring_region(kr), "eu-west-1");
	assert_string_equal(keyring_account(kr), "000000000001");
	keyring_free(kr);
	store_close(st);
	free(before);
}

static void expect_header_damage(struct fx *f, const char *record, const void *val, size_t len,
				 int want)
{
	struct store *st;
	struct keyring *kr = (struct keyring *)1;
	uint8_t *orig, *before;
	size_t orig_len, before_len;

	assert_int_equal(tu_get_record(f->store, record, &orig, &orig_len), 0);
	assert_int_equal(tu_set_record(f->store, record, val, len), 0);
	assert_int_equal(tu_read_file(f->store, &before, &before_len), 0);
	assert_int_equal(store_open(f->store, 0, &st), 0);
	struct unlock_secret u = tu_key_unlock(f->key);
	int rc = keyring_unlock(st, &u, &kr);
	if (rc != want)
		fail_msg("%s = \"%.*s\": keyring_unlock gave %d, expected %d", record, (int)len,
			 val ? (const char *)val : "(deleted)", rc, want);
	assert_null(kr);
	/* What the header says in clear reads as far as it parses: a header
	 * that parses but does not open still names its kind. */
	enum unlock_kind kind = UNLOCK_PASSPHRASE;
	assert_int_equal(keyring_store_kind(st, &kind), want == -EIO ? -EIO : 0);
	if (want != -EIO)
		assert_int_equal(kind, UNLOCK_KEY_FILE);
	store_close(st);
	/* A failed unlock writes nothing. */
	assert_int_equal(tu_file_equals(f->store, before, before_len), 1);
	free(before);
	assert_int_equal(tu_set_record(f->store, record, orig, orig_len), 0);
	free(orig);
}

static void test_damaged_header_is_eio(void **state)
{
	struct fx *f = *state;
	static const char garbage[] = "\x00\xffgarbage{{{";
	uint8_t *hdr;
	size_t len;

	make_key_store(f);
	expect_header_damage(f, RECORD_KEY_HEADER, garbage, sizeof(garbage) - 1, -EIO);
	expect_header_damage(f, RECORD_KEY_HEADER, "{}", 2, -EIO);
	expect_header_damage(f, RECORD_KEY_HEADER, "[1,2]", 5, -EIO);
	expect_header_damage(f, RECORD_KEY_HEADER, "", 0, -EIO);
	expect_header_damage(f, RECORD_KEY_HEADER, NULL, 0, -EIO);       /* missing */
	expect_header_damage(f, RECORD_KEY_FORMAT, "4", 1, -EIO);        /* a future format */
	expect_header_damage(f, RECORD_KEY_FORMAT, "2", 1, -EIO);        /* a downgrade */
	expect_header_damage(f, RECORD_KEY_FORMAT, "x", 1, -EIO);
	expect_header_damage(f, RECORD_KEY_FORMAT, NULL, 0, -EIO);

	/* The real header truncated anywhere is refused too. */
	assert_int_equal(tu_get_record(f->store, RECORD_KEY_HEADER, &hdr, &len), 0);
	for (size_t cut = 1; cut < len; cut += 7)
		expect_header_damage(f, RECORD_KEY_HEADER, hdr, cut, -EIO);
	/* Its wrapped master key with a bad hex digit. */
	char *text = malloc(len + 1);
	assert_non_null(text);
	memcpy(text, hdr, len);
	text[len] = '\0';
	char *mk = memmem(text, len, "\"master_key\":\"", strlen("\"master_key\":\""));
	assert_non_null(mk);
	mk += strlen("\"master_key\":\"");
	char saved = mk[3];
	mk[3] = 'z';
	expect_header_damage(f, RECORD_KEY_HEADER, text, len, -EIO);
	/* ... or a valid digit changed: the key does not open it (wrong key or forgery). */
	mk[3] = saved == '0' ? '1' : '0';
	expect_header_damage(f, RECORD_KEY_HEADER, text, len, -EACCES);
	mk[3] = saved;
	/* Unchanged again: opens. */
	struct store *st;
	struct keyring *kr;
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	keyring_free(kr);
	store_close(st);
	free(text);
	free(hdr);
}

/* ---------- named keys ---------- */

static int count_keys(const char *key, const uint8_t *val, size_t len, void *ctx)
{
	(void)key;
	(void)val;
	(void)len;
	(*(int *)ctx)++;
	return 0;
}

static void test_default_key(void **state)
{
	struct fx *f = *state;
	struct keyring *kr;
	struct store *st;
	char id1[SM_KEY_ID_LEN + 1], id2[SM_KEY_ID_LEN + 1], id3[SM_KEY_ID_LEN + 1];
	int n = 0;

	make_key_store(f);
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	assert_int_equal(store_foreach(st, RECORD_PREFIX_KEY, count_keys, &n), 0);
	assert_int_equal(n, 0); /* made on first need */
	assert_int_equal(keyring_default_key(kr, id1), 0);
	assert_int_equal(strlen(id1), SM_KEY_ID_LEN);
	assert_int_equal(keyring_default_key(kr, id2), 0);
	assert_string_equal(id1, id2);
	n = 0;
	assert_int_equal(store_foreach(st, RECORD_PREFIX_KEY, count_keys, &n), 0);
	assert_int_equal(n, 1);
	keyring_free(kr);
	store_close(st);

	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	assert_int_equal(keyring_default_key(kr, id3), 0);
	assert_string_equal(id1, id3);
	n = 0;
	assert_int_equal(store_foreach(st, RECORD_PREFIX_KEY, count_keys, &n), 0);
	assert_int_equal(n, 1);
	keyring_free(kr);
	store_close(st);
}

static void test_wrap_unwrap(void **state)
{
	struct fx *f = *state;
	struct keyring *kr;
	struct store *st;
	char id[SM_KEY_ID_LEN + 1];
	uint8_t dek[CRYPTO_KEY_LEN], back[CRYPTO_KEY_LEN], wrapped[KEYRING_WRAPPED_DEK_LEN];
	uint8_t again[KEYRING_WRAPPED_DEK_LEN];
	static const char aad[] = "secretsfs/dek/v1\0store\0secret\0version";

	make_key_store(f);
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	assert_int_equal(keyring_default_key(kr, id), 0);
	crypto_random_key(dek, sizeof(dek), false);
	assert_int_equal(keyring_wrap(kr, id, aad, sizeof(aad), dek, wrapped), 0);
	assert_memory_not_equal(wrapped + CRYPTO_NONCE_LEN, dek, CRYPTO_KEY_LEN);
	assert_int_equal(keyring_unwrap(kr, id, aad, sizeof(aad), wrapped, sizeof(wrapped), back), 0);
	assert_memory_equal(back, dek, sizeof(dek));
	/* Wrapping twice gives two different records of the same key. */
	assert_int_equal(keyring_wrap(kr, id, aad, sizeof(aad), dek, again), 0);
	assert_memory_not_equal(again, wrapped, sizeof(wrapped));

	/* Another binding, a damaged record, a wrong length, an unknown key. */
	static const char other[] = "secretsfs/dek/v1\0store\0secret\0versioN";
	assert_int_equal(keyring_unwrap(kr, id, other, sizeof(other), wrapped, sizeof(wrapped), back),
			 -EBADMSG);
	assert_int_equal(keyring_unwrap(kr, id, NULL, 0, wrapped, sizeof(wrapped), back), -EBADMSG);
	for (size_t i = 0; i < sizeof(wrapped); i += 5) {
		wrapped[i] ^= 0x40;
		assert_int_equal(keyring_unwrap(kr, id, aad, sizeof(aad), wrapped, sizeof(wrapped),
						back), -EBADMSG);
		wrapped[i] ^= 0x40;
	}
	assert_int_equal(keyring_unwrap(kr, id, aad, sizeof(aad), wrapped, sizeof(wrapped) - 1, back),
			 -EBADMSG);
	static const char nokey[] = "00000000-0000-4000-8000-000000000000";
	assert_int_equal(keyring_unwrap(kr, nokey, aad, sizeof(aad), wrapped, sizeof(wrapped), back),
			 -ENOENT);
	assert_int_equal(keyring_wrap(kr, nokey, aad, sizeof(aad), dek, again), -ENOENT);
	keyring_free(kr);
	store_close(st);

	/* After reopening, the named key still unwraps what it wrapped. */
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	memset(back, 0, sizeof(back));
	assert_int_equal(keyring_unwrap(kr, id, aad, sizeof(aad), wrapped, sizeof(wrapped), back), 0);
	assert_memory_equal(back, dek, sizeof(dek));
	keyring_free(kr);
	store_close(st);

	/* Another store's keyring cannot unwrap it. */
	char other_store[TU_PATH_MAX];
	char oid[SM_KEY_ID_LEN + 1];
	tu_path(other_store, f->dir, "other.tdb");
	assert_int_equal(tu_create_store(other_store, f->key), 0);
	assert_int_equal(unlock_with_key(other_store, f->key, &kr, &st), 0);
	assert_int_equal(keyring_default_key(kr, oid), 0);
	assert_string_not_equal(oid, id);
	assert_int_equal(keyring_unwrap(kr, oid, aad, sizeof(aad), wrapped, sizeof(wrapped), back),
			 -EBADMSG);
	keyring_free(kr);
	store_close(st);
}

static void test_damaged_named_key_record(void **state)
{
	struct fx *f = *state;
	struct keyring *kr = (struct keyring *)1;
	struct store *st;
	char id[SM_KEY_ID_LEN + 1], rkey[64];
	uint8_t *rec;
	size_t len;

	make_key_store(f);
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	assert_int_equal(keyring_default_key(kr, id), 0);
	keyring_free(kr);
	store_close(st);
	snprintf(rkey, sizeof(rkey), "%s%s", RECORD_PREFIX_KEY, id);
	assert_int_equal(tu_get_record(f->store, rkey, &rec, &len), 0);
	/* A named key sealed under another master key (a record from elsewhere). */
	char *text = malloc(len + 1);
	assert_non_null(text);
	memcpy(text, rec, len);
	text[len] = '\0';
	char *sealed = memmem(text, len, "\"sealed\":\"", strlen("\"sealed\":\""));
	assert_non_null(sealed);
	sealed += strlen("\"sealed\":\"");
	sealed[0] = sealed[0] == 'a' ? 'b' : 'a';
	/* The record fails its tag: the key is kept as damaged, by id, so that
	 * its secrets' versions fail (EIO) rather than vanish; the load refuses. */
	uint8_t dek[CRYPTO_KEY_LEN] = { 0 }, wrapped[KEYRING_WRAPPED_DEK_LEN];
	static const char *const edits[] = { NULL, "{" };
	for (size_t e = 0; e < 2; e++) {
		if (edits[e])
			assert_int_equal(tu_set_record(f->store, rkey, edits[e], 1), 0);
		else
			assert_int_equal(tu_set_record(f->store, rkey, text, len), 0);
		assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
		assert_int_equal(keyring_damaged(kr), 1);
		assert_int_equal(keyring_wrap(kr, id, "a", 1, dek, wrapped), -EBADMSG);
		assert_int_equal(keyring_unwrap(kr, id, "a", 1, wrapped, sizeof(wrapped), dek),
				 -EBADMSG);
		keyring_free(kr);
		store_close(st);
	}
	assert_int_equal(tu_set_record(f->store, rkey, rec, len), 0);
	assert_int_equal(unlock_with_key(f->store, f->key, &kr, &st), 0);
	keyring_free(kr);
	store_close(st);
	free(text);
	free(rec);
}

static void test_new_uuid(void **state)
{
	char a[37], b[37];
	(void)state;
	keyring_new_uuid(a);
	keyring_new_uuid(b);
	assert_int_equal(strlen(a), 36);
	assert_string_not_equal(a, b);
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(a[i], '-');
		else
			assert_non_null(strchr("0123456789abcdef", a[i]));
	}
	assert_int_equal(a[14], '4');                   /* version 4 */
	assert_non_null(strchr("89ab", a[19]));         /* RFC 4122 variant */
	assert_int_equal(name_check_version_id(a, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_key_file_forms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_key_file_rejects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_key_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_and_unlock_with_key_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_key_is_eacces_and_store_untouched, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_passphrase_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_header_is_eio, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_unwrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_named_key_record, setup, teardown),
		cmocka_unit_test(test_new_uuid),
	};
	return tu_run_group("keyring", tests, group_setup, NULL);
}
