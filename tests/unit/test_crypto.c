/* Unit tests of crypto/crypto: AEAD, KDFs, secure buffers. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* nftw, strndup... when the build does not set it */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "crypto/crypto.h"

static int group_setup(void **state)
{
	(void)state;
	return tu_crypto_init();
}

static const uint8_t KEY[CRYPTO_KEY_LEN] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
	0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
	0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static void round_trip(size_t len, const char *aad)
{
	size_t aad_len = aad ? strlen(aad) : 0;
	uint8_t *plain = malloc(len + 1), *sealed = malloc(len + CRYPTO_SEAL_OVERHEAD);
	uint8_t *back = malloc(len + 1);
	assert_non_null(plain);
	assert_non_null(sealed);
	assert_non_null(back);
	crypto_random_nonce(plain, len + 1);
	assert_int_equal(crypto_seal(KEY, aad, aad_len, plain, len, sealed), 0);
	if (len >= 16) /* ciphertext is not the plaintext */
		assert_memory_not_equal(sealed + CRYPTO_NONCE_LEN, plain, 16);
	memset(back, 0xa5, len + 1);
	assert_int_equal(crypto_open(KEY, aad, aad_len, sealed, len + CRYPTO_SEAL_OVERHEAD, back), 0);
	if (len)
		assert_memory_equal(back, plain, len);
	assert_int_equal(back[len], 0xa5); /* exactly len bytes written */
	free(plain);
	free(sealed);
	free(back);
}

static void test_seal_open_round_trip(void **state)
{
	(void)state;
	round_trip(0, "aad");
	round_trip(1, "aad");
	round_trip(15, NULL);
	round_trip(16, "");
	round_trip(17, "secretsfs/value/v1");
	round_trip(1000, "x");
	round_trip(65536, "secretsfs/value/v1\0store\0secret");
}

