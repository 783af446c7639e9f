/*
 * keyring: the store's master key and its named keys (KMS's counterpart).
 *
 * The master key is random, kept on disk only sealed under a key-encryption
 * key derived from a key file (HMAC-SHA256) or a passphrase (Argon2id). Named
 * keys (aws/secretsmanager and customer keys) are random and sealed under the
 * master key; they wrap each version's data key. All key material stays in
 * secure memory. The keyring opens the store's authstore (every record
 * authenticated under a key derived from the master key) and owns it.
 * Wrong key or passphrase: -EACCES; a key file for a store made with a
 * passphrase or the other way round: -ENOKEY; a header or state record
 * that fails authentication: -EBADMSG; a damaged or unknown header: -EIO.
 * Thread-safe.
 */
#ifndef SECRETSFS_SECRETS_KEYRING_H
#define SECRETSFS_SECRETS_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"
#include "secrets/authstore.h"
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

/* Reads a key file (64 hex digits, or 32 raw bytes) into key (secure memory):
 * -EINVAL for anything else. */
int keyring_read_key_file(const char *path, uint8_t key[CRYPTO_KEY_LEN]);
/* The same from an open file, read from where it stands to its end (fd is
 * the caller's to close): a file that was checked once opened. */
int keyring_read_key_fd(int fd, uint8_t key[CRYPTO_KEY_LEN]);
/* Writes a new random key file, mode 0600; -EEXIST if path exists. */
int keyring_write_key_file(const char *path);

/* Writes the format record, a new header with a fresh master key and the
 * state record (format 3): one transaction. */
int keyring_create(struct store *st, const struct unlock_secret *unlock, const char *region,
		   const char *account);
/*
 * A replica of a store kept elsewhere, begun in the empty store st: its
 * "sfs/format" and "sfs/header" records as given (the bytes another
 * host's store holds), the master key unlocked from them, the header's
 * tag checked under it, and the state record of a store holding only the
 * header, so that st opens as that store, empty; its other records come
 * through sm_apply. -EACCES (wrong key), -ENOKEY (the other kind of
 * secret), -EBADMSG (the header fails its tag), -EIO (not a format-3
 * header); st keeps what was written: the caller removes the file.
 */
int keyring_create_replica(struct store *st, const uint8_t *format, size_t format_len,
			   const uint8_t *header, size_t header_len,
			   const struct unlock_secret *unlock);
/* Unlocks the master key, checks the header and loads the named keys. A
 * named key whose record fails authentication is kept as damaged (its
 * secrets' versions fail to open) and counted by keyring_damaged; the
 * caller decides whether to go on. The authstore is left loading
 * (authstore_load_done is the caller's). */
int keyring_unlock(struct store *st, const struct unlock_secret *unlock, struct keyring **out);
/* What unlocks st (a key file or a passphrase), as its header says in clear:
 * nothing is authenticated, so this only picks what to ask for before
 * keyring_unlock. 0, or -EIO for a store whose format or header does not
 * read (nothing logged: the caller says it once). */
int keyring_store_kind(struct store *st, enum unlock_kind *kind);
void keyring_free(struct keyring *kr);
struct authstore *keyring_authstore(struct keyring *kr);
size_t keyring_damaged(struct keyring *kr);

const char *keyring_store_id(const struct keyring *kr);
const char *keyring_region(const struct keyring *kr);
const char *keyring_account(const struct keyring *kr);

/* The id of aws/secretsmanager, creating that key (its own transaction) on first need. */
int keyring_default_key(struct keyring *kr, char key_id[SM_KEY_ID_LEN + 1]);
/* Seal a data key under a named key: -ENOENT unknown key, -EACCES disabled,
 * -EBADMSG a key whose record failed authentication. */
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
	bool damaged; /* its record failed authentication: unusable */
	int64_t created_ms;
};
/* A malloc'd copy of every named key's public facts. */
int keyring_list(struct keyring *kr, struct keyring_key_info **keys, size_t *count);

/* passwd: the master key sealed anew under a new key file or passphrase,
 * one transaction; a crash leaves the store opening with the old unlock
 * secret or the new one. Values and named keys are left as they are. */
int keyring_change_unlock(struct keyring *kr, const struct unlock_secret *unlock);

/*
 * rekey, in steps, inside one authstore_begin_rewrite transaction that the
 * caller (secrets/rekey.c) runs with keyring_next_master: a new master key
 * and new material for every named key (ids, aliases and states kept), so
 * that whoever held the old master key or a named key opens nothing
 * written afterwards, and every version's data key re-wrapped.
 */
struct keyring_next;
int keyring_next_new(struct keyring *kr, const struct unlock_secret *unlock,
		     struct keyring_next **out);
/* The same for a legacy store being authenticated: the new master key
 * sealed under the key-encryption key that unlocked the store (its key
 * file or passphrase is not asked again). A header of the store kept from
 * before then unlocks only the old master key, which opens nothing. */
int keyring_next_for_legacy(struct keyring *kr, struct keyring_next **out);
const uint8_t *keyring_next_master(const struct keyring_next *next);
/* A data key wrapped under key_id's old material, wrapped again under its new. */
int keyring_next_rewrap(struct keyring *kr, struct keyring_next *next, const char *key_id,
			const void *aad, size_t aad_len, const uint8_t *wrapped,
			size_t wrapped_len, uint8_t out[KEYRING_WRAPPED_DEK_LEN]);
/* The header and every named key's record, into the transaction. */
int keyring_next_put(struct keyring *kr, struct keyring_next *next);
/* After the commit: the keyring uses the new keys. Frees next. */
void keyring_next_adopt(struct keyring *kr, struct keyring_next *next);
void keyring_next_free(struct keyring_next *next);

/* A random RFC 4122 version-4 UUID, 36 characters. */
void keyring_new_uuid(char out[37]);

#endif
