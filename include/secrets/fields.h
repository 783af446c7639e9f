/*
 * fields: the top-level fields of a JSON object value, for .fields/.
 *
 * A small JSON scanner that works in place on a decrypted value in secure
 * memory: the only copies it makes are of keys (structure, not secrets) and
 * of the one field asked for, into a secure buffer. A string field is given
 * unquoted and unescaped; any other as its JSON text. Keys that cannot be
 * file names (empty, ".", "..", containing '/' or NUL, over 255 bytes) are
 * not offered. Malformed JSON or a non-object: -EINVAL.
 */
#ifndef SECRETSFS_SECRETS_FIELDS_H
#define SECRETSFS_SECRETS_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/crypto.h"

#define FIELDS_MAX_DEPTH 64

typedef int (*fields_key_fn)(const char *key, size_t len, void *ctx);

/* Calls fn for each usable top-level key, in order (a repeated key: last wins
 * in fields_get, and is listed once). */
int fields_keys(const uint8_t *json, size_t len, fields_key_fn fn, void *ctx);
/* How many times key appears at the top level (JSON allows repeats). */
int fields_count(const uint8_t *json, size_t len, const char *key, size_t *count);
/* Where key's raw JSON value lies in json: [*start, *end); -ENOENT when absent. */
int fields_span(const uint8_t *json, size_t len, const char *key, size_t *start, size_t *end);
/* The rendered value of key into out; -ENOENT when absent. */
int fields_get(const uint8_t *json, size_t len, const char *key, struct secbuf *out);

#endif