static void test_flip_any_byte_fails(void **state)
{
	static const char msg[] = "correct horse battery staple, 40 bytes.";
	const size_t len = sizeof(msg) - 1;
	uint8_t sealed[sizeof(msg) + CRYPTO_SEAL_OVERHEAD];
	uint8_t plain[sizeof(msg)];
	const size_t slen = len + CRYPTO_SEAL_OVERHEAD;
	(void)state;

	assert_int_equal(crypto_seal(KEY, "ad", 2, msg, len, sealed), 0);
	/* Nonce (0..11), body (12..12+len-1), tag (last 16): every byte, every bit. */
	for (size_t i = 0; i < slen; i++) {
		for (int bit = 0; bit < 8; bit++) {
			sealed[i] ^= (uint8_t)(1u << bit);
			memset(plain, 0x5a, sizeof(plain));
			int rc = crypto_open(KEY, "ad", 2, sealed, slen, plain);
			if (rc != -EBADMSG)
				fail_msg("byte %zu bit %d flipped: crypto_open gave %d", i, bit, rc);
			if (!all_zero(plain, len))
				fail_msg("byte %zu bit %d flipped: output not wiped", i, bit);
			sealed[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* Restored, it opens again. */
	assert_int_equal(crypto_open(KEY, "ad", 2, sealed, slen, plain), 0);
	assert_memory_equal(plain, msg, len);

	/* Truncated or too short for nonce and tag. */
	memset(plain, 0x5a, sizeof(plain));
	assert_int_equal(crypto_open(KEY, "ad", 2, sealed, slen - 1, plain), -EBADMSG);
	assert_true(all_zero(plain, len - 1));
	assert_int_equal(crypto_open(KEY, "ad", 2, sealed, CRYPTO_SEAL_OVERHEAD, plain), -EBADMSG);
	assert_int_equal(crypto_open(KEY, "ad", 2, sealed, CRYPTO_SEAL_OVERHEAD - 1, plain), -EBADMSG);
	assert_int_equal(crypto_open(KEY, "ad", 2, sealed, 0, plain), -EBADMSG);
}

static void test_wrong_aad_or_key_fails(void **state)
{
	static const char msg[] = "db-password";
	uint8_t sealed[sizeof(msg) + CRYPTO_SEAL_OVERHEAD];
	uint8_t plain[sizeof(msg)];
	const size_t len = sizeof(msg) - 1, slen = len + CRYPTO_SEAL_OVERHEAD;
	static const char aad[] = "secretsfs/value/v1\0store\0secret\0version";
	uint8_t other_key[CRYPTO_KEY_LEN];
	(void)state;

	assert_int_equal(crypto_seal(KEY, aad, sizeof(aad), msg, len, sealed), 0);
	assert_int_equal(crypto_open(KEY, aad, sizeof(aad), sealed, slen, plain), 0);
	assert_memory_equal(plain, msg, len);

	const char other[] = "secretsfs/value/v1\0store\0secret\0versioN";
	memset(plain, 0x5a, sizeof(plain));
	assert_int_equal(crypto_open(KEY, other, sizeof(other), sealed, slen, plain), -EBADMSG);
	assert_true(all_zero(plain, len));
	assert_int_equal(crypto_open(KEY, aad, sizeof(aad) - 1, sealed, slen, plain), -EBADMSG);
	assert_int_equal(crypto_open(KEY, NULL, 0, sealed, slen, plain), -EBADMSG);
	/* The NUL separators count: moving one changes the binding. */
	const char shifted[] = "secretsfs/value/v1\0stor\0esecret\0version";
	assert_int_equal(crypto_open(KEY, shifted, sizeof(shifted), sealed, slen, plain), -EBADMSG);

	memcpy(other_key, KEY, sizeof(other_key));
	other_key[31] ^= 0x80;
	memset(plain, 0x5a, sizeof(plain));
	assert_int_equal(crypto_open(other_key, aad, sizeof(aad), sealed, slen, plain), -EBADMSG);
	assert_true(all_zero(plain, len));

	/* Sealed without AAD, opened with some: refused. */
	assert_int_equal(crypto_seal(KEY, NULL, 0, msg, len, sealed), 0);
	assert_int_equal(crypto_open(KEY, "x", 1, sealed, slen, plain), -EBADMSG);
	assert_int_equal(crypto_open(KEY, NULL, 0, sealed, slen, plain), 0);
}

static void test_seal_twice_differs(void **state)
{
	static const char msg[] = "same plaintext";
	const size_t len = sizeof(msg) - 1, slen = len + CRYPTO_SEAL_OVERHEAD;
	uint8_t a[sizeof(msg) + CRYPTO_SEAL_OVERHEAD], b[sizeof(msg) + CRYPTO_SEAL_OVERHEAD];
	uint8_t plain[sizeof(msg)];
	(void)state;
	assert_int_equal(crypto_seal(KEY, "ad", 2, msg, len, a), 0);
	assert_int_equal(crypto_seal(KEY, "ad", 2, msg, len, b), 0);
	assert_memory_not_equal(a, b, slen);
	assert_memory_not_equal(a, b, CRYPTO_NONCE_LEN); /* fresh nonce each time */
	assert_memory_not_equal(a + CRYPTO_NONCE_LEN, b + CRYPTO_NONCE_LEN, len);
	assert_int_equal(crypto_open(KEY, "ad", 2, a, slen, plain), 0);
	assert_memory_equal(plain, msg, len);
	assert_int_equal(crypto_open(KEY, "ad", 2, b, slen, plain), 0);
	assert_memory_equal(plain, msg, len);
}

/* The sealed layout is nonce | ciphertext | tag: check it against AES-256-GCM
 * test case 16 of McGrew and Viega's GCM specification. */
static void test_open_known_gcm_vector(void **state)
{
	uint8_t key[32], iv[12], pt[64], aad[32], ct[64], tag[16];
	uint8_t sealed[12 + 64 + 16], plain[64];
	(void)state;
	assert_int_equal(tu_unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
				  key, sizeof(key)), 32);
	assert_int_equal(tu_unhex("cafebabefacedbaddecaf888", iv, sizeof(iv)), 12);
	int ptlen = tu_unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
			     "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
			     pt, sizeof(pt));
	int aadlen = tu_unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad, sizeof(aad));
	int ctlen = tu_unhex("522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
			     "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
			     ct, sizeof(ct));
	assert_int_equal(tu_unhex("76fc6ece0f4e1768cddf8853bb2d551b", tag, sizeof(tag)), 16);
	assert_int_equal(ptlen, 60);
	assert_int_equal(ctlen, 60);
	assert_int_equal(aadlen, 20);
	memcpy(sealed, iv, 12);
	memcpy(sealed + 12, ct, 60);
	memcpy(sealed + 72, tag, 16);
	assert_int_equal(crypto_open(key, aad, 20, sealed, 88, plain), 0);
	assert_memory_equal(plain, pt, 60);
}

