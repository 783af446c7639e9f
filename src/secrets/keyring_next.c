/*
 * rekey's keys (secrets/keyring.h): a new master key, new material for
 * every named key and a new header, held aside until the transaction that
 * re-wraps every data key commits. A legacy store's authentication is a
 * rekey too, under the key-encryption key that unlocked it.
 */
#include "secrets/keyring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"

struct keyring_next {
	uint8_t *master;        /* secure memory */
	char *header;           /* its JSON, the master key sealed under the new KEK */
	struct named_key *keys; /* parallel to kr->keys */
	size_t nkeys;
	enum unlock_kind kind;
	uint8_t salt[CRYPTO_SALT_LEN];
	struct argon2_params params;
};

void keyring_next_free(struct keyring_next *next)
{
	if (!next)
		return;
	for (size_t i = 0; i < next->nkeys; i++)
		named_key_free(&next->keys[i]);
	free(next->keys);
	free(next->header);
	crypto_secure_free(next->master, CRYPTO_KEY_LEN);
	free(next);
}

/* New master and named keys; the header seals the master key under kek. */
static int next_make(struct keyring *kr, enum unlock_kind kind, const uint8_t *salt,
		     const struct argon2_params *params, const uint8_t *kek,
		     struct keyring_next **out)
{
	struct keyring_next *next = calloc(1, sizeof(*next));
	int rc = -ENOMEM;

	*out = NULL;
	if (!next || !(next->master = crypto_secure_alloc(CRYPTO_KEY_LEN)))
		goto out;
	crypto_random_key(next->master, CRYPTO_KEY_LEN, true);
	next->kind = kind;
	memcpy(next->salt, salt, sizeof(next->salt));
	next->params = *params;
	if ((rc = keyring_header_text(kr, next->kind, next->salt, &next->params, kek, next->master,
				      &next->header)))
		goto out;
	pthread_rwlock_rdlock(&kr->lock);
	rc = (next->keys = calloc(kr->nkeys ? kr->nkeys : 1, sizeof(*next->keys))) ? 0 : -ENOMEM;
	for (size_t i = 0; !rc && i < kr->nkeys; i++) {
		const struct named_key *old = &kr->keys[i];
		struct named_key *k = &next->keys[i];
		if (old->damaged) {
			rc = -EBADMSG; /* its data keys cannot be re-wrapped */
			break;
		}
		next->nkeys++;
		*k = (struct named_key){ .enabled = old->enabled, .created_ms = old->created_ms };
		memcpy(k->id, old->id, sizeof(k->id));
		if ((old->alias && !(k->alias = strdup(old->alias))) ||
		    !(k->material = crypto_secure_alloc(CRYPTO_KEY_LEN))) {
			rc = -ENOMEM;
			break;
		}
		crypto_random_key(k->material, CRYPTO_KEY_LEN, true);
	}
	pthread_rwlock_unlock(&kr->lock);
	if (rc)
		goto out;
	*out = next;
	next = NULL;
out:
	keyring_next_free(next);
	return rc;
}

int keyring_next_new(struct keyring *kr, const struct unlock_secret *unlock,
		     struct keyring_next **out)
{
	uint8_t salt[CRYPTO_SALT_LEN];
	struct argon2_params params;
	uint8_t *kek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	int rc = kek ? 0 : -ENOMEM;
	*out = NULL;
	crypto_random_nonce(salt, sizeof(salt));
	keyring_kek_params(unlock->kind, &params);
	if (!rc)
		rc = keyring_derive_kek(unlock, salt, &params, kek);
	if (!rc)
		rc = next_make(kr, unlock->kind, salt, &params, kek, out);
	crypto_secure_free(kek, CRYPTO_KEY_LEN);
	return rc;
}

int keyring_next_for_legacy(struct keyring *kr, struct keyring_next **out)
{
	*out = NULL;
	if (!kr->legacy_kek)
		return -EINVAL;
	return next_make(kr, kr->kind, kr->salt, &kr->params, kr->legacy_kek, out);
}

const uint8_t *keyring_next_master(const struct keyring_next *next)
{
	return next->master;
}

int keyring_next_rewrap(struct keyring *kr, struct keyring_next *next, const char *key_id,
			const void *aad, size_t aad_len, const uint8_t *wrapped,
			size_t wrapped_len, uint8_t out[KEYRING_WRAPPED_DEK_LEN])
{
	uint8_t *dek = crypto_secure_alloc(CRYPTO_KEY_LEN);
	int rc = -ENOENT;
	if (!dek)
		return -ENOMEM;
	if (wrapped_len != KEYRING_WRAPPED_DEK_LEN) {
		rc = -EBADMSG;
		goto out;
	}
	pthread_rwlock_rdlock(&kr->lock);
	for (size_t i = 0; i < next->nkeys; i++) {
		if (strcmp(kr->keys[i].id, key_id) != 0)
			continue;
		/* A disabled key's data keys move too: disabling is not losing. */
		rc = crypto_open(kr->keys[i].material, aad, aad_len, wrapped, wrapped_len, dek);
		if (!rc)
			rc = crypto_seal(next->keys[i].material, aad, aad_len, dek, CRYPTO_KEY_LEN,
					 out);
		break;
	}
	pthread_rwlock_unlock(&kr->lock);
out:
	crypto_secure_free(dek, CRYPTO_KEY_LEN);
	return rc;
}

int keyring_next_put(struct keyring *kr, struct keyring_next *next)
{
	int rc = authstore_put(kr->as, RECORD_KEY_HEADER, next->header, strlen(next->header));
	for (size_t i = 0; !rc && i < next->nkeys; i++)
		rc = named_key_put(kr, &next->keys[i], next->master);
	return rc;
}

void keyring_next_adopt(struct keyring *kr, struct keyring_next *next)
{
	pthread_rwlock_wrlock(&kr->lock);
	for (size_t i = 0; i < next->nkeys; i++) {
		uint8_t *old = kr->keys[i].material;
		kr->keys[i].material = next->keys[i].material;
		next->keys[i].material = old; /* wiped with next */
	}
	memcpy(kr->master, next->master, CRYPTO_KEY_LEN);
	crypto_secure_free(kr->legacy_kek, CRYPTO_KEY_LEN); /* authenticated now, if it was legacy */
	kr->legacy_kek = NULL;
	kr->kind = next->kind;
	memcpy(kr->salt, next->salt, sizeof(kr->salt));
	kr->params = next->params;
	pthread_rwlock_unlock(&kr->lock);
	keyring_next_free(next);
}
