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
#include "secrets/secrets.h"

#define EXIT_MISUSE 2

int cmd_init(int argc, char **argv);
int cmd_keygen(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_key(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_random_password(int argc, char **argv);
int cmd_rotate(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/*
 * The Secrets Manager API of a daemon (cmd_serve.c): serve's options, or
 * a mount's -o api=... The Agent's token is read from agent_token_file,
 * else as the Agent reads it ($AWS_TOKEN, a value or file:///PATH).
 * 0, or -errno with the reason logged.
 */
struct api;
struct policy;
struct cli_api {
	const char *listen, *agent_listen;  /* ADDR:PORT */
	const char *credentials;            /* the credentials file (not with auth_none) */
	bool auth_none;
	const char *tls_cert, *tls_key;
	const char *agent_token_file;
	const char *audit_log;
	bool audit_required, debug;
	const struct policy *policy;
	uint32_t new_uid, new_gid, new_mode; /* what CreateSecret makes */
	unsigned max_connections, timeout_s, threads;
	size_t max_body;
	int (*rotate)(void *ctx, const char *name, const char *token); /* a mount's rotator */
	void *rotate_ctx;
};
int cli_api_start(struct sm *sm, const struct cli_api *ca, struct api **out);

/* Options of a command that takes only --help: -1 to go on (operands from
 * optind), or the exit status (0 after --help, 2 for anything else). */
int cli_help_only(int argc, char **argv, const char *usage);

/* No core dumps, not dumpable (so not traceable by the same user): called
 * first by every command that holds a key or a value. */
void cli_harden_process(void);
/* A daemon's locked pool for plaintext (libgcrypt's secure memory), the
 * memory-lock limit raised as far as allowed: -ENOMEM when it cannot be
 * locked (libgcrypt would carry on unlocked; a daemon does not). */
int cli_lock_memory(void);

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
/* The same as text, for usage strings. */
#define PASSPHRASE_MIN_TEXT CLI_TEXT_OF(PASSPHRASE_MIN_CHARS)
#define CLI_TEXT_OF(n) CLI_TEXT(n)
#define CLI_TEXT(n) #n
int passphrase_judge(const struct unlock_secret *s, bool allow_short);

/*
 * A store file opened as a domain by a command that unlocks it itself
 * (open_domain.c): store_open; tdb's structure check if asked; the kind of
 * secret the header names checked against the file given (neither: a
 * passphrase, asked on the terminal), refused before anything is read;
 * unlock_input_read; keyring_unlock; sm_open, which checks the store whole.
 * Each refusal is one line naming path, then consequence. A writable open
 * is refused when the load finds any problem, unless skip_damaged. 0 or
 * the negative errno.
 */
struct cli_open {
	const char *key_file, *passphrase_file; /* at most one; neither: the terminal */
	bool readonly;        /* the file (without its lock: a mounted store too) and the domain */
	bool skip_damaged;    /* serve around records that fail their checks, read-only */
	bool check_structure; /* tdb's structure check before the secret is asked for */
	const char *busy_advice;   /* after "already mounted at MNT" */
	const char *consequence;   /* after a refusal: "; nothing changed" */
	const char *damage_advice; /* after "secretsfs check lists them" */
	const struct sm_options *options; /* the domain's (recovery window, owner of the root,
					     ro); NULL: the defaults */
	struct unlock_input *input; /* if set, keeps the secret for the caller to free;
				       else it is wiped once the store is unlocked */
	struct sm_damage damage;    /* out: what the load found */
};
int cli_open_domain(const char *path, struct cli_open *how, struct sm **out);

/*
 * A store replicated through etcd (cluster.c, docs/replication.md).
 * cli_cluster_init makes the store at path (which must not exist) from
 * etcd under cfg->prefix: a new store published there when the prefix is
 * empty, else a replica of the store it holds, filled from etcd (the
 * secret must unlock it). cli_cluster_attach: a mounted domain's replica,
 * caught up and applying other hosts' changes (NULL for a store of this
 * host alone); detach before sm_close. Each refusal is printed.
 */
struct replica_config;
struct replica;
struct unlock_secret;
int cli_cluster_init(const char *path, const struct unlock_secret *secret,
		     const struct replica_config *cfg, const char *region, const char *account);
int cli_cluster_attach(struct sm *sm, struct replica **out);
/*
 * A replica commits without syncing (etcd holds every commit first), and
 * keeps a note of its cluster record beside its file (STORE.etcd). When
 * the file cannot be read (a power loss tore it, or it was damaged),
 * cli_cluster_rebuild makes it again from etcd with the same secret: the
 * damaged file is kept as STORE.damaged-TIME and a new replica put in its
 * place. Refusals printed; the file is left as it was unless all went well.
 */
bool cli_cluster_has_note(const char *path);
int cli_cluster_rebuild(const char *path, const struct unlock_secret *secret);
void cli_cluster_detach(struct sm *sm, struct replica *r);
/* -EPERM, printed, when the store at path is a replica: what (a command
 * that writes the file directly) would change this host's copy alone. */
int cli_refuse_on_replica(struct sm *sm, const char *path, const char *what);

/*
 * What `secretsfs status MOUNTPOINT` prints (status.c): the daemon of a
 * mount writes it to a file of its own every second (mode, state, applied
 * revision, endpoints, last word from etcd); r NULL: a local store.
 */
int cli_status_start(const char *mountpoint_abs, const char *store_path, struct replica *r);
void cli_status_stop(void);
int cmd_status(int argc, char **argv);

int cmd_check(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_passwd(int argc, char **argv);
int cmd_rekey(int argc, char **argv);
int cmd_compact(int argc, char **argv);

#endif
