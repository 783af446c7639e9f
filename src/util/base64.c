/* RFC 4648 base64: include/util/base64.h is the contract. */
#include "util/base64.h"

#include <errno.h>
#include <stdbool.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len)
{
	return (len + 2) / 3 * 4;
}

void base64_encode(const uint8_t *in, size_t len, char *out)
{
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		*out++ = alphabet[(v >> 18) & 63];
		*out++ = alphabet[(v >> 12) & 63];
		*out++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
		*out++ = i + 2 < len ? alphabet[v & 63] : '=';
	}
}

size_t base64_decoded_max(size_t len)
{
	return len / 4 * 3;
}

static int value_of(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len)
{
	size_t n = 0;
	*out_len = 0;
	if (len % 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int a = value_of(text[i]), b = value_of(text[i + 1]);
		int c = text[i + 2] == '=' && last ? -2 : value_of(text[i + 2]);
		int d = text[i + 3] == '=' && last ? -2 : value_of(text[i + 3]);
		if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2))
			return -EINVAL;
		unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)(c < 0 ? 0 : c) << 6 |
			     (unsigned)(d < 0 ? 0 : d);
		/* Bits the padding leaves over must be zero: one encoding per value. */
		if ((c == -2 && (v & 0xffff)) || (d == -2 && (v & 0xff)))
			return -EINVAL;
		out[n++] = (uint8_t)(v >> 16);
		if (c >= 0)
			out[n++] = (uint8_t)(v >> 8);
		if (d >= 0)
			out[n++] = (uint8_t)v;
	}
	*out_len = n;
	return 0;
}
