/*
 * credentials (private to src/api): the keys of a loaded credentials file,
 * and the one place a secret access key is used.
 *
 * A key's secret never leaves credentials.c: it is kept as "AWS4" + secret in
 * secure memory (the first HMAC key of SigV4's chain), and the chain's
 * intermediate keys live in secure memory only for the length of one call.
 * A loaded set is read-only, so lookups and signing may run on any number of
 * threads at once.
 */
#ifndef SECRETSFS_API_CREDENTIALS_H
#define SECRETSFS_API_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/sigv4.h"

struct sigv4_key;

/* Whether text has the shape of an access key id: 1 to SIGV4_KEY_ID_MAX - 1
 * letters, digits and underscores (IAM's pattern [\w]+ and its maximum). */
bool sigv4_key_id_valid(const char *text, size_t len);

/* The key with this id, or NULL. */
const struct sigv4_key *sigv4_credentials_find(const struct sigv4_credentials *creds,
					       const char *key_id);
const char *sigv4_key_principal(const struct sigv4_key *key);

/*
 * SigV4 step 4: the signing key for (day "YYYYMMDD", region, service,
 * "aws4_request") derived from key's secret, then HMAC-SHA256 of msg under
 * it into mac. 0, -ENOMEM (secure memory), or crypto's errors.
 */
int sigv4_key_sign(const struct sigv4_key *key, const char *day, const char *region,
		   const char *service, const void *msg, size_t msg_len, uint8_t mac[32]);

#endif
