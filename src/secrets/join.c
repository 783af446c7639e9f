/*
 * sm_create_replica (secrets/secrets.h): the local file of a host that
 * joins a store kept elsewhere (docs/replication.md): made from the
 * store's format and header records, unlocked with the joining host's
 * secret, empty until the replica applies the store's records.
 */
#include "secrets/secrets.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

int sm_create_replica(const char *path, const uint8_t *format, size_t format_len,
		      const uint8_t *header, size_t header_len,
		      const struct unlock_secret *unlock)
{
	struct store *st;
	int rc = store_open(path, STORE_CREATE, &st);
	if (rc)
		return rc; /* -EEXIST: never over a file that is there */
	rc = keyring_create_replica(st, format, format_len, header, header_len, unlock);
	store_close(st);
	if (rc) {
		/* Nothing half made stays behind to be mistaken for a store. */
		if (unlink(path) && errno != ENOENT)
			log_error("%s: cannot remove the replica begun here: %s", path,
				  strerror(errno));
		if (rc != -EBADMSG && rc != -EIO) /* those the keyring named */
			log_error("%s: not joined: %s", path,
				  rc == -EACCES ? "the key does not unlock the store" :
				  rc == -ENOKEY ? "the store is unlocked by the other kind of "
						  "secret (key file or passphrase)" :
						  strerror(-rc));
	}
	return rc;
}
