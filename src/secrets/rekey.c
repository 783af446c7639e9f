/*
 * rekey (secrets/secrets.h): a new master key and new named-key material,
 * every version's data key re-wrapped and every record tagged under the
 * new master key, in one transaction. Values are not re-encrypted: their
 * data keys stay, only the keys that wrap them change. A legacy store is
 * authenticated the same way (rekey_legacy), so that its old header, kept
 * anywhere, unlocks nothing that is current.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/internal.h"
#include "util/log.h"
#include "util/strlist.h"

/* One version record with its data key wrapped under the new material. */
static int rewrap(struct sm *sm, struct keyring_next *next, const char *key)
{
	char uuid[SM_UUID_HEX_LEN + 1], aad[512];
	const char *rest = key + strlen(RECORD_PREFIX_VERSION), *vid = strchr(rest, '/');
	uint8_t *record = NULL, *encoded = NULL, wrapped[KEYRING_WRAPPED_DEK_LEN];
	size_t len, encoded_len;
	struct sealed_version sv;
	int rc;
	if (!vid || vid - rest != SM_UUID_HEX_LEN)
		return -EBADMSG; /* the load lists every such record as a problem */
	memcpy(uuid, rest, SM_UUID_HEX_LEN);
	uuid[SM_UUID_HEX_LEN] = '\0';
	vid++;
	if ((rc = authstore_get(sm->as, key, &record, &len)))
		return rc;
	if ((rc = record_decode_version(record, len, &sv)))
		goto out;
	size_t aad_len = binding(aad, sizeof(aad), "dek", keyring_store_id(sm->kr), uuid, vid,
				 sv.key_id);
	if ((rc = keyring_next_rewrap(sm->kr, next, sv.key_id, aad, aad_len, sv.wrapped_dek,
				      sv.wrapped_dek_len, wrapped))) {
		log_error("rekey: %s: its data key does not open (%s)", key, strerror(-rc));
		goto out;
	}
	sv.wrapped_dek = wrapped;
	sv.wrapped_dek_len = sizeof(wrapped);
	if (!(rc = record_encode_version(&sv, &encoded, &encoded_len)))
		rc = authstore_put(sm->as, key, encoded, encoded_len);
out:
	free(encoded);
	free(record);
	return rc;
}

/*
 * One transaction under next's master key: every data key re-wrapped under
 * its named key's new material, the header and key records written, the
 * catalog rebuilt (legacy), every other record tagged anew. Write lock held.
 */
static int rewrap_all(struct sm *sm, struct keyring_next *next, bool legacy, uint64_t *versions)
{
	struct strlist v = { 0 };
	int rc = authstore_begin_rewrite(sm->as, keyring_next_master(next));
	if (rc)
		return rc;
	rc = store_keys(sm->store, RECORD_PREFIX_VERSION, &v);
	for (size_t i = 0; !rc && i < v.count; i++)
		rc = rewrap(sm, next, v.items[i]);
	if (!rc && legacy)
		rc = catalog_rebuild(sm->as); /* a legacy catalog is not trusted as it is */
	if (!rc)
		rc = keyring_next_put(sm->kr, next);
	if (rc)
		authstore_cancel(sm->as);
	else if (!(rc = authstore_commit(sm->as)))
		*versions = v.count;
	strlist_free(&v);
	return rc;
}

int sm_rekey(struct sm *sm, const struct unlock_secret *unlock, uint64_t *versions)
{
	struct keyring_next *next = NULL;
	int rc;
	*versions = 0;
	if (sm->nproblems) {
		log_error("rekey refused: the store has %zu problems (secretsfs check)",
			  sm->nproblems);
		return -EBADMSG;
	}
	if ((rc = write_begin(sm)))
		return rc;
	if (!(rc = keyring_next_new(sm->kr, unlock, &next)) &&
	    !(rc = rewrap_all(sm, next, false, versions))) {
		keyring_next_adopt(sm->kr, next);
		next = NULL;
		log_info("%s: rekeyed: a new master key, new named keys, %llu data keys "
			 "re-wrapped", store_path(sm->store), (unsigned long long)*versions);
	}
	write_end(sm);
	keyring_next_free(next);
	return rc;
}

int rekey_legacy(struct sm *sm, int format)
{
	struct keyring_next *next = NULL;
	uint64_t versions = 0;
	int rc = keyring_next_for_legacy(sm->kr, &next);
	if (!rc && !(rc = rewrap_all(sm, next, true, &versions))) {
		keyring_next_adopt(sm->kr, next);
		next = NULL;
		log_info("%s: store format %d authenticated (format %d): a new master key and new "
			 "named keys, %llu data keys re-wrapped, every record tagged",
			 store_path(sm->store), format, AUTHSTORE_FORMAT,
			 (unsigned long long)versions);
	}
	keyring_next_free(next);
	return rc;
}
