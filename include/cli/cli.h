/*
 * cli: the secretsfs command line. One function per subcommand, each taking
 * its own argv (argv[0] is the subcommand) and returning the exit status:
 * 0 success, 1 failure, 2 misuse. Errors are one line on stderr.
 */
#ifndef SECRETSFS_CLI_CLI_H
#define SECRETSFS_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "secrets/keyring.h"

#define EXIT_MISUSE 2

int cmd_init(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_random_password(int argc, char **argv);
int cmd_rotate(int argc, char **argv);

/* Options of a command that takes only --help: -1 to go on (operands from
 * optind), or the exit status (0 after --help, 2 for anything else). */
int cli_help_only(int argc, char **argv, const char *usage);

/* No core dumps, not dumpable (so not traceable by the same user): called
 * first by every command that holds a key or a value. */
void cli_harden_process(void);

/* Prints "secretsfs: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * The secret that unlocks a store, read into secure memory: a key file, a
 * passphrase file (its first line), or the terminal (asked twice when
 * confirm is set). Never from argv or the environment. A key or passphrase
 * file must be the caller's alone (no group or other permission bits,
 * owned by the caller or root), as ssh wants private keys. Hardens the
 * process (cli_harden_process) before reading. 0 or -errno, with the
 * reason printed.
 */
struct unlock_input {
	struct unlock_secret secret;
	uint8_t *buf; /* secure memory behind secret.bytes */
	size_t cap;
};

int unlock_input_read(struct unlock_input *in, const char *key_file, const char *passphrase_file,
		      int confirm);
/* The same for a new secret (passwd, rekey): asked twice on a terminal, and
 * a passphrase judged by passphrase_judge. */
int unlock_input_read_new(struct unlock_input *in, const char *key_file, const char *passphrase_file,
			  bool allow_short);
/* The secret that unlocks the open store st: with neither file given, a
 * store made with a key file is named as such instead of asking for a
 * passphrase it cannot take. */
int unlock_input_read_for(struct unlock_input *in, struct store *st, const char *key_file,
			  const char *passphrase_file);
/* Messages name mount's options (key_file=FILE) instead of --key-file F. */
void unlock_input_mount_style(void);
/* What keyring_unlock's rc means for a message ("wrong passphrase", "wrong
 * key file", "this store is unlocked with a key file, not a passphrase: give
 * --key-file F", a header that fails authentication), or NULL for other
 * errors. key_file: a key file was tried. */
const char *unlock_refusal(int rc, bool key_file);
void unlock_input_free(struct unlock_input *in);
/*
 * Mounts as /proc/self/mountinfo lists them (mountinfo.c). Paths are
 * absolute and resolved; 0 or -ENOENT (-errno without /proc).
 */
struct mount_entry {
	char point[4096];
	char fstype[64]; /* fuse.secretsfs, tmpfs, ... */
	char source[4096]; /* for secretsfs: the store's absolute path, as the mounter said */
	long user_id;      /* a FUSE mount's user_id= (who mounted it), else -1 */
};
/* The topmost mount whose mount point is path_abs (any kind, anyone's). */
int mountinfo_at(const char *path_abs, struct mount_entry *out);
/* The topmost mount of a secretsfs store: fuse.secretsfs with the store as
 * its source, mounted by root or by the store file's owner (any user can
 * give any fsname=, none another user_id=). */
int mountinfo_of_store(const char *store_abs, struct mount_entry *out);
/* e is such a mount of the store it names. */
bool mountinfo_is_store(const struct mount_entry *e);
/* Why a store (any path to it) is busy, for a message: "already mounted at
 * MNT" and advice, or in use by another process. Returns buf. */
const char *mountinfo_busy(const char *store, const char *advice, char *buf, size_t cap);

/*
 * A new passphrase (passphrase_strength.c): under PASSPHRASE_MIN_CHARS
 * characters it is refused (-EINVAL, the reason printed) unless
 * allow_short (--allow-short-passphrase); an obviously weak one gets a
 * warning line on stderr. Nothing of the passphrase is printed. A key file
 * passes.
 */
#define PASSPHRASE_MIN_CHARS 12
int passphrase_judge(const struct unlock_secret *s, bool allow_short);

/*
 * sm_open of a store file for a command that works on it unmounted: takes
 * st and kr. A writable open is refused when the load finds any problem
 * (one line naming the first, then consequence, e.g. ": nothing changed");
 * a read-only one serves around them. 0 or the negative errno.
 */
struct sm;
int cli_open_domain(const char *path, struct store *st, struct keyring *kr, bool readonly,
		    const char *consequence, struct sm **out);

int cmd_check(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
int cmd_rekey(int argc, char **argv);
int cmd_compact(int argc, char **argv);

#endif
