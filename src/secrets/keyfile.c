/*
 * Key files (secrets/keyring.h): 32 random bytes as 64 hex digits, mode
 * 0600; read in either that form or as 32 raw bytes.
 */
#include "secrets/keyring.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util/hex.h"

int keyring_read_key_fd(int fd, uint8_t key[CRYPTO_KEY_LEN])
{
	/* 64 hex digits and trailing whitespace, or 32 raw bytes: anything
	 * longer than a page is not a key file; read one byte past it to see. */
	enum { CAP = 4096 };
	uint8_t *buf = crypto_secure_alloc(CAP + 1);
	int rc = 0;
	if (!buf)
		return -ENOMEM;
	ssize_t n = 0, got = 0;
	while (n < CAP + 1) {
		got = read(fd, buf + n, (size_t)(CAP + 1 - n));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += got;
	}
	if (got < 0) {
		rc = -errno;
		goto out;
	}
	if (n > CAP) {
		rc = -EINVAL;
		goto out;
	}
	bool all_hex = true;
	for (ssize_t i = 0; i < n; i++)
		if (!isxdigit(buf[i]))
			all_hex = false;
	if (n == CRYPTO_KEY_LEN && !all_hex) {
		memcpy(key, buf, CRYPTO_KEY_LEN); /* raw bytes */
		goto out;
	}
	while (n > 0 && isspace(buf[n - 1]))
		n--;
	if (n != 2 * CRYPTO_KEY_LEN) {
		rc = -EINVAL; /* also a hex key cut short to 32 digits */
		goto out;
	}
	buf[n] = '\0';
	rc = hex_decode((const char *)buf, key, CRYPTO_KEY_LEN);
out:
	crypto_secure_free(buf, CAP + 1);
	return rc;
}

int keyring_read_key_file(const char *path, uint8_t key[CRYPTO_KEY_LEN])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = keyring_read_key_fd(fd, key);
	close(fd);
	return rc;
}

int keyring_write_key_file(const char *path)
{
	uint8_t *key = crypto_secure_alloc(CRYPTO_KEY_LEN);
	char *text = crypto_secure_alloc(2 * CRYPTO_KEY_LEN + 2);
	int rc = 0, fd = -1;
	if (!key || !text) {
		rc = -ENOMEM;
		goto out;
	}
	crypto_random_key(key, CRYPTO_KEY_LEN, true);
	hex_encode(key, CRYPTO_KEY_LEN, text);
	text[2 * CRYPTO_KEY_LEN] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	size_t len = 2 * CRYPTO_KEY_LEN + 1;
	errno = 0;
	ssize_t n = write(fd, text, len);
	if (n != (ssize_t)len || fsync(fd) != 0) {
		/* A short write sets no errno: say so rather than report a stale one. */
		rc = n >= 0 && n != (ssize_t)len ? -ENOSPC : errno ? -errno : -EIO;
		unlink(path);
	}
out:
	if (fd >= 0)
		close(fd);
	crypto_secure_free(key, CRYPTO_KEY_LEN);
	crypto_secure_free(text, 2 * CRYPTO_KEY_LEN + 2);
	return rc;
}
