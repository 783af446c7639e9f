#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"

#define PASSPHRASE_MAX 1024

int cli_help_only(int argc, char **argv, const char *usage)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	return -1;
}

void cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("secretsfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Reads up to cap bytes of fd; the first line counts. */
static int read_line(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	size_t n = 0;
	for (;;) {
		uint8_t c;
		ssize_t got = read(fd, &c, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0 || c == '\n')
			break;
		if (n == cap)
			return -E2BIG;
		buf[n++] = c;
	}
	if (n && buf[n - 1] == '\r')
		n--;
	*len = n;
	return 0;
}

static int ask_terminal(const char *prompt, uint8_t *buf, size_t cap, size_t *len)
{
	struct termios old, quiet;
	int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -ENXIO;
	if (tcgetattr(fd, &old) != 0) {
		close(fd);
		return -ENOTTY;
	}
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	/* Echo off before the prompt shows: an answer typed as soon as it
	 * appears (a person, expect, a pty) is neither echoed nor flushed. */
	tcsetattr(fd, TCSAFLUSH, &quiet);
	ssize_t ignored = write(fd, prompt, strlen(prompt));
	(void)ignored;
	int rc = read_line(fd, buf, cap, len);
	tcsetattr(fd, TCSAFLUSH, &old);
	ignored = write(fd, "\n", 1);
	close(fd);
	return rc;
}

/*
 * Opens a key or passphrase file and refuses, as ssh does with private keys,
 * one that anyone but its owner may read or write, or that someone other
 * than the caller or root owns: such a secret is not the caller's alone.
 * fd or -errno, with the reason printed. A pipe (/dev/stdin, <(...)) is
 * the caller's, mode 0600, and passes.
 */
static int open_private(const char *path, const char *what)
{
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY), rc;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		rc = -errno;
		cli_error("%s: cannot read %s: %s", path, what, strerror(-rc));
		goto fail;
	}
	if (sb.st_uid != geteuid() && sb.st_uid != 0) {
		cli_error("%s: refused: the %s belongs to uid %u, not to you or root", path, what,
			  (unsigned)sb.st_uid);
		rc = -EPERM;
		goto fail;
	}
	if (sb.st_mode & 077) {
		cli_error("%s: refused: the %s is open to others (mode %04o); chmod 600 %s", path,
			  what, (unsigned)(sb.st_mode & 07777), path);
		rc = -EPERM;
		goto fail;
	}
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* How the running command names its options, for messages. */
static bool mount_style;

void unlock_input_mount_style(void)
{
	mount_style = true;
}

/* fresh: the new key file or passphrase of passwd and rekey. */
static const char *option_name(bool key_file, bool fresh)
{
	if (mount_style)
		return key_file ? "key_file=FILE" : "passphrase_file=FILE";
	if (fresh)
		return key_file ? "--new-key-file F" : "--new-passphrase-file F";
	return key_file ? "--key-file F" : "--passphrase-file F";
}

const char *unlock_refusal(int rc, bool key_file)
{
	static char text[160];
	if (rc == -EACCES)
		return key_file ? "wrong key file" : "wrong passphrase";
	if (rc == -EBADMSG)
		return "its header or state record fails authentication (the store file was "
		       "changed without its key)";
	if (rc != -ENOKEY)
		return NULL;
	snprintf(text, sizeof(text), "this store is unlocked with a %s, not a %s: give %s",
		 key_file ? "passphrase" : "key file", key_file ? "key file" : "passphrase",
		 option_name(!key_file, false));
	return text;
}

static int read_key_file(struct unlock_input *in, const char *key_file)
{
	int fd = open_private(key_file, "key file");
	if (fd < 0)
		return fd;
	/* Read what was checked, not whatever the name points to now. */
	int rc = keyring_read_key_fd(fd, in->buf);
	close(fd);
	if (rc == -EINVAL)
		cli_error("%s: a key file holds 64 hex digits (secretsfs keygen makes one)", key_file);
	else if (rc)
		cli_error("%s: cannot read key file: %s", key_file, strerror(-rc));
	in->secret.len = CRYPTO_KEY_LEN;
	return rc;
}

static int read_passphrase_file(struct unlock_input *in, const char *passphrase_file)
{
	int fd = open_private(passphrase_file, "passphrase file");
	if (fd < 0)
		return fd;
	int rc = read_line(fd, in->buf, in->cap, &in->secret.len);
	close(fd);
	if (rc)
		cli_error("%s: cannot read passphrase file: %s", passphrase_file,
			  rc == -E2BIG ? "passphrase longer than 1024 bytes" : strerror(-rc));
	return rc;
}

/* Asked on the terminal, twice when confirm is set. */
static int ask_passphrase(struct unlock_input *in, bool confirm, bool fresh)
{
	int rc = ask_terminal(fresh ? "New passphrase: " : "Passphrase: ", in->buf, in->cap,
			      &in->secret.len);
	if (rc) {
		cli_error("no terminal to ask for %s passphrase: give %s (or %s)",
			  fresh ? "the new" : "a", option_name(false, fresh), option_name(true, fresh));
		return rc;
	}
	if (!confirm)
		return 0;
	uint8_t *again = crypto_secure_alloc(in->cap);
	size_t again_len = 0;
	if (!again)
		return -ENOMEM;
	rc = ask_terminal("Passphrase again: ", again, in->cap, &again_len);
	bool same = rc == 0 && again_len == in->secret.len && memcmp(again, in->buf, again_len) == 0;
	crypto_secure_free(again, in->cap);
	if (!same) {
		cli_error("the passphrases do not match");
		return -EINVAL;
	}
	return 0;
}

/* The one reading of an unlock secret; fresh: the new one of passwd or
 * rekey (its prompt and the options its messages name). */
static int read_secret(struct unlock_input *in, const char *key_file, const char *passphrase_file,
		       bool confirm, bool fresh)
{
	int rc;
	memset(in, 0, sizeof(*in));
	cli_harden_process();
	if (key_file && passphrase_file) {
		cli_error("give either a key file or a passphrase file, not both");
		return -EINVAL;
	}
	in->cap = key_file ? CRYPTO_KEY_LEN : PASSPHRASE_MAX;
	in->buf = crypto_secure_alloc(in->cap);
	if (!in->buf) {
		cli_error("out of secure memory");
		return -ENOMEM;
	}
	in->secret.bytes = in->buf;
	in->secret.kind = key_file ? UNLOCK_KEY_FILE : UNLOCK_PASSPHRASE;
	if (key_file)
		return read_key_file(in, key_file);
	rc = passphrase_file ? read_passphrase_file(in, passphrase_file)
			     : ask_passphrase(in, confirm, fresh);
	if (rc)
		return rc;
	if (in->secret.len == 0) {
		cli_error("the passphrase is empty");
		return -EINVAL;
	}
	return 0;
}

int unlock_input_read(struct unlock_input *in, const char *key_file, const char *passphrase_file,
		      int confirm)
{
	return read_secret(in, key_file, passphrase_file, confirm, false);
}

int unlock_input_read_new(struct unlock_input *in, const char *key_file, const char *passphrase_file,
			  bool allow_short)
{
	int rc = read_secret(in, key_file, passphrase_file, true, true);
	return rc ? rc : passphrase_judge(&in->secret, allow_short);
}

void unlock_input_free(struct unlock_input *in)
{
	crypto_secure_free(in->buf, in->cap);
	memset(in, 0, sizeof(*in));
}
