#include "crypto/crypto.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>

#include "util/log.h"

#define NEED_LIBGCRYPT_VERSION "1.10.0"

/* The one mapping of libgcrypt's error space onto errno. */
static int gcry_to_errno(gcry_error_t err)
{
	switch (gcry_err_code(err)) {
	case GPG_ERR_NO_ERROR: return 0;
	case GPG_ERR_CHECKSUM: return -EBADMSG;
	case GPG_ERR_ENOMEM: return -ENOMEM;
	case GPG_ERR_INV_ARG:
	case GPG_ERR_INV_LENGTH:
	case GPG_ERR_INV_KEYLEN: return -EINVAL;
	default:
		log_error("libgcrypt: %s", gcry_strerror(err));
		return -EIO;
	}
}

int crypto_init(size_t secmem_bytes)
{
	if (!gcry_check_version(NEED_LIBGCRYPT_VERSION)) {
		log_error("libgcrypt %s or newer is required", NEED_LIBGCRYPT_VERSION);
		return -ENOTSUP;
	}
	gcry_control(GCRYCTL_SUSPEND_SECMEM_WARN);
	if (gcry_control(GCRYCTL_INIT_SECMEM, secmem_bytes ? secmem_bytes : 16384, 0)) {
		log_error("cannot set up secure memory");
		return -ENOMEM;
	}
	gcry_control(GCRYCTL_RESUME_SECMEM_WARN);
	gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
	/* A pool that could not be locked would let plaintext reach swap. */
	if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P))
		return -EIO;
	return 0;
}

void crypto_shutdown(void)
{
	gcry_control(GCRYCTL_TERM_SECMEM);
}

void crypto_random_key(void *buf, size_t len, bool long_term)
{
	gcry_randomize(buf, len, long_term ? GCRY_VERY_STRONG_RANDOM : GCRY_STRONG_RANDOM);
}

void crypto_random_nonce(void *buf, size_t len)
{
	gcry_create_nonce(buf, len);
}

void *crypto_secure_alloc(size_t len)
{
	return gcry_malloc_secure(len ? len : 1);
}

void crypto_wipe(void *ptr, size_t len)
{
	if (ptr)
		explicit_bzero(ptr, len);
}

void crypto_secure_free(void *ptr, size_t len)
{
	if (!ptr)
		return;
	crypto_wipe(ptr, len); /* gcry_free also wipes secure memory; be explicit */
	gcry_free(ptr);
}

/*
 * One GCM handle per thread, keyed afresh for each message: opening a
 * handle costs about twenty times a small seal (reference §3.2), and
 * libgcrypt polls for entropy on every open.
 */
static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void close_handle(void *hd)
{
	gcry_cipher_close(hd);
}

static void make_handle_key(void)
{
	pthread_key_create(&handle_key, close_handle);
}

static int gcm_open_handle(gcry_cipher_hd_t *hd, const uint8_t key[CRYPTO_KEY_LEN],
			   const uint8_t nonce[CRYPTO_NONCE_LEN], const void *aad, size_t aad_len)
{
	gcry_error_t err;
	pthread_once(&handle_once, make_handle_key);
	*hd = pthread_getspecific(handle_key);
	if (!*hd) {
		err = gcry_cipher_open(hd, GCRY_CIPHER_AES256, GCRY_CIPHER_MODE_GCM, GCRY_CIPHER_SECURE);
		if (err)
			return gcry_to_errno(err);
		pthread_setspecific(handle_key, *hd);
	}
	/* setkey resets the handle; the previous message's state is gone. */
	err = gcry_cipher_setkey(*hd, key, CRYPTO_KEY_LEN);
	if (!err)
		err = gcry_cipher_setiv(*hd, nonce, CRYPTO_NONCE_LEN);
	if (!err && aad_len)
		err = gcry_cipher_authenticate(*hd, aad, aad_len);
	return gcry_to_errno(err);
}

