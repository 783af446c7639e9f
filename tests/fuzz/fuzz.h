/*
 * Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * A finding is a sanitizer report or a broken property; a broken property
 * calls FUZZ_CHECK's abort() after naming the check, so libFuzzer keeps the
 * input as a crash artifact like any other finding.
 */
#ifndef SECRETSFS_FUZZ_H
#define SECRETSFS_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gcrypt.h>

#include "crypto/crypto.h"

#define FUZZ_CHECK(cond)                                                              \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: property broken: %s\n", __FILE__,     \
				__LINE__, #cond);                                     \
			abort();                                                      \
		}                                                                     \
	} while (0)

/*
 * crypto_init once per process. libgcrypt's secure pool is one mmap'd arena
 * with its own allocator, where AddressSanitizer sees no bounds; with
 * secure memory disabled first, gcry_malloc_secure (so every struct secbuf)
 * is an ordinary malloc that ASan guards. The harnesses test parsers, not
 * memory locking.
 */
static inline void fuzz_crypto_init(void)
{
	static int done;
	if (done)
		return;
	gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
	if (crypto_init(0) != 0) {
		fprintf(stderr, "fuzz: crypto_init failed\n");
		abort();
	}
	done = 1;
}

/* The input as a NUL-terminated string (cut at its first NUL), malloc'd. */
static inline char *fuzz_cstring(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#endif
