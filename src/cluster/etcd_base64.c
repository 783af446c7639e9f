/*
 * etcd_wire's base64 (RFC 4648, standard alphabet, padded): how the gateway
 * carries every bytes field. Decoding accepts the canonical form only.
 * Contract: include/cluster/etcd_wire.h.
 */
#include <errno.h>
#include <stdlib.h>

#include "cluster/etcd_wire.h"

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int etcd_base64_encode(const void *data, size_t len, char **out)
{
	const unsigned char *in = data;
	if (len > ETCD_WIRE_MSG_MAX)
		return -EFBIG;
	size_t olen = (len + 2) / 3 * 4;
	char *s = malloc(olen + 1);
	if (!s)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		unsigned v = (unsigned)in[i] << 16;
		if (i + 1 < len)
			v |= (unsigned)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		s[o++] = b64_alphabet[(v >> 18) & 63];
		s[o++] = b64_alphabet[(v >> 12) & 63];
		s[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		s[o++] = i + 2 < len ? b64_alphabet[v & 63] : '=';
	}
	s[o] = '\0';
	*out = s;
	return 0;
}

static int b64_value(char c)
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

int etcd_base64_decode(const char *text, size_t text_len, unsigned char **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (text_len % 4 != 0)
		return -EBADMSG;
	unsigned char *buf = malloc(text_len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < text_len; i += 4) {
		int v[4];
		int pad = 0;
		for (int j = 0; j < 4; j++) {
			char c = text[i + j];
			if (c == '=' && i + 4 == text_len && j >= 2) {
				v[j] = 0;
				pad++;
				continue;
			}
			if (pad) /* data after '=' */
				goto bad;
			v[j] = b64_value(c);
			if (v[j] < 0)
				goto bad;
		}
		unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 |
			     (unsigned)v[3];
		/* Canonical form only: the bits a pad hides must be zero. */
		if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
			goto bad;
		buf[o++] = (unsigned char)(w >> 16);
		if (pad < 2)
			buf[o++] = (unsigned char)(w >> 8);
		if (pad < 1)
			buf[o++] = (unsigned char)w;
	}
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	return 0;
bad:
	free(buf);
	return -EBADMSG;
}

