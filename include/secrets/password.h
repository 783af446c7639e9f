/*
 * password: GetRandomPassword (reference §11) from libgcrypt's strong
 * random generator, into secure memory.
 */
#ifndef SECRETSFS_SECRETS_PASSWORD_H
#define SECRETSFS_SECRETS_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "crypto/crypto.h"

#define PASSWORD_DEFAULT_LENGTH 32
#define PASSWORD_MAX_LENGTH 4096
/* Every printable ASCII character that is neither a letter nor a digit. */
#define PASSWORD_PUNCTUATION "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"

struct password_rules {
	size_t length;                 /* 1..4096, default 32 */
	const char *exclude_characters; /* NULL: none */
	bool exclude_numbers, exclude_punctuation, exclude_uppercase, exclude_lowercase;
	bool include_space;
	bool require_each_included_type; /* default true */
};

void password_rules_default(struct password_rules *r);
/* -EINVAL with *why when the rules cannot be met. out gets length bytes. */
int password_generate(const struct password_rules *r, struct secbuf *out, const char **why);

#endif
