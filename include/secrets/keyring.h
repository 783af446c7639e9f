/*
 * keyring: the store's master key and its named keys (KMS's counterpart).
 *
 * The master key is random, kept on disk only sealed under a key-encryption
 * key derived from a key file (HMAC-SHA256) or a passphrase (Argon2id). Named
 * keys (aws/secretsmanager and customer keys) are random and sealed under the
 * master key; they wrap each version's data key. All key material stays in
 * secure memory. Wrong key or passphrase: -EACCES; a key file for a store
 * made with a passphrase or the other way round: -ENOKEY; a damaged or
 * unknown header: -EIO. Thread-safe.
 */
#ifndef SECRETSFS_SECRETS_KEYRING_H
#define SECRETSFS_SECRETS_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "secrets/record.h"
#include "store/store.h"

#define KEYRING_DEFAULT_ALIAS "aws/secretsmanager"
#define KEYRING_WRAPPED_DEK_LEN (CRYPTO_KEY_LEN + CRYPTO_SEAL_OVERHEAD)
#define KEYRING_STORE_ID_LEN 32

enum unlock_kind { UNLOCK_KEY_FILE, UNLOCK_PASSPHRASE };

struct unlock_secret {
	enum unlock_kind kind;
	const uint8_t *bytes; /* key file: CRYPTO_KEY_LEN bytes; passphrase: its bytes */
	size_t len;
};

struct keyring;

/* Reads a key file (64 hex digits, or 32 raw bytes) into key (secure memory). */
int keyring_read_key_file(const char *path, uint8_t key[CRYPTO_KEY_LEN]);
/* Writes a new random key file, mode 0600; -EEXIST if path exists. */
int keyring_write_key_file(const char *path);

/* Writes the format record and a new header with a fresh master key: one transaction. */
int keyring_create(struct store *st, const struct unlock_secret *unlock, const char *region,
		   const char *account);
int keyring_unlock(struct store *st, const struct unlock_secret *unlock, struct keyring **out);
void keyring_free(struct keyring *kr);

const char *keyring_store_id(const struct keyring *kr);
const char *keyring_region(const struct keyring *kr);
const char *keyring_account(const struct keyring *kr);

/* The id of aws/secretsmanager, creating that key (its own transaction) on first need. */
int keyring_default_key(struct keyring *kr, char key_id[SM_KEY_ID_LEN + 1]);
/* Seal a data key under a named key: -ENOENT unknown key, -EACCES disabled. */
int keyring_wrap(struct keyring *kr, const char *key_id, const void *aad, size_t aad_len,
		 const uint8_t dek[CRYPTO_KEY_LEN], uint8_t out[KEYRING_WRAPPED_DEK_LEN]);
/* -EBADMSG when the wrapped key fails authentication. */
int keyring_unwrap(struct keyring *kr, const char *key_id, const void *aad, size_t aad_len,
		   const uint8_t *wrapped, size_t wrapped_len, uint8_t dek[CRYPTO_KEY_LEN]);

/*
 * A key as KMS names it: "alias/NAME", a key id (UUID),
 * "arn:aws:kms:REGION:ACCOUNT:key/UUID" or "...:alias/NAME". "" and NULL
 * mean aws/secretsmanager. -ENOENT when no such key; -EINVAL when malformed
 * or of another region or account.
 */
int keyring_resolve(struct keyring *kr, const char *spec, char key_id[SM_KEY_ID_LEN + 1]);
/* "arn:aws:kms:REGION:ACCOUNT:key/UUID" */
void keyring_key_arn(const struct keyring *kr, const char *key_id, char *buf, size_t len);

/* CreateKey + CreateAlias: a new customer key; -EEXIST if the alias is taken,
 * -EINVAL for a malformed alias or one under the reserved "aws/". */
int keyring_create_key(struct keyring *kr, const char *alias, char key_id[SM_KEY_ID_LEN + 1]);
/* EnableKey / DisableKey, one transaction. */
int keyring_set_enabled(struct keyring *kr, const char *spec, bool enabled);
/* Is the key usable? (-ENOENT unknown, -EACCES disabled, 0 enabled) */
int keyring_key_state(struct keyring *kr, const char *key_id);

struct keyring_key_info {
	char id[SM_KEY_ID_LEN + 1];
	char alias[256];
	bool enabled;
	int64_t created_ms;
};
/* A malloc'd copy of every named key's public facts. */
int keyring_list(struct keyring *kr, struct keyring_key_info **keys, size_t *count);

/*
 * passwd and rekey: the master key sealed anew under a new key file or
 * passphrase, and with new_master a new random master key that re-seals
 * the named keys (values are never re-encrypted). One transaction: a crash
 * leaves the store opening with the old unlock secret or the new one.
 */
int keyring_change_unlock(struct keyring *kr, const struct unlock_secret *unlock, bool new_master);

/* A random RFC 4122 version-4 UUID, 36 characters. */
void keyring_new_uuid(char out[37]);

#endif
