/*
 * base64: RFC 4648's standard alphabet with padding, into buffers the
 * caller provides (secure memory for a SecretBinary), so that nothing is
 * copied elsewhere. Decoding accepts the canonical form only: no
 * whitespace, padding exactly where it belongs, unused bits zero.
 */
#ifndef SECRETSFS_UTIL_BASE64_H
#define SECRETSFS_UTIL_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Characters base64_encode writes for len bytes (without a NUL). */
size_t base64_encoded_len(size_t len);
/* out holds base64_encoded_len(len) characters; no NUL is written. */
void base64_encode(const uint8_t *in, size_t len, char *out);
/* At most how many bytes text of len characters decodes to. */
size_t base64_decoded_max(size_t len);
/* Into out (base64_decoded_max(len) bytes): *out_len set; -EINVAL when
 * text is not canonical base64. */
int base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len);

#endif
