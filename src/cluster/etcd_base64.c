/*
 * etcd_wire's base64 (RFC 4648, standard alphabet, padded): how the gateway
 * carries every bytes field. util/base64 does the coding; this is the
 * wire's form of it (allocated, bounded, a NUL after the bytes, -EBADMSG
 * for anything not canonical). Contract: include/cluster/etcd_wire.h.
 */
#include <errno.h>
#include <stdlib.h>

#include "cluster/etcd_wire.h"
#include "util/base64.h"

int etcd_base64_encode(const void *data, size_t len, char **out)
{
	if (len > ETCD_WIRE_MSG_MAX)
		return -EFBIG;
	size_t olen = base64_encoded_len(len);
	char *s = malloc(olen + 1);
	if (!s)
		return -ENOMEM;
	base64_encode(data, len, s);
	s[olen] = '\0';
	*out = s;
	return 0;
}

int etcd_base64_decode(const char *text, size_t text_len, unsigned char **out, size_t *out_len)
{
	*out = NULL;
	size_t max = base64_decoded_max(text_len);
	unsigned char *b = malloc(max + 1);
	if (!b)
		return -ENOMEM;
	if (base64_decode(text, text_len, b, out_len) != 0) {
		free(b);
		return -EBADMSG;
	}
	b[*out_len] = '\0';
	*out = b;
	return 0;
}
