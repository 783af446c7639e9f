/*
 * crypto: every cryptographic operation of secretsfs, on libgcrypt.
 *
 * AEAD is AES-256-GCM. A sealed message is nonce(12) | ciphertext | tag(16),
 * CRYPTO_SEAL_OVERHEAD bytes longer than its plaintext. Keys are 32 bytes.
 * Functions return 0 or a negative errno; a message that fails
 * authentication is -EBADMSG. This file maps libgcrypt's error space.
 * Secret material lives in secure (locked, wiped-on-free) memory: see
 * crypto_secure_alloc and struct secbuf.
 */
#ifndef SECRETSFS_CRYPTO_CRYPTO_H
#define SECRETSFS_CRYPTO_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRYPTO_KEY_LEN 32
#define CRYPTO_NONCE_LEN 12
#define CRYPTO_TAG_LEN 16
#define CRYPTO_SEAL_OVERHEAD (CRYPTO_NONCE_LEN + CRYPTO_TAG_LEN)
#define CRYPTO_SALT_LEN 16

/*
 * Initialise libgcrypt with a locked secure-memory pool of secmem_bytes
 * (0: the library minimum, for short-lived commands). Call once, after any
 * fork that should own the pool: locks are not inherited by children.
 */
int crypto_init(size_t secmem_bytes);
/* Wipes and releases the secure pool (process exit). */
void crypto_shutdown(void);

/* Key material: GCRY_VERY_STRONG_RANDOM for master keys, STRONG otherwise. */
void crypto_random_key(void *buf, size_t len, bool long_term);
/* Unpredictable but cheaper bytes: nonces, identifiers. */
void crypto_random_nonce(void *buf, size_t len);

void *crypto_secure_alloc(size_t len);  /* NULL when the pool is exhausted */
void crypto_secure_free(void *ptr, size_t len); /* wipes first; NULL is fine */
void crypto_wipe(void *ptr, size_t len);

/* out must hold ptlen + CRYPTO_SEAL_OVERHEAD bytes. */
int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
		const void *plain, size_t plain_len, uint8_t *out);
/* plain must hold sealed_len - CRYPTO_SEAL_OVERHEAD bytes. -EBADMSG if forged. */
int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
		const uint8_t *sealed, size_t sealed_len, void *plain);

struct argon2_params {
	uint32_t t_cost;    /* passes */
	uint32_t m_cost_kib;
	uint32_t parallelism;
};

int crypto_argon2id(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
		    const struct argon2_params *params, uint8_t out[CRYPTO_KEY_LEN]);
int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
		       uint8_t out[32]);
/* A plain SHA-256 digest (SigV4 hashes bodies and canonical requests). */
void crypto_sha256(const void *msg, size_t msg_len, uint8_t out[32]);

/*
 * A subkey for one purpose: HKDF-Expand (RFC 5869) with SHA-256 of a
 * uniformly random key (a master key needs no Extract step, §3.3), info =
 * label NUL context, one block. Keys for different labels or contexts are
 * independent: learning one tells nothing of the key or of the others.
 */
int crypto_derive_key(const uint8_t key[CRYPTO_KEY_LEN], const char *label, const char *context,
		      uint8_t out[CRYPTO_KEY_LEN]);

/*
 * A keyed pseudorandom function, HMAC-SHA-256, with its key kept in secure
 * memory for many messages (one handle, keyed once: a handle costs more
 * than a short message). A message is the concatenation of parts.
 * Thread-safe.
 */
#define CRYPTO_PRF_LEN 32

struct crypto_prf;
struct crypto_part {
	const void *data;
	size_t len;
};

int crypto_prf_new(const uint8_t key[CRYPTO_KEY_LEN], struct crypto_prf **out);
void crypto_prf_free(struct crypto_prf *prf);
int crypto_prf(struct crypto_prf *prf, const struct crypto_part *parts, size_t nparts,
	       uint8_t out[CRYPTO_PRF_LEN]);

/* Compares in time that depends only on len (tags, digests). */
bool crypto_equal(const void *a, const void *b, size_t len);

/* A growable byte buffer in secure memory, for plaintext values. */
struct secbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

int secbuf_reserve(struct secbuf *buf, size_t cap); /* -ENOMEM when secure memory is out */
int secbuf_set(struct secbuf *buf, const void *data, size_t len);
void secbuf_free(struct secbuf *buf); /* wipes; leaves an empty buffer */

#endif