int crypto_seal(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
		const void *plain, size_t plain_len, uint8_t *out)
{
	gcry_cipher_hd_t hd;
	uint8_t *nonce = out;
	uint8_t *body = out + CRYPTO_NONCE_LEN;
	uint8_t *tag = body + plain_len;

	/*
	 * Random 96-bit nonces. A data key seals one message; a named key wraps
	 * one data key per version and the master key seals a handful of named
	 * keys, so a key seals n messages with n at most a store's versions
	 * (500,000 secrets x 100 versions < 2^26). Two random nonces collide
	 * with probability below n^2 / 2^97 < 2^-45, far under the 2^-32 that
	 * NIST SP 800-38D (§8.3) allows for random IVs over 2^32 messages.
	 * libgcrypt's nonce generator is unpredictable, only not meant for keys.
	 */
	crypto_random_nonce(nonce, CRYPTO_NONCE_LEN);
	int rc = gcm_open_handle(&hd, key, nonce, aad, aad_len);
	if (rc)
		return rc;
	gcry_error_t err = gcry_cipher_final(hd);
	if (!err)
		err = gcry_cipher_encrypt(hd, body, plain_len, plain, plain_len);
	if (!err)
		err = gcry_cipher_gettag(hd, tag, CRYPTO_TAG_LEN);
	return gcry_to_errno(err);
}

int crypto_open(const uint8_t key[CRYPTO_KEY_LEN], const void *aad, size_t aad_len,
		const uint8_t *sealed, size_t sealed_len, void *plain)
{
	gcry_cipher_hd_t hd;

	if (sealed_len < CRYPTO_SEAL_OVERHEAD)
		return -EBADMSG;
	size_t body_len = sealed_len - CRYPTO_SEAL_OVERHEAD;
	const uint8_t *body = sealed + CRYPTO_NONCE_LEN;
	const uint8_t *tag = body + body_len;

	int rc = gcm_open_handle(&hd, key, sealed, aad, aad_len);
	if (rc)
		return rc;
	gcry_error_t err = gcry_cipher_final(hd);
	if (!err)
		err = gcry_cipher_decrypt(hd, plain, body_len, body, body_len);
	if (!err)
		err = gcry_cipher_checktag(hd, tag, CRYPTO_TAG_LEN);
	if (err) {
		/* Never hand out unauthenticated plaintext. */
		crypto_wipe(plain, body_len);
		return gcry_to_errno(err);
	}
	return 0;
}

int crypto_argon2id(const void *pass, size_t pass_len, const uint8_t *salt, size_t salt_len,
		    const struct argon2_params *params, uint8_t out[CRYPTO_KEY_LEN])
{
	unsigned long args[4] = { CRYPTO_KEY_LEN, params->t_cost, params->m_cost_kib,
				  params->parallelism };
	gcry_kdf_hd_t hd;
	gcry_error_t err = gcry_kdf_open(&hd, GCRY_KDF_ARGON2, GCRY_KDF_ARGON2ID, args, 4,
					 pass, pass_len, salt, salt_len, NULL, 0, NULL, 0);
	if (err)
		return gcry_to_errno(err);
	err = gcry_kdf_compute(hd, NULL);
	if (!err)
		err = gcry_kdf_final(hd, CRYPTO_KEY_LEN, out);
	gcry_kdf_close(hd);
	return gcry_to_errno(err);
}

int crypto_hmac_sha256(const void *key, size_t key_len, const void *msg, size_t msg_len,
		       uint8_t out[32])
{
	gcry_mac_hd_t hd;
	size_t out_len = 32;
	gcry_error_t err = gcry_mac_open(&hd, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL);
	if (err)
		return gcry_to_errno(err);
	err = gcry_mac_setkey(hd, key, key_len);
	if (!err)
		err = gcry_mac_write(hd, msg, msg_len);
	if (!err)
		err = gcry_mac_read(hd, out, &out_len);
	gcry_mac_close(hd);
	return gcry_to_errno(err);
}

