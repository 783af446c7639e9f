/*
 * Store care: secretsfs check, backup, passwd and rekey (BRIEF §7).
 * check and backup work on a mounted store too (backup through the daemon,
 * which holds the store); passwd and rekey need it unmounted.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "secrets/authstore.h"
#include "secrets/keyring.h"
#include "secrets/secrets.h"
#include "store/store.h"

struct store_args {
	const char *key_file, *passphrase_file, *new_key_file, *new_passphrase_file;
	bool allow_short; /* --allow-short-passphrase, for the new one */
	int first; /* index of the first operand */
};

/* Parses --key-file, --passphrase-file (and the --new- ones when allowed). */
static int parse(int argc, char **argv, const char *usage, bool news, int operands,
		 struct store_args *a)
{
	static const struct option longopts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "new-key-file", required_argument, NULL, 'K' },
		{ "new-passphrase-file", required_argument, NULL, 'P' },
		{ "allow-short-passphrase", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;
	memset(a, 0, sizeof(*a));
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': a->key_file = optarg; break;
		case 'p': a->passphrase_file = optarg; break;
		case 'K': if (!news) goto misuse; a->new_key_file = optarg; break;
		case 'P': if (!news) goto misuse; a->new_passphrase_file = optarg; break;
		case 'S': if (!news) goto misuse; a->allow_short = true; break;
		case 'h': fputs(usage, stdout); return 0;
		default: goto misuse;
		}
	}
	if (argc - optind != operands)
		goto misuse;
	if ((a->key_file && a->passphrase_file) || (a->new_key_file && a->new_passphrase_file)) {
		cli_error("give one key file or one passphrase file, not both");
		return EXIT_MISUSE;
	}
	a->first = optind;
	return -1; /* go on */
misuse:
	fputs(usage, stderr);
	return EXIT_MISUSE;
}

static const char check_usage[] =
	"usage: secretsfs check STORE [--key-file F | --passphrase-file F]\n"
	"\n"
	"Verifies a store: tdb's structure, the header and every named key, and\n"
	"that every version of every secret decrypts and belongs to its secret.\n"
	"Reads only; on a mounted store a commit in flight may be reported, so\n"
	"check a backup (secretsfs backup) for a certain answer. Exit status 0\n"
	"when the store is sound, 1 otherwise.\n";

static int print_problem(const char *record, const char *why, void *ctx)
{
	(void)ctx;
	printf("record %s %s\n", record, why);
	return 0;
}

int cmd_check(int argc, char **argv)
{
	struct store_args a;
	struct sm *sm = NULL;
	int rc = parse(argc, argv, check_usage, false, 1, &a), status = 1;
	if (rc >= 0)
		return rc;
	const char *path = argv[a.first];
	if (crypto_init(1 << 20))
		return 1;
	/* skip_damaged: open around every problem, to name them all. */
	struct cli_open how = { .key_file = a.key_file, .passphrase_file = a.passphrase_file,
				.readonly = true, .skip_damaged = true, .check_structure = true };
	if (cli_open_domain(path, &how, &sm))
		goto out;
	struct authstore *as = keyring_authstore(sm_keyring(sm));
	bool legacy = authstore_is_legacy(as); /* a read-only open leaves it so */
	int format = authstore_current_format(as);
	sm_problems(sm, print_problem, NULL);
	struct sm_verify_report r;
	if ((rc = sm_verify(sm, &r))) {
		cli_error("%s: check stopped: %s", path, strerror(-rc));
		goto out;
	}
	printf("%s: %llu secrets, %llu versions, %llu version records: ", path,
	       (unsigned long long)r.secrets, (unsigned long long)r.versions,
	       (unsigned long long)r.records);
	if (r.bad_versions || r.problems) {
		printf("%llu records fail their checks, %llu versions do not open\n",
		       (unsigned long long)r.problems, (unsigned long long)r.bad_versions);
	} else {
		printf("sound\n");
		status = 0;
	}
	if (legacy)
		printf("%s: store format %d: its records are not authenticated yet; a writable "
		       "mount with the key authenticates them\n", path, format);
out:
	sm_close(sm);
	crypto_shutdown();
	return status;
}

static const char backup_usage[] =
	"usage: secretsfs backup STORE FILE\n"
	"\n"
	"Writes a consistent copy of STORE to FILE (which must not exist), mode\n"
	"0600, synced. On a mounted store the daemon makes the copy between two\n"
	"commits. The copy opens with the same key or passphrase.\n";

int cmd_backup(int argc, char **argv)
{
	struct store_args a;
	struct store *st = NULL;
	char dest[PATH_MAX];
	struct mount_entry mnt;
	int rc = parse(argc, argv, backup_usage, false, 2, &a);
	if (rc >= 0)
		return rc;
	const char *path = argv[a.first], *file = argv[a.first + 1];
	char *store_abs = realpath(path, NULL);
	if (!store_abs) {
		cli_error("%s: %s", path, strerror(errno));
		return 1;
	}
	/* The destination as an absolute path: the daemon has its own cwd. */
	char cwd[PATH_MAX];
	int n = file[0] == '/' ? snprintf(dest, sizeof(dest), "%s", file)
			       : getcwd(cwd, sizeof(cwd)) ? snprintf(dest, sizeof(dest), "%s/%s", cwd, file)
							  : -1;
	if (n < 0 || (size_t)n >= sizeof(dest)) {
		cli_error("%s: path too long", file);
		free(store_abs);
		return 1;
	}
	if (access(dest, F_OK) == 0) {
		cli_error("%s: exists already; refusing to overwrite", file);
		free(store_abs);
		return 1;
	}
	rc = store_open(store_abs, 0, &st);
	if (rc == -EBUSY) {
		if ((rc = mountinfo_of_store(store_abs, &mnt))) {
			cli_error("%s: in use, but not mounted here: stop the process using it", path);
		} else if (setxattr(mnt.point, "user.sm.backup", dest, strlen(dest), 0) != 0) {
			rc = -errno;
			cli_error("%s: the daemon could not write %s: %s", path, file, strerror(errno));
		}
	} else if (rc == 0) {
		if ((rc = store_backup(st, dest)))
			cli_error("%s: cannot write %s: %s", path, file, strerror(-rc));
	} else {
		cli_error("%s: cannot open: %s", path, strerror(-rc));
	}
	store_close(st);
	free(store_abs);
	return rc ? 1 : 0;
}

