/*
 * secretsfs key create|list|disable|enable: named keys, KMS's counterpart.
 * On a mounted store the daemon does the work (it holds the master key),
 * asked through the mount's root xattrs; on an unmounted store the command
 * unlocks the store itself.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "cli/cli.h"
#include "crypto/crypto.h"
#include "secrets/keyring.h"
#include "secrets/secrets.h"
#include "store/store.h"
#include "util/timeutil.h"

static const char usage[] =
	"usage: secretsfs key create   TARGET ALIAS\n"
	"       secretsfs key list     TARGET\n"
	"       secretsfs key disable  TARGET KEY\n"
	"       secretsfs key enable   TARGET KEY\n"
	"\n"
	"Named keys wrap the data key of every version (KMS's counterpart).\n"
	"TARGET is a mount point of secretsfs, or a store file that is not mounted\n"
	"(then give --key-file F or --passphrase-file F, or answer the prompt).\n"
	"ALIAS is alias/NAME (or NAME); KEY is an alias, a key id or a key ARN.\n"
	"Choose a secret's key with: setfattr -n user.sm.kms_key_id -v alias/NAME FILE\n"
	"\n"
	"  --key-file F         unlock an unmounted store with this key file\n"
	"  --passphrase-file F  unlock an unmounted store with this passphrase\n";

static int via_mount(const char *mnt, const char *verb, const char *arg)
{
	if (strcmp(verb, "list") == 0) {
		char buf[65536];
		ssize_t n = getxattr(mnt, "user.sm.keys", buf, sizeof(buf) - 1);
		if (n < 0) {
			cli_error("%s: cannot list keys: %s", mnt, strerror(errno));
			return 1;
		}
		fwrite(buf, 1, (size_t)n, stdout);
		return 0;
	}
	char name[32];
	snprintf(name, sizeof(name), "user.sm.key.%s", verb);
	if (setxattr(mnt, name, arg, strlen(arg), 0) != 0) {
		int e = errno;
		cli_error("%s %s: %s", verb, arg,
			  e == EEXIST ? "that alias exists already" :
			  e == EINVAL ? (strcmp(verb, "create") == 0 ?
					 "an alias is alias/NAME (letters, digits, /_-), not under alias/aws/" :
					 "no such key") :
			  e == EACCES ? "only root or the user who mounted the store may manage keys" :
			  strerror(e));
		return 1;
	}
	return 0;
}

static int offline(const char *path, const char *verb, const char *arg, const char *key_file,
		   const char *passphrase_file)
{
	struct keyring *kr = NULL;
	struct sm *sm = NULL;
	bool list = strcmp(verb, "list") == 0;
	int status = 1, rc;

	if (crypto_init(1 << 20))
		return 1;
	/* Checked whole before any key record is written; a listing shows
	 * damaged keys too. */
	struct cli_open how = { .key_file = key_file, .passphrase_file = passphrase_file,
				.readonly = list, .skip_damaged = list,
				.busy_advice = ": give that mount point instead",
				.consequence = list ? NULL : "; nothing changed" };
	if (cli_open_domain(path, &how, &sm) ||
	    (!list && cli_refuse_on_replica(sm, path, "a key change (give the mount point)")))
		goto out;
	kr = sm_keyring(sm);
	char key_id[SM_KEY_ID_LEN + 1];
	if (list) {
		struct keyring_key_info *keys;
		size_t n;
		if ((rc = keyring_list(kr, &keys, &n)))
			goto fail;
		for (size_t i = 0; i < n; i++) {
			char arn[128], date[40];
			keyring_key_arn(kr, keys[i].id, arn, sizeof(arn));
			time_format_iso8601(keys[i].created_ms, date, sizeof(date));
			printf("%s alias/%s %s %s\n", arn, keys[i].alias,
			       keys[i].damaged ? "Damaged" : keys[i].enabled ? "Enabled" : "Disabled",
			       date);
		}
		free(keys);
	} else if (strcmp(verb, "create") == 0) {
		if ((rc = keyring_create_key(kr, arg, key_id)))
			goto fail;
		char arn[128];
		keyring_key_arn(kr, key_id, arn, sizeof(arn));
		printf("%s\n", arn);
	} else if ((rc = keyring_set_enabled(kr, arg, strcmp(verb, "enable") == 0))) {
		goto fail;
	}
	status = 0;
	goto out;
fail:
	cli_error("%s %s: %s", verb, arg ? arg : "",
		  rc == -EEXIST ? "that alias exists already" :
		  rc == -EINVAL ? "not a valid alias or key" :
		  rc == -ENOENT ? "no such key" : strerror(-rc));
out:
	sm_close(sm); /* frees kr */
	crypto_shutdown();
	return status;
}

int cmd_key(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "passphrase-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *key_file = NULL, *passphrase_file = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 'p': passphrase_file = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return EXIT_MISUSE;
		}
	}
	int nargs = argc - optind;
	if (nargs < 2) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	const char *verb = argv[optind], *target = argv[optind + 1];
	const char *arg = nargs > 2 ? argv[optind + 2] : NULL;
	bool list = strcmp(verb, "list") == 0;
	if (!list && strcmp(verb, "create") && strcmp(verb, "disable") && strcmp(verb, "enable")) {
		cli_error("unknown key command '%s' (create, list, disable, enable)", verb);
		return EXIT_MISUSE;
	}
	if ((list && nargs != 2) || (!list && nargs != 3)) {
		fputs(usage, stderr);
		return EXIT_MISUSE;
	}
	struct stat st;
	if (stat(target, &st) != 0) {
		cli_error("%s: %s", target, strerror(errno));
		return 1;
	}
	if (S_ISDIR(st.st_mode))
		return via_mount(target, verb, arg);
	return offline(target, verb, arg, key_file, passphrase_file);
}