void crypto_sha256(const void *msg, size_t msg_len, uint8_t out[32])
{
	gcry_md_hash_buffer(GCRY_MD_SHA256, out, msg, msg_len);
}

int crypto_derive_key(const uint8_t key[CRYPTO_KEY_LEN], const char *label, const char *context,
		      uint8_t out[CRYPTO_KEY_LEN])
{
	size_t label_len = strlen(label), context_len = strlen(context);
	size_t len = label_len + 1 + context_len + 1;
	uint8_t info[256];
	if (len > sizeof(info))
		return -EINVAL;
	memcpy(info, label, label_len + 1);
	memcpy(info + label_len + 1, context, context_len);
	info[len - 1] = 0x01; /* T(1) = HMAC(PRK, info | 0x01) */
	return crypto_hmac_sha256(key, CRYPTO_KEY_LEN, info, len, out);
}

struct crypto_prf {
	pthread_mutex_t lock;
	gcry_mac_hd_t hd; /* keyed once; reset keeps the key */
};

int crypto_prf_new(const uint8_t key[CRYPTO_KEY_LEN], struct crypto_prf **out)
{
	struct crypto_prf *prf = calloc(1, sizeof(*prf));
	gcry_error_t err;
	*out = NULL;
	if (!prf)
		return -ENOMEM;
	err = gcry_mac_open(&prf->hd, GCRY_MAC_HMAC_SHA256, GCRY_MAC_FLAG_SECURE, NULL);
	if (err) {
		free(prf);
		return gcry_to_errno(err);
	}
	err = gcry_mac_setkey(prf->hd, key, CRYPTO_KEY_LEN);
	if (err) {
		gcry_mac_close(prf->hd);
		free(prf);
		return gcry_to_errno(err);
	}
	pthread_mutex_init(&prf->lock, NULL);
	*out = prf;
	return 0;
}

void crypto_prf_free(struct crypto_prf *prf)
{
	if (!prf)
		return;
	gcry_mac_close(prf->hd); /* a secure handle wipes its key */
	pthread_mutex_destroy(&prf->lock);
	free(prf);
}

int crypto_prf(struct crypto_prf *prf, const struct crypto_part *parts, size_t nparts,
	       uint8_t out[CRYPTO_PRF_LEN])
{
	size_t out_len = CRYPTO_PRF_LEN;
	pthread_mutex_lock(&prf->lock);
	gcry_error_t err = gcry_mac_ctl(prf->hd, GCRYCTL_RESET, NULL, 0);
	for (size_t i = 0; !err && i < nparts; i++)
		if (parts[i].len)
			err = gcry_mac_write(prf->hd, parts[i].data, parts[i].len);
	if (!err)
		err = gcry_mac_read(prf->hd, out, &out_len);
	pthread_mutex_unlock(&prf->lock);
	if (!err && out_len != CRYPTO_PRF_LEN)
		return -EIO;
	return gcry_to_errno(err);
}

bool crypto_equal(const void *a, const void *b, size_t len)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t diff = 0;
	for (size_t i = 0; i < len; i++)
		diff |= x[i] ^ y[i];
	return diff == 0;
}

int secbuf_reserve(struct secbuf *buf, size_t cap)
{
	if (cap <= buf->cap)
		return 0;
	uint8_t *data = crypto_secure_alloc(cap);
	if (!data)
		return -ENOMEM;
	if (buf->len)
		memcpy(data, buf->data, buf->len);
	crypto_secure_free(buf->data, buf->cap);
	buf->data = data;
	buf->cap = cap;
	return 0;
}

int secbuf_set(struct secbuf *buf, const void *data, size_t len)
{
	buf->len = 0;
	int rc = secbuf_reserve(buf, len);
	if (rc)
		return rc;
	if (len)
		memcpy(buf->data, data, len);
	buf->len = len;
	return 0;
}

void secbuf_free(struct secbuf *buf)
{
	crypto_secure_free(buf->data, buf->cap);
	buf->data = NULL;
	buf->len = buf->cap = 0;
}
