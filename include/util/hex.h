/*
 * hex: bytes as lowercase hexadecimal and back, for the store's JSON
 * records (sealed keys, salts, ids).
 */
#ifndef SECRETSFS_UTIL_HEX_H
#define SECRETSFS_UTIL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* out holds 2 * len + 1 characters. */
void hex_encode(const uint8_t *in, size_t len, char *out);
/* Exactly 2 * out_len hex digits (either case), or -EINVAL. */
int hex_decode(const char *in, uint8_t *out, size_t out_len);

#endif