static void test_argon2id(void **state)
{
	static const uint8_t salt1[CRYPTO_SALT_LEN] = "0123456789abcdef";
	static const uint8_t salt2[CRYPTO_SALT_LEN] = "0123456789abcdeF";
	struct argon2_params p = { 1, 64, 1 };
	uint8_t a[32], b[32], c[32], d[32], e[32];
	(void)state;

	assert_int_equal(crypto_argon2id("pass", 4, salt1, sizeof(salt1), &p, a), 0);
	assert_int_equal(crypto_argon2id("pass", 4, salt1, sizeof(salt1), &p, b), 0);
	assert_memory_equal(a, b, 32);                                  /* deterministic */
	assert_int_equal(crypto_argon2id("pass", 4, salt2, sizeof(salt2), &p, c), 0);
	assert_memory_not_equal(a, c, 32);                              /* salt matters */
	assert_int_equal(crypto_argon2id("Pass", 4, salt1, sizeof(salt1), &p, d), 0);
	assert_memory_not_equal(a, d, 32);                              /* passphrase matters */
	struct argon2_params p2 = { 2, 64, 1 };
	assert_int_equal(crypto_argon2id("pass", 4, salt1, sizeof(salt1), &p2, e), 0);
	assert_memory_not_equal(a, e, 32);                              /* cost matters */
	assert_false(all_zero(a, 32));
}

/* The Argon2 reference implementation's test vector (src/test.c, v1.3, Argon2id). */
static void test_argon2id_reference_vector(void **state)
{
	struct argon2_params p = { 2, 256, 1 };
	uint8_t out[32], want[32];
	(void)state;
	assert_int_equal(tu_unhex("9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe",
				  want, sizeof(want)), 32);
	assert_int_equal(crypto_argon2id("password", 8, (const uint8_t *)"somesalt", 8, &p, out), 0);
	assert_memory_equal(out, want, 32);
}

static void check_hmac(const uint8_t *key, size_t key_len, const void *msg, size_t msg_len,
		       const char *want_hex)
{
	uint8_t out[32], want[32];
	assert_int_equal(tu_unhex(want_hex, want, sizeof(want)), 32);
	assert_int_equal(crypto_hmac_sha256(key, key_len, msg, msg_len, out), 0);
	assert_memory_equal(out, want, 32);
}