static const char passwd_usage[] =
	"usage: secretsfs passwd STORE [--key-file F | --passphrase-file F]\n"
	"                              [--new-key-file F | --new-passphrase-file F]\n"
	"                              [--allow-short-passphrase]\n"
	"\n"
	"Changes what unlocks STORE (unmounted): the master key is sealed anew\n"
	"under the new key file or passphrase; no value is re-encrypted. Without\n"
	"files, passphrases are asked on the terminal. One transaction: an\n"
	"interruption leaves the store opening with the old or the new one.\n"
	"A new passphrase under " PASSPHRASE_MIN_TEXT " characters is refused unless\n"
	"--allow-short-passphrase is given.\n";

static const char rekey_usage[] =
	"usage: secretsfs rekey STORE [--key-file F | --passphrase-file F]\n"
	"                             [--new-key-file F | --new-passphrase-file F]\n"
	"                             [--allow-short-passphrase]\n"
	"\n"
	"Replaces STORE's master key (unmounted) with a new random one, and every\n"
	"named key with new material under the same id and alias: every version's\n"
	"data key is re-wrapped and every record tagged anew (values are not\n"
	"re-encrypted). Whoever held the old master key opens nothing written\n"
	"after. Without --new-*, the store keeps its key file or passphrase. One\n"
	"transaction.\n";

static int change_unlock(int argc, char **argv, const char *usage, bool new_master)
{
	struct store_args a;
	struct unlock_input old = { 0 }, fresh = { 0 };
	struct sm *sm = NULL;
	int rc = parse(argc, argv, usage, true, 1, &a), status = 1;
	if (rc >= 0)
		return rc;
	const char *path = argv[a.first];
	if (crypto_init(1 << 20))
		return 1;
	/* Checked whole first: nothing is sealed again over records that fail.
	 * The old secret is kept: rekey without --new-* seals under it again. */
	struct cli_open how = { .key_file = a.key_file, .passphrase_file = a.passphrase_file,
				.busy_advice = "; unmount it first",
				.consequence = "; nothing changed", .input = &old };
	if (cli_open_domain(path, &how, &sm) ||
	    cli_refuse_on_replica(sm, path, new_master ? "rekey" : "passwd"))
		goto out;
	bool keep = new_master && !a.new_key_file && !a.new_passphrase_file;
	if (!keep && unlock_input_read_new(&fresh, a.new_key_file, a.new_passphrase_file,
						a.allow_short))
		goto out;
	const struct unlock_secret *next = keep ? &old.secret : &fresh.secret;
	uint64_t versions = 0;
	rc = new_master ? sm_rekey(sm, next, &versions)
			: keyring_change_unlock(sm_keyring(sm), next);
	if (rc) {
		cli_error("%s: %s; nothing changed", path, strerror(-rc));
		goto out;
	}
	if (new_master)
		printf("%s: new master key and named keys; %llu data keys re-wrapped\n", path,
		       (unsigned long long)versions);
	status = 0;
	/* tdb keeps what a commit overwrote (its recovery area, freed space):
	 * the master key sealed the old way, the old wrapped keys. A fresh
	 * file holds only what is current. */
	sm_close(sm);
	sm = NULL;
	uint64_t before = 0, after = 0;
	if ((rc = store_compact(path, &before, &after)))
		cli_error("%s: the change is made, but the old sealed keys may linger in the "
			  "file's free space until `secretsfs compact %s` runs: %s", path, path,
			  strerror(-rc));
out:
	sm_close(sm);
	unlock_input_free(&old);
	unlock_input_free(&fresh);
	crypto_shutdown();
	return status;
}

int cmd_passwd(int argc, char **argv)
{
	return change_unlock(argc, argv, passwd_usage, false);
}

int cmd_rekey(int argc, char **argv)
{
	return change_unlock(argc, argv, rekey_usage, true);
}

static const char compact_usage[] =
	"usage: secretsfs compact STORE\n"
	"\n"
	"Rewrites an unmounted store into a fresh file, giving back the space that\n"
	"deleted and pruned versions left (a tdb file never shrinks by itself).\n"
	"The new file replaces the old by rename: an interruption leaves the old\n"
	"store whole. Needs no key: records are copied as they are.\n";

int cmd_compact(int argc, char **argv)
{
	struct store_args a;
	uint64_t before = 0, after = 0;
	int rc = parse(argc, argv, compact_usage, false, 1, &a);
	if (rc >= 0)
		return rc;
	const char *path = argv[a.first];
	rc = store_compact(path, &before, &after);
	if (rc) {
		char busy[4200];
		cli_error("%s: cannot compact: %s", path,
			  rc == -EBUSY ? mountinfo_busy(path, "; unmount it first", busy, sizeof(busy)) :
			  rc == -ENOENT ? "no such file" : strerror(-rc));
		return 1;
	}
	printf("%s: %llu bytes -> %llu bytes\n", path, (unsigned long long)before,
	       (unsigned long long)after);
	return 0;
}