/* RFC 4231 test cases 1, 2, 3 and 6. */
static void test_hmac_sha256_rfc4231(void **state)
{
	uint8_t key[131], data[50];
	(void)state;

	memset(key, 0x0b, 20);
	check_hmac(key, 20, "Hi There", 8,
		   "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	check_hmac((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28,
		   "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(key, 0xaa, 20);
	memset(data, 0xdd, 50);
	check_hmac(key, 20, data, 50,
		   "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	memset(key, 0xaa, 131);
	check_hmac(key, 131, "Test Using Larger Than Block-Size Key - Hash Key First", 54,
		   "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

/* FIPS 180-2 examples: "abc", the empty message, the 448-bit message. */
static void test_sha256(void **state)
{
	static const struct { const char *msg; const char *want; } cases[] = {
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t out[32], want[32];
		assert_int_equal(tu_unhex(cases[i].want, want, sizeof(want)), 32);
		crypto_sha256(cases[i].msg, strlen(cases[i].msg), out);
		assert_memory_equal(out, want, 32);
	}
}

static void test_random(void **state)
{
	uint8_t a[32], b[32], n1[12], n2[12];
	(void)state;
	crypto_random_key(a, sizeof(a), false);
	crypto_random_key(b, sizeof(b), false);
	assert_memory_not_equal(a, b, sizeof(a));
	crypto_random_key(a, sizeof(a), true);
	assert_memory_not_equal(a, b, sizeof(a));
	crypto_random_nonce(n1, sizeof(n1));
	crypto_random_nonce(n2, sizeof(n2));
	assert_memory_not_equal(n1, n2, sizeof(n1));
}

static void test_secure_alloc_wipe(void **state)
{
	(void)state;
	uint8_t *p = crypto_secure_alloc(64);
	assert_non_null(p);
	memset(p, 0x77, 64);
	crypto_wipe(p, 64);
	assert_true(all_zero(p, 64));
	crypto_secure_free(p, 64);
	crypto_secure_free(NULL, 10); /* fine */
	crypto_wipe(NULL, 10);        /* fine */
	p = crypto_secure_alloc(0);
	assert_non_null(p);
	crypto_secure_free(p, 0);
}

static void test_secbuf(void **state)
{
	struct secbuf b = { 0 };
	(void)state;

	assert_int_equal(secbuf_reserve(&b, 16), 0);
	assert_non_null(b.data);
	assert_true(b.cap >= 16);
	assert_int_equal(b.len, 0);

	assert_int_equal(secbuf_set(&b, "hello", 5), 0);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "hello", 5);

	/* Growing keeps the contents. */
	assert_int_equal(secbuf_reserve(&b, 4096), 0);
	assert_true(b.cap >= 4096);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "hello", 5);
	/* Reserving less is a no-op. */
	uint8_t *before = b.data;
	size_t cap = b.cap;
	assert_int_equal(secbuf_reserve(&b, 8), 0);
	assert_ptr_equal(b.data, before);
	assert_int_equal(b.cap, cap);

	/* Set replaces, growing as needed. */
	uint8_t big[10000];
	memset(big, 'q', sizeof(big));
	assert_int_equal(secbuf_set(&b, big, sizeof(big)), 0);
	assert_int_equal(b.len, sizeof(big));
	assert_memory_equal(b.data, big, sizeof(big));
	assert_int_equal(secbuf_set(&b, "xy", 2), 0);
	assert_int_equal(b.len, 2);
	assert_memory_equal(b.data, "xy", 2);
	assert_int_equal(secbuf_set(&b, NULL, 0), 0);
	assert_int_equal(b.len, 0);

	secbuf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	secbuf_free(&b); /* twice is fine */

	/* An empty buffer set from scratch. */
	assert_int_equal(secbuf_set(&b, "abc", 3), 0);
	assert_memory_equal(b.data, "abc", 3);
	secbuf_free(&b);
}

static void test_secbuf_out_of_secure_memory(void **state)
{
	struct secbuf b = { 0 };
	(void)state;
	/* More than the whole pool: refused with -ENOMEM, buffer left usable. */
	assert_int_equal(secbuf_reserve(&b, 64u << 20), -ENOMEM);
	assert_int_equal(secbuf_set(&b, "ok", 2), 0);
	assert_memory_equal(b.data, "ok", 2);
	secbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open_round_trip),
		cmocka_unit_test(test_flip_any_byte_fails),
		cmocka_unit_test(test_wrong_aad_or_key_fails),
		cmocka_unit_test(test_seal_twice_differs),
		cmocka_unit_test(test_open_known_gcm_vector),
		cmocka_unit_test(test_argon2id),
		cmocka_unit_test(test_argon2id_reference_vector),
		cmocka_unit_test(test_hmac_sha256_rfc4231),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_secure_alloc_wipe),
		cmocka_unit_test(test_secbuf),
		cmocka_unit_test(test_secbuf_out_of_secure_memory),
	};
	return tu_run_group("crypto", tests, group_setup, NULL);
}
